//! The translator: one unit of IR into two Cranelift functions.
//!
//! - `run(ctx, node) -> exit` starts at `node` of the current frame and runs
//!   pure nodes natively until the frame must leave native code: an effect,
//!   a module call, a restart (`home`, `goto_start`), a return, a hang-up, a
//!   fault without a `failure` edge, or exhausted fuel. The exit code says
//!   which, and at which node (see [`Exit`]).
//! - `init(ctx) -> exit` runs the unit's `var` initializers in a new frame.
//!
//! Each IR node is one Cranelift block; the entry block dispatches on `node`
//! with a jump table. Edges to a node at or before the current one are back
//! edges and burn one unit of fuel first, exactly as the interpreter's
//! `follow` does. Integer faults (overflow, division by zero) are checked
//! inline before the instruction that could trap, so native code never traps.

use super::abi::{self, F_ABS, F_ADD, F_DIV, F_DIV0, F_MUL, F_REM, F_SUB};
use crate::ir::{self, BinOp, Builtin, Edge, Expr, NodeKind, Place, PromptExpr, Ty, UnOp, Value};
use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::{
    AbiParam, Block, BlockArg, FuncRef, InstBuilder, MemFlagsData, StackSlot, StackSlotData,
    StackSlotKind, Value as CValue, types,
};
use cranelift_frontend::{FunctionBuilder, Switch};
use cranelift_jit::JITModule;
use cranelift_module::{FuncId, Module};
use std::collections::HashMap;

const I64: types::Type = types::I64;

/// How native code left: the low 8 bits of the exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Exit {
    /// Returned by `init`: the frame is initialized.
    Done = 0,
    /// The node is an effect node; its prompts then arguments are in `out`.
    Effect = 1,
    /// The node is a module call; its arguments are in `out`.
    Call = 2,
    /// The node is `home` or `goto_start`.
    Restart = 3,
    /// An edge ended the call (`hangup`, an unconnected result).
    Hangup = 4,
    /// An edge returned from the module by exit `extra`.
    Return = 5,
    /// A fault with no `failure` edge; the message is in `Ctx::fault`. For
    /// `init`, the node field is the initializer's index.
    Fault = 6,
    /// A back edge found no fuel left.
    Fuel = 7,
}

impl Exit {
    fn code(self, node: u32, extra: u32) -> i64 {
        (self as i64) | (i64::from(node) << 8) | (i64::from(extra) << 40)
    }

    /// `(exit, node, extra)` from an exit code.
    pub(crate) fn decode(code: i64) -> (Option<Exit>, u32, u32) {
        let kind = match code & 0xff {
            0 => Exit::Done,
            1 => Exit::Effect,
            2 => Exit::Call,
            3 => Exit::Restart,
            4 => Exit::Hangup,
            5 => Exit::Return,
            6 => Exit::Fault,
            7 => Exit::Fuel,
            _ => return (None, 0, 0),
        };
        (
            Some(kind),
            ((code >> 8) & 0xffff_ffff) as u32,
            (code >> 40) as u32,
        )
    }
}

/// String constants and `user.*` names, shared by all units of a program.
#[derive(Default)]
pub(crate) struct Consts {
    pub list: Vec<String>,
    index: HashMap<String, usize>,
}

impl Consts {
    /// The (negative) handle of a constant.
    fn handle(&mut self, s: &str) -> i64 {
        let i = match self.index.get(s) {
            Some(i) => *i,
            None => {
                self.list.push(s.to_string());
                self.index.insert(s.to_string(), self.list.len() - 1);
                self.list.len() - 1
            }
        };
        !(i as i64)
    }
}

/// The imported host functions, declared once per module.
pub(crate) struct HostFns {
    ids: HashMap<&'static str, FuncId>,
}

impl HostFns {
    pub(crate) fn declare(module: &mut JITModule) -> Result<HostFns, super::JitError> {
        let mut ids = HashMap::new();
        for (name, _, params, ret) in abi::host_functions() {
            let mut sig = module.make_signature();
            sig.params
                .extend(std::iter::repeat_n(AbiParam::new(I64), params));
            if ret {
                sig.returns.push(AbiParam::new(I64));
            }
            ids.insert(
                name,
                module.declare_function(name, cranelift_module::Linkage::Import, &sig)?,
            );
        }
        Ok(HostFns { ids })
    }
}

/// The static type of an expression in a verified unit.
pub(crate) fn ty_of(unit: &ir::Unit, e: &Expr) -> Ty {
    match e {
        Expr::Const(v) => v.ty(),
        Expr::Local(i) => unit.locals.get(*i as usize).map_or(Ty::Int, |l| l.ty),
        Expr::Cp(_) | Expr::Sys(_) | Expr::User(_) => Ty::Str,
        Expr::Unary(UnOp::Neg, _) => Ty::Int,
        Expr::Unary(UnOp::Not, _) | Expr::InProfile(_) => Ty::Bool,
        Expr::Binary(op, ..) => match op {
            BinOp::Add | BinOp::Sub | BinOp::Mul | BinOp::Div | BinOp::Rem => Ty::Int,
            BinOp::Concat => Ty::Str,
            _ => Ty::Bool,
        },
        Expr::Call(f, _) => f.signature().1,
    }
}

/// Where a fault inside the code being emitted goes.
#[derive(Clone, Copy)]
enum Site {
    /// Inside node `n` of `run`.
    Node(u32),
    /// Inside initializer `i` of `init`.
    Init(u32),
}

pub(crate) struct Translator<'a, 'b> {
    pub b: FunctionBuilder<'b>,
    pub module: &'a mut JITModule,
    pub host: &'a HostFns,
    pub consts: &'a mut Consts,
    pub unit: &'a ir::Unit,
    refs: HashMap<&'static str, FuncRef>,
    ctx: CValue,
    slots: CValue,
    /// Node blocks (empty when translating `init`).
    blocks: Vec<Block>,
    site: Site,
    /// The fault block of the current site, created on first use.
    fault_block: Option<Block>,
    /// The block recording a fixed fault (its code is the block parameter).
    coded_block: Option<Block>,
    /// `Ctx::vbuf`, loaded at each node.
    vbuf: CValue,
    /// Where the entry block saved the context pointer.
    ctx_slot: StackSlot,
}

impl<'a, 'b> Translator<'a, 'b> {
    /// Starts a function `(ctx[, node]) -> exit`: the entry block loads the
    /// slot pointer; the caller then emits `run` or `init`.
    pub(crate) fn new(
        mut b: FunctionBuilder<'b>,
        module: &'a mut JITModule,
        host: &'a HostFns,
        consts: &'a mut Consts,
        unit: &'a ir::Unit,
    ) -> Self {
        let entry = b.create_block();
        b.append_block_params_for_function_params(entry);
        b.switch_to_block(entry);
        let ctx = b.block_params(entry)[0];
        // The context pointer is kept in a stack slot and reloaded at each
        // node (see `reload`): values live across thousands of blocks and
        // host calls made register allocation dominate compile time.
        let ctx_slot =
            b.create_sized_stack_slot(StackSlotData::new(StackSlotKind::ExplicitSlot, 8, 3));
        b.ins().stack_store(I64, ctx, ctx_slot, 0);
        let slots = b
            .ins()
            .load(I64, MemFlagsData::trusted(), ctx, abi::OFF_SLOTS);
        let vbuf = b
            .ins()
            .load(I64, MemFlagsData::trusted(), ctx, abi::OFF_VBUF);
        Translator {
            ctx_slot,
            b,
            module,
            host,
            consts,
            unit,
            refs: HashMap::new(),
            ctx,
            slots,
            blocks: Vec::new(),
            site: Site::Init(0),
            fault_block: None,
            coded_block: None,
            vbuf,
        }
    }

    /// `run`: dispatch on the start node, then every node's block.
    pub(crate) fn run(mut self) {
        let entry = self.b.current_block().expect("in the entry block");
        let node = self.b.block_params(entry)[1];
        self.blocks = (0..self.unit.nodes.len())
            .map(|_| self.b.create_block())
            .collect();
        let bad = self.b.create_block();
        let mut sw = Switch::new();
        for (i, blk) in self.blocks.iter().enumerate() {
            sw.set_entry(i as u128, *blk);
        }
        sw.emit(&mut self.b, node, bad);
        self.b.switch_to_block(bad);
        // Only a corrupted state starts at a node that does not exist.
        let code = self.b.ins().iconst(I64, Exit::Hangup.code(0, 0));
        self.b.ins().return_(&[code]);
        for n in 0..self.unit.nodes.len() {
            self.node(n as u32);
        }
        self.b.seal_all_blocks();
        let config = self.module.target_config();
        self.b.finalize(config);
    }

    /// `init`: the `var` initializers in order.
    pub(crate) fn init(mut self) {
        for (i, init) in self.unit.init.iter().enumerate() {
            self.site = Site::Init(i as u32);
            self.fault_block = None;
            self.coded_block = None;
            let v = self.expr(&init.value);
            self.assign(&Place::Local(init.slot), v, ty_of(self.unit, &init.value));
            let next = self.b.create_block();
            self.b.ins().jump(next, &[]);
            self.close_site();
            self.b.switch_to_block(next);
        }
        let code = self.b.ins().iconst(I64, Exit::Done.code(0, 0));
        self.b.ins().return_(&[code]);
        self.b.seal_all_blocks();
        let config = self.module.target_config();
        self.b.finalize(config);
    }

    fn call(&mut self, name: &'static str, args: &[CValue]) -> Option<CValue> {
        let f = match self.refs.get(name) {
            Some(f) => *f,
            None => {
                let id = self.host.ids[name];
                let f = self.module.declare_func_in_func(id, self.b.func);
                self.refs.insert(name, f);
                f
            }
        };
        let mut all = Vec::with_capacity(args.len() + 1);
        all.push(self.ctx);
        all.extend_from_slice(args);
        let inst = self.b.ins().call(f, &all);
        self.b.inst_results(inst).first().copied()
    }

    fn iconst(&mut self, v: i64) -> CValue {
        self.b.ins().iconst(I64, v)
    }

    fn ret(&mut self, exit: Exit, node: u32, extra: u32) {
        let code = self.iconst(exit.code(node, extra));
        self.b.ins().return_(&[code]);
    }

    fn node(&mut self, n: u32) {
        let node = &self.unit.nodes[n as usize];
        self.site = Site::Node(n);
        self.fault_block = None;
        self.coded_block = None;
        self.b.switch_to_block(self.blocks[n as usize]);
        self.reload();
        self.visit(n);
        for op in &node.ops {
            let v = self.expr(&op.value);
            self.assign(&op.place, v, ty_of(self.unit, &op.value));
        }
        match &node.kind {
            NodeKind::Goto(e) => self.edge(n, *e),
            NodeKind::Branch { arms, otherwise } => {
                for arm in arms {
                    let c = self.expr(&arm.cond);
                    let taken = self.b.create_block();
                    let next = self.b.create_block();
                    self.b.ins().brif(c, taken, &[], next, &[]);
                    self.b.switch_to_block(taken);
                    self.edge(n, arm.edge);
                    self.b.switch_to_block(next);
                }
                self.edge(n, *otherwise);
            }
            NodeKind::Call { args, .. } => {
                let vals: Vec<CValue> = args.iter().map(|a| self.expr(a)).collect();
                self.store_out(&vals);
                self.ret(Exit::Call, n, 0);
            }
            NodeKind::Effect(en) => {
                let mut vals = Vec::with_capacity(en.prompts.len() + en.args.len());
                for p in &en.prompts {
                    let (PromptExpr::File(e) | PromptExpr::Say(_, e) | PromptExpr::Speak(e)) = p;
                    vals.push(self.expr(e));
                }
                for a in &en.args {
                    vals.push(self.expr(a));
                }
                self.store_out(&vals);
                self.ret(Exit::Effect, n, 0);
            }
            NodeKind::GotoStart { .. } | NodeKind::Home => self.ret(Exit::Restart, n, 0),
        }
        self.close_site();
    }

    /// Emits the current site's fault block, if anything jumped to it: clear
    /// `faulted`, then the node's `failure` edge, or leave with `Fault`.
    fn close_site(&mut self) {
        if let Some(coded) = self.coded_block.take() {
            let fb = self.fault_block();
            self.b.switch_to_block(coded);
            let code = self.b.block_params(coded)[0];
            self.call("vf_fault", &[code]);
            self.b.ins().jump(fb, &[]);
        }
        let Some(fb) = self.fault_block.take() else {
            return;
        };
        self.b.switch_to_block(fb);
        let zero = self.iconst(0);
        self.b
            .ins()
            .store(MemFlagsData::trusted(), zero, self.ctx, abi::OFF_FAULTED);
        match self.site {
            Site::Node(n) => match self.unit.nodes[n as usize].on_fault {
                Some(e) => self.edge(n, e),
                None => self.ret(Exit::Fault, n, 0),
            },
            Site::Init(i) => self.ret(Exit::Fault, i, 0),
        }
    }

    fn fault_block(&mut self) -> Block {
        *self
            .fault_block
            .get_or_insert_with(|| self.b.create_block())
    }

    /// Continues in a new block when `cond` is false; when true, records
    /// fixed fault `code` and goes to the fault block.
    /// Loads the context pointer, slot pointer and visit buffer afresh, so
    /// that no value lives beyond the node that uses it.
    fn reload(&mut self) {
        self.ctx = self.b.ins().stack_load(I64, I64, self.ctx_slot, 0);
        self.slots = self
            .b
            .ins()
            .load(I64, MemFlagsData::trusted(), self.ctx, abi::OFF_SLOTS);
        self.vbuf = self
            .b
            .ins()
            .load(I64, MemFlagsData::trusted(), self.ctx, abi::OFF_VBUF);
    }

    fn fault_if(&mut self, cond: CValue, code: i64) {
        let coded = self.coded_fault_block();
        let ok = self.b.create_block();
        let c = self.iconst(code);
        self.b
            .ins()
            .brif(cond, coded, &[BlockArg::Value(c)], ok, &[]);
        self.b.switch_to_block(ok);
    }

    /// The site's block that records a fixed fault by the code passed to it.
    fn coded_fault_block(&mut self) -> Block {
        if let Some(b) = self.coded_block {
            return b;
        }
        let blk = self.b.create_block();
        self.b.append_block_param(blk, I64);
        self.coded_block = Some(blk);
        blk
    }

    /// Records that node `n` starts: `vbuf[visits % VISIT_BUF] = n`,
    /// `visits += 1`, after handing a full buffer to the host (`vf_flush`).
    fn visit(&mut self, n: u32) {
        let v = self
            .b
            .ins()
            .load(I64, MemFlagsData::trusted(), self.ctx, abi::OFF_VISITS);
        let idx = self.b.ins().band_imm_s(v, abi::VISIT_BUF as i64 - 1);
        let wrapped = self.b.ins().icmp_imm_s(IntCC::Equal, idx, 0);
        let started = self.b.ins().icmp_imm_s(IntCC::NotEqual, v, 0);
        let full = self.b.ins().band(wrapped, started);
        let flush = self.b.create_block();
        let go = self.b.create_block();
        self.b.ins().brif(full, flush, &[], go, &[]);
        self.b.switch_to_block(flush);
        self.call("vf_flush", &[]);
        self.b.ins().jump(go, &[]);
        self.b.switch_to_block(go);
        let off = self.b.ins().ishl_imm_s(idx, 3);
        let at = self.b.ins().iadd(self.vbuf, off);
        let nv = self.iconst(i64::from(n));
        self.b.ins().store(MemFlagsData::trusted(), nv, at, 0);
        let next = self.b.ins().iadd_imm_s(v, 1);
        self.b
            .ins()
            .store(MemFlagsData::trusted(), next, self.ctx, abi::OFF_VISITS);
    }

    /// After a host call that may fault: go to the fault block if it did.
    fn check_host_fault(&mut self) {
        let f = self
            .b
            .ins()
            .load(I64, MemFlagsData::trusted(), self.ctx, abi::OFF_FAULTED);
        let ok = self.b.create_block();
        let fb = self.fault_block();
        self.b.ins().brif(f, fb, &[], ok, &[]);
        self.b.switch_to_block(ok);
    }

    fn store_out(&mut self, vals: &[CValue]) {
        if vals.is_empty() {
            return;
        }
        let out = self
            .b
            .ins()
            .load(I64, MemFlagsData::trusted(), self.ctx, abi::OFF_OUT);
        for (k, v) in vals.iter().enumerate() {
            self.b
                .ins()
                .store(MemFlagsData::trusted(), *v, out, (8 * k) as i32);
        }
    }

    /// Follows an edge from node `from`, burning fuel on a back edge.
    fn edge(&mut self, from: u32, e: Edge) {
        match e {
            Edge::Node(t) => {
                if t <= from {
                    let fuel =
                        self.b
                            .ins()
                            .load(I64, MemFlagsData::trusted(), self.ctx, abi::OFF_FUEL);
                    let empty = self.b.create_block();
                    let go = self.b.create_block();
                    self.b.ins().brif(fuel, go, &[], empty, &[]);
                    self.b.switch_to_block(empty);
                    self.ret(Exit::Fuel, from, 0);
                    self.b.switch_to_block(go);
                    let left = self.b.ins().iadd_imm_s(fuel, -1);
                    self.b
                        .ins()
                        .store(MemFlagsData::trusted(), left, self.ctx, abi::OFF_FUEL);
                }
                self.b.ins().jump(self.blocks[t as usize], &[]);
            }
            Edge::Hangup | Edge::Off => self.ret(Exit::Hangup, from, 0),
            Edge::Return(x) => self.ret(Exit::Return, from, x),
        }
    }

    fn assign(&mut self, place: &Place, v: CValue, ty: Ty) {
        // `$CPn` and `user.*` hold text: other types go through `str()`.
        let text = |t: &mut Self| match ty {
            Ty::Str => v,
            Ty::Int | Ty::Bool => {
                let code = t.iconst(if ty == Ty::Int { 0 } else { 1 });
                t.call("vf_str_of", &[code, v]).expect("returns")
            }
        };
        match place {
            Place::Local(i) => match self.unit.locals.get(*i as usize).map(|l| l.ty) {
                Some(Ty::Str) => {
                    let slot = self.iconst(i64::from(*i));
                    self.call("vf_set_local", &[slot, v]);
                }
                Some(_) => {
                    self.b
                        .ins()
                        .store(MemFlagsData::trusted(), v, self.slots, (8 * *i) as i32);
                }
                None => {}
            },
            Place::Cp(i) => {
                let h = text(self);
                let iv = self.iconst(i64::from(*i));
                self.call("vf_set_cp", &[iv, h]);
            }
            Place::User(name) => {
                let h = text(self);
                let nv = self.consts.handle(name);
                let nv = self.iconst(nv);
                self.call("vf_set_user", &[nv, h]);
            }
        }
    }

    fn bool_of(&mut self, cc: IntCC, a: CValue, b: CValue) -> CValue {
        let c = self.b.ins().icmp(cc, a, b);
        self.b.ins().uextend(I64, c)
    }

    /// An expression's value, in its native form (see the ABI docs).
    fn expr(&mut self, e: &Expr) -> CValue {
        match e {
            Expr::Const(Value::Int(n)) => self.iconst(*n),
            Expr::Const(Value::Bool(b)) => self.iconst(i64::from(*b)),
            Expr::Const(Value::Str(s)) => {
                let h = self.consts.handle(s);
                self.iconst(h)
            }
            Expr::Local(i) => match self.unit.locals.get(*i as usize).map(|l| l.ty) {
                Some(Ty::Str) => self.iconst(i64::from(*i)),
                _ => self
                    .b
                    .ins()
                    .load(I64, MemFlagsData::trusted(), self.slots, (8 * *i) as i32),
            },
            Expr::Cp(i) => {
                let iv = self.iconst(i64::from(*i));
                self.call("vf_cp", &[iv]).expect("returns")
            }
            Expr::Sys(v) => {
                let idx = ir::SysVar::ALL.iter().position(|s| s == v).unwrap_or(0);
                let iv = self.iconst(idx as i64);
                self.call("vf_sys", &[iv]).expect("returns")
            }
            Expr::User(name) => {
                let h = self.consts.handle(name);
                let hv = self.iconst(h);
                self.call("vf_user", &[hv]).expect("returns")
            }
            Expr::InProfile(p) => {
                let pv = self.iconst(i64::from(*p));
                let r = self.call("vf_in_profile", &[pv]).expect("returns");
                self.check_host_fault();
                r
            }
            Expr::Unary(UnOp::Not, x) => {
                let v = self.expr(x);
                self.b.ins().bxor_imm_s(v, 1)
            }
            Expr::Unary(UnOp::Neg, x) => {
                let v = self.expr(x);
                let min = self.b.ins().icmp_imm_s(IntCC::Equal, v, i64::MIN);
                self.fault_if(min, F_SUB);
                self.b.ins().ineg(v)
            }
            Expr::Binary(op @ (BinOp::And | BinOp::Or), a, b) => {
                let av = self.expr(a);
                let rhs = self.b.create_block();
                let done = self.b.create_block();
                self.b.append_block_param(done, I64);
                let short = [BlockArg::Value(av)];
                if *op == BinOp::And {
                    self.b.ins().brif(av, rhs, &[], done, &short);
                } else {
                    self.b.ins().brif(av, done, &short, rhs, &[]);
                }
                self.b.switch_to_block(rhs);
                let bv = self.expr(b);
                self.b.ins().jump(done, &[BlockArg::Value(bv)]);
                self.b.switch_to_block(done);
                self.b.block_params(done)[0]
            }
            Expr::Binary(op, a, b) => {
                let operand = ty_of(self.unit, a);
                let av = self.expr(a);
                let bv = self.expr(b);
                if operand == Ty::Str {
                    let idx = BinOp::ALL.iter().position(|o| o == op).unwrap_or(0);
                    let ov = self.iconst(idx as i64);
                    let r = self.call("vf_str_op", &[ov, av, bv]).expect("returns");
                    self.check_host_fault();
                    return r;
                }
                self.int_op(*op, av, bv)
            }
            Expr::Call(f, args) => self.builtin(*f, args),
        }
    }

    fn int_op(&mut self, op: BinOp, a: CValue, b: CValue) -> CValue {
        match op {
            BinOp::Add | BinOp::Sub | BinOp::Mul => {
                let (r, of, code) = match op {
                    BinOp::Add => {
                        let (r, of) = self.b.ins().sadd_overflow(a, b);
                        (r, of, F_ADD)
                    }
                    BinOp::Sub => {
                        let (r, of) = self.b.ins().ssub_overflow(a, b);
                        (r, of, F_SUB)
                    }
                    _ => {
                        let (r, of) = self.b.ins().smul_overflow(a, b);
                        (r, of, F_MUL)
                    }
                };
                self.fault_if(of, code);
                r
            }
            BinOp::Div | BinOp::Rem => {
                let zero = self.b.ins().icmp_imm_s(IntCC::Equal, b, 0);
                self.fault_if(zero, F_DIV0);
                let min = self.b.ins().icmp_imm_s(IntCC::Equal, a, i64::MIN);
                let neg1 = self.b.ins().icmp_imm_s(IntCC::Equal, b, -1);
                let both = self.b.ins().band(min, neg1);
                self.fault_if(both, if op == BinOp::Div { F_DIV } else { F_REM });
                if op == BinOp::Div {
                    self.b.ins().sdiv(a, b)
                } else {
                    self.b.ins().srem(a, b)
                }
            }
            BinOp::Eq => self.bool_of(IntCC::Equal, a, b),
            BinOp::Ne => self.bool_of(IntCC::NotEqual, a, b),
            BinOp::Lt => self.bool_of(IntCC::SignedLessThan, a, b),
            BinOp::Le => self.bool_of(IntCC::SignedLessThanOrEqual, a, b),
            BinOp::Gt => self.bool_of(IntCC::SignedGreaterThan, a, b),
            BinOp::Ge => self.bool_of(IntCC::SignedGreaterThanOrEqual, a, b),
            // String-only or short-circuit operators never reach here on a verified IR.
            BinOp::Concat
            | BinOp::And
            | BinOp::Or
            | BinOp::StartsWith
            | BinOp::EndsWith
            | BinOp::Contains => self.iconst(0),
        }
    }

    fn builtin(&mut self, f: Builtin, args: &[Expr]) -> CValue {
        let vals: Vec<CValue> = args.iter().map(|a| self.expr(a)).collect();
        let arg = |i: usize| vals.get(i).copied();
        match f {
            Builtin::Str => {
                let v = arg(0).unwrap_or_else(|| self.iconst(0));
                match args.first().map(|a| ty_of(self.unit, a)) {
                    Some(Ty::Str) => v,
                    t => {
                        let code = self.iconst(if t == Some(Ty::Int) { 0 } else { 1 });
                        self.call("vf_str_of", &[code, v]).expect("returns")
                    }
                }
            }
            Builtin::Abs => {
                let v = arg(0).unwrap_or_else(|| self.iconst(0));
                let min = self.b.ins().icmp_imm_s(IntCC::Equal, v, i64::MIN);
                self.fault_if(min, F_ABS);
                let neg = self.b.ins().ineg(v);
                let lt = self.b.ins().icmp_imm_s(IntCC::SignedLessThan, v, 0);
                self.b.ins().select(lt, neg, v)
            }
            Builtin::Min | Builtin::Max => {
                let zero = self.iconst(0);
                let (a, b) = (arg(0).unwrap_or(zero), arg(1).unwrap_or(zero));
                if f == Builtin::Min {
                    self.b.ins().smin(a, b)
                } else {
                    self.b.ins().smax(a, b)
                }
            }
            _ => {
                let idx = Builtin::ALL.iter().position(|b| *b == f).unwrap_or(0);
                let zero = self.iconst(0);
                let fv = self.iconst(idx as i64);
                let (a, b, c) = (
                    arg(0).unwrap_or(zero),
                    arg(1).unwrap_or(zero),
                    arg(2).unwrap_or(zero),
                );
                let r = self.call("vf_builtin", &[fv, a, b, c]).expect("returns");
                self.check_host_fault();
                r
            }
        }
    }
}
