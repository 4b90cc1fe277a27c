//! The flows a server runs: a verified IR program and the engine chosen for
//! it, plus the host (clock, persistent user variables) every call uses.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use vflow_compiler::exec::{self, Effect, Engine, Host, Outcome, State};
use vflow_compiler::interp::Interpreter;
use vflow_compiler::ir;
use vflow_compiler::jit::{self, CompiledProgram, EngineKind};

/// A loaded program, shared by every call that started on it.
pub struct FlowSet {
    pub program: Arc<ir::Program>,
    engine: FlowEngine,
}

enum FlowEngine {
    Jit(CompiledProgram),
    Interp,
}

impl FlowSet {
    /// Compiles a verified program for `kind` (the JIT falls back to the
    /// interpreter where Cranelift has no backend for this host).
    pub fn new(program: ir::Program, kind: EngineKind) -> Result<FlowSet, String> {
        let program = Arc::new(program);
        let engine = match kind {
            EngineKind::Interp => FlowEngine::Interp,
            EngineKind::Jit => match jit::load(&program, EngineKind::Jit).map_err(|e| e.to_string())? {
                jit::Loaded::Jit(c) => FlowEngine::Jit(c),
                jit::Loaded::Interp(_) => FlowEngine::Interp,
            },
        };
        Ok(FlowSet { program, engine })
    }

    pub fn engine_kind(&self) -> EngineKind {
        match self.engine {
            FlowEngine::Jit(_) => EngineKind::Jit,
            FlowEngine::Interp => EngineKind::Interp,
        }
    }

    pub fn resume(&self, state: &mut State, outcome: Outcome, host: &mut dyn Host) -> Effect {
        match &self.engine {
            FlowEngine::Jit(c) => c.resume(state, outcome, host),
            FlowEngine::Interp => Interpreter::new(&self.program).resume(state, outcome, host),
        }
    }

    /// Whether a start point matches `kind` for `name`.
    pub fn has_entry(&self, kind: &str, name: &str) -> bool {
        self.program.find_entry(kind, name).is_some()
    }
}

/// `user.NAME` variables: server-wide, persistent across calls and restarts
/// (a JSON file under the data directory, replaced atomically on change).
#[derive(Debug)]
pub struct UserVars {
    path: PathBuf,
    vars: Mutex<BTreeMap<String, String>>,
}

impl UserVars {
    pub fn open(path: PathBuf) -> std::io::Result<UserVars> {
        let vars = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                std::io::Error::new(std::io::ErrorKind::InvalidData, format!("{}: {e}", path.display()))
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(e) => return Err(e),
        };
        Ok(UserVars { path, vars: Mutex::new(vars) })
    }

    pub fn get(&self, name: &str) -> String {
        self.vars.lock().expect("user vars lock is never poisoned: no panics while held").get(name).cloned().unwrap_or_default()
    }

    pub fn set(&self, name: &str, value: String) {
        let snapshot = {
            let mut v = self.vars.lock().expect("user vars lock is never poisoned: no panics while held");
            if v.get(name) == Some(&value) {
                return;
            }
            v.insert(name.to_string(), value);
            serde_json::to_vec_pretty(&*v).expect("strings serialize")
        };
        let tmp = self.path.with_extension("json.part");
        let written = std::fs::write(&tmp, &snapshot)
            .and_then(|_| std::fs::File::open(&tmp)?.sync_all())
            .and_then(|_| std::fs::rename(&tmp, &self.path));
        if let Err(e) = written {
            tracing::error!(file = %self.path.display(), error = %e, "cannot save user variables");
        }
    }
}

/// The host of one call: the server's clock in its time zone, and the user variables.
pub struct CallHost {
    pub tz: jiff::tz::TimeZone,
    pub vars: Arc<UserVars>,
}

impl Host for CallHost {
    fn now(&self) -> jiff::ZonedDateTime {
        jiff::Timestamp::now().to_zoned_datetime(self.tz.clone())
    }
    fn user_var(&self, name: &str) -> String {
        self.vars.get(name)
    }
    fn set_user_var(&mut self, name: &str, value: String) {
        self.vars.set(name, value);
    }
}

/// Starts a call's state, or `None` when no start point matches.
pub fn start_call(flows: &FlowSet, kind: &str, name: &str, call: exec::CallInfo) -> Option<State> {
    exec::start(&flows.program, kind, name, call).ok()
}
