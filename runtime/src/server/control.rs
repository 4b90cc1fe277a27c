//! Reloading a running server: SIGHUP, and the control socket that
//! `vflow reload` talks to.
//!
//! The control socket is a Unix stream socket at `DATA_DIR/control.sock`,
//! mode 0600 (only the server's user, and root, can connect). The protocol is
//! one request line and one reply line per connection:
//!
//! ```text
//! request:  reload | rollback | status                      (then \n)
//! reply:    {"result":"ok","active":"…","serial":5}          (then \n)
//!           {"result":"refused","reason":"…","active":"…","serial":4}
//!           {"result":"error","reason":"…"}
//! ```
//!
//! `reload` re-reads the bundle file and its trusted keys (or recompiles the
//! sources) and swaps; `rollback` goes back to the set the last swap
//! replaced; `status` changes nothing. `active` describes the set active
//! after the request (the same words as the server log), `serial` is its
//! bundle serial (`null` for flows from source). A refused request leaves the
//! active set as it was; `reason` says exactly why.

use super::registry::{ActiveSet, LoadError, Refusal, Registry};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};

/// The control socket's file name inside the data directory.
pub const SOCKET: &str = "control.sock";

/// The longest request line read.
const MAX_REQUEST: u64 = 256;

/// Loads the flow set the configuration names, reading its files again.
pub type Loader = Arc<dyn Fn() -> Result<ActiveSet, LoadError> + Send + Sync>;

/// The registry and how to load a new set for it.
#[derive(Clone)]
pub struct Reloader {
    pub registry: Arc<Registry>,
    pub load: Loader,
}

impl Reloader {
    /// Loads and swaps, off the async threads (compiling takes a while).
    pub async fn reload(&self, trigger: &'static str) -> Result<Arc<ActiveSet>, Refusal> {
        let this = self.clone();
        blocking(move || this.registry.reload(trigger, || (this.load)())).await
    }

    pub async fn rollback(&self) -> Result<Arc<ActiveSet>, Refusal> {
        let registry = self.registry.clone();
        blocking(move || registry.rollback()).await
    }

    /// The reply line (without its newline) for one request line.
    pub async fn answer(&self, request: &str) -> String {
        let result = match request.trim() {
            "reload" => self.reload("control socket").await,
            "rollback" => self.rollback().await,
            "status" => Ok(self.registry.current()),
            other => {
                return serde_json::json!({
                    "result": "error",
                    "reason": format!("unknown request `{}`; send `reload`, `rollback` or `status`", other.chars().take(40).collect::<String>()),
                })
                .to_string();
            }
        };
        let active = self.registry.current();
        let mut reply = serde_json::json!({
            "active": active.origin.to_string(),
            "serial": active.origin.serial(),
        });
        match result {
            Ok(_) => reply["result"] = "ok".into(),
            Err(refusal) => {
                reply["result"] = "refused".into();
                reply["reason"] = refusal.to_string().into();
            }
        }
        reply.to_string()
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, Refusal> + Send + 'static,
) -> Result<T, Refusal> {
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r,
        Err(e) => Err(Refusal::Load(LoadError::new(
            false,
            format!("the reload task failed: {e}"),
        ))),
    }
}

/// Reloads on every SIGHUP, forever.
pub async fn on_sighup(reloader: Reloader) {
    use tokio::signal::unix::{SignalKind, signal};
    let mut hup = match signal(SignalKind::hangup()) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "cannot listen for SIGHUP; reload with `vflow reload`");
            return;
        }
    };
    while hup.recv().await.is_some() {
        // The registry logs the swap or the refusal.
        let _ = reloader.reload("SIGHUP").await;
    }
}

/// Why the control socket could not be bound.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BindError {
    /// Another server answers on it: this one must not start on the same data.
    InUse(String),
    /// The socket cannot be made (path too long, permissions, file system).
    Io(String),
}

impl std::fmt::Display for BindError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BindError::InUse(m) | BindError::Io(m) => f.write_str(m),
        }
    }
}

/// The bound control socket; its file is removed when this is dropped.
#[derive(Debug)]
pub struct ControlSocket {
    listener: Option<std::os::unix::net::UnixListener>,
    path: PathBuf,
}

impl ControlSocket {
    /// Binds `data_dir/control.sock` with mode 0600. A socket left by a server
    /// that is gone is replaced; one that answers means another server runs
    /// on this data directory, which is an error.
    pub fn bind(data_dir: &Path) -> Result<ControlSocket, BindError> {
        use std::os::unix::fs::PermissionsExt;
        let path = data_dir.join(SOCKET);
        if std::os::unix::net::UnixStream::connect(&path).is_ok() {
            return Err(BindError::InUse(format!(
                "another vflow server is running on the data directory {} (its control socket {} answers); stop it or give this node another `node.data_dir`",
                data_dir.display(),
                path.display()
            )));
        }
        // Bound under a private name and made 0600 before it is renamed into
        // place, so nobody can connect while it is still open to others.
        let tmp = data_dir.join(format!(".{SOCKET}.{}", std::process::id()));
        let _ = std::fs::remove_file(&tmp);
        let shown = |e: std::io::Error| BindError::Io(format!("{}: {e}", path.display()));
        let listener = std::os::unix::net::UnixListener::bind(&tmp).map_err(shown)?;
        let placed = std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600))
            .and_then(|()| std::fs::rename(&tmp, &path));
        if let Err(e) = placed {
            let _ = std::fs::remove_file(&tmp);
            return Err(shown(e));
        }
        listener.set_nonblocking(true).map_err(shown)?;
        Ok(ControlSocket {
            listener: Some(listener),
            path,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Serves requests until the task is dropped.
    pub async fn serve(mut self, reloader: Reloader) {
        let listener = match self.listener.take().map(tokio::net::UnixListener::from_std) {
            Some(Ok(l)) => l,
            Some(Err(e)) => {
                tracing::warn!(socket = %self.path.display(), error = %e, "control socket unusable; `vflow reload` cannot reach this server (SIGHUP still reloads)");
                return;
            }
            None => return,
        };
        tracing::info!(socket = %self.path.display(), "control socket ready (`vflow reload`)");
        loop {
            let stream = match listener.accept().await {
                Ok((s, _)) => s,
                Err(e) => {
                    tracing::debug!(error = %e, "control socket accept");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let reloader = reloader.clone();
            tokio::spawn(async move {
                if let Err(e) = connection(stream, &reloader).await {
                    tracing::debug!(error = %e, "control connection");
                }
            });
        }
    }
}

impl Drop for ControlSocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// One request, one reply. A client that sends nothing is dropped after 10 s.
async fn connection(stream: tokio::net::UnixStream, reloader: &Reloader) -> std::io::Result<()> {
    use tokio::io::AsyncReadExt;
    let (rd, mut wr) = stream.into_split();
    let mut line = String::new();
    let mut rd = tokio::io::BufReader::new(rd.take(MAX_REQUEST));
    match tokio::time::timeout(Duration::from_secs(10), rd.read_line(&mut line)).await {
        Ok(r) => {
            r?;
        }
        Err(_) => return Ok(()),
    }
    let reply = if line.ends_with('\n') {
        reloader.answer(&line).await
    } else {
        serde_json::json!({"result": "error", "reason": format!("send one request line (at most {MAX_REQUEST} bytes) ending in a newline")})
            .to_string()
    };
    wr.write_all(reply.as_bytes()).await?;
    wr.write_all(b"\n").await?;
    wr.shutdown().await?;
    // Closing with unread input would reset the connection before the client
    // reads the reply; take what is left of a too-long request (bounded).
    let mut rest = rd.into_inner().into_inner().take(64 * 1024);
    let _ = tokio::time::timeout(
        Duration::from_secs(1),
        tokio::io::copy(&mut rest, &mut tokio::io::sink()),
    )
    .await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prompts::PromptLibrary;
    use crate::server::flows::FlowSet;
    use crate::server::registry::Origin;
    use std::os::unix::fs::PermissionsExt;
    use std::sync::atomic::{AtomicU64, Ordering};
    use tokio::io::AsyncReadExt;
    use vflow_compiler::ir;
    use vflow_compiler::jit::EngineKind;
    use vflow_compiler::source::MemoryWorld;

    fn set(serial: u64) -> ActiveSet {
        let mut w = MemoryWorld::with_stdlib();
        let id = w.add(
            "t/flow.vflow",
            "flow f {\n  start named \"test\" -> bye\n  hangup bye\n}\n",
        );
        let checked = vflow_compiler::check::check(&mut w, &[id]);
        let p = ir::lower(&w, &checked.program).unwrap();
        ActiveSet::new(
            FlowSet::new(p, EngineKind::Interp).unwrap(),
            PromptLibrary::default(),
            Origin::Bundle {
                file: "site.vfb".into(),
                name: "site".into(),
                serial,
                sha256: format!("{serial:064x}"),
            },
        )
    }

    /// A reloader whose loads give serials 2, 3, … and fail when `fail` is set.
    fn reloader(fail: Arc<std::sync::atomic::AtomicBool>) -> Reloader {
        let next = Arc::new(AtomicU64::new(2));
        Reloader {
            registry: Arc::new(Registry::new(set(1))),
            load: Arc::new(move || {
                if fail.load(Ordering::Relaxed) {
                    return Err(LoadError::new(
                        true,
                        "site.vfb: the signature does not verify",
                    ));
                }
                Ok(set(next.fetch_add(1, Ordering::Relaxed)))
            }),
        }
    }

    async fn ask(path: &Path, request: &[u8]) -> serde_json::Value {
        let mut s = tokio::net::UnixStream::connect(path).await.unwrap();
        s.write_all(request).await.unwrap();
        let mut reply = String::new();
        s.read_to_string(&mut reply).await.unwrap();
        assert!(
            reply.ends_with('\n') && reply.lines().count() == 1,
            "{reply:?}"
        );
        serde_json::from_str(&reply).unwrap()
    }

    #[tokio::test]
    async fn the_control_protocol() {
        let dir = std::env::temp_dir().join(format!("vflow-control-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let fail = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let r = reloader(fail.clone());
        let sock = ControlSocket::bind(&dir).unwrap();
        let path = sock.path().to_path_buf();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{mode:o}");
        let task = tokio::spawn(sock.serve(r.clone()));

        let v = ask(&path, b"status\n").await;
        assert_eq!(
            (v["result"].as_str(), v["serial"].as_u64()),
            (Some("ok"), Some(1)),
            "{v}"
        );
        let v = ask(&path, b"reload\n").await;
        assert_eq!(
            (v["result"].as_str(), v["serial"].as_u64()),
            (Some("ok"), Some(2)),
            "{v}"
        );
        assert!(v["active"].as_str().unwrap().contains("serial 2"), "{v}");
        fail.store(true, Ordering::Relaxed);
        let v = ask(&path, b"reload\n").await;
        assert_eq!(v["result"], "refused", "{v}");
        assert_eq!(
            v["reason"], "site.vfb: the signature does not verify",
            "{v}"
        );
        assert_eq!(v["serial"], 2, "{v}");
        let v = ask(&path, b"rollback\n").await;
        assert_eq!(
            (v["result"].as_str(), v["serial"].as_u64()),
            (Some("ok"), Some(1)),
            "{v}"
        );
        let v = ask(&path, b"rollback\n").await;
        assert_eq!(v["result"], "refused", "{v}");
        assert!(v["reason"].as_str().unwrap().contains("no previous"), "{v}");
        let v = ask(&path, b"explode\n").await;
        assert_eq!(v["result"], "error", "{v}");
        assert!(v["reason"].as_str().unwrap().contains("explode"), "{v}");
        let v = ask(&path, &[b'x'; 300]).await;
        assert_eq!(v["result"], "error", "{v}");

        // A second server on the same data directory is refused.
        let e = ControlSocket::bind(&dir).unwrap_err();
        assert!(matches!(e, BindError::InUse(_)), "{e}");
        assert!(e.to_string().contains("another vflow server"), "{e}");
        task.abort();
        let _ = task.await;
        // Gone with its server; a socket file left behind is replaced.
        assert!(!path.exists());
        let stale = std::os::unix::net::UnixListener::bind(&path).unwrap();
        drop(stale);
        let again = ControlSocket::bind(&dir).unwrap();
        drop(again);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
