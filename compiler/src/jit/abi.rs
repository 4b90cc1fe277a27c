//! The host ABI: the per-resume context native code runs against, and the
//! `extern "C"` functions it calls for everything that is not integer or
//! boolean arithmetic (strings, `$CPn`, `user.*`, system variables, time
//! profiles, node bookkeeping).
//!
//! # Values
//! Every value native code handles is an `i64`: an int is itself, a bool is
//! `0`/`1`, a string is a *handle*. A handle is never a pointer:
//! - `h >= 0` indexes [`Ctx::strs`]. Indices `0..mark` are the *homes* of the
//!   current frame's string locals (local `i` lives at handle `i`, so reading a
//!   string local costs nothing); indices `mark..` are temporaries, dropped
//!   when a later node makes its first temporary.
//! - `h < 0` names the compiled program's string constant `!h` (read-only,
//!   owned by the `CompiledProgram`).
//!
//! A handle that is out of range reads as `""` rather than faulting, so no
//! handle can make a host function index out of bounds.
//!
//! # Pointers and ownership
//! Native code sees exactly three pointers, all owned by the Rust side of
//! `CompiledProgram::resume` and valid only for the duration of one native
//! call: the context itself (`*mut Ctx`, a `&mut` borrow of a stack value
//! handed to native code and lent back to each host function for the length
//! of that call), [`Ctx::slots`] (the current frame's `i64` slots, a
//! `Vec<i64>` the trampoline owns, indexed only by verified local numbers) and
//! [`Ctx::out`] (a `Vec<i64>` sized at compile time for the largest list of
//! call or effect arguments). Native code reads and writes only the header
//! fields `slots`, `fuel`, `faulted`, `out`, `visits` and `vbuf` (and the
//! visit buffer, `VISIT_BUF` i64s the trampoline owns); everything else is
//! Rust's.
//! No host function returns a pointer, and none keeps one past its return.
//!
//! Host functions never unwind: they do not panic on any input (every
//! index is checked), because a panic cannot cross an `extern "C"` frame.

use crate::exec::{Host, State};
use crate::interp::eval;
use crate::ir::{BinOp, Builtin, Program, SysVar, Value};

/// The per-resume context. `repr(C)` because native code reads and writes the
/// first six fields at the offsets below.
#[repr(C)]
pub(crate) struct Ctx<'a> {
    /// The current frame's slots (ints, bools 0/1, string homes).
    pub slots: *mut i64,
    /// Back edges, calls and restarts left in this resume (as the interpreter counts).
    pub fuel: u64,
    /// Nonzero after a host function faulted; the message is in `fault`.
    /// Native code clears it when it takes the fault path.
    pub faulted: i64,
    /// Where native code leaves the values of call and effect arguments.
    pub out: *mut i64,
    /// Nodes started in this native call; also the temporaries' epoch.
    pub visits: i64,
    /// The last `VISIT_BUF` nodes started (`vbuf[visits % VISIT_BUF]`),
    /// handed to `Host::node_entered` when full and when native code returns.
    pub vbuf: *mut i64,
    /// Visits already handed to the host.
    pub flushed: i64,
    /// The `visits` value when the current temporaries were made.
    pub temp_epoch: i64,
    pub state: &'a mut State,
    pub host: &'a mut dyn Host,
    pub program: &'a Program,
    pub consts: &'a [String],
    /// The unit of the current frame.
    pub unit: u32,
    /// Homes are `strs[..mark]`; temporaries follow.
    pub mark: usize,
    pub strs: Vec<String>,
    pub fault: String,
}

pub(crate) const OFF_SLOTS: i32 = std::mem::offset_of!(Ctx<'static>, slots) as i32;
pub(crate) const OFF_FUEL: i32 = std::mem::offset_of!(Ctx<'static>, fuel) as i32;
pub(crate) const OFF_FAULTED: i32 = std::mem::offset_of!(Ctx<'static>, faulted) as i32;
pub(crate) const OFF_OUT: i32 = std::mem::offset_of!(Ctx<'static>, out) as i32;
pub(crate) const OFF_VISITS: i32 = std::mem::offset_of!(Ctx<'static>, visits) as i32;
pub(crate) const OFF_VBUF: i32 = std::mem::offset_of!(Ctx<'static>, vbuf) as i32;
/// Entries of `Ctx::vbuf` (a power of two).
pub(crate) const VISIT_BUF: usize = 256;

impl Ctx<'_> {
    /// The text behind a handle.
    pub fn text(&self, h: i64) -> &str {
        if h >= 0 {
            self.strs.get(h as usize).map_or("", String::as_str)
        } else {
            self.consts.get(!h as usize).map_or("", String::as_str)
        }
    }

    /// The text behind a handle, as an owned string: a temporary is moved
    /// out (each temporary is the value of exactly one expression and is
    /// consumed once), anything else is copied.
    fn take(&mut self, h: i64) -> String {
        if h >= self.mark as i64
            && let Some(s) = self.strs.get_mut(h as usize)
        {
            return std::mem::take(s);
        }
        self.text(h).to_string()
    }

    /// A new temporary holding `s`. The first temporary of a node drops
    /// those of the nodes before: each is consumed within its node.
    fn temp(&mut self, s: String) -> i64 {
        if self.temp_epoch != self.visits {
            self.strs.truncate(self.mark);
            self.temp_epoch = self.visits;
        }
        self.strs.push(s);
        (self.strs.len() - 1) as i64
    }

    /// Hands the first `n` entries of the visit buffer to the host.
    pub fn flush_visits(&mut self, n: usize) {
        let buf = self.vbuf;
        for i in 0..n.min(VISIT_BUF) {
            // SAFETY: `vbuf` points at `VISIT_BUF` i64s owned by the trampoline for this call.
            let node = unsafe { *buf.add(i) };
            self.host.node_entered(self.unit, node as u32);
        }
        self.flushed += n as i64;
    }

    fn fail(&mut self, message: String) -> i64 {
        self.fault = message;
        self.faulted = 1;
        0
    }

    /// The native form of a value (strings become temporaries).
    fn native(&mut self, v: Value) -> i64 {
        match v {
            Value::Int(n) => n,
            Value::Bool(b) => i64::from(b),
            Value::Str(s) => self.temp(s),
        }
    }
}

/// Reborrows the context for one host call.
///
/// # Safety
/// `ctx` is the pointer `CompiledProgram` passed to the native function that
/// is calling us; it points at a live `Ctx` that nothing else borrows while
/// native code runs.
unsafe fn cx<'c>(ctx: *mut Ctx<'c>) -> &'c mut Ctx<'c> {
    // SAFETY: see the function's contract.
    unsafe { &mut *ctx }
}

/// Faults whose message is fixed, by code (`vf_fault`).
pub(crate) const FAULTS: &[&str] = &[
    "division by zero",
    "integer overflow in `+`",
    "integer overflow in `-`",
    "integer overflow in `*`",
    "integer overflow in `/`",
    "integer overflow in `%`",
    "integer overflow in `abs`",
];
pub(crate) const F_DIV0: i64 = 0;
pub(crate) const F_ADD: i64 = 1;
pub(crate) const F_SUB: i64 = 2;
pub(crate) const F_MUL: i64 = 3;
pub(crate) const F_DIV: i64 = 4;
pub(crate) const F_REM: i64 = 5;
pub(crate) const F_ABS: i64 = 6;

/// The visit buffer is full: hand it to the host.
pub(crate) extern "C" fn vf_flush(ctx: *mut Ctx) {
    // SAFETY: called only by native code with its context (module docs).
    let cx = unsafe { cx(ctx) };
    cx.flush_visits(VISIT_BUF);
}

/// Records the message of a fixed fault (see [`FAULTS`]).
pub(crate) extern "C" fn vf_fault(ctx: *mut Ctx, code: i64) {
    // SAFETY: as for vf_flush.
    let cx = unsafe { cx(ctx) };
    cx.fault = FAULTS
        .get(code as usize)
        .copied()
        .unwrap_or("fault")
        .to_string();
}

/// `$CPn` as a temporary.
pub(crate) extern "C" fn vf_cp(ctx: *mut Ctx, i: i64) -> i64 {
    // SAFETY: as for vf_flush.
    let cx = unsafe { cx(ctx) };
    let s = cx.state.cp.get(i as usize).cloned().unwrap_or_default();
    cx.temp(s)
}

/// A system variable (`SysVar::ALL[i]`) as a temporary.
pub(crate) extern "C" fn vf_sys(ctx: *mut Ctx, i: i64) -> i64 {
    // SAFETY: as for vf_flush.
    let cx = unsafe { cx(ctx) };
    let Some(v) = SysVar::ALL.get(i as usize) else {
        return cx.temp(String::new());
    };
    let s = eval::sys(cx.state, &*cx.host, *v);
    cx.temp(s)
}

/// `user.NAME` (the name is constant `name`) as a temporary.
pub(crate) extern "C" fn vf_user(ctx: *mut Ctx, name: i64) -> i64 {
    // SAFETY: as for vf_flush.
    let cx = unsafe { cx(ctx) };
    let s = cx.host.user_var(cx.text(name));
    cx.temp(s)
}

/// `local = h` for a string local: copies into the local's home.
pub(crate) extern "C" fn vf_set_local(ctx: *mut Ctx, slot: i64, h: i64) {
    // SAFETY: as for vf_flush.
    let cx = unsafe { cx(ctx) };
    if slot == h || slot < 0 || slot as usize >= cx.mark {
        return;
    }
    let v = cx.take(h);
    cx.strs[slot as usize] = v;
}

/// `$CPn = h`.
pub(crate) extern "C" fn vf_set_cp(ctx: *mut Ctx, i: i64, h: i64) {
    // SAFETY: as for vf_flush.
    let cx = unsafe { cx(ctx) };
    let v = cx.take(h);
    if let Some(slot) = cx.state.cp.get_mut(i as usize) {
        *slot = v;
    }
}

/// `user.NAME = h` (the name is constant `name`).
pub(crate) extern "C" fn vf_set_user(ctx: *mut Ctx, name: i64, h: i64) {
    // SAFETY: as for vf_flush.
    let cx = unsafe { cx(ctx) };
    let (n, v) = (cx.text(name).to_string(), cx.take(h));
    cx.host.set_user_var(&n, v);
}

/// A binary operator on two strings (`BinOp::ALL[op]`): a handle for
/// `concat`, else `0`/`1`. The interpreter's own `binary` decides, so the
/// two engines cannot disagree on string semantics.
pub(crate) extern "C" fn vf_str_op(ctx: *mut Ctx, op: i64, a: i64, b: i64) -> i64 {
    // SAFETY: as for vf_flush.
    let cx = unsafe { cx(ctx) };
    let Some(op) = BinOp::ALL.get(op as usize) else {
        return cx.fail("bad operator".into());
    };
    let (x, y) = (Value::Str(cx.take(a)), Value::Str(cx.take(b)));
    match eval::binary(*op, x, y) {
        Ok(v) => cx.native(v),
        Err(m) => cx.fail(m),
    }
}

/// `str(v)` of an int (`ty == 0`) or a bool (`ty == 1`).
pub(crate) extern "C" fn vf_str_of(ctx: *mut Ctx, ty: i64, v: i64) -> i64 {
    // SAFETY: as for vf_flush.
    let cx = unsafe { cx(ctx) };
    let s = if ty == 0 {
        v.to_string()
    } else {
        (v != 0).to_string()
    };
    cx.temp(s)
}

/// A built-in function with string arguments (`Builtin::ALL[f]`); unused
/// arguments are 0. Evaluated by the interpreter's `builtin`; a fault (such
/// as `int("x")`) sets `faulted`.
pub(crate) extern "C" fn vf_builtin(ctx: *mut Ctx, f: i64, a: i64, b: i64, c: i64) -> i64 {
    // SAFETY: as for vf_flush.
    let cx = unsafe { cx(ctx) };
    let Some(f) = Builtin::ALL.get(f as usize).copied() else {
        return cx.fail("bad builtin".into());
    };
    let args = match f {
        Builtin::Substr => vec![Value::Str(cx.take(a)), Value::Int(b), Value::Int(c)],
        Builtin::Replace => vec![
            Value::Str(cx.take(a)),
            Value::Str(cx.take(b)),
            Value::Str(cx.take(c)),
        ],
        Builtin::Len
        | Builtin::Int
        | Builtin::Trim
        | Builtin::IsDigits
        | Builtin::Lower
        | Builtin::Upper => {
            vec![Value::Str(cx.take(a))]
        }
        // Compiled natively; never called for these.
        Builtin::Str | Builtin::Abs | Builtin::Min | Builtin::Max => {
            return cx.fail("bad builtin".into());
        }
    };
    match eval::builtin(f, args) {
        Ok(v) => cx.native(v),
        Err(m) => cx.fail(m),
    }
}

/// `in_profile(p)` at the host's clock.
pub(crate) extern "C" fn vf_in_profile(ctx: *mut Ctx, p: i64) -> i64 {
    // SAFETY: as for vf_flush.
    let cx = unsafe { cx(ctx) };
    match cx.program.profiles.get(p as usize) {
        Some(pr) => i64::from(crate::interp::in_profile(pr, &cx.host.now())),
        None => cx.fail(format!("profile {p} out of range")),
    }
}

/// The host functions by symbol name, with their parameter count and
/// whether they return a value: what the translator declares as imports.
pub(crate) fn host_functions() -> Vec<(&'static str, *const u8, usize, bool)> {
    vec![
        ("vf_flush", vf_flush as *const u8, 1, false),
        ("vf_fault", vf_fault as *const u8, 2, false),
        ("vf_cp", vf_cp as *const u8, 2, true),
        ("vf_sys", vf_sys as *const u8, 2, true),
        ("vf_user", vf_user as *const u8, 2, true),
        ("vf_set_local", vf_set_local as *const u8, 3, false),
        ("vf_set_cp", vf_set_cp as *const u8, 3, false),
        ("vf_set_user", vf_set_user as *const u8, 3, false),
        ("vf_str_op", vf_str_op as *const u8, 4, true),
        ("vf_str_of", vf_str_of as *const u8, 3, true),
        ("vf_builtin", vf_builtin as *const u8, 5, true),
        ("vf_in_profile", vf_in_profile as *const u8, 2, true),
    ]
}
