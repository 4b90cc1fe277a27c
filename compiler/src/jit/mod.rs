//! The JIT: verified IR compiled by Cranelift into native handlers that
//! implement the same [`exec::Engine`] contract as the interpreter.
//!
//! [`Jit::compile`] turns every unit (flow or module) into two native
//! functions (see `translate`): `run`, which executes pure nodes from a start
//! node until the frame must leave native code, and `init`, which runs the
//! unit's `var` initializers. Everything between those native stretches is a
//! small trampoline in [`CompiledProgram::resume`]: it moves the top frame's
//! locals into native slots, calls `run`, moves them back, and acts on the
//! exit (build the effect, push a module frame, restart, return, fault).
//! What the interpreter already does outside pure code — matching an outcome
//! to a result edge, building an `Effect` from evaluated arguments, popping a
//! frame — the trampoline asks the interpreter to do, so those parts cannot
//! drift apart. The interpreter is the oracle: `tests/differential.rs` runs
//! both engines on random flows and compares traces and final states.
//!
//! Architecture invariant: native code never traps and never sees a Rust
//! reference. Integer faults are tested before the instruction; strings are
//! handles (see `abi`), not pointers.
//!
//! Code lifetime: the `JITModule` lives inside an `Arc` shared by every clone
//! of a [`CompiledProgram`]; the code is freed (`free_memory`) when the last
//! clone — the last call still running on that flow set — is dropped.

mod abi;
mod translate;

use crate::exec::{Effect, Engine, Frame, Host, Outcome, PromptItem, State, Status};
use crate::interp::{Interpreter, Step};
use crate::ir::{self, Edge, NodeKind, PromptExpr, Ty, Value};
use abi::Ctx;
use cranelift_codegen::ir::{AbiParam, UserFuncName, types};
use cranelift_codegen::settings::{self, Configurable};
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext};
use cranelift_jit::{JITBuilder, JITModule};
use cranelift_module::{FuncId, Linkage, Module};
use std::sync::Arc;
use translate::{Consts, Exit, HostFns, Translator, ty_of};

/// Why a program could not be compiled to native code.
#[derive(Debug, thiserror::Error)]
pub enum JitError {
    /// Cranelift has no backend for this machine: use the interpreter.
    #[error("no JIT for this host: {0}")]
    Unsupported(String),
    #[error(transparent)]
    Verify(#[from] ir::VerifyError),
    #[error("code generation failed: {0}")]
    Codegen(String),
}

impl From<cranelift_module::ModuleError> for JitError {
    fn from(e: cranelift_module::ModuleError) -> JitError {
        JitError::Codegen(format!("{e:?}"))
    }
}

/// Which engine runs flows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EngineKind {
    Jit,
    Interp,
}

impl EngineKind {
    pub fn from_name(s: &str) -> Option<EngineKind> {
        match s {
            "jit" => Some(EngineKind::Jit),
            "interp" | "interpreter" => Some(EngineKind::Interp),
            _ => None,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            EngineKind::Jit => "jit",
            EngineKind::Interp => "interp",
        }
    }
    /// The JIT where Cranelift supports the host, else the interpreter.
    pub fn default_for_host() -> EngineKind {
        if supported() {
            EngineKind::Jit
        } else {
            EngineKind::Interp
        }
    }
}

/// Whether Cranelift can generate code for this machine.
pub fn supported() -> bool {
    cranelift_native::builder().is_ok() && cfg!(target_pointer_width = "64")
}

/// The default engine, as `vflow --version` reports it.
pub fn engine_name() -> &'static str {
    if supported() {
        if cfg!(target_arch = "x86_64") {
            "jit (cranelift, x86_64)"
        } else {
            "jit (cranelift)"
        }
    } else {
        "interpreter (no cranelift backend for this host)"
    }
}

/// A program loaded for execution by the engine chosen for it.
pub enum Loaded<'p> {
    Jit(CompiledProgram),
    Interp(Interpreter<'p>),
}

impl Loaded<'_> {
    /// The engine actually running (the JIT falls back to the interpreter
    /// where the host has no Cranelift backend).
    pub fn kind(&self) -> EngineKind {
        match self {
            Loaded::Jit(_) => EngineKind::Jit,
            Loaded::Interp(_) => EngineKind::Interp,
        }
    }
}

impl Engine for Loaded<'_> {
    fn resume(&self, state: &mut State, outcome: Outcome, host: &mut dyn Host) -> Effect {
        match self {
            Loaded::Jit(c) => c.resume(state, outcome, host),
            Loaded::Interp(i) => i.resume(state, outcome, host),
        }
    }
}

/// Loads a verified program for `kind`; asking for the JIT on a host without
/// a backend gives the interpreter.
pub fn load(program: &ir::Program, kind: EngineKind) -> Result<Loaded<'_>, JitError> {
    match kind {
        EngineKind::Interp => Ok(Loaded::Interp(Interpreter::new(program))),
        EngineKind::Jit => match Jit::compile(program) {
            Ok(c) => Ok(Loaded::Jit(c)),
            Err(JitError::Unsupported(_)) => Ok(Loaded::Interp(Interpreter::new(program))),
            Err(e) => Err(e),
        },
    }
}

type RunFn = unsafe extern "C" fn(*mut Ctx, i64) -> i64;
type InitFn = unsafe extern "C" fn(*mut Ctx) -> i64;

/// The compiler: a Cranelift JIT module being filled with one program.
pub struct Jit {
    module: JITModule,
    host: HostFns,
    consts: Consts,
}

impl Jit {
    fn new() -> Result<Jit, JitError> {
        // The ISA: the host's, optimized for speed. The IR verifier has run,
        // so Cranelift's own verifier only runs in debug builds.
        let mut flags = settings::builder();
        let set = |f: &mut settings::Builder, k: &str, v: &str| {
            f.set(k, v).map_err(|e| JitError::Codegen(e.to_string()))
        };
        // `speed` against `none`, and the backtracking register allocator
        // against `single_pass`, measured: both alternatives compiled no
        // faster here and ran slower (BENCHMARKS.md).
        set(&mut flags, "opt_level", "speed")?;
        set(
            &mut flags,
            "enable_verifier",
            if cfg!(debug_assertions) {
                "true"
            } else {
                "false"
            },
        )?;
        let isa = cranelift_native::builder()
            .map_err(|e| JitError::Unsupported(e.to_string()))?
            .finish(settings::Flags::new(flags))
            .map_err(|e| JitError::Codegen(e.to_string()))?;
        if isa.pointer_type() != types::I64 {
            return Err(JitError::Unsupported("not a 64-bit target".into()));
        }
        // The host ABI's functions become symbols the generated code imports.
        let mut builder = JITBuilder::with_isa(isa, cranelift_module::default_libcall_names());
        for (name, ptr, ..) in abi::host_functions() {
            builder.symbol(name, ptr);
        }
        let mut module = JITModule::new(builder);
        let host = HostFns::declare(&mut module)?;
        Ok(Jit {
            module,
            host,
            consts: Consts::default(),
        })
    }

    /// Verifies and compiles a program: declare every unit's functions,
    /// define them from the IR, then finalize (relocate and make the code
    /// executable).
    pub fn compile(program: &ir::Program) -> Result<CompiledProgram, JitError> {
        ir::verify(program)?;
        let mut jit = Jit::new()?;

        // Declare: `run_U(ctx, node) -> exit` and `init_U(ctx) -> exit`.
        let ptr = types::I64;
        let mut run_sig = jit.module.make_signature();
        run_sig
            .params
            .extend([AbiParam::new(ptr), AbiParam::new(types::I64)]);
        run_sig.returns.push(AbiParam::new(types::I64));
        let mut init_sig = jit.module.make_signature();
        init_sig.params.push(AbiParam::new(ptr));
        init_sig.returns.push(AbiParam::new(types::I64));
        let mut ids: Vec<(FuncId, FuncId)> = Vec::with_capacity(program.units.len());
        for i in 0..program.units.len() {
            let run = jit
                .module
                .declare_function(&format!("run_{i}"), Linkage::Local, &run_sig)?;
            let init =
                jit.module
                    .declare_function(&format!("init_{i}"), Linkage::Local, &init_sig)?;
            ids.push((run, init));
        }

        // Define: translate each unit's nodes and initializers.
        let mut ctx = jit.module.make_context();
        let mut fctx = FunctionBuilderContext::new();
        for (unit, &(run, init)) in program.units.iter().zip(&ids) {
            for (id, sig, is_run) in [(run, &run_sig, true), (init, &init_sig, false)] {
                ctx.func.signature = sig.clone();
                ctx.func.name = UserFuncName::user(0, id.as_u32());
                let b = FunctionBuilder::new(&mut ctx.func, &mut fctx);
                let t = Translator::new(b, &mut jit.module, &jit.host, &mut jit.consts, unit);
                if is_run {
                    t.run()
                } else {
                    t.init()
                }
                jit.module
                    .define_function(id, &mut ctx)
                    .map_err(|e| JitError::Codegen(format!("unit `{}`: {e:?}", unit.name)))?;
                jit.module.clear_context(&mut ctx);
            }
        }

        // Finalize: the code becomes executable; take the entry points.
        jit.module.finalize_definitions()?;
        let units = ids
            .iter()
            .map(|&(run, init)| {
                // SAFETY: both were defined above with exactly these signatures
                // (`extern "C"` is the module's default call convention).
                unsafe {
                    UnitCode {
                        run: std::mem::transmute::<*const u8, RunFn>(
                            jit.module.get_finalized_function(run),
                        ),
                        init: std::mem::transmute::<*const u8, InitFn>(
                            jit.module.get_finalized_function(init),
                        ),
                    }
                }
            })
            .collect();
        let out_len = program
            .units
            .iter()
            .flat_map(|u| &u.nodes)
            .map(out_len)
            .max()
            .unwrap_or(0)
            .max(1);
        Ok(CompiledProgram {
            inner: Arc::new(Inner {
                program: program.clone(),
                consts: jit.consts.list,
                units,
                out_len,
                module: Some(jit.module),
            }),
        })
    }
}

/// How many values a node leaves in `Ctx::out`.
fn out_len(n: &ir::Node) -> usize {
    match &n.kind {
        NodeKind::Call { args, .. } => args.len(),
        NodeKind::Effect(en) => en.prompts.len() + en.args.len(),
        _ => 0,
    }
}

struct UnitCode {
    run: RunFn,
    init: InitFn,
}

struct Inner {
    program: ir::Program,
    consts: Vec<String>,
    units: Vec<UnitCode>,
    out_len: usize,
    /// Owns the code `units` points into; `None` only while dropping.
    module: Option<JITModule>,
}

// SAFETY: after `finalize_definitions` nothing mutates the module until
// `Drop`, which has exclusive access; the code is read-only and every call
// into it gets its own `Ctx`, so sharing across threads is sound.
unsafe impl Send for Inner {}
unsafe impl Sync for Inner {}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Some(m) = self.module.take() {
            // SAFETY: the last `CompiledProgram` is going away, so no call is
            // running native code and no function pointer survives this.
            unsafe { m.free_memory() };
        }
    }
}

/// A program compiled to native code; cheap to clone (the code is shared).
/// Keep a clone per running call to keep its code alive across a hot swap.
#[derive(Clone)]
pub struct CompiledProgram {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for CompiledProgram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CompiledProgram")
            .field("units", &self.inner.units.len())
            .finish()
    }
}

/// What one native call left behind.
struct NativeExit {
    code: i64,
    /// Values from `Ctx::out`, decoded by the caller's types.
    values: Vec<Value>,
    fault: String,
}

impl CompiledProgram {
    pub fn program(&self) -> &ir::Program {
        &self.inner.program
    }

    /// How many handles share this code (this one included).
    pub fn users(&self) -> usize {
        Arc::strong_count(&self.inner)
    }

    /// Runs native code on the top frame: its locals move into slots and
    /// string homes, `call` runs, the `out` values are decoded by `types`,
    /// and the locals move back.
    fn native(
        &self,
        state: &mut State,
        host: &mut dyn Host,
        fuel: &mut u64,
        types: impl FnOnce(i64) -> Vec<Ty>,
        call: impl FnOnce(&UnitCode, *mut Ctx) -> i64,
    ) -> NativeExit {
        let inner = &*self.inner;
        let Some(frame) = state.frames.last_mut() else {
            return NativeExit {
                code: Exit::Hangup as i64,
                values: Vec::new(),
                fault: String::new(),
            };
        };
        let unit = frame.unit;
        let decl = &inner.program.units[unit as usize].locals;
        let locals = std::mem::take(&mut frame.locals);
        let mut slots = vec![0i64; decl.len()];
        let mut strs = Vec::with_capacity(decl.len() + 8);
        for (i, v) in locals.into_iter().enumerate().take(decl.len()) {
            strs.push(match v {
                Value::Int(n) => {
                    slots[i] = n;
                    String::new()
                }
                Value::Bool(b) => {
                    slots[i] = i64::from(b);
                    String::new()
                }
                Value::Str(s) => {
                    slots[i] = i as i64;
                    s
                }
            });
        }
        strs.resize(decl.len(), String::new());
        let mut out = vec![0i64; inner.out_len];
        let mut vbuf = vec![0i64; abi::VISIT_BUF];
        let mut cx = Ctx {
            slots: slots.as_mut_ptr(),
            fuel: *fuel,
            faulted: 0,
            out: out.as_mut_ptr(),
            visits: 0,
            vbuf: vbuf.as_mut_ptr(),
            flushed: 0,
            temp_epoch: 0,
            state: &mut *state,
            host,
            program: &inner.program,
            consts: &inner.consts,
            unit,
            mark: decl.len(),
            strs,
            fault: String::new(),
        };
        let code = call(&inner.units[unit as usize], &mut cx);
        // The nodes native code started: steps, the last node, and the
        // host's `node_entered` for the visits not yet handed over.
        let rest = (cx.visits - cx.flushed) as usize;
        cx.flush_visits(rest);
        if cx.visits > 0 {
            let last = vbuf[((cx.visits - 1) as usize) % abi::VISIT_BUF];
            cx.state.steps += cx.visits as u64;
            cx.state.last_node = Some((unit, last as u32));
        }
        *fuel = cx.fuel;
        let values = types(code)
            .into_iter()
            .zip(&out)
            .map(|(t, &v)| match t {
                Ty::Int => Value::Int(v),
                Ty::Bool => Value::Bool(v != 0),
                Ty::Str => Value::Str(cx.text(v).to_string()),
            })
            .collect();
        let Ctx {
            mut strs, fault, ..
        } = cx;
        let frame = state
            .frames
            .last_mut()
            .expect("the frame native code ran on");
        frame.locals = decl
            .iter()
            .enumerate()
            .map(|(i, l)| match l.ty {
                Ty::Int => Value::Int(slots[i]),
                Ty::Bool => Value::Bool(slots[i] != 0),
                Ty::Str => Value::Str(std::mem::take(&mut strs[i])),
            })
            .collect();
        NativeExit {
            code,
            values,
            fault,
        }
    }

    /// Pushes a frame for `unit` at `node` and runs its initializers natively.
    fn enter(
        &self,
        interp: &Interpreter,
        state: &mut State,
        host: &mut dyn Host,
        unit: u32,
        node: u32,
        args: Vec<Value>,
    ) -> Result<(), Effect> {
        let u = &self.inner.program.units[unit as usize];
        let mut locals = args;
        locals.extend(
            u.locals[locals.len().min(u.locals.len())..]
                .iter()
                .map(|l| l.ty.zero()),
        );
        state.frames.push(Frame { unit, node, locals });
        if u.init.is_empty() {
            return Ok(());
        }
        // Initializers have no back edges: fuel is not touched.
        let mut fuel = u64::MAX;
        // SAFETY: `init` was compiled for this unit and gets the context `native` built for its frame.
        let exit = self.native(
            state,
            host,
            &mut fuel,
            |_| Vec::new(),
            |code, cx| unsafe { (code.init)(cx) },
        );
        match Exit::decode(exit.code) {
            (Some(Exit::Done), ..) => Ok(()),
            (Some(Exit::Fault), i, _) => {
                let line = u.init.get(i as usize).map_or(u.line, |x| x.line);
                Err(interp.fault_at(unit, line, exit.fault))
            }
            _ => Err(interp.fault_at(unit, u.line, "jit: bad exit from an initializer".into())),
        }
    }

    fn restart(
        &self,
        interp: &Interpreter,
        state: &mut State,
        host: &mut dyn Host,
        unit: u32,
        node: u32,
        args: Vec<Value>,
    ) -> Step {
        state.frames.clear();
        match self.enter(interp, state, host, unit, node, args) {
            Ok(()) => Step::At,
            Err(e) => Step::End(e),
        }
    }

    /// Runs the top frame natively from its current node and acts on the exit.
    fn exec(
        &self,
        interp: &Interpreter,
        state: &mut State,
        host: &mut dyn Host,
        fuel: &mut u64,
    ) -> Step {
        let program = &self.inner.program;
        let Some(&Frame {
            unit: ui,
            node: start,
            ..
        }) = state.frames.last()
        else {
            return Step::End(Effect::Hangup {
                prompts: Vec::new(),
            });
        };
        let unit = &program.units[ui as usize];
        // The types of the values an exit leaves in `out`.
        let types = |code: i64| -> Vec<Ty> {
            let (exit, n, _) = Exit::decode(code);
            let Some(node) = unit.nodes.get(n as usize) else {
                return Vec::new();
            };
            match (exit, &node.kind) {
                (Some(Exit::Effect), NodeKind::Effect(en)) => en
                    .prompts
                    .iter()
                    .map(|_| Ty::Str)
                    .chain(en.args.iter().map(|a| ty_of(unit, a)))
                    .collect(),
                (Some(Exit::Call), NodeKind::Call { args, .. }) => {
                    args.iter().map(|a| ty_of(unit, a)).collect()
                }
                _ => Vec::new(),
            }
        };
        // SAFETY: `run` was compiled for this unit; `start` is a node of it
        // (a verified edge or a frame's current node), and out-of-range
        // starts are handled by the function's dispatch anyway.
        let exit = self.native(state, host, fuel, types, |code, cx| unsafe {
            (code.run)(cx, i64::from(start))
        });
        let (kind, n, extra) = Exit::decode(exit.code);
        if let Some(f) = state.frames.last_mut() {
            f.node = n;
        }
        let Some(node) = unit.nodes.get(n as usize) else {
            return Step::End(interp.fault_at(ui, unit.line, "jit: bad exit".into()));
        };
        match (kind, &node.kind) {
            (Some(Exit::Effect), NodeKind::Effect(en)) => {
                let mut values = exit.values.into_iter();
                let prompts = en
                    .prompts
                    .iter()
                    .zip(values.by_ref())
                    .map(|(p, v)| match p {
                        PromptExpr::File(_) => PromptItem::File(v.to_text()),
                        PromptExpr::Say(m, _) => PromptItem::Say {
                            say: *m,
                            value: v.to_text(),
                        },
                        PromptExpr::Speak(_) => PromptItem::Speak { speak: v.to_text() },
                    })
                    .collect();
                interp.build_effect(state, ui, en, prompts, values.collect())
            }
            (Some(Exit::Call), NodeKind::Call { unit: callee, .. }) => {
                if state.frames.len() >= ir::verify::MAX_CALL_DEPTH {
                    return interp.fault(
                        state,
                        format!(
                            "module calls nested deeper than {}",
                            ir::verify::MAX_CALL_DEPTH
                        ),
                    );
                }
                if let Some(s) = interp.burn(state, fuel) {
                    return s;
                }
                match self.enter(interp, state, host, *callee, 0, exit.values) {
                    Ok(()) => Step::At,
                    Err(e) => Step::End(e),
                }
            }
            (Some(Exit::Restart), NodeKind::GotoStart { kind, name }) => {
                if let Some(s) = interp.burn(state, fuel) {
                    return s;
                }
                let Some(i) = program.find_entry(kind, name) else {
                    return interp.fault(state, format!("no start point `{kind} \"{name}\"`"));
                };
                let e = &program.entries[i];
                state.target = name.clone();
                self.restart(interp, state, host, e.unit, e.node, Vec::new())
            }
            (Some(Exit::Restart), NodeKind::Home) => {
                if let Some(s) = interp.burn(state, fuel) {
                    return s;
                }
                let h = state.home.clone();
                state.target = h.name.clone();
                self.restart(interp, state, host, h.unit, h.node, h.args)
            }
            (Some(Exit::Hangup), _) => Step::End(Effect::Hangup {
                prompts: Vec::new(),
            }),
            (Some(Exit::Return), _) => Step::Edge(Edge::Return(extra)),
            (Some(Exit::Fault), _) => Step::End(interp.fault_at(ui, node.line, exit.fault)),
            // The interpreter's own fuel fault, for the node the back edge left.
            (Some(Exit::Fuel), _) => {
                interp
                    .burn(state, &mut 0)
                    .unwrap_or(Step::End(Effect::Hangup {
                        prompts: Vec::new(),
                    }))
            }
            _ => Step::End(interp.fault_at(ui, node.line, "jit: bad exit".into())),
        }
    }

    /// The interpreter's run loop with native code in place of `exec`.
    fn run(
        &self,
        interp: &Interpreter,
        state: &mut State,
        host: &mut dyn Host,
        mut step: Step,
    ) -> Effect {
        let mut fuel = state.fuel_per_resume;
        loop {
            step = match step {
                Step::At => self.exec(interp, state, host, &mut fuel),
                Step::Edge(e) => interp.follow(state, e, &mut fuel),
                parked => return crate::interp::park(state, parked),
            }
        }
    }
}

impl Engine for CompiledProgram {
    fn resume(&self, state: &mut State, outcome: Outcome, host: &mut dyn Host) -> Effect {
        let program = &self.inner.program;
        let interp = Interpreter::new(program);
        let step = match &state.status {
            Status::Done(e) => return e.clone(),
            _ if outcome == Outcome::Hangup => Step::End(Effect::Ended),
            Status::New => {
                let h = state.home.clone();
                state.target = h.name.clone();
                if h.unit as usize >= program.units.len() {
                    Step::End(Effect::Fault {
                        message: "no such start point".into(),
                        file: String::new(),
                        line: 0,
                    })
                } else {
                    self.restart(&interp, state, host, h.unit, h.node, h.args)
                }
            }
            Status::Waiting => interp.answer(state, outcome, host),
            Status::AfterPrompt(edge) => {
                let e = *edge;
                state.pending = None;
                Step::Edge(e)
            }
        };
        self.run(&interp, state, host, step)
    }
}

#[cfg(test)]
mod tests;
