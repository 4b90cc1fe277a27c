//! The control API between nodes (docs/CLUSTER.md): HTTP/1.1 over mutual
//! TLS on `cluster.control_listen`.
//!
//! Every request is attributed to the holder of the client certificate
//! ([`attribute`]): a configured peer (by name and role) or an operator
//! identity (`vflow cluster init --admin`); anything else is refused with 403
//! and a `security` event. What each may do:
//!
//! | request | who |
//! |---|---|
//! | `GET /v1/status`, `GET /v1/cluster` | peers and operators |
//! | `GET /v1/bundle` | peers and operators |
//! | `PUT /v1/bundle` | central: operators only; other nodes: the central only |
//! | `GET /v1/settings?since=V` | central only answers; backup and distributed peers only |
//!
//! A bundle arriving by `PUT` or pulled from the central goes through
//! [`Control::install`]: verified with this node's own trusted keys, serial
//! above the active one, written atomically where `flows.bundle` points, then
//! loaded and swapped by the [`Reloader`] — the same loader as at start and
//! on SIGHUP — and the file put back if that load fails. The central then
//! pushes it to every peer with a `control` address (retrying with backoff);
//! backup and distributed nodes also pull from the central's status every
//! `cluster.control.pull_every`, with the settings (mailboxes with PIN
//! hashes, active greetings, user variables) when their version changed.

use super::http::{self, Response};
use super::tls::{self, NodeTls, Refusal};
use crate::config::{Config, PeerConfig, PeerRole, Role};
use crate::server::control::Reloader;
use crate::server::flows::UserVars;
use crate::server::registry::Origin;
use crate::store::{Settings, Store};
use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::{Method, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Extension, Json, Router};
use rustls::pki_types::CertificateDer;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use vflow_compiler::bundle::Limits;

/// Who is asking: the holder of the request's client certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// An operator identity (`vflow cluster init --admin NAME`).
    Operator(String),
    /// A configured peer.
    Peer { name: String, role: PeerRole },
}

impl Caller {
    pub fn name(&self) -> &str {
        match self {
            Caller::Operator(n) | Caller::Peer { name: n, .. } => n,
        }
    }
}

impl std::fmt::Display for Caller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Caller::Operator(n) => write!(f, "operator `{n}`"),
            Caller::Peer { name, role } => write!(f, "{} `{name}`", peer_role(*role)),
        }
    }
}

fn peer_role(r: PeerRole) -> &'static str {
    match r {
        PeerRole::Central => "central",
        PeerRole::Backup => "backup",
        PeerRole::Distributed => "distributed",
    }
}

/// The caller a verified client certificate chain stands for: an operator
/// certificate by its CN, else a configured peer (`tls::identify`).
pub fn attribute(
    certs: Option<&[CertificateDer<'_>]>,
    peers: &[PeerConfig],
) -> Result<Caller, Refusal> {
    let first = certs
        .and_then(|c| c.first())
        .ok_or(Refusal::NoCertificate)?;
    if tls::is_admin(first) {
        let name = tls::common_name(first).ok_or(Refusal::NoName)?;
        return Ok(Caller::Operator(name));
    }
    let peer = tls::identify(certs, peers, |_| true)?;
    Ok(Caller::Peer {
        name: peer.name.clone(),
        role: peer.role,
    })
}

/// The attribution of one connection, handed to every request on it.
#[derive(Debug, Clone)]
struct Attributed(Result<Caller, String>);

/// One node's status, as `GET /v1/status` answers.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Status {
    pub node: String,
    pub role: String,
    /// `active` or `standby` (a backup stands by while the central runs).
    pub state: String,
    pub bundle: Option<BundleInfo>,
    /// Flow source paths, when not running a bundle.
    pub source: Option<Vec<String>>,
    /// Pending outbox entries by kind (`email`, `forward`).
    pub outbox: BTreeMap<String, u64>,
    /// Backup/distributed: when the last pull from the central succeeded.
    pub last_sync_unix: Option<i64>,
    /// Backup/distributed: whether the central answered the last pull.
    pub central_reachable: Option<bool>,
    /// Why the last pull failed, if it did.
    pub sync_error: Option<String>,
    /// The settings version: the central's current one, or the one applied here.
    pub settings_version: Option<String>,
    /// Central: the last push of the active bundle to each peer.
    pub pushes: Vec<PushStatus>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct BundleInfo {
    pub name: String,
    pub serial: u64,
    pub sha256: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct PushStatus {
    pub peer: String,
    /// The serial last offered.
    pub serial: u64,
    /// Whether the peer took it (or already had it or a newer one).
    pub ok: bool,
    /// The peer's answer or why it could not be reached.
    pub result: String,
    pub at_unix: i64,
}

/// One row of `GET /v1/cluster`: a node and what it said, or why it did not.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct NodeView {
    pub node: String,
    pub role: String,
    /// `active`, `standby` or `unreachable`.
    pub state: String,
    pub status: Option<Status>,
    pub error: Option<String>,
}

/// What a bundle push or pull did.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Installed {
    pub serial: u64,
    pub sha256: String,
    /// The same file was already active: nothing changed.
    pub unchanged: bool,
}

/// Why a bundle was not installed; each maps to an HTTP status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InstallError {
    /// This node runs flows from source (no `flows.bundle`): 409.
    NoBundleFile,
    /// A check of the bundle failed (signature, trusted key, format): 422.
    Refused(String),
    /// The serial is not above the active one: 409.
    NotNewer { offered: u64, active: u64 },
    /// Verified, but the flows could not be loaded (compile, prompts): 422.
    Load(String),
    /// The file could not be written: 500.
    Io(String),
}

impl InstallError {
    pub fn status(&self) -> StatusCode {
        match self {
            InstallError::NoBundleFile | InstallError::NotNewer { .. } => StatusCode::CONFLICT,
            InstallError::Refused(_) | InstallError::Load(_) => StatusCode::UNPROCESSABLE_ENTITY,
            InstallError::Io(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl std::fmt::Display for InstallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            InstallError::NoBundleFile => write!(
                f,
                "this node runs flows from source; set `flows.bundle` (and `flows.trusted_keys`) to take bundles"
            ),
            InstallError::Refused(why) => write!(f, "bundle refused: {why}"),
            InstallError::NotNewer { offered, active } => write!(
                f,
                "serial {offered} is not above the active serial {active}; build with a higher --serial"
            ),
            InstallError::Load(why) => write!(f, "bundle verified but not loaded: {why}"),
            InstallError::Io(why) => write!(f, "cannot write the bundle file: {why}"),
        }
    }
}

#[derive(Debug, Default)]
struct SyncState {
    last_sync_unix: Option<i64>,
    central_reachable: Option<bool>,
    error: Option<String>,
    settings_version: Option<String>,
}

/// The control API's shared state.
pub struct Control {
    node: String,
    role: Role,
    peers: Vec<PeerConfig>,
    cfg: crate::config::ControlConfig,
    bundle_file: Option<PathBuf>,
    trusted_keys: Vec<PathBuf>,
    reloader: Reloader,
    store: Store,
    vars: Arc<UserVars>,
    client: Arc<rustls::ClientConfig>,
    /// One install at a time (push, pull).
    install_lock: tokio::sync::Mutex<()>,
    sync: Mutex<SyncState>,
    pushes: Mutex<BTreeMap<String, PushStatus>>,
    /// Bumped after each bundle installed on the central: the pushers wake.
    pushed: tokio::sync::watch::Sender<u64>,
    /// What this node does now (a backup's follows its failover state).
    duty: tokio::sync::watch::Receiver<super::failover::Duty>,
}

fn now_unix() -> i64 {
    crate::store::now_ms() / 1000
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The largest bundle taken over the API (the loader's own limit).
fn max_bundle() -> usize {
    Limits::default().max_bundle_bytes as usize
}

impl Control {
    /// Builds the control state of a node (no tasks started).
    pub fn new(
        config: &Config,
        tls: &NodeTls,
        store: Store,
        reloader: Reloader,
        vars: Arc<UserVars>,
        duty: tokio::sync::watch::Receiver<super::failover::Duty>,
    ) -> Result<Arc<Control>, String> {
        let c = &config.cluster;
        Ok(Arc::new(Control {
            node: tls.name.clone(),
            role: c.role,
            peers: c.peers.clone(),
            cfg: c.control.clone(),
            bundle_file: config.flows.bundle.clone(),
            trusted_keys: config.flows.trusted_keys.clone(),
            reloader,
            store,
            vars,
            duty,
            client: tls.client_config()?,
            install_lock: tokio::sync::Mutex::new(()),
            sync: Mutex::new(SyncState::default()),
            pushes: Mutex::new(BTreeMap::new()),
            pushed: tokio::sync::watch::Sender::new(0),
        }))
    }

    /// The router for one connection whose client presented `certs`.
    pub fn router(self: &Arc<Control>, certs: Option<&[CertificateDer<'_>]>) -> Router {
        let who = match attribute(certs, &self.peers) {
            Ok(c) => Attributed(Ok(c)),
            Err(refusal) => {
                tracing::warn!(target: "security", event = "control_refused", reason = %refusal, "control API: client refused");
                Attributed(Err(refusal.to_string()))
            }
        };
        Router::new()
            .route("/v1/status", get(status))
            .route("/v1/cluster", get(cluster))
            .route("/v1/bundle", get(get_bundle).put(put_bundle))
            .route("/v1/settings", get(get_settings))
            .layer(Extension(who))
            .with_state(self.clone())
    }

    /// The state of this node: `active`; a backup is `standby` while the
    /// central runs, `active` while it stands in for it, and `handing_back`
    /// while it forwards what it took (calls yes, lamps no).
    fn state(&self) -> &'static str {
        let duty = *self.duty.borrow();
        match self.role {
            Role::Backup if !duty.take_calls => "standby",
            Role::Backup if !duty.send_mwi => "handing_back",
            _ => "active",
        }
    }

    /// This node's status.
    pub async fn status(self: &Arc<Control>) -> Status {
        let active = self.reloader.registry.current();
        let (bundle, source) = match &active.origin {
            Origin::Bundle {
                name,
                serial,
                sha256,
                ..
            } => (
                Some(BundleInfo {
                    name: name.clone(),
                    serial: *serial,
                    sha256: sha256.clone(),
                }),
                None,
            ),
            Origin::Source { paths } => (
                None,
                Some(paths.iter().map(|p| p.display().to_string()).collect()),
            ),
        };
        let store = self.store.clone();
        let central = self.role == Role::Central;
        let (outbox, version) = tokio::task::spawn_blocking(move || {
            let outbox = store.outbox_depth().unwrap_or_default();
            let version = if central {
                settings_bytes(&store).ok().map(|(v, _)| v)
            } else {
                None
            };
            (outbox, version)
        })
        .await
        .unwrap_or_default();
        let sync = lock(&self.sync);
        Status {
            node: self.node.clone(),
            role: self.role.as_str().to_string(),
            state: self.state().to_string(),
            bundle,
            source,
            outbox: outbox.into_iter().collect(),
            last_sync_unix: sync.last_sync_unix,
            central_reachable: sync.central_reachable,
            sync_error: sync.error.clone(),
            settings_version: version.or_else(|| sync.settings_version.clone()),
            pushes: lock(&self.pushes).values().cloned().collect(),
        }
    }

    /// Verifies `bytes` with this node's trusted keys, checks the serial,
    /// writes the file atomically where `flows.bundle` points and has the
    /// reloader load and swap it (the file is put back if that fails).
    pub async fn install(&self, bytes: Bytes, from: &str) -> Result<Installed, InstallError> {
        let _one = self.install_lock.lock().await;
        let Some(file) = self.bundle_file.clone() else {
            return Err(InstallError::NoBundleFile);
        };
        let keys = self.trusted_keys.clone();
        let checked = bytes.clone();
        let verified = tokio::task::spawn_blocking(move || {
            let trusted = crate::bundles::read_trusted_keys(&keys)?;
            crate::bundles::verify_bytes(&checked, &trusted, &Limits::default())
                .map(|(b, sha)| (b.manifest.serial, b.manifest.name, sha))
        })
        .await
        .map_err(|e| InstallError::Io(e.to_string()))?;
        let (serial, name, sha256) = match verified {
            Ok(v) => v,
            Err(why) => {
                tracing::warn!(target: "security", event = "bundle_refused", from, reason = %why, "bundle from the control API refused");
                return Err(InstallError::Refused(why));
            }
        };
        if let Origin::Bundle {
            serial: active,
            sha256: active_sha,
            ..
        } = &self.reloader.registry.current().origin
        {
            if *active_sha == sha256 {
                return Ok(Installed {
                    serial,
                    sha256,
                    unchanged: true,
                });
            }
            if serial <= *active {
                tracing::warn!(target: "security", event = "bundle_refused", from, offered = serial, active = *active, reason = "serial not newer", "bundle from the control API refused");
                return Err(InstallError::NotNewer {
                    offered: serial,
                    active: *active,
                });
            }
        }
        let previous = std::fs::read(&file).ok();
        let target = file.clone();
        let write = bytes.clone();
        tokio::task::spawn_blocking(move || crate::bundles::write_atomic(&target, &write, 0o644))
            .await
            .map_err(|e| InstallError::Io(e.to_string()))?
            .map_err(|e| InstallError::Io(format!("{}: {e}", file.display())))?;
        match self.reloader.reload("control API").await {
            Ok(set) if set.origin.serial() == Some(serial) => {
                tracing::info!(from, bundle = %name, serial, "bundle installed from the control API");
                if self.role == Role::Central {
                    self.pushed.send_modify(|n| *n += 1);
                }
                Ok(Installed {
                    serial,
                    sha256,
                    unchanged: false,
                })
            }
            outcome => {
                let why = match outcome {
                    Ok(set) => format!("the file now holds {} instead", set.origin),
                    Err(refusal) => refusal.to_string(),
                };
                // Put the file back, so a restart runs what runs now.
                let restore = match previous {
                    Some(old) => crate::bundles::write_atomic(&file, &old, 0o644),
                    None => std::fs::remove_file(&file),
                };
                if let Err(e) = restore {
                    tracing::error!(file = %file.display(), error = %e, "cannot put the previous bundle file back");
                }
                Err(InstallError::Load(why))
            }
        }
    }

    /// A request to `peer` at `addr` with this node's certificate.
    async fn ask(
        &self,
        peer: &str,
        addr: &str,
        method: Method,
        path: &str,
        body: Bytes,
    ) -> Result<Response, String> {
        http::request(
            self.client.clone(),
            peer,
            addr,
            method,
            path,
            body,
            self.cfg.timeout,
        )
        .await
    }
}

fn refuse(status: StatusCode, message: String) -> axum::response::Response {
    (status, format!("{message}\n")).into_response()
}

/// The caller, or the 403 that refuses an unattributed connection.
fn caller(who: &Attributed) -> Result<&Caller, Box<axum::response::Response>> {
    who.0.as_ref().map_err(|why| {
        Box::new(refuse(
            StatusCode::FORBIDDEN,
            format!("refused: {why}; only configured peers and operator certificates may use the control API"),
        ))
    })
}

async fn status(
    State(ctl): State<Arc<Control>>,
    Extension(who): Extension<Attributed>,
) -> axum::response::Response {
    if let Err(r) = caller(&who) {
        return *r;
    }
    Json(ctl.status().await).into_response()
}

async fn cluster(
    State(ctl): State<Arc<Control>>,
    Extension(who): Extension<Attributed>,
) -> axum::response::Response {
    if let Err(r) = caller(&who) {
        return *r;
    }
    let me = ctl.status().await;
    let mut rows = vec![NodeView {
        node: me.node.clone(),
        role: me.role.clone(),
        state: me.state.clone(),
        status: Some(me),
        error: None,
    }];
    let mut asks = tokio::task::JoinSet::new();
    for (i, p) in ctl.peers.iter().enumerate() {
        let Some(addr) = p.control.clone() else {
            rows.push(NodeView {
                node: p.name.clone(),
                role: peer_role(p.role).into(),
                state: "unknown".into(),
                status: None,
                error: Some("no `control` address configured for this peer".into()),
            });
            continue;
        };
        let ctl = ctl.clone();
        let p = p.clone();
        asks.spawn(async move {
            let r = ctl
                .ask(&p.name, &addr, Method::GET, "/v1/status", Bytes::new())
                .await;
            let view = match r {
                Ok(r) if r.status == StatusCode::OK => {
                    match serde_json::from_slice::<Status>(&r.body) {
                        Ok(s) => NodeView {
                            node: p.name.clone(),
                            role: s.role.clone(),
                            state: s.state.clone(),
                            status: Some(s),
                            error: None,
                        },
                        Err(e) => unreachable_view(&p, format!("unreadable status: {e}")),
                    }
                }
                Ok(r) => unreachable_view(&p, format!("{}: {}", r.status, r.text())),
                Err(e) => unreachable_view(&p, e),
            };
            (i, view)
        });
    }
    let mut answered: Vec<(usize, NodeView)> = asks.join_all().await;
    answered.sort_by_key(|(i, _)| *i);
    rows.extend(answered.into_iter().map(|(_, v)| v));
    Json(rows).into_response()
}

fn unreachable_view(p: &PeerConfig, error: String) -> NodeView {
    NodeView {
        node: p.name.clone(),
        role: peer_role(p.role).into(),
        state: "unreachable".into(),
        status: None,
        error: Some(error),
    }
}

async fn get_bundle(
    State(ctl): State<Arc<Control>>,
    Extension(who): Extension<Attributed>,
) -> axum::response::Response {
    if let Err(r) = caller(&who) {
        return *r;
    }
    let active = ctl.reloader.registry.current();
    let Origin::Bundle { file, serial, .. } = &active.origin else {
        return refuse(
            StatusCode::NOT_FOUND,
            format!("node `{}` runs flows from source, not a bundle", ctl.node),
        );
    };
    let (file, serial) = (file.clone(), *serial);
    match tokio::task::spawn_blocking(move || crate::bundles::read_file(&file, &Limits::default()))
        .await
    {
        Ok(Ok(bytes)) => (
            StatusCode::OK,
            [
                (header::CONTENT_TYPE, "application/octet-stream".to_string()),
                (
                    header::HeaderName::from_static("x-vflow-serial"),
                    serial.to_string(),
                ),
            ],
            bytes,
        )
            .into_response(),
        Ok(Err(e)) => refuse(StatusCode::INTERNAL_SERVER_ERROR, e),
        Err(e) => refuse(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

async fn put_bundle(
    State(ctl): State<Arc<Control>>,
    Extension(who): Extension<Attributed>,
    body: Body,
) -> axum::response::Response {
    let who = match caller(&who) {
        Ok(c) => c.clone(),
        Err(r) => return *r,
    };
    let allowed = match (ctl.role, &who) {
        (Role::Central, Caller::Operator(_)) => true,
        (Role::Backup | Role::Distributed, Caller::Peer { role, .. }) => *role == PeerRole::Central,
        _ => false,
    };
    if !allowed {
        let must = if ctl.role == Role::Central {
            "an operator certificate (`vflow cluster init --admin NAME`)"
        } else {
            "the central"
        };
        tracing::warn!(target: "security", event = "bundle_refused", from = %who, reason = "not allowed to deploy here", "bundle push refused");
        return refuse(
            StatusCode::FORBIDDEN,
            format!(
                "refused: {who} may not deploy to this {} node; only {must} may",
                ctl.role.as_str()
            ),
        );
    }
    let bytes = match http::read_body(body, max_bundle()).await {
        Ok(b) => b,
        Err((s, m)) => {
            tracing::warn!(target: "security", event = "bundle_refused", from = %who, reason = %m, "bundle push refused");
            return refuse(s, m);
        }
    };
    let from = who.to_string();
    match ctl.install(bytes, &from).await {
        Ok(done) => Json(done).into_response(),
        Err(e) => {
            if !matches!(e, InstallError::Refused(_) | InstallError::NotNewer { .. }) {
                tracing::warn!(from = %from, error = %e, "bundle push not installed");
            }
            refuse(e.status(), e.to_string())
        }
    }
}

#[derive(Debug, Deserialize)]
struct Since {
    since: Option<String>,
}

/// The settings, postcard-encoded, and their version: the SHA-256 of that
/// encoding (the same settings always give the same version).
fn settings_bytes(store: &Store) -> Result<(String, Vec<u8>), String> {
    let s = store.settings().map_err(|e| e.to_string())?;
    let bytes = postcard::to_stdvec(&s).map_err(|e| e.to_string())?;
    Ok((vflow_compiler::bundle::file_hash(&bytes), bytes))
}

async fn get_settings(
    State(ctl): State<Arc<Control>>,
    Extension(who): Extension<Attributed>,
    Query(q): Query<Since>,
) -> axum::response::Response {
    let who = match caller(&who) {
        Ok(c) => c.clone(),
        Err(r) => return *r,
    };
    if ctl.role != Role::Central {
        return refuse(
            StatusCode::NOT_FOUND,
            "settings come from the central; this node is not it".into(),
        );
    }
    // PIN hashes: only the nodes that take calls for these mailboxes.
    if !matches!(
        who,
        Caller::Peer {
            role: PeerRole::Backup | PeerRole::Distributed,
            ..
        }
    ) {
        tracing::warn!(target: "security", event = "control_refused", from = %who, reason = "settings are for backup and distributed nodes", "settings request refused");
        return refuse(
            StatusCode::FORBIDDEN,
            format!(
                "refused: {who} may not read settings (PIN hashes); only backup and distributed peers may"
            ),
        );
    }
    let store = ctl.store.clone();
    let r: Result<(String, Vec<u8>), String> =
        tokio::task::spawn_blocking(move || settings_bytes(&store))
            .await
            .unwrap_or_else(|e| Err(e.to_string()));
    match r {
        Ok((version, _)) if q.since.as_deref() == Some(version.as_str()) => (
            StatusCode::NOT_MODIFIED,
            [("x-vflow-settings-version", version)],
        )
            .into_response(),
        Ok((version, bytes)) => (
            StatusCode::OK,
            [
                (
                    header::CONTENT_TYPE.as_str(),
                    "application/octet-stream".to_string(),
                ),
                ("x-vflow-settings-version", version),
            ],
            bytes,
        )
            .into_response(),
        Err(e) => refuse(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("cannot read the settings: {e}"),
        ),
    }
}

// ---- background work -----------------------------------------------------------

/// Central: keeps `peer` on the active bundle. Pushes at start and after
/// every install; a failure is retried after `retry_first · 2^n` (up to
/// `retry_max`) or at the next install, and shows in the status.
async fn push_loop(ctl: Arc<Control>, peer: String, addr: String) {
    let mut wake = ctl.pushed.subscribe();
    let mut failures: u32 = 0;
    loop {
        let active = ctl.reloader.registry.current();
        let done = match &active.origin {
            Origin::Bundle {
                file,
                serial,
                sha256,
                ..
            } => {
                let already = lock(&ctl.pushes)
                    .get(&peer)
                    .is_some_and(|p| p.ok && p.serial == *serial);
                if already {
                    true
                } else {
                    let (ok, result) = push_once(&ctl, &peer, &addr, file).await;
                    tracing::info!(peer = %peer, serial, ok, result = %result, sha256 = %&sha256[..16.min(sha256.len())], "bundle pushed");
                    lock(&ctl.pushes).insert(
                        peer.clone(),
                        PushStatus {
                            peer: peer.clone(),
                            serial: *serial,
                            ok,
                            result,
                            at_unix: now_unix(),
                        },
                    );
                    ok
                }
            }
            Origin::Source { .. } => true,
        };
        drop(active);
        if done {
            failures = 0;
            if wake.changed().await.is_err() {
                return;
            }
            continue;
        }
        failures = failures.saturating_add(1);
        let wait = backoff(&ctl.cfg, failures);
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            changed = wake.changed() => if changed.is_err() { return },
        }
    }
}

fn backoff(cfg: &crate::config::ControlConfig, failures: u32) -> Duration {
    let factor = 2u32.saturating_pow(failures.saturating_sub(1).min(16));
    cfg.retry_first.saturating_mul(factor).min(cfg.retry_max)
}

/// One push: (taken, what the peer said).
async fn push_once(
    ctl: &Control,
    peer: &str,
    addr: &str,
    file: &std::path::Path,
) -> (bool, String) {
    let path = file.to_path_buf();
    let bytes = match tokio::task::spawn_blocking(move || {
        crate::bundles::read_file(&path, &Limits::default())
    })
    .await
    {
        Ok(Ok(b)) => b,
        Ok(Err(e)) => return (false, e),
        Err(e) => return (false, e.to_string()),
    };
    match ctl
        .ask(peer, addr, Method::PUT, "/v1/bundle", Bytes::from(bytes))
        .await
    {
        Ok(r) if r.status == StatusCode::OK => match serde_json::from_slice::<Installed>(&r.body) {
            Ok(i) if i.unchanged => (true, "already active".into()),
            Ok(_) => (true, "installed".into()),
            Err(_) => (true, r.text()),
        },
        // The node runs this serial or a newer one: nothing to do.
        Ok(r) if r.status == StatusCode::CONFLICT && r.text().contains("is not above") => {
            (true, format!("not needed: {}", r.text()))
        }
        Ok(r) => (false, format!("{}: {}", r.status, r.text())),
        Err(e) => (false, e),
    }
}

/// Backup/distributed: every `pull_every`, asks the central's status, pulls
/// its bundle when its serial is higher than ours, and its settings when
/// their version changed. While the central is down the node keeps running
/// what it has.
async fn pull_loop(ctl: Arc<Control>, central: String, addr: String) {
    let mut tick = tokio::time::interval(ctl.cfg.pull_every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut was_ok = None;
    loop {
        tick.tick().await;
        let r = pull_once(&ctl, &central, &addr).await;
        let ok = r.is_ok();
        {
            let mut s = lock(&ctl.sync);
            s.central_reachable = Some(ok);
            match &r {
                Ok(()) => {
                    s.last_sync_unix = Some(now_unix());
                    s.error = None;
                }
                Err(e) => s.error = Some(e.clone()),
            }
        }
        if was_ok != Some(ok) {
            match &r {
                Ok(()) => {
                    tracing::info!(central = %central, "control API: in sync with the central")
                }
                Err(e) => {
                    tracing::warn!(central = %central, error = %e, "control API: cannot sync with the central; running what this node has")
                }
            }
        }
        was_ok = Some(ok);
    }
}

async fn pull_once(ctl: &Arc<Control>, central: &str, addr: &str) -> Result<(), String> {
    let r = ctl
        .ask(central, addr, Method::GET, "/v1/status", Bytes::new())
        .await?;
    if r.status != StatusCode::OK {
        return Err(format!("status: {}: {}", r.status, r.text()));
    }
    let theirs: Status =
        serde_json::from_slice(&r.body).map_err(|e| format!("unreadable status: {e}"))?;
    let ours = ctl.reloader.registry.current().origin.serial();
    if let Some(b) = &theirs.bundle
        && ctl.bundle_file.is_some()
        && ours.is_none_or(|s| b.serial > s)
    {
        let r = ctl
            .ask(central, addr, Method::GET, "/v1/bundle", Bytes::new())
            .await?;
        if r.status != StatusCode::OK {
            return Err(format!("bundle: {}: {}", r.status, r.text()));
        }
        match ctl.install(r.body, &format!("pull from {central}")).await {
            Ok(i) => tracing::info!(serial = i.serial, central, "bundle pulled from the central"),
            Err(e) => return Err(format!("pulled bundle serial {}: {e}", b.serial)),
        }
    }
    let since = lock(&ctl.sync).settings_version.clone();
    if theirs.settings_version.is_some() && theirs.settings_version == since {
        return Ok(());
    }
    let path = match &since {
        Some(v) => format!("/v1/settings?since={v}"),
        None => "/v1/settings".to_string(),
    };
    let r = ctl
        .ask(central, addr, Method::GET, &path, Bytes::new())
        .await?;
    if r.status == StatusCode::NOT_MODIFIED {
        return Ok(());
    }
    if r.status != StatusCode::OK {
        return Err(format!("settings: {}: {}", r.status, r.text()));
    }
    let version = r
        .headers
        .get("x-vflow-settings-version")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .ok_or("settings: no version header")?;
    let settings: Settings =
        postcard::from_bytes(&r.body).map_err(|e| format!("settings: unreadable: {e}"))?;
    let store = ctl.store.clone();
    let applied = tokio::task::spawn_blocking(move || store.apply_settings(&settings))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| format!("settings: cannot apply: {e}"))?;
    if let Err(e) = ctl.vars.reload() {
        tracing::warn!(error = %e, "cannot reread user variables after a settings sync");
    }
    tracing::info!(central, version = %&version[..16.min(version.len())], created = applied.mailboxes_created, updated = applied.mailboxes_updated, greetings = applied.greetings_installed, vars = applied.user_vars_set, "settings synced from the central");
    lock(&ctl.sync).settings_version = Some(version);
    Ok(())
}

/// Starts this node's control API (when `cluster.control_listen` is set)
/// and its background work: the central's pushers, or a node's pull loop
/// (when the central has a `control` address). Nothing when standalone.
pub async fn start(
    config: &Config,
    store: &Store,
    reloader: &Reloader,
    vars: &Arc<UserVars>,
    duty: tokio::sync::watch::Receiver<super::failover::Duty>,
) -> std::io::Result<()> {
    let c = &config.cluster;
    if c.role == Role::Standalone {
        return Ok(());
    }
    let Some(files) = &c.tls else {
        return Err(std::io::Error::other(
            "cluster: no `cluster.tls` (checked by the config)",
        ));
    };
    let tls = NodeTls::load(files, c.node_name(&config.node))
        .map_err(|(k, why)| std::io::Error::other(format!("cluster.tls.{k}: {why}")))?;
    let ctl = Control::new(
        config,
        &tls,
        store.clone(),
        reloader.clone(),
        vars.clone(),
        duty,
    )
    .map_err(std::io::Error::other)?;
    if let Some(listen) = c.control_listen {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .map_err(|e| std::io::Error::other(format!("cluster.control_listen {listen}: {e}")))?;
        tracing::info!(node = %ctl.node, control = %listener.local_addr()?, "cluster: control API listening (HTTPS, mutual TLS)");
        let server = tls.server_config().map_err(std::io::Error::other)?;
        let route_ctl = ctl.clone();
        tokio::spawn(http::serve(
            listener,
            server,
            Arc::new(move |certs| route_ctl.router(certs)),
        ));
    }
    match c.role {
        Role::Central => {
            for p in &c.peers {
                if let Some(addr) = &p.control {
                    lock(&ctl.pushes).insert(
                        p.name.clone(),
                        PushStatus {
                            peer: p.name.clone(),
                            serial: 0,
                            ok: false,
                            result: "not pushed yet".into(),
                            at_unix: now_unix(),
                        },
                    );
                    tokio::spawn(push_loop(ctl.clone(), p.name.clone(), addr.clone()));
                }
            }
        }
        Role::Backup | Role::Distributed => {
            if let Some(central) = c.central()
                && let Some(addr) = &central.control
            {
                tokio::spawn(pull_loop(ctl.clone(), central.name.clone(), addr.clone()));
            }
        }
        Role::Standalone => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::pki::{self, NodeSpec};
    use rustls::pki_types::pem::PemObject;

    fn peers() -> Vec<PeerConfig> {
        vec![
            PeerConfig {
                name: "central".into(),
                role: PeerRole::Central,
                smtp: None,
                control: None,
            },
            PeerConfig {
                name: "site-1".into(),
                role: PeerRole::Distributed,
                smtp: None,
                control: None,
            },
        ]
    }

    #[test]
    fn requests_are_attributed_to_the_certificate_holder() {
        let d = pki::tests::cluster("attribute", &["central", "site-1", "stranger"]);
        pki::init(&d, &[NodeSpec::parse_admin("ops").unwrap()], 30, false).unwrap();
        let der = |n: &str| {
            CertificateDer::from_pem_slice(&std::fs::read(d.join(format!("{n}.crt"))).unwrap())
                .unwrap()
        };
        let peers = peers();
        assert_eq!(
            attribute(Some(&[der("site-1")]), &peers),
            Ok(Caller::Peer {
                name: "site-1".into(),
                role: PeerRole::Distributed
            })
        );
        assert_eq!(
            attribute(Some(&[der("central")]), &peers),
            Ok(Caller::Peer {
                name: "central".into(),
                role: PeerRole::Central
            })
        );
        assert_eq!(
            attribute(Some(&[der("ops")]), &peers),
            Ok(Caller::Operator("ops".into()))
        );
        assert_eq!(
            attribute(Some(&[der("stranger")]), &peers),
            Err(Refusal::UnknownPeer("stranger".into()))
        );
        assert_eq!(attribute(None, &peers), Err(Refusal::NoCertificate));
        // An operator certificate never passes as a node, e.g. on the SMTP ingress.
        assert_eq!(
            tls::identify(Some(&[der("ops")]), &peers, |_| true).unwrap_err(),
            Refusal::Operator("ops".into())
        );
    }

    #[test]
    fn install_errors_map_to_statuses_that_name_the_check() {
        let e = InstallError::NotNewer {
            offered: 3,
            active: 5,
        };
        assert_eq!(e.status(), StatusCode::CONFLICT);
        assert!(e.to_string().contains("serial 3") && e.to_string().contains("5"));
        let e = InstallError::Refused("signature does not verify".into());
        assert_eq!(e.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert!(e.to_string().contains("signature"));
        assert_eq!(InstallError::NoBundleFile.status(), StatusCode::CONFLICT);
    }

    #[test]
    fn push_backoff_doubles_up_to_the_limit() {
        let cfg = crate::config::ControlConfig {
            retry_first: Duration::from_secs(1),
            retry_max: Duration::from_secs(10),
            ..Default::default()
        };
        let waits: Vec<u64> = (1..=6).map(|n| backoff(&cfg, n).as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 8, 10, 10]);
    }
}
