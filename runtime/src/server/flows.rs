//! The flows a server runs: a verified IR program and the engine chosen for
//! it, plus the host (clock, persistent user variables) every call uses.

use std::collections::BTreeMap;
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
            EngineKind::Jit => {
                match jit::load(&program, EngineKind::Jit).map_err(|e| e.to_string())? {
                    jit::Loaded::Jit(c) => FlowEngine::Jit(c),
                    jit::Loaded::Interp(_) => FlowEngine::Interp,
                }
            }
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
/// (the `user_vars` table of the voicemail store; read from memory, every
/// change committed before `set` returns).
#[derive(Debug)]
pub struct UserVars {
    store: crate::store::Store,
    vars: Mutex<BTreeMap<String, String>>,
}

impl UserVars {
    /// Loads the variables from the store. A `user_vars.json` left by an older
    /// vflow at `legacy` is imported once (values in the store win) and renamed
    /// to `user_vars.json.imported`.
    pub fn open(store: crate::store::Store, legacy: &std::path::Path) -> std::io::Result<UserVars> {
        let to_io = |e: crate::store::StoreError| std::io::Error::other(e.to_string());
        match std::fs::read(legacy) {
            Ok(bytes) => {
                let old: BTreeMap<String, String> =
                    serde_json::from_slice(&bytes).map_err(|e| {
                        std::io::Error::new(
                            std::io::ErrorKind::InvalidData,
                            format!("{}: {e}", legacy.display()),
                        )
                    })?;
                let have: BTreeMap<String, String> =
                    store.user_vars().map_err(to_io)?.into_iter().collect();
                for (k, v) in old.iter().filter(|(k, _)| !have.contains_key(*k)) {
                    store.set_user_var(k, v).map_err(to_io)?;
                }
                std::fs::rename(legacy, legacy.with_extension("json.imported"))?;
                tracing::info!(file = %legacy.display(), count = old.len(), "imported user variables into the store");
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        let vars = store.user_vars().map_err(to_io)?.into_iter().collect();
        Ok(UserVars {
            store,
            vars: Mutex::new(vars),
        })
    }

    /// Reads the variables from the store again (after a cluster settings
    /// sync changed them there).
    pub fn reload(&self) -> Result<(), crate::store::StoreError> {
        let fresh: BTreeMap<String, String> = self.store.user_vars()?.into_iter().collect();
        *self
            .vars
            .lock()
            .expect("user vars lock is never poisoned: no panics while held") = fresh;
        Ok(())
    }

    pub fn get(&self, name: &str) -> String {
        self.vars
            .lock()
            .expect("user vars lock is never poisoned: no panics while held")
            .get(name)
            .cloned()
            .unwrap_or_default()
    }

    pub fn set(&self, name: &str, value: String) {
        let mut v = self
            .vars
            .lock()
            .expect("user vars lock is never poisoned: no panics while held");
        if v.get(name) == Some(&value) {
            return;
        }
        // Under the lock, so the store sees changes in the order memory does.
        if let Err(e) = self.store.set_user_var(name, &value) {
            tracing::error!(var = %name, error = %e, "cannot save a user variable; it holds for this run only");
        }
        v.insert(name.to_string(), value);
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
