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
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct FlowsConfig {
    /// Files or directories of .vflow sources compiled at start.
    pub paths: Vec<PathBuf>,
    /// A stdlib directory for `std/` imports instead of the built-in one.
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
    /// Requests per second allowed per source before it is banned for `ban`.
    pub rate_limit: u32,
    #[serde(with = "duration_text")]
    pub ban: Duration,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct RtpConfig {
    /// The UDP port range for media, `FIRST-LAST` (even ports are used).
    pub ports: PortRange,
    /// A call with no media for this long is ended.
    #[serde(with = "duration_text")]
    pub timeout: Duration,
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
        }
    }
}

impl Default for NodeConfig {
    fn default() -> Self {
        NodeConfig { name: "vflow".into(), data_dir: PathBuf::from("var"), time_zone: None }
    }
}

impl Default for FlowsConfig {
    fn default() -> Self {
        FlowsConfig { paths: vec![PathBuf::from("flows")], stdlib: None, engine: None }
    }
}

impl Default for SipConfig {
    fn default() -> Self {
        SipConfig {
            listen: "127.0.0.1:5060".parse().expect("a valid literal address"),
            udp: true,
            tcp: true,
            public_address: None,
            trusted_peers: vec!["127.0.0.0/8".parse().expect("literal"), "::1/128".parse().expect("literal")],
            rate_limit: 200,
            ban: Duration::from_secs(60),
        }
    }
}

impl Default for RtpConfig {
    fn default() -> Self {
        RtpConfig { ports: PortRange { first: 20000, last: 20999 }, timeout: Duration::from_secs(30) }
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

impl Default for ShutdownConfig {
    fn default() -> Self {
        ShutdownConfig { grace: Duration::from_secs(30) }
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
                let message = message.split(" at line ").next().unwrap_or(&message).to_string();
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
                return Err(err("node.time_zone", format!("unknown time zone `{tz}`; use an IANA name such as `Europe/London`")));
            }
        }
        if let Some(e) = &self.flows.engine {
            if e != "jit" && e != "interp" {
                return Err(err("flows.engine", format!("unknown engine `{e}`; use `jit` or `interp`")));
            }
        }
        if !self.sip.udp && !self.sip.tcp {
            return Err(err("sip.udp", "both UDP and TCP are off; enable at least one".into()));
        }
        if self.sip.rate_limit == 0 {
            return Err(err("sip.rate_limit", "must be at least 1 request per second".into()));
        }
        let r = &self.rtp.ports;
        if r.last < r.first || r.last - r.first < 1 {
            return Err(err("rtp.ports", "the range must hold at least two ports, e.g. `20000-20999`".into()));
        }
        if self.rtp.timeout.is_zero() {
            return Err(err("rtp.timeout", "must be longer than 0s".into()));
        }
        let prefixes = [
            ("routing.leave_prefix", &self.routing.leave_prefix),
            ("routing.collect_prefix", &self.routing.collect_prefix),
            ("routing.queued_prefix", &self.routing.queued_prefix),
            ("routing.still_queued_prefix", &self.routing.still_queued_prefix),
        ];
        for (key, p) in prefixes {
            if p.is_empty() {
                return Err(err(key, "a prefix cannot be empty (it would match every call)".into()));
            }
        }
        Ok(())
    }
}

/// The 1-based line where a dotted key (`rtp.ports`) is written, if it is.
fn line_of_key(text: &str, key: &str) -> Option<usize> {
    let mut want = key.split('.').peekable();
    let mut current = want.next()?;
    let mut min_indent = 0usize;
    for (i, line) in text.lines().enumerate() {
        let indent = line.len() - line.trim_start().len();
        let trimmed = line.trim_start();
        if indent >= min_indent && trimmed.strip_prefix(current).is_some_and(|r| r.trim_start().starts_with(':')) {
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
        .map(|s| s.parse::<Cidr>().map_err(|e| serde::de::Error::custom(format!("{e}; write e.g. `10.0.0.0/8` or `192.0.2.7`"))))
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
        let bad = || serde::de::Error::custom(format!("`{s}` is not a port range; write `FIRST-LAST`, e.g. `20000-20999`"));
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
        let n: u64 = n.parse().map_err(|_| format!("`{s}` is not a duration; write e.g. `30s`, `500ms`, `2m`"))?;
        let ms = match unit.trim() {
            "ms" => n,
            "s" => n.saturating_mul(1000),
            "m" => n.saturating_mul(60_000),
            "h" => n.saturating_mul(3_600_000),
            _ => return Err(format!("`{s}` has no unit; write e.g. `30s`, `500ms`, `2m`")),
        };
        Ok(Duration::from_millis(ms))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let s = String::deserialize(d)?;
        parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_is_the_defaults() {
        assert_eq!(Config::parse("x.yaml", "").unwrap(), Config::default());
        assert_eq!(Config::parse("x.yaml", "# nothing\n").unwrap(), Config::default());
    }

    #[test]
    fn the_example_file_parses() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/single-node.yaml");
        let c = Config::load(&path).unwrap();
        assert_eq!(c.sip.listen.port(), 5060);
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
        let e = Config::parse("site.yaml", "node:\n  time_zone: Mars/Olympus\n").unwrap_err();
        assert_eq!((e.line, e.key.as_str()), (Some(2), "node.time_zone"), "{e}");
    }
}
