//! The IR verifier: runs on every IR before an engine executes it (from the
//! lowering, the text form or a bundle). After it passes, every index is in
//! bounds and every expression is well typed, so engines need no checks of
//! their own beyond the runtime faults the language defines.

use super::*;
use crate::actions::Unconnected;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid IR: {at}: {message}")]
pub struct VerifyError {
    /// Where: `unit NAME node NAME`, `entry 3`, …
    pub at: String,
    pub message: String,
}

/// The deepest module call nesting engines allow; deeper calls fault.
pub const MAX_CALL_DEPTH: usize = 64;

pub fn verify(p: &Program) -> Result<(), VerifyError> {
    let fail = |at: String, m: String| Err(VerifyError { at, message: m });
    if p.version != IR_VERSION {
        return fail(
            "program".into(),
            format!(
                "IR version {} is not supported (this vflow reads {IR_VERSION})",
                p.version
            ),
        );
    }
    for (i, pr) in p.profiles.iter().enumerate() {
        let at = format!("profile {i} `{}`", pr.name);
        for r in &pr.rules {
            if r.days.is_empty() {
                return fail(at, "a rule without days".into());
            }
            for d in &r.days {
                match d {
                    Days::Weekdays { from, to } if *from > 6 || *to > 6 => {
                        return fail(at, "weekday out of range".into());
                    }
                    Days::Dates { from, to }
                        if !valid_date(*from) || !valid_date(*to) || from > to =>
                    {
                        return fail(at, "invalid date range".into());
                    }
                    _ => {}
                }
            }
            if r.times.iter().any(|&(a, b)| a > 1440 || b > 1440) {
                return fail(at, "time past 24:00".into());
            }
        }
    }
    for (ui, u) in p.units.iter().enumerate() {
        let at = |n: &str| format!("unit {ui} `{}` {n}", u.name);
        if u.file as usize >= p.files.len() {
            return fail(at(""), "file index out of range".into());
        }
        if u.nodes.is_empty() {
            return fail(at(""), "no nodes".into());
        }
        if u.params as usize > u.locals.len() {
            return fail(at(""), "more parameters than locals".into());
        }
        if u.kind == UnitKind::Flow && (u.params != 0 || !u.exits.is_empty()) {
            return fail(at(""), "a flow has no parameters or exits".into());
        }
        let cx = Cx { p, u };
        for init in &u.init {
            let Some(local) = u.locals.get(init.slot as usize) else {
                return fail(at("init"), "slot out of range".into());
            };
            if init.slot < u.params {
                return fail(at("init"), "initializes a parameter".into());
            }
            cx.expect(&init.value, local.ty).map_err(|m| VerifyError {
                at: at("init"),
                message: m,
            })?;
        }
        for (ni, n) in u.nodes.iter().enumerate() {
            cx.node(ni, n).map_err(|m| VerifyError {
                at: at(&format!("node `{}`", n.name)),
                message: m,
            })?;
        }
    }
    for (i, e) in p.entries.iter().enumerate() {
        let at = format!("entry {i} ({} \"{}\")", e.kind, e.pattern);
        match p.units.get(e.unit as usize) {
            Some(u) if u.kind == UnitKind::Flow && (e.node as usize) < u.nodes.len() => {}
            Some(_) => return fail(at, "must name a node of a flow".into()),
            None => return fail(at, "unit out of range".into()),
        }
    }
    Ok(())
}

fn valid_date(d: Date) -> bool {
    jiff::civil::Date::new(d.year, d.month, d.day).is_ok()
}

struct Cx<'a> {
    p: &'a Program,
    u: &'a Unit,
}

impl Cx<'_> {
    fn node(&self, index: usize, n: &Node) -> Result<(), String> {
        for op in &n.ops {
            let ty = self.place(&op.place)?;
            self.expect(&op.value, ty)?;
        }
        if let Some(e) = n.on_fault {
            self.edge(e)?;
        }
        match &n.kind {
            NodeKind::Goto(e) => self.edge(*e),
            NodeKind::Branch { arms, otherwise } => {
                for a in arms {
                    self.expect(&a.cond, Ty::Bool)?;
                    self.edge(a.edge)?;
                }
                self.edge(*otherwise)
            }
            NodeKind::Call { unit, args, exits } => {
                let Some(callee) = self.p.units.get(*unit as usize) else {
                    return Err("call of an unknown unit".into());
                };
                if callee.kind != UnitKind::Module {
                    return Err(format!("call of flow `{}`", callee.name));
                }
                if args.len() != callee.params as usize {
                    return Err(format!(
                        "`{}` takes {} arguments, given {}",
                        callee.name,
                        callee.params,
                        args.len()
                    ));
                }
                for (a, l) in args.iter().zip(&callee.locals) {
                    self.expect(a, l.ty)?;
                }
                if exits.len() != callee.exits.len() {
                    return Err(format!(
                        "`{}` has {} exits, the call maps {}",
                        callee.name,
                        callee.exits.len(),
                        exits.len()
                    ));
                }
                exits.iter().try_for_each(|e| self.edge(*e))
            }
            NodeKind::Effect(e) => self.effect(index, e),
            NodeKind::GotoStart { .. } | NodeKind::Home => Ok(()),
        }
    }

    fn effect(&self, _index: usize, e: &EffectNode) -> Result<(), String> {
        let spec = e.action.spec();
        for pr in &e.prompts {
            match pr {
                PromptExpr::File(x) | PromptExpr::Say(_, x) | PromptExpr::Speak(x) => {
                    self.expect(x, Ty::Str)?
                }
            }
        }
        if !e.prompts.is_empty() && !spec.prompts {
            return Err(format!("`{}` takes no prompts", spec.name));
        }
        let specs: Vec<_> = e.action.arg_specs().collect();
        if specs.len() != e.args.len() {
            return Err(format!(
                "`{}` has {} parameters, given {}",
                spec.name,
                specs.len(),
                e.args.len()
            ));
        }
        for (s, a) in specs.iter().zip(&e.args) {
            self.expect(a, param_ty(s.kind))
                .map_err(|m| format!("parameter `{}`: {m}", s.name))?;
        }
        match (e.action.into_ty(), &e.into) {
            (Some(t), Some(pl)) => {
                if self.place(pl)? != t {
                    return Err(format!("`into` needs a {} variable", t.name()));
                }
            }
            (None, None) => {}
            (Some(_), None) => return Err("missing `into`".into()),
            (None, Some(_)) => return Err(format!("`{}` takes no `into`", spec.name)),
        }
        if e.results.len() != spec.results.len() {
            return Err(format!(
                "`{}` has {} results, given {}",
                spec.name,
                spec.results.len(),
                e.results.len()
            ));
        }
        for (r, edge) in spec.results.iter().zip(&e.results) {
            if *edge == Edge::Off && r.unconnected != Unconnected::Disabled {
                return Err(format!("result `{}` cannot be off", r.name));
            }
            self.edge(*edge)?;
        }
        if !e.keys.is_empty() && e.action != Action::Menu {
            return Err("only a menu has keys".into());
        }
        for k in &e.keys {
            if k.keys.is_empty()
                || !k
                    .keys
                    .chars()
                    .all(|c| c.is_ascii_digit() || matches!(c, '*' | '#' | '?'))
            {
                return Err(format!("bad menu key sequence {:?}", k.keys));
            }
            if k.edge == Edge::Off {
                return Err("a menu key cannot be off".into());
            }
            self.edge(k.edge)?;
        }
        Ok(())
    }

    fn edge(&self, e: Edge) -> Result<(), String> {
        match e {
            Edge::Node(i) if (i as usize) < self.u.nodes.len() => Ok(()),
            Edge::Node(i) => Err(format!("edge to node {i} of {}", self.u.nodes.len())),
            Edge::Return(i) if (i as usize) < self.u.exits.len() => Ok(()),
            Edge::Return(i) => Err(format!("return by exit {i} of {}", self.u.exits.len())),
            Edge::Hangup | Edge::Off => Ok(()),
        }
    }

    fn place(&self, p: &Place) -> Result<Ty, String> {
        match p {
            Place::Local(i) => self
                .u
                .locals
                .get(*i as usize)
                .map(|l| l.ty)
                .ok_or_else(|| format!("local {i} out of range")),
            Place::Cp(i) if usize::from(*i) < crate::actions::CALL_VARS => Ok(Ty::Str),
            Place::Cp(i) => Err(format!("$CP{i} out of range")),
            Place::User(n) if !n.is_empty() => Ok(Ty::Str),
            Place::User(_) => Err("empty user variable name".into()),
        }
    }

    fn expect(&self, e: &Expr, want: Ty) -> Result<(), String> {
        let t = self.ty(e)?;
        if t != want {
            Err(format!("expected {}, found {}", want.name(), t.name()))
        } else {
            Ok(())
        }
    }

    fn ty(&self, e: &Expr) -> Result<Ty, String> {
        Ok(match e {
            Expr::Const(v) => v.ty(),
            Expr::Local(i) => self.place(&Place::Local(*i))?,
            Expr::Cp(i) => self.place(&Place::Cp(*i))?,
            Expr::Sys(_) | Expr::User(_) => Ty::Str,
            Expr::Unary(UnOp::Neg, x) => {
                self.expect(x, Ty::Int)?;
                Ty::Int
            }
            Expr::Unary(UnOp::Not, x) => {
                self.expect(x, Ty::Bool)?;
                Ty::Bool
            }
            Expr::Binary(op, a, b) => {
                let ta = self.ty(a)?;
                let tb = self.ty(b)?;
                let (want, ret) = match op {
                    BinOp::Add | BinOp::Sub | BinOp::Mul | BinOp::Div | BinOp::Rem => {
                        (Some(Ty::Int), Ty::Int)
                    }
                    BinOp::Concat => (Some(Ty::Str), Ty::Str),
                    BinOp::Eq | BinOp::Ne => (None, Ty::Bool),
                    BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge => {
                        if ta == Ty::Bool {
                            return Err("cannot order bools".into());
                        }
                        (None, Ty::Bool)
                    }
                    BinOp::And | BinOp::Or => (Some(Ty::Bool), Ty::Bool),
                    BinOp::StartsWith | BinOp::EndsWith | BinOp::Contains => {
                        (Some(Ty::Str), Ty::Bool)
                    }
                };
                if ta != tb || want.is_some_and(|w| w != ta) {
                    return Err(format!(
                        "`{}` cannot take {} and {}",
                        op.name(),
                        ta.name(),
                        tb.name()
                    ));
                }
                ret
            }
            Expr::Call(b, args) => {
                let (params, ret) = b.signature();
                if params.len() != args.len() {
                    return Err(format!("`{}` takes {} arguments", b.name(), params.len()));
                }
                for (p, a) in params.iter().zip(args) {
                    match p {
                        Some(t) => self.expect(a, *t)?,
                        None => {
                            self.ty(a)?;
                        }
                    }
                }
                ret
            }
            Expr::InProfile(i) if (*i as usize) < self.p.profiles.len() => Ty::Bool,
            Expr::InProfile(i) => return Err(format!("profile {i} out of range")),
        })
    }
}
