//! The server configuration: one YAML file, or embedded defaults.
//!
//! Every setting has a default, so an empty file (or no file) is a working
//! single node on loopback. Unknown keys are errors (a typo must not silently
//! fall back to a default), and every error names the file, the line and the
//! key path. `examples/single-node.yaml` shows every setting.

pub use crate::sip::guard::Cidr;
use serde::Deserialize;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub node: NodeConfig,
    pub flows: FlowsConfig,
    pub sip: SipConfig,
    pub rtp: RtpConfig,
    pub routing: RoutingConfig,
    pub shutdown: ShutdownConfig,
    pub voicemail: VoicemailConfig,
    pub mwi: MwiConfig,
    pub email: EmailConfig,
    pub cluster: ClusterConfig,
}

/// Message-waiting indication (RFC 3842): unsolicited NOTIFYs to each
/// mailbox's `mwi` target and NOTIFYs to SUBSCRIBEd phones.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct MwiConfig {
    /// Every lamp is re-sent this often besides on every change; `never`: only on changes.
    #[serde(with = "duration_or_never")]
    pub refresh: Option<Duration>,
    /// Shortest SUBSCRIBE accepted (shorter ones get 423).
    #[serde(with = "duration_text")]
    pub min_expires: Duration,
    /// Longest subscription granted.
    #[serde(with = "duration_text")]
    pub max_expires: Duration,
}

/// How the connection to the relay is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EmailSecurity {
    /// STARTTLS, required: the message never goes out in clear.
    Starttls,
    /// TLS from the first byte (port 465).
    Tls,
    /// No TLS at all: a relay on loopback or a trusted network only.
    Plain,
}

/// Voicemail-to-email and the `email` action: an SMTP relay and a durable
/// queue (the store's outbox) with exponential backoff.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct EmailConfig {
    /// The SMTP relay's host name or address; empty: no email is sent (it queues).
    pub relay: String,
    pub port: u16,
    pub security: EmailSecurity,
    /// SMTP AUTH, when the relay wants it (both or neither).
    pub user: Option<String>,
    pub password: Option<String>,
    /// The sender, `Name <address>` or `address`.
    pub from: String,
    /// The subject of a voicemail email: `{mailbox}`, `{name}`, `{caller}`,
    /// `{caller_name}`, `{duration}`, `{date}`, `{time}` are replaced.
    pub subject: String,
    /// The longest one delivery attempt may take.
    #[serde(with = "duration_text")]
    pub timeout: Duration,
    /// The wait after the first failure; it doubles after each one, up to `retry_max`.
    #[serde(with = "duration_text")]
    pub retry_first: Duration,
    #[serde(with = "duration_text")]
    pub retry_max: Duration,
    /// An email still failing after this long is given up (logged; the
    /// voicemail message itself stays in its mailbox); `never` retries forever.
    #[serde(with = "duration_or_never")]
    pub give_up_after: Option<Duration>,
}

impl Default for MwiConfig {
    fn default() -> Self {
        MwiConfig {
            refresh: Some(Duration::from_secs(15 * 60)),
            min_expires: Duration::from_secs(60),
            max_expires: Duration::from_secs(3600),
        }
    }
}

impl Default for EmailConfig {
    fn default() -> Self {
        EmailConfig {
            relay: String::new(),
            port: 25,
            security: EmailSecurity::Starttls,
            user: None,
            password: None,
            from: "vflow voicemail <voicemail@localhost>".into(),
            subject: "New voicemail from {caller} for {mailbox}".into(),
            timeout: Duration::from_secs(30),
            retry_first: Duration::from_secs(30),
            retry_max: Duration::from_secs(3600),
            give_up_after: Some(Duration::from_secs(3 * 86_400)),
        }
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct NodeConfig {
    /// This node's name in logs and (later) the cluster.
    pub name: String,
    /// Where messages, recordings and the database live.
    pub data_dir: PathBuf,
    /// The time zone for `in_profile`, `$TIME`, `$DATE` (IANA name); default: the system's.
    pub time_zone: Option<String>,
    /// Threads running calls (SIP runs on a thread of its own). One (the
    /// default) is cheapest per call: a media turn never crosses threads.
    pub threads: usize,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct FlowsConfig {
    /// Files or directories of .vflow sources compiled at start (and at each
    /// reload). Not with `bundle`.
    pub paths: Vec<PathBuf>,
    /// A signed bundle (`vflow build`) to run instead of sources; read again
    /// at each reload (SIGHUP, `vflow reload`).
    pub bundle: Option<PathBuf>,
    /// The public key files (`vflow keygen`) a bundle's signature is checked
    /// against; required with `bundle`, read again at each reload.
    pub trusted_keys: Vec<PathBuf>,
    /// A stdlib directory for `std/` imports instead of the built-in one
    /// (sources only: a bundle carries the stdlib it was built with).
    pub stdlib: Option<PathBuf>,
    /// `jit` (default where supported) or `interp`.
    pub engine: Option<String>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct SipConfig {
    /// The address SIP listens on, for UDP and TCP.
    pub listen: SocketAddr,
    /// Whether to listen on UDP and TCP.
    pub udp: bool,
    pub tcp: bool,
    /// The address put in Contact and SDP when it differs from `listen` (NAT).
    pub public_address: Option<std::net::IpAddr>,
    /// Sources allowed to send calls, as CIDRs; others get 403.
    #[serde(deserialize_with = "cidrs")]
    pub trusted_peers: Vec<Cidr>,
    /// The PBXs this node takes calls from, in order of preference (a main
    /// PBX and its fallback): each is trusted, and MWI NOTIFYs addressed to
    /// any of them go to the one that sent the latest INVITE, OPTIONS or
    /// SUBSCRIBE (see `sip::fallback`).
    pub pbx_peers: Vec<PbxPeerConfig>,
    /// Requests per second allowed per source before it is banned for `ban`.
    pub rate_limit: u32,
    #[serde(with = "duration_text")]
    pub ban: Duration,
}

/// One PBX in `sip.pbx_peers`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PbxPeerConfig {
    pub name: String,
    /// Its SIP address, `IP:PORT`.
    pub addr: SocketAddr,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct RtpConfig {
    /// The UDP port range for media, `FIRST-LAST` (even ports are used).
    pub ports: PortRange,
    /// A call with no media for this long is ended.
    #[serde(with = "duration_text")]
    pub timeout: Duration,
    /// While nothing plays: `keepalive` (one silence packet a second) or
    /// `continuous` (a packet every 20 ms).
    #[serde(deserialize_with = "silence")]
    pub silence: crate::media::Silence,
    /// Listen for DTMF tones in the audio: `auto` (only when the caller's
    /// offer has no telephone-event, as RFC 4733 peers send keys as events),
    /// `on` (always, for peers that offer events but send tones) or `off`.
    pub inband_dtmf: InbandDtmf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InbandDtmf {
    #[default]
    Auto,
    On,
    Off,
}

impl InbandDtmf {
    /// Whether a call whose offer has (`true`) or lacks telephone-event
    /// listens for tones.
    pub fn listen(self, offers_events: bool) -> bool {
        match self {
            InbandDtmf::Auto => !offers_events,
            InbandDtmf::On => true,
            InbandDtmf::Off => false,
        }
    }
}

fn silence<'de, D: serde::Deserializer<'de>>(d: D) -> Result<crate::media::Silence, D::Error> {
    use crate::media::Silence;
    match String::deserialize(d)?.as_str() {
        "keepalive" => Ok(Silence::Keepalive),
        "continuous" => Ok(Silence::Continuous),
        other => Err(serde::de::Error::unknown_variant(
            other,
            &["keepalive", "continuous"],
        )),
    }
}

/// How a call's SIP target maps to a start point.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct RoutingConfig {
    /// `vm-201`: leave a message for 201.
    pub leave_prefix: String,
    /// `vmcollect-201`: collect 201's messages.
    pub collect_prefix: String,
    /// `vmcollect` called from 201: collect 201's messages.
    pub collect_user: String,
    /// `queue-Sales`: the `queued` start point of Sales.
    pub queued_prefix: String,
    /// `queue-again-Sales`: the `still_queued` start point of Sales.
    pub still_queued_prefix: String,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ShutdownConfig {
    /// On SIGINT/SIGTERM, calls in progress may go on for this long.
    #[serde(with = "duration_text")]
    pub grace: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            node: NodeConfig::default(),
            flows: FlowsConfig::default(),
            sip: SipConfig::default(),
            rtp: RtpConfig::default(),
            routing: RoutingConfig::default(),
            shutdown: ShutdownConfig::default(),
            voicemail: VoicemailConfig::default(),
            mwi: MwiConfig::default(),
            email: EmailConfig::default(),
            cluster: ClusterConfig::default(),
        }
    }
}

impl Default for NodeConfig {
    fn default() -> Self {
        NodeConfig {
            name: "vflow".into(),
            data_dir: PathBuf::from("var"),
            time_zone: None,
            threads: 1,
        }
    }
}

impl Default for FlowsConfig {
    fn default() -> Self {
        FlowsConfig {
            paths: vec![PathBuf::from("flows")],
            bundle: None,
            trusted_keys: Vec::new(),
            stdlib: None,
            engine: None,
        }
    }
}

impl Default for SipConfig {
    fn default() -> Self {
        SipConfig {
            listen: "127.0.0.1:5060".parse().expect("a valid literal address"),
            udp: true,
            tcp: true,
            public_address: None,
            trusted_peers: vec![
                "127.0.0.0/8".parse().expect("literal"),
                "::1/128".parse().expect("literal"),
            ],
            pbx_peers: Vec::new(),
            rate_limit: 200,
            ban: Duration::from_secs(60),
        }
    }
}

impl Default for RtpConfig {
    fn default() -> Self {
        RtpConfig {
            ports: PortRange {
                first: 20000,
                last: 20999,
            },
            timeout: Duration::from_secs(30),
            silence: crate::media::Silence::Keepalive,
            inband_dtmf: InbandDtmf::Auto,
        }
    }
}

impl Default for RoutingConfig {
    fn default() -> Self {
        RoutingConfig {
            leave_prefix: "vm-".into(),
            collect_prefix: "vmcollect-".into(),
            collect_user: "vmcollect".into(),
            queued_prefix: "queue-".into(),
            still_queued_prefix: "queue-again-".into(),
        }
    }
}

/// The mailbox store: PIN policy and lockout, limits, retention, seeded mailboxes.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct VoicemailConfig {
    pub pin: PinConfig,
    pub limits: LimitsConfig,
    pub retention: RetentionConfig,
    /// How often housekeeping (retention) runs.
    #[serde(with = "duration_text")]
    pub housekeeping_every: Duration,
    /// Mailboxes created at start when missing (the YAML never overwrites a PIN).
    pub mailboxes: Vec<MailboxSeed>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct PinConfig {
    /// The shortest PIN `set_pin` and `vflow mailbox` accept (never less than 1).
    pub min_length: usize,
    /// The longest PIN accepted.
    pub max_length: usize,
    /// Wrong PINs in a row (over any number of calls) that lock a mailbox.
    pub lockout_attempts: u32,
    /// How long a locked mailbox refuses every PIN.
    #[serde(with = "duration_text")]
    pub lockout_for: Duration,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    /// Messages (new and saved) a mailbox may hold before it is full.
    pub max_messages: u32,
    /// The longest message; a flow's `max_length` is cut to this.
    #[serde(with = "duration_text")]
    pub max_message_length: Duration,
}

/// How long a message stays in each folder before housekeeping removes it;
/// `never` keeps it.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct RetentionConfig {
    #[serde(with = "duration_or_never")]
    pub new: Option<Duration>,
    #[serde(with = "duration_or_never")]
    pub saved: Option<Duration>,
    #[serde(with = "duration_or_never")]
    pub deleted: Option<Duration>,
}

/// A mailbox declared in the configuration.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MailboxSeed {
    /// The mailbox number or name (letters, digits, `-_.+`).
    pub id: String,
    #[serde(default)]
    pub name: String,
    /// The initial PIN, hashed when the mailbox is created; prefer `pin_hash`.
    #[serde(default)]
    pub pin: Option<String>,
    /// An argon2 PHC string (`$argon2id$...`), as `vflow mailbox show` prints none of.
    #[serde(default)]
    pub pin_hash: Option<String>,
    #[serde(default)]
    pub email: String,
    /// `off`, `notify`, `attach` or `forward`.
    #[serde(default)]
    pub email_mode: Option<String>,
    /// Where unsolicited MWI NOTIFYs go: `sip:201@192.0.2.5:5060` (UDP).
    #[serde(default)]
    pub mwi: String,
    #[serde(default)]
    pub max_messages: Option<u32>,
    #[serde(default, with = "opt_duration_text")]
    pub max_message_length: Option<Duration>,
}

impl Default for VoicemailConfig {
    fn default() -> Self {
        VoicemailConfig {
            pin: PinConfig::default(),
            limits: LimitsConfig::default(),
            retention: RetentionConfig::default(),
            housekeeping_every: Duration::from_secs(3600),
            mailboxes: Vec::new(),
        }
    }
}

impl Default for PinConfig {
    fn default() -> Self {
        PinConfig {
            min_length: 4,
            max_length: 12,
            lockout_attempts: 5,
            lockout_for: Duration::from_secs(15 * 60),
        }
    }
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            max_messages: 100,
            max_message_length: Duration::from_secs(180),
        }
    }
}

impl Default for RetentionConfig {
    fn default() -> Self {
        const DAY: u64 = 86_400;
        RetentionConfig {
            new: None,
            saved: Some(Duration::from_secs(30 * DAY)),
            deleted: Some(Duration::from_secs(DAY)),
        }
    }
}

impl Default for ShutdownConfig {
    fn default() -> Self {
        ShutdownConfig {
            grace: Duration::from_secs(30),
        }
    }
}

/// A configuration error: the file, the line and column, the key, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub file: String,
    pub line: Option<usize>,
    pub column: Option<usize>,
    pub key: String,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(l) = self.line {
            write!(f, ":{l}")?;
            if let Some(c) = self.column {
                write!(f, ":{c}")?;
            }
        }
        if !self.key.is_empty() && self.key != "." {
            write!(f, ": `{}`", self.key)?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for ConfigError {}

impl Config {
    /// Reads and validates a configuration file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            file: name.clone(),
            line: None,
            column: None,
            key: String::new(),
            message: format!("cannot read the file: {e}"),
        })?;
        Config::parse(&name, &text)
    }

    /// Parses configuration text; `name` is used in errors.
    pub fn parse(name: &str, text: &str) -> Result<Config, ConfigError> {
        let config: Config = if text.trim().is_empty() {
            Config::default()
        } else {
            let de = serde_yaml::Deserializer::from_str(text);
            serde_path_to_error::deserialize(de).map_err(|e| {
                let key = e.path().to_string();
                let inner = e.into_inner();
                let loc = inner.location();
                // serde_yaml appends "at line L column C"; the location is shown separately.
                let message = inner.to_string();
                let message = message
                    .split(" at line ")
                    .next()
                    .unwrap_or(&message)
                    .to_string();
                ConfigError {
                    file: name.to_string(),
                    line: loc.as_ref().map(|l| l.line()),
                    column: loc.as_ref().map(|l| l.column()),
                    key,
                    message,
                }
            })?
        };
        config.validate(name, text)?;
        Ok(config)
    }

    fn validate(&self, name: &str, text: &str) -> Result<(), ConfigError> {
        let err = |key: &str, message: String| ConfigError {
            file: name.to_string(),
            line: line_of_key(text, key),
            column: None,
            key: key.to_string(),
            message,
        };
        if let Some(tz) = &self.node.time_zone {
            if jiff::tz::TimeZone::get(tz).is_err() {
                return Err(err(
                    "node.time_zone",
                    format!("unknown time zone `{tz}`; use an IANA name such as `Europe/London`"),
                ));
            }
        }
        if let Some(e) = &self.flows.engine {
            if e != "jit" && e != "interp" {
                return Err(err(
                    "flows.engine",
                    format!("unknown engine `{e}`; use `jit` or `interp`"),
                ));
            }
        }
        if self.flows.bundle.is_some() {
            if self.flows.trusted_keys.is_empty() {
                return Err(err(
                    "flows.bundle",
                    "a bundle needs `flows.trusted_keys`: the public key files (from `vflow keygen`) its signature is checked against".into(),
                ));
            }
            if self.flows.stdlib.is_some() {
                return Err(err(
                    "flows.stdlib",
                    "a bundle carries the stdlib it was built with; `stdlib` applies to sources only (pass it to `vflow build`)".into(),
                ));
            }
            // `paths` has a default, so it counts as given when it differs or is written.
            if self.flows.paths != FlowsConfig::default().paths
                || line_of_key(text, "flows.paths").is_some()
            {
                return Err(err(
                    "flows.paths",
                    "give `flows.paths` (sources) or `flows.bundle`, not both".into(),
                ));
            }
        } else if !self.flows.trusted_keys.is_empty() {
            return Err(err(
                "flows.trusted_keys",
                "trusted keys check bundles; set `flows.bundle` too, or remove them".into(),
            ));
        }
        if !self.sip.udp && !self.sip.tcp {
            return Err(err(
                "sip.udp",
                "both UDP and TCP are off; enable at least one".into(),
            ));
        }
        if self.sip.rate_limit == 0 {
            return Err(err(
                "sip.rate_limit",
                "must be at least 1 request per second".into(),
            ));
        }
        let r = &self.rtp.ports;
        if r.last < r.first || r.last - r.first < 1 {
            return Err(err(
                "rtp.ports",
                "the range must hold at least two ports, e.g. `20000-20999`".into(),
            ));
        }
        if self.rtp.timeout.is_zero() {
            return Err(err("rtp.timeout", "must be longer than 0s".into()));
        }
        let prefixes = [
            ("routing.leave_prefix", &self.routing.leave_prefix),
            ("routing.collect_prefix", &self.routing.collect_prefix),
            ("routing.queued_prefix", &self.routing.queued_prefix),
            (
                "routing.still_queued_prefix",
                &self.routing.still_queued_prefix,
            ),
        ];
        for (key, p) in prefixes {
            if p.is_empty() {
                return Err(err(
                    key,
                    "a prefix cannot be empty (it would match every call)".into(),
                ));
            }
        }
        self.validate_voicemail(name, text)?;
        self.validate_mwi_email(name, text)?;
        self.validate_pbx_peers(name, text)?;
        self.validate_cluster(name, text)
    }

    fn validate_pbx_peers(&self, name: &str, text: &str) -> Result<(), ConfigError> {
        let mut names = std::collections::HashSet::new();
        let mut addrs = std::collections::HashSet::new();
        for p in &self.sip.pbx_peers {
            let err = |message: String| ConfigError {
                file: name.to_string(),
                line: line_of_item(text, "sip.pbx_peers", &p.name)
                    .or(line_of_key(text, "sip.pbx_peers")),
                column: None,
                key: "sip.pbx_peers".to_string(),
                message,
            };
            if p.name.trim().is_empty() {
                return Err(err("a PBX needs a name (used in the log)".into()));
            }
            if p.addr.port() == 0 || p.addr.ip().is_unspecified() {
                return Err(err(format!(
                    "PBX `{}`: `{}` is not an address to send to; write its SIP address, e.g. `192.0.2.10:5060`",
                    p.name, p.addr
                )));
            }
            if !names.insert(p.name.as_str()) {
                return Err(err(format!("PBX `{}` is listed twice", p.name)));
            }
            if !addrs.insert(p.addr) {
                return Err(err(format!(
                    "PBX `{}`: {} is already another PBX's address",
                    p.name, p.addr
                )));
            }
        }
        Ok(())
    }

    fn validate_mwi_email(&self, name: &str, text: &str) -> Result<(), ConfigError> {
        let err = |key: &str, message: String| ConfigError {
            file: name.to_string(),
            line: line_of_key(text, key),
            column: None,
            key: key.to_string(),
            message,
        };
        let m = &self.mwi;
        if m.refresh.is_some_and(|r| r < Duration::from_secs(1)) {
            return Err(err("mwi.refresh", "must be at least 1s, or `never`".into()));
        }
        if m.min_expires.is_zero() || m.max_expires < m.min_expires {
            return Err(err(
                "mwi.max_expires",
                "min_expires must be above 0s and max_expires at least min_expires".into(),
            ));
        }
        let e = &self.email;
        if let Err(why) = crate::voicemail::mail::parse_address(&e.from) {
            return Err(err("email.from", why));
        }
        if let Err(why) = crate::voicemail::mail::check_template(&e.subject) {
            return Err(err("email.subject", why));
        }
        if !e.relay.is_empty() && e.port == 0 {
            return Err(err(
                "email.port",
                "must be a port number (25, 465, 587…)".into(),
            ));
        }
        if e.user.is_some() != e.password.is_some() {
            return Err(err(
                "email.user",
                "give both `user` and `password`, or neither".into(),
            ));
        }
        if e.timeout.is_zero() {
            return Err(err("email.timeout", "must be longer than 0s".into()));
        }
        if e.retry_first.is_zero() || e.retry_max < e.retry_first {
            return Err(err(
                "email.retry_max",
                "retry_first must be above 0s and retry_max at least retry_first".into(),
            ));
        }
        Ok(())
    }

    fn validate_voicemail(&self, name: &str, text: &str) -> Result<(), ConfigError> {
        let err = |key: &str, message: String| ConfigError {
            file: name.to_string(),
            line: line_of_key(text, key),
            column: None,
            key: key.to_string(),
            message,
        };
        let vm = &self.voicemail;
        if vm.pin.min_length == 0 || vm.pin.min_length > 15 {
            return Err(err(
                "voicemail.pin.min_length",
                "must be between 1 and 15 digits".into(),
            ));
        }
        if vm.pin.max_length < vm.pin.min_length || vm.pin.max_length > 15 {
            return Err(err(
                "voicemail.pin.max_length",
                "must be between min_length and 15 digits".into(),
            ));
        }
        if vm.pin.lockout_attempts == 0 {
            return Err(err(
                "voicemail.pin.lockout_attempts",
                "must be at least 1".into(),
            ));
        }
        if vm.pin.lockout_for.is_zero() {
            return Err(err(
                "voicemail.pin.lockout_for",
                "must be longer than 0s".into(),
            ));
        }
        if vm.limits.max_messages == 0 {
            return Err(err(
                "voicemail.limits.max_messages",
                "must be at least 1".into(),
            ));
        }
        if vm.limits.max_message_length < Duration::from_secs(1) {
            return Err(err(
                "voicemail.limits.max_message_length",
                "must be at least 1s".into(),
            ));
        }
        if vm.housekeeping_every < Duration::from_secs(1) {
            return Err(err(
                "voicemail.housekeeping_every",
                "must be at least 1s".into(),
            ));
        }
        let mut seen = std::collections::HashSet::new();
        for m in &vm.mailboxes {
            let key = "voicemail.mailboxes";
            if !crate::store::Store::valid_name(&m.id) {
                return Err(err(
                    key,
                    format!(
                        "`{}` is not a mailbox id (letters, digits, `-_.+`, at most 64)",
                        m.id
                    ),
                ));
            }
            if !seen.insert(m.id.as_str()) {
                return Err(err(key, format!("mailbox `{}` is declared twice", m.id)));
            }
            if m.pin.is_some() && m.pin_hash.is_some() {
                return Err(err(
                    key,
                    format!("mailbox `{}`: give `pin` or `pin_hash`, not both", m.id),
                ));
            }
            if let Some(Err(why)) = m
                .pin
                .as_deref()
                .map(|p| crate::voicemail::pin::check_policy(&vm.pin, &m.id, p))
            {
                return Err(err(key, format!("mailbox `{}`: the PIN {why}", m.id)));
            }
            if m.pin_hash
                .as_deref()
                .is_some_and(|h| !crate::voicemail::pin::is_hash(h))
            {
                return Err(err(
                    key,
                    format!("mailbox `{}`: `pin_hash` is not an argon2 PHC string", m.id),
                ));
            }
            if let Some(mode) = m
                .email_mode
                .as_deref()
                .filter(|m| crate::voicemail::EmailMode::parse(m).is_none())
            {
                return Err(err(
                    key,
                    format!(
                        "mailbox `{}`: email_mode `{mode}`; use off, notify, attach or forward",
                        m.id
                    ),
                ));
            }
            if let Err(why) = (!m.mwi.is_empty())
                .then(|| crate::voicemail::mwi::Target::parse(&m.mwi))
                .transpose()
            {
                return Err(err(key, format!("mailbox `{}`: mwi {why}", m.id)));
            }
            if m.max_messages == Some(0) {
                return Err(err(
                    key,
                    format!("mailbox `{}`: max_messages must be at least 1", m.id),
                ));
            }
        }
        Ok(())
    }
}

/// This node's place in a cluster (Small Community Network, DESIGN.md §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// No cluster: every message stays here.
    #[default]
    Standalone,
    /// The store of record: takes forwarded messages, does MWI and collection.
    Central,
    /// Takes calls while the central is down; forwards what it took.
    Backup,
    /// Answers its own site's calls; forwards every message to the central.
    Distributed,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Standalone => "standalone",
            Role::Central => "central",
            Role::Backup => "backup",
            Role::Distributed => "distributed",
        }
    }

    /// Whether messages taken here are forwarded to the central.
    pub fn forwards(self) -> bool {
        matches!(self, Role::Backup | Role::Distributed)
    }
}

/// The role of another node (a peer is never standalone).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PeerRole {
    Central,
    Backup,
    Distributed,
}

/// Node-to-node traffic: mutual TLS with certificates of the cluster CA only.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ClusterConfig {
    pub role: Role,
    /// This node's name in the cluster: its certificate's CN and DNS name, and
    /// what its peers list it as. Default: `node.name`.
    pub name: Option<String>,
    /// The cluster CA and this node's certificate and key (PEM files, as
    /// written by `vflow cluster init`); required unless standalone.
    pub tls: Option<ClusterTlsConfig>,
    /// Central only: where the SMTP ingress for forwarded messages listens
    /// (implicit TLS, client certificates required).
    pub smtp_listen: Option<SocketAddr>,
    /// This node's control API (HTTP over mutual TLS): bundles, settings,
    /// status. Without it the node has no control API.
    pub control_listen: Option<SocketAddr>,
    /// The other nodes this one talks to or accepts.
    pub peers: Vec<PeerConfig>,
    pub ingress: IngressConfig,
    pub forward: ForwardConfig,
    pub control: ControlConfig,
    /// Backup and distributed: how often the central's SMTP ingress is
    /// probed (TLS, greeting, EHLO, QUIT); a probe slower than this is a miss.
    #[serde(with = "duration_text")]
    pub heartbeat: Duration,
    /// This many consecutive missed heartbeats make the central unreachable
    /// (a backup then takes calls); one answered heartbeat makes it reachable.
    pub failover_after: u32,
}

/// How nodes talk over the control API.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ControlConfig {
    /// Backup and distributed: how often the central's status is asked (a
    /// newer bundle or changed settings are then pulled).
    #[serde(with = "duration_text")]
    pub pull_every: Duration,
    /// The longest one request to another node may take.
    #[serde(with = "duration_text")]
    pub timeout: Duration,
    /// Central: the wait after a failed push to a node; it doubles after
    /// each failure, up to `retry_max`.
    #[serde(with = "duration_text")]
    pub retry_first: Duration,
    #[serde(with = "duration_text")]
    pub retry_max: Duration,
}

impl Default for ControlConfig {
    fn default() -> Self {
        ControlConfig {
            pull_every: Duration::from_secs(5),
            timeout: Duration::from_secs(10),
            retry_first: Duration::from_secs(1),
            retry_max: Duration::from_secs(60),
        }
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ClusterTlsConfig {
    /// The cluster CA certificate: the only one trusted on both sides.
    pub ca: PathBuf,
    /// This node's certificate, signed by the CA.
    pub cert: PathBuf,
    /// This node's private key (keep it mode 0600).
    pub key: PathBuf,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PeerConfig {
    /// The peer's node name (its certificate's CN and DNS name).
    pub name: String,
    pub role: PeerRole,
    /// The central's SMTP ingress, `host:port`.
    #[serde(default)]
    pub smtp: Option<String>,
    /// The peer's control API, `host:port`: the central pushes bundles
    /// there; a node pulls from the central's.
    #[serde(default)]
    pub control: Option<String>,
}

/// The central's SMTP ingress limits.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct IngressConfig {
    /// The largest forwarded message (MIME, WAV included): `16MB`, `512KB`.
    #[serde(deserialize_with = "size_text")]
    pub max_message_size: u64,
    /// Connections served at once; more wait for a free slot.
    pub max_connections: usize,
    /// A connection idle this long (TLS handshake, or between lines) is closed.
    #[serde(with = "duration_text")]
    pub timeout: Duration,
}

/// How a backup or distributed node forwards its messages to the central.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ForwardConfig {
    /// The longest one delivery attempt may take.
    #[serde(with = "duration_text")]
    pub timeout: Duration,
    /// The wait after the first failure; it doubles after each one, up to
    /// `retry_max`. A message is never given up.
    #[serde(with = "duration_text")]
    pub retry_first: Duration,
    #[serde(with = "duration_text")]
    pub retry_max: Duration,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        ClusterConfig {
            role: Role::Standalone,
            name: None,
            tls: None,
            smtp_listen: None,
            control_listen: None,
            peers: Vec::new(),
            ingress: IngressConfig::default(),
            forward: ForwardConfig::default(),
            control: ControlConfig::default(),
            heartbeat: Duration::from_secs(1),
            failover_after: 3,
        }
    }
}

impl Default for IngressConfig {
    fn default() -> Self {
        IngressConfig {
            max_message_size: 16 * 1024 * 1024,
            max_connections: 32,
            timeout: Duration::from_secs(60),
        }
    }
}

impl Default for ForwardConfig {
    fn default() -> Self {
        ForwardConfig {
            timeout: Duration::from_secs(30),
            retry_first: Duration::from_secs(1),
            retry_max: Duration::from_secs(60),
        }
    }
}

impl ClusterConfig {
    /// This node's cluster name.
    pub fn node_name<'a>(&'a self, node: &'a NodeConfig) -> &'a str {
        self.name.as_deref().unwrap_or(&node.name)
    }

    /// The central among the peers.
    pub fn central(&self) -> Option<&PeerConfig> {
        self.peers.iter().find(|p| p.role == PeerRole::Central)
    }
}

impl Config {
    fn validate_cluster(&self, name: &str, text: &str) -> Result<(), ConfigError> {
        let err = |key: &str, message: String| ConfigError {
            file: name.to_string(),
            line: line_of_key(text, key),
            column: None,
            key: key.to_string(),
            message,
        };
        let c = &self.cluster;
        let me = c.node_name(&self.node);
        let name_key = if c.name.is_some() {
            "cluster.name"
        } else {
            "node.name"
        };
        if c.role == Role::Standalone {
            return Ok(());
        }
        if let Err(why) = crate::cluster::check_node_name(me) {
            return Err(err(
                name_key,
                format!("`{me}` cannot name a cluster node: {why}"),
            ));
        }
        if me != self.node.name {
            return Err(err(
                "cluster.name",
                format!(
                    "`{me}` differs from node.name `{}`: messages carry node.name as their origin, which the central checks against the certificate; use one name (or leave cluster.name out)",
                    self.node.name
                ),
            ));
        }
        let peer_err = |p: &PeerConfig, message: String| ConfigError {
            file: name.to_string(),
            line: line_of_item(text, "cluster.peers", &p.name)
                .or(line_of_key(text, "cluster.peers")),
            column: None,
            key: "cluster.peers".to_string(),
            message,
        };
        let mut seen = std::collections::HashSet::new();
        for p in &c.peers {
            if let Err(why) = crate::cluster::check_node_name(&p.name) {
                return Err(peer_err(p, format!("peer `{}`: {why}", p.name)));
            }
            if p.name == me {
                return Err(peer_err(
                    p,
                    format!("peer `{}` is this node's own name", p.name),
                ));
            }
            if !seen.insert(p.name.as_str()) {
                return Err(peer_err(p, format!("peer `{}` is listed twice", p.name)));
            }
            if let Some(a) = &p.smtp
                && let Err(why) = crate::cluster::check_host_port(a)
            {
                return Err(peer_err(p, format!("peer `{}`: smtp {why}", p.name)));
            }
            if let Some(a) = &p.control
                && let Err(why) = crate::cluster::check_host_port(a)
            {
                return Err(peer_err(p, format!("peer `{}`: control {why}", p.name)));
            }
        }
        let centrals: Vec<&PeerConfig> = c
            .peers
            .iter()
            .filter(|p| p.role == PeerRole::Central)
            .collect();
        match c.role {
            Role::Standalone => {}
            Role::Central => {
                if let Some(p) = centrals.first() {
                    return Err(peer_err(
                        p,
                        format!(
                            "peer `{}` is a central, but this node is the central; a cluster has one",
                            p.name
                        ),
                    ));
                }
                if c.smtp_listen.is_none() {
                    return Err(err(
                        "cluster.smtp_listen",
                        "a central needs `smtp_listen` (e.g. `127.0.0.1:2525`): its peers forward messages there".into(),
                    ));
                }
            }
            Role::Backup | Role::Distributed => {
                let Some(central) = centrals.first() else {
                    return Err(err(
                        "cluster.peers",
                        format!(
                            "a {} node forwards its messages to the central: list it under `peers` (`- {{name: central, role: central, smtp: 127.0.0.1:2525}}`)",
                            c.role.as_str()
                        ),
                    ));
                };
                if let Some(p) = centrals.get(1) {
                    return Err(peer_err(
                        p,
                        format!("peer `{}`: a cluster has one central", p.name),
                    ));
                }
                if central.smtp.is_none() {
                    return Err(peer_err(
                        central,
                        format!(
                            "the central `{}` needs `smtp: HOST:PORT` (its SMTP ingress)",
                            central.name
                        ),
                    ));
                }
                if c.smtp_listen.is_some() {
                    return Err(err(
                        "cluster.smtp_listen",
                        "only the central runs the SMTP ingress; remove it here".into(),
                    ));
                }
            }
        }
        let Some(tls) = &c.tls else {
            return Err(err(
                "cluster.tls",
                format!(
                    "a {} node needs `tls: {{ca, cert, key}}` (all node-to-node traffic is mutual TLS); `vflow cluster init` writes them",
                    c.role.as_str()
                ),
            ));
        };
        if let Err((which, why)) = crate::cluster::tls::check_files(tls, me) {
            return Err(err(&format!("cluster.tls.{which}"), why));
        }
        if c.heartbeat < Duration::from_millis(100) {
            return Err(err(
                "cluster.heartbeat",
                "must be at least 100ms (e.g. `1s`)".into(),
            ));
        }
        if c.failover_after == 0 {
            return Err(err(
                "cluster.failover_after",
                "must be at least 1 (missed heartbeats before the central counts as unreachable)"
                    .into(),
            ));
        }
        let i = &c.ingress;
        if i.max_message_size < 1024 {
            return Err(err(
                "cluster.ingress.max_message_size",
                "must be at least 1KB".into(),
            ));
        }
        if i.max_connections == 0 {
            return Err(err(
                "cluster.ingress.max_connections",
                "must be at least 1".into(),
            ));
        }
        let (f, k) = (&c.forward, &c.control);
        for (key, d) in [
            ("cluster.ingress.timeout", i.timeout),
            ("cluster.forward.timeout", f.timeout),
            ("cluster.control.pull_every", k.pull_every),
            ("cluster.control.timeout", k.timeout),
        ] {
            if d.is_zero() {
                return Err(err(key, "must be longer than 0s".into()));
            }
        }
        for (key, first, max) in [
            ("cluster.forward.retry_max", f.retry_first, f.retry_max),
            ("cluster.control.retry_max", k.retry_first, k.retry_max),
        ] {
            if first.is_zero() || max < first {
                return Err(err(
                    key,
                    "retry_first must be above 0s and retry_max at least retry_first".into(),
                ));
            }
        }
        Ok(())
    }
}

/// The line of the list item under `key` that mentions `needle` (a peer's name).
fn line_of_item(text: &str, key: &str, needle: &str) -> Option<usize> {
    let start = line_of_key(text, key)?;
    let indent_of = |l: &str| l.len() - l.trim_start().len();
    let lines: Vec<&str> = text.lines().collect();
    let base = indent_of(lines.get(start - 1)?);
    for (i, line) in lines.iter().enumerate().skip(start) {
        if !line.trim().is_empty() && !line.trim_start().starts_with('-') && indent_of(line) <= base
        {
            break;
        }
        let words: Vec<&str> = line
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '.' || c == '_'))
            .collect();
        if words.contains(&needle) {
            return Some(i + 1);
        }
    }
    None
}

/// Sizes written as `16MB`, `512KB`, `1GB` or plain bytes (`B`); K/M/G are 1024-based.
fn size_text<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    let s = String::deserialize(d)?;
    parse_size(&s).map_err(serde::de::Error::custom)
}

pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (n, unit) = t.split_at(split);
    let bad = || format!("`{s}` is not a size; write e.g. `16MB`, `512KB`");
    let n: u64 = n.parse().map_err(|_| bad())?;
    let mult: u64 = match unit.trim() {
        "B" => 1,
        "KB" => 1024,
        "MB" => 1024 * 1024,
        "GB" => 1024 * 1024 * 1024,
        _ => return Err(bad()),
    };
    n.checked_mul(mult).ok_or_else(bad)
}

/// The 1-based line where a dotted key (`rtp.ports`) is written, if it is.
fn line_of_key(text: &str, key: &str) -> Option<usize> {
    let mut want = key.split('.').peekable();
    let mut current = want.next()?;
    let mut min_indent = 0usize;
    for (i, line) in text.lines().enumerate() {
        let indent = line.len() - line.trim_start().len();
        let trimmed = line.trim_start();
        if indent >= min_indent
            && trimmed
                .strip_prefix(current)
                .is_some_and(|r| r.trim_start().starts_with(':'))
        {
            match want.next() {
                Some(next) => {
                    current = next;
                    min_indent = indent + 1;
                }
                None => return Some(i + 1),
            }
        }
    }
    None
}

fn cidrs<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<Cidr>, D::Error> {
    let v = Vec::<String>::deserialize(d)?;
    v.iter()
        .map(|s| {
            s.parse::<Cidr>().map_err(|e| {
                serde::de::Error::custom(format!("{e}; write e.g. `10.0.0.0/8` or `192.0.2.7`"))
            })
        })
        .collect()
}

/// `FIRST-LAST`, inclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortRange {
    pub first: u16,
    pub last: u16,
}

impl<'de> Deserialize<'de> for PortRange {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        let bad = || {
            serde::de::Error::custom(format!(
                "`{s}` is not a port range; write `FIRST-LAST`, e.g. `20000-20999`"
            ))
        };
        let (a, b) = s.split_once('-').ok_or_else(bad)?;
        let first = a.trim().parse::<u16>().map_err(|_| bad())?;
        let last = b.trim().parse::<u16>().map_err(|_| bad())?;
        Ok(PortRange { first, last })
    }
}

/// Durations written as `30s`, `500ms`, `2m`, `1h`.
pub mod duration_text {
    use serde::{Deserialize, Deserializer};
    use std::time::Duration;

    pub fn parse(s: &str) -> Result<Duration, String> {
        let s = s.trim();
        let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
        let (n, unit) = s.split_at(split);
        let n: u64 = n
            .parse()
            .map_err(|_| format!("`{s}` is not a duration; write e.g. `30s`, `500ms`, `2m`"))?;
        let ms = match unit.trim() {
            "ms" => n,
            "s" => n.saturating_mul(1000),
            "m" => n.saturating_mul(60_000),
            "h" => n.saturating_mul(3_600_000),
            "d" => n.saturating_mul(86_400_000),
            _ => {
                return Err(format!(
                    "`{s}` has no unit; write e.g. `30s`, `500ms`, `2m`"
                ));
            }
        };
        Ok(Duration::from_millis(ms))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let s = String::deserialize(d)?;
        parse(&s).map_err(serde::de::Error::custom)
    }
}

/// A duration, or `never` (`None`).
pub mod duration_or_never {
    use serde::{Deserialize, Deserializer};
    use std::time::Duration;

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        let s = String::deserialize(d)?;
        if s.trim() == "never" {
            return Ok(None);
        }
        let v = super::duration_text::parse(&s)
            .map_err(|e| serde::de::Error::custom(format!("{e}, or `never`")))?;
        Ok(Some(v))
    }
}

/// An optional duration (`null` or absent: none).
pub mod opt_duration_text {
    use serde::{Deserialize, Deserializer};
    use std::time::Duration;

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        match Option::<String>::deserialize(d)? {
            None => Ok(None),
            Some(s) => super::duration_text::parse(&s)
                .map(Some)
                .map_err(serde::de::Error::custom),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_is_the_defaults() {
        assert_eq!(Config::parse("x.yaml", "").unwrap(), Config::default());
        assert_eq!(
            Config::parse("x.yaml", "# nothing\n").unwrap(),
            Config::default()
        );
    }

    #[test]
    fn the_example_file_parses() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/single-node.yaml");
        let c = Config::load(&path).unwrap();
        assert_eq!(c.sip.listen.port(), 5060);
        assert_eq!(
            c.voicemail,
            VoicemailConfig::default(),
            "the example shows the defaults"
        );
        assert_eq!(c.mwi, MwiConfig::default());
        assert_eq!(c.email, EmailConfig::default());
    }

    #[test]
    fn rtp_silence_and_inband_dtmf() {
        let c =
            Config::parse("x.yaml", "rtp:\n  silence: continuous\n  inband_dtmf: on\n").unwrap();
        assert_eq!(c.rtp.silence, crate::media::Silence::Continuous);
        assert_eq!(c.rtp.inband_dtmf, InbandDtmf::On);
        let d = Config::default().rtp;
        assert_eq!(
            (d.silence, d.inband_dtmf),
            (crate::media::Silence::Keepalive, InbandDtmf::Auto)
        );
        assert!(InbandDtmf::Auto.listen(false) && !InbandDtmf::Auto.listen(true));
        assert!(InbandDtmf::On.listen(true) && !InbandDtmf::Off.listen(false));
        let e = Config::parse("x.yaml", "rtp:\n  silence: sometimes\n").unwrap_err();
        assert_eq!((e.line, e.key.as_str()), (Some(2), "rtp.silence"), "{e}");
        assert!(e.message.contains("keepalive"), "{e}");
    }

    #[test]
    fn errors_name_line_and_key() {
        let e = Config::parse("site.yaml", "node:\n  name: a\nrtp:\n  ports: 20000\n").unwrap_err();
        assert_eq!((e.line, e.key.as_str()), (Some(4), "rtp.ports"), "{e}");
        assert!(e.to_string().starts_with("site.yaml:4"), "{e}");
        let e = Config::parse("site.yaml", "sip:\n  listne: 1.2.3.4:5060\n").unwrap_err();
        assert_eq!(e.line, Some(2), "{e}");
        assert!(e.message.contains("listne"), "{e}");
        let e = Config::parse("site.yaml", "rtp:\n  timeout: 30\n").unwrap_err();
        assert!(e.message.contains("no unit"), "{e}");
        let e = Config::parse("site.yaml", "sip:\n  trusted_peers: [10.0.0.0/33]\n").unwrap_err();
        assert!(e.message.contains("10.0.0.0/33"), "{e}");
        let e = Config::parse("site.yaml", "voicemail:\n  pin:\n    min_length: 0\n").unwrap_err();
        assert_eq!(
            (e.line, e.key.as_str()),
            (Some(3), "voicemail.pin.min_length"),
            "{e}"
        );
        let e = Config::parse(
            "site.yaml",
            "voicemail:\n  retention:\n    saved: 3 weeks\n",
        )
        .unwrap_err();
        assert!(e.message.contains("never"), "{e}");
        let e = Config::parse(
            "site.yaml",
            "voicemail:\n  mailboxes:\n    - {id: '201', pin: '1234'}\n",
        )
        .unwrap_err();
        assert!(
            e.message.contains("201") && e.message.contains("PIN"),
            "{e}"
        );
        let e = Config::parse(
            "site.yaml",
            "voicemail:\n  mailboxes:\n    - {id: '201', pim: '1234'}\n",
        )
        .unwrap_err();
        assert!(e.message.contains("pim"), "{e}");
        let c = Config::parse(
            "site.yaml",
            "voicemail:\n  retention: {new: never, saved: 7d}\n",
        )
        .unwrap();
        assert_eq!(c.voicemail.retention.new, None);
        assert_eq!(
            c.voicemail.retention.saved,
            Some(Duration::from_secs(7 * 86_400))
        );
        let e = Config::parse("site.yaml", "node:\n  time_zone: Mars/Olympus\n").unwrap_err();
        assert_eq!((e.line, e.key.as_str()), (Some(2), "node.time_zone"), "{e}");
    }

    #[test]
    fn flows_from_a_bundle() {
        let c = Config::parse(
            "site.yaml",
            "flows:\n  bundle: site.vfb\n  trusted_keys: [site.pub, backup.pub]\n",
        )
        .unwrap();
        assert_eq!(c.flows.bundle, Some(PathBuf::from("site.vfb")));
        assert_eq!(c.flows.trusted_keys.len(), 2);
        let e = Config::parse(
            "site.yaml",
            "node:\n  name: a\nflows:\n  bundle: site.vfb\n",
        )
        .unwrap_err();
        assert_eq!((e.line, e.key.as_str()), (Some(4), "flows.bundle"), "{e}");
        assert!(e.to_string().starts_with("site.yaml:4"), "{e}");
        assert!(e.message.contains("trusted_keys"), "{e}");
        let e = Config::parse(
            "site.yaml",
            "flows:\n  paths: [flows]\n  bundle: site.vfb\n  trusted_keys: [site.pub]\n",
        )
        .unwrap_err();
        assert_eq!((e.line, e.key.as_str()), (Some(2), "flows.paths"), "{e}");
        let e = Config::parse(
            "site.yaml",
            "flows:\n  bundle: site.vfb\n  trusted_keys: [site.pub]\n  stdlib: std\n",
        )
        .unwrap_err();
        assert_eq!((e.line, e.key.as_str()), (Some(4), "flows.stdlib"), "{e}");
        let e = Config::parse("site.yaml", "flows:\n  trusted_keys: [site.pub]\n").unwrap_err();
        assert_eq!(
            (e.line, e.key.as_str()),
            (Some(2), "flows.trusted_keys"),
            "{e}"
        );
        let e = Config::parse("site.yaml", "flows:\n  bundel: site.vfb\n").unwrap_err();
        assert!(e.message.contains("bundel"), "{e}");
    }

    #[test]
    fn pbx_peers() {
        let c = Config::parse(
            "site.yaml",
            "sip:\n  pbx_peers:\n    - {name: main, addr: '192.0.2.10:5060'}\n    - {name: fallback, addr: '192.0.2.11:5060'}\n",
        )
        .unwrap();
        assert_eq!(c.sip.pbx_peers.len(), 2);
        assert_eq!(c.sip.pbx_peers[1].name, "fallback");
        assert_eq!(c.sip.pbx_peers[1].addr, "192.0.2.11:5060".parse().unwrap());
        let e = Config::parse(
            "site.yaml",
            "sip:\n  pbx_peers:\n    - {name: main, addr: '192.0.2.10:5060'}\n    - {name: main, addr: '192.0.2.11:5060'}\n",
        )
        .unwrap_err();
        assert_eq!(e.key, "sip.pbx_peers", "{e}");
        assert!(e.message.contains("twice"), "{e}");
        let e = Config::parse(
            "site.yaml",
            "sip:\n  pbx_peers:\n    - {name: main, addr: '192.0.2.10:5060'}\n    - {name: other, addr: '192.0.2.10:5060'}\n",
        )
        .unwrap_err();
        assert_eq!((e.line, e.key.as_str()), (Some(4), "sip.pbx_peers"), "{e}");
        assert!(e.message.contains("another PBX"), "{e}");
        let e = Config::parse(
            "site.yaml",
            "sip:\n  pbx_peers:\n    - {name: main, addr: '0.0.0.0:5060'}\n",
        )
        .unwrap_err();
        assert_eq!(e.key, "sip.pbx_peers", "{e}");
        let e = Config::parse("site.yaml", "sip:\n  pbx_peers:\n    - {name: main}\n").unwrap_err();
        assert!(e.message.contains("addr"), "{e}");
    }

    #[test]
    fn mwi_and_email_sections() {
        let c = Config::parse(
            "site.yaml",
            "mwi:\n  refresh: never\nemail:\n  relay: smtp.example\n  port: 587\n  security: starttls\n  user: vm\n  password: pw\n  retry_first: 1s\n  retry_max: 10s\n  give_up_after: never\nvoicemail:\n  mailboxes:\n    - {id: '201', mwi: 'sip:201@192.0.2.5:5060'}\n",
        )
        .unwrap();
        assert_eq!(c.mwi.refresh, None);
        assert_eq!(
            (c.email.port, c.email.security, c.email.give_up_after),
            (587, EmailSecurity::Starttls, None)
        );
        assert_eq!(c.voicemail.mailboxes[0].mwi, "sip:201@192.0.2.5:5060");
        let e = Config::parse("site.yaml", "email:\n  security: ssl\n").unwrap_err();
        assert_eq!((e.line, e.key.as_str()), (Some(2), "email.security"), "{e}");
        let e = Config::parse("site.yaml", "email:\n  subject: 'Mail for {mbox}'\n").unwrap_err();
        assert!(e.message.contains("{mbox}"), "{e}");
        let e = Config::parse("site.yaml", "email:\n  from: nobody\n").unwrap_err();
        assert_eq!(e.key, "email.from", "{e}");
        let e = Config::parse("site.yaml", "email:\n  user: vm\n").unwrap_err();
        assert_eq!(e.key, "email.user", "{e}");
        let e = Config::parse(
            "site.yaml",
            "voicemail:\n  mailboxes:\n    - {id: '201', mwi: 'sip:201@192.0.2.5;transport=tcp'}\n",
        )
        .unwrap_err();
        assert!(e.message.contains("mwi"), "{e}");
    }

    #[test]
    fn cluster_control_keys() {
        let dir = crate::cluster::pki::tests::cluster("config-control", &["site-1", "central"]);
        let tls = format!(
            "  tls:\n    ca: {d}/ca.crt\n    cert: {d}/site-1.crt\n    key: {d}/site-1.key\n",
            d = dir.display()
        );
        let with = |peer_control: &str, control: &str| {
            format!(
                "node:\n  name: site-1\ncluster:\n  role: distributed\n{tls}  control_listen: 127.0.0.1:7444\n  peers:\n    - name: central\n      role: central\n      smtp: 127.0.0.1:2525\n      control: {peer_control}\n{control}"
            )
        };
        let c = Config::parse(
            "site.yaml",
            &with("127.0.0.1:7443", "  control:\n    pull_every: 2s\n"),
        )
        .unwrap();
        assert_eq!(
            c.cluster.control_listen,
            Some("127.0.0.1:7444".parse().unwrap())
        );
        assert_eq!(
            c.cluster.central().and_then(|p| p.control.as_deref()),
            Some("127.0.0.1:7443")
        );
        assert_eq!(c.cluster.control.pull_every, Duration::from_secs(2));
        assert_eq!(c.cluster.control.timeout, Duration::from_secs(10));
        let e = Config::parse("site.yaml", &with("127.0.0.1", "")).unwrap_err();
        assert_eq!((e.line, e.key.as_str()), (Some(11), "cluster.peers"), "{e}");
        assert!(e.message.contains("control"), "{e}");
        let e = Config::parse(
            "site.yaml",
            &with("127.0.0.1:7443", "  control:\n    pull_every: 0s\n"),
        )
        .unwrap_err();
        assert_eq!(e.key, "cluster.control.pull_every", "{e}");
        let e = Config::parse(
            "site.yaml",
            &with("127.0.0.1:7443", "  control:\n    pull: 5s\n"),
        )
        .unwrap_err();
        assert_eq!(e.key, "cluster.control.pull", "{e}");
        let e = Config::parse("site.yaml", "cluster:\n  control_listen: nowhere\n").unwrap_err();
        assert_eq!(
            (e.line, e.key.as_str()),
            (Some(2), "cluster.control_listen"),
            "{e}"
        );
    }

    #[test]
    fn cluster_section() {
        let c = Config::parse("site.yaml", "").unwrap();
        assert_eq!(c.cluster.role, Role::Standalone);
        let dir = crate::cluster::pki::tests::cluster("config", &["site-1", "central"]);
        let tls = format!(
            "  tls:\n    ca: {d}/ca.crt\n    cert: {d}/site-1.crt\n    key: {d}/site-1.key\n",
            d = dir.display()
        );
        let distributed = format!(
            "node:\n  name: site-1\ncluster:\n  role: distributed\n{tls}  peers:\n    - name: central\n      role: central\n      smtp: 127.0.0.1:2525\n  forward:\n    retry_first: 2s\n"
        );
        let c = Config::parse("site.yaml", &distributed).unwrap();
        assert_eq!(c.cluster.role, Role::Distributed);
        assert_eq!(c.cluster.node_name(&c.node), "site-1");
        assert_eq!(
            c.cluster.central().and_then(|p| p.smtp.as_deref()),
            Some("127.0.0.1:2525")
        );
        assert_eq!(c.cluster.forward.retry_first, Duration::from_secs(2));
        assert_eq!(c.cluster.heartbeat, Duration::from_secs(1));
        assert_eq!(c.cluster.failover_after, 3);
        let c = Config::parse(
            "site.yaml",
            &format!("{distributed}  heartbeat: 250ms\n  failover_after: 5\n"),
        )
        .unwrap();
        assert_eq!(c.cluster.heartbeat, Duration::from_millis(250));
        assert_eq!(c.cluster.failover_after, 5);
        let e =
            Config::parse("site.yaml", &format!("{distributed}  failover_after: 0\n")).unwrap_err();
        assert_eq!(e.key, "cluster.failover_after", "{e}");
        assert_eq!(e.line, Some(15), "{e}");
        let e =
            Config::parse("site.yaml", &format!("{distributed}  heartbeat: 10ms\n")).unwrap_err();
        assert_eq!(e.key, "cluster.heartbeat", "{e}");

        // A distributed node without a central.
        let e = Config::parse(
            "site.yaml",
            &format!("node:\n  name: site-1\ncluster:\n  role: distributed\n{tls}  peers: []\n"),
        )
        .unwrap_err();
        assert_eq!((e.line, e.key.as_str()), (Some(9), "cluster.peers"), "{e}");
        assert!(e.message.contains("central"), "{e}");
        // The central without its SMTP address: the error points at the peer's line.
        let e = Config::parse(
            "site.yaml",
            &format!("node:\n  name: site-1\ncluster:\n  role: distributed\n{tls}  peers:\n    - name: backup\n      role: backup\n    - name: central\n      role: central\n"),
        )
        .unwrap_err();
        assert_eq!((e.line, e.key.as_str()), (Some(12), "cluster.peers"), "{e}");
        assert!(e.message.contains("smtp"), "{e}");
        // TLS files missing.
        let e = Config::parse(
            "site.yaml",
            &distributed.replace("site-1.key", "nowhere.key"),
        )
        .unwrap_err();
        assert_eq!(
            (e.line, e.key.as_str()),
            (Some(8), "cluster.tls.key"),
            "{e}"
        );
        assert!(
            e.message.contains("nowhere.key") && e.message.contains("cluster init"),
            "{e}"
        );
        // No TLS at all.
        let e = Config::parse(
            "site.yaml",
            "cluster:\n  role: central\n  smtp_listen: 127.0.0.1:2525\n",
        )
        .unwrap_err();
        assert_eq!(e.key, "cluster.tls", "{e}");
        // A central needs its listen address, and may not list another central.
        let e = Config::parse(
            "site.yaml",
            &format!("node:\n  name: site-1\ncluster:\n  role: central\n{tls}"),
        )
        .unwrap_err();
        assert_eq!(e.key, "cluster.smtp_listen", "{e}");
        // Unknown keys, roles and names.
        let e = Config::parse("site.yaml", "cluster:\n  role: primary\n").unwrap_err();
        assert_eq!((e.line, e.key.as_str()), (Some(2), "cluster.role"), "{e}");
        let e =
            Config::parse("site.yaml", "cluster:\n  tls:\n    ca: a\n    crt: b\n").unwrap_err();
        assert!(e.message.contains("crt"), "{e}");
        let e = Config::parse(
            "site.yaml",
            &distributed.replace("name: central", "name: Central"),
        )
        .unwrap_err();
        assert_eq!((e.line, e.key.as_str()), (Some(10), "cluster.peers"), "{e}");
        let e = Config::parse(
            "site.yaml",
            &distributed.replace("name: central", "name: site-1"),
        )
        .unwrap_err();
        assert!(e.message.contains("own name"), "{e}");
        let e = Config::parse("site.yaml", &distributed.replace("2525", "smtp")).unwrap_err();
        assert!(e.message.contains("HOST:PORT"), "{e}");
        let e = Config::parse(
            "site.yaml",
            "cluster:\n  ingress:\n    max_message_size: 16 megs\n",
        )
        .unwrap_err();
        assert_eq!(e.key, "cluster.ingress.max_message_size", "{e}");
        assert_eq!(parse_size("16MB"), Ok(16 << 20));
        assert_eq!(parse_size("512KB"), Ok(512 << 10));
        assert_eq!(parse_size("100B"), Ok(100));
        assert!(parse_size("99999999999999GB").is_err());
    }

    #[test]
    fn the_cluster_examples_parse_with_their_certificates() {
        let pki = crate::cluster::pki::tests::cluster("examples", &["central", "backup", "site-1"]);
        let mut sip = std::collections::HashSet::new();
        for n in ["central", "backup", "site-1"] {
            let path =
                Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../examples/cluster/{n}.yaml"));
            let text = std::fs::read_to_string(&path)
                .unwrap()
                .replace("var/cluster/pki", &pki.display().to_string());
            let c = Config::parse(n, &text).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(c.cluster.node_name(&c.node), n);
            assert!(sip.insert(c.sip.listen), "each node has its own SIP port");
            assert_eq!(c.node.data_dir, Path::new("var/cluster").join(n));
        }
    }
}
