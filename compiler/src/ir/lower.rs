//! Lowering: a checked `Program` (no error diagnostics) to IR.
//!
//! The checker guarantees names resolve and types are right; lowering relies
//! on that and does not repeat the checks. Where it still meets something it
//! cannot lower (a program that was not checked), it returns a `LowerError`
//! instead of panicking.

use super::*;
use crate::actions::{self, ActionSpec, Extra, ParamKind, Unconnected};
use crate::check::{self, Program as Checked};
use crate::source::{FileId, Span, World};
use crate::syntax::ast;
use std::collections::HashMap;

/// Something that should have been caught by the checker.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}: cannot lower: {message}")]
pub struct LowerError {
    pub file: String,
    pub line: u32,
    pub message: String,
}

/// The module `get_mail` runs: `std/mailbox.vflow`'s `collect`.
pub const GET_MAIL_MODULE: (&str, &str) = ("mailbox", "collect");

/// Lowers every flow of the root files and every module of every loaded file.
pub fn lower(world: &dyn World, program: &Checked) -> Result<Program, LowerError> {
    let mut files = Vec::new();
    let mut file_index = HashMap::new();
    for f in &program.files {
        file_index.insert(f.id, files.len() as u32);
        files.push(world.file(f.id).name.clone());
    }
    // Units: every module of every file, then every flow of the root files.
    let mut units: Vec<(FileId, UnitSrc)> = Vec::new();
    let mut module_index: HashMap<(FileId, String), u32> = HashMap::new();
    for f in &program.files {
        for m in &f.ast.modules {
            module_index.insert((f.id, m.name.text.clone()), units.len() as u32);
            units.push((f.id, UnitSrc::Module(m)));
        }
    }
    for f in program.files.iter().filter(|f| f.is_root) {
        for fl in &f.ast.flows {
            units.push((f.id, UnitSrc::Flow(fl)));
        }
    }
    let mut profiles = Vec::new();
    let mut profile_index = HashMap::new();
    for f in &program.files {
        for p in &f.ast.profiles {
            profile_index.insert((f.id, p.name.text.clone()), profiles.len() as u32);
            profiles.push(lower_profile(p));
        }
    }
    // The file that holds `mailbox.collect`, for `get_mail`: preferably the stdlib's.
    let get_mail = program
        .files
        .iter()
        .filter(|f| check::namespace_of(&world.file(f.id).name) == GET_MAIL_MODULE.0)
        .filter_map(|f| {
            module_index
                .get(&(f.id, GET_MAIL_MODULE.1.to_string()))
                .map(|&u| (f, u))
        })
        .min_by_key(|(f, _)| !world.file(f.id).name.starts_with("std/"))
        .map(|(_, u)| u);

    let cx = Cx {
        world,
        program,
        module_index,
        profile_index,
        get_mail,
    };
    let mut out = Program {
        version: IR_VERSION,
        files,
        profiles,
        units: Vec::new(),
        entries: Vec::new(),
    };
    for (i, (file, src)) in units.iter().enumerate() {
        let file_no = file_index[file];
        let unit = cx.unit(*file, file_no, src)?;
        if let UnitSrc::Flow(fl) = src {
            for s in &fl.starts {
                let node = unit
                    .nodes
                    .iter()
                    .position(|n| n.name == s.target.text)
                    .ok_or_else(|| {
                        cx.err(
                            *file,
                            s.target.span,
                            format!("start point targets unknown node `{}`", s.target.text),
                        )
                    })?;
                out.entries.push(Entry {
                    kind: s.kind.text.clone(),
                    pattern: s.pattern.value.clone(),
                    unit: i as u32,
                    node: node as u32,
                });
            }
        }
        out.units.push(unit);
    }
    Ok(out)
}

enum UnitSrc<'a> {
    Flow(&'a ast::Flow),
    Module(&'a ast::Module),
}

struct Cx<'a> {
    world: &'a dyn World,
    program: &'a Checked,
    module_index: HashMap<(FileId, String), u32>,
    profile_index: HashMap<(FileId, String), u32>,
    get_mail: Option<u32>,
}

/// Names visible in one unit while lowering it.
struct Scope<'a> {
    file: FileId,
    locals: HashMap<&'a str, (u32, Ty)>,
    nodes: HashMap<&'a str, u32>,
    exits: Vec<&'a str>,
}

impl Cx<'_> {
    fn line(&self, file: FileId, span: Span) -> u32 {
        self.world.file(file).line_col(span.start).0 as u32
    }

    fn err(&self, file: FileId, span: Span, message: impl Into<String>) -> LowerError {
        LowerError {
            file: self.world.file(file).name.clone(),
            line: self.line(file, span),
            message: message.into(),
        }
    }

    fn unit(&self, file: FileId, file_no: u32, src: &UnitSrc) -> Result<Unit, LowerError> {
        let (kind, name, params, exits, body, span) = match src {
            UnitSrc::Flow(f) => (
                UnitKind::Flow,
                f.name.text.clone(),
                &[][..],
                &[][..],
                &f.body,
                f.span,
            ),
            UnitSrc::Module(m) => {
                let ns = check::namespace_of(&self.world.file(file).name);
                (
                    UnitKind::Module,
                    format!("{ns}.{}", m.name.text),
                    &m.params[..],
                    &m.exits[..],
                    &m.body,
                    m.span,
                )
            }
        };
        let mut scope = Scope {
            file,
            locals: HashMap::new(),
            nodes: HashMap::new(),
            exits: exits.iter().map(|e| e.text.as_str()).collect(),
        };
        let mut locals = Vec::new();
        for p in params {
            let ty = Ty::from_name(&p.ty.text)
                .ok_or_else(|| self.err(file, p.ty.span, "unknown type"))?;
            scope.locals.insert(&p.name.text, (locals.len() as u32, ty));
            locals.push(Local {
                name: p.name.text.clone(),
                ty,
            });
        }
        let mut init = Vec::new();
        for v in &body.vars {
            let ty = Ty::from_name(&v.ty.text)
                .ok_or_else(|| self.err(file, v.ty.span, "unknown type"))?;
            // The initializer sees the locals declared before it.
            let (value, _) = self.expr(&scope, &v.init)?;
            let slot = locals.len() as u32;
            scope.locals.insert(&v.name.text, (slot, ty));
            locals.push(Local {
                name: v.name.text.clone(),
                ty,
            });
            init.push(Init {
                slot,
                value,
                line: self.line(file, v.span),
            });
        }
        for (i, n) in body.nodes.iter().enumerate() {
            scope.nodes.insert(&n.name.text, i as u32);
        }
        let mut nodes: Vec<Node> = Vec::with_capacity(body.nodes.len());
        let mut extra: Vec<Node> = Vec::new();
        for (i, n) in body.nodes.iter().enumerate() {
            let extra_base = (body.nodes.len() + extra.len()) as u32;
            let (node, more) = self.node(&scope, i as u32, n, extra_base)?;
            nodes.push(node);
            extra.extend(more);
        }
        nodes.extend(extra);
        if nodes.is_empty() {
            return Err(self.err(file, span, "a flow or module needs at least one node"));
        }
        let allow_transfer = self
            .program
            .file(file)
            .map(|f| {
                f.ast
                    .allow_transfer
                    .iter()
                    .map(|s| s.value.clone())
                    .collect()
            })
            .unwrap_or_default();
        Ok(Unit {
            kind,
            name,
            file: file_no,
            line: self.line(file, span),
            params: params.len() as u32,
            locals,
            init,
            exits: exits.iter().map(|e| e.text.clone()).collect(),
            allow_transfer,
            nodes,
        })
    }

    fn target(&self, scope: &Scope, t: &ast::Target) -> Result<Edge, LowerError> {
        match t {
            ast::Target::Node(id) => match scope.nodes.get(id.text.as_str()) {
                Some(&i) => Ok(Edge::Node(i)),
                None if id.text == "hangup" => Ok(Edge::Hangup),
                None => Err(self.err(scope.file, id.span, format!("unknown node `{}`", id.text))),
            },
            ast::Target::Return(id) => scope
                .exits
                .iter()
                .position(|e| *e == id.text)
                .map(|i| Edge::Return(i as u32))
                .ok_or_else(|| {
                    self.err(scope.file, id.span, format!("unknown exit `{}`", id.text))
                }),
        }
    }

    /// Lowers one node; `get_mail` with prompts also yields a second node (at `extra_base`).
    fn node(
        &self,
        scope: &Scope,
        index: u32,
        n: &ast::Node,
        extra_base: u32,
    ) -> Result<(Node, Vec<Node>), LowerError> {
        let file = scope.file;
        let spec = actions::action(&n.action.text).ok_or_else(|| {
            self.err(
                file,
                n.action.span,
                format!("unknown action `{}`", n.action.text),
            )
        })?;
        let line = self.line(file, n.span);
        // Gather the statements.
        let mut on: HashMap<&str, Edge> = HashMap::new();
        let mut keys = Vec::new();
        let mut arms = Vec::new();
        let mut otherwise = None;
        let mut prompts = Vec::new();
        let mut params: HashMap<&str, &ast::ParamValue> = HashMap::new();
        let mut ops = Vec::new();
        let mut module = None;
        let mut start = None;
        for s in &n.stmts {
            match s {
                ast::Stmt::On {
                    label: ast::ResultLabel::Name(r),
                    target,
                    ..
                } => {
                    on.insert(&r.text, self.target(scope, target)?);
                }
                ast::Stmt::On {
                    label: ast::ResultLabel::Keys(k),
                    target,
                    ..
                } => {
                    keys.push(KeyEdge {
                        keys: k.value.clone(),
                        edge: self.target(scope, target)?,
                    });
                }
                ast::Stmt::When { cond, target, .. } => {
                    arms.push(Arm {
                        cond: self.expr_of(scope, cond, Ty::Bool)?,
                        edge: self.target(scope, target)?,
                    });
                }
                ast::Stmt::Else { target, .. } => otherwise = Some(self.target(scope, target)?),
                ast::Stmt::Prompt { items, .. } => {
                    for it in items {
                        prompts.push(PromptExpr::File(self.expr_of(scope, it, Ty::Str)?));
                    }
                }
                ast::Stmt::Say { mode, value, .. } => {
                    let m = SayMode::from_name(&mode.text).ok_or_else(|| {
                        self.err(file, mode.span, format!("unknown say mode `{}`", mode.text))
                    })?;
                    prompts.push(PromptExpr::Say(m, self.to_str(self.expr(scope, value)?)));
                }
                ast::Stmt::Speak { text, .. } => {
                    prompts.push(PromptExpr::Speak(self.to_str(self.expr(scope, text)?)));
                }
                ast::Stmt::Module {
                    module: m, args, ..
                } => module = Some((m, args)),
                ast::Stmt::Start { kind, name, .. } => start = Some((kind, name)),
                ast::Stmt::Assign { target, value, .. } => {
                    let (place, ty) = self.place(scope, target)?;
                    ops.push(Assign {
                        place,
                        value: self.expr_of(scope, value, ty)?,
                    });
                }
                ast::Stmt::Param { name, value, .. } => {
                    params.insert(&name.text, value);
                }
            }
        }
        let on_fault = on.get("failure").copied();
        let result = |name: &str| self.result_edge(spec, &on, name, index);
        let kind = match spec.name {
            "set" => NodeKind::Goto(result("next")),
            "test" => {
                let cond = match params.get("if") {
                    Some(ast::ParamValue::Expr(e)) => self.expr_of(scope, e, Ty::Bool)?,
                    _ => return Err(self.err(file, n.span, "`test` needs `if EXPR`")),
                };
                NodeKind::Branch {
                    arms: vec![Arm {
                        cond,
                        edge: result("true"),
                    }],
                    otherwise: result("false"),
                }
            }
            // A switch with no `else` and no matching `when` ends the call, like an unconnected result.
            "switch" => NodeKind::Branch {
                arms,
                otherwise: otherwise.unwrap_or(Edge::Hangup),
            },
            "call" => {
                let (m, args) = module
                    .ok_or_else(|| self.err(file, n.span, "`call` needs `module NAME(…)`"))?;
                let (ns, name) = match m.text.split_once('.') {
                    Some((ns, name)) => (Some(ns), name),
                    None => (None, m.text.as_str()),
                };
                let (mfile, mdecl) = self.program.module(file, ns, name).ok_or_else(|| {
                    self.err(file, m.span, format!("unknown module `{}`", m.text))
                })?;
                let unit = self.module_index[&(mfile, mdecl.name.text.clone())];
                let mut lowered = Vec::new();
                for p in &mdecl.params {
                    let ty = Ty::from_name(&p.ty.text)
                        .ok_or_else(|| self.err(mfile, p.ty.span, "unknown type"))?;
                    let a = args
                        .iter()
                        .find(|a| a.name.text == p.name.text)
                        .ok_or_else(|| {
                            self.err(file, m.span, format!("missing argument `{}`", p.name.text))
                        })?;
                    lowered.push(self.expr_of(scope, &a.value, ty)?);
                }
                let exits = mdecl
                    .exits
                    .iter()
                    .map(|e| on.get(e.text.as_str()).copied().unwrap_or(Edge::Hangup))
                    .collect();
                NodeKind::Call {
                    unit,
                    args: lowered,
                    exits,
                }
            }
            "get_mail" => {
                let unit = self.get_mail.ok_or_else(|| {
                    self.err(
                        file,
                        n.span,
                        "`get_mail` runs `mailbox.collect`, but `std/mailbox.vflow` is not loaded",
                    )
                })?;
                let mailbox = match params.get("mailbox") {
                    Some(ast::ParamValue::Expr(e)) => self.expr_of(scope, e, Ty::Str)?,
                    _ => return Err(self.err(file, n.span, "`get_mail` needs `mailbox`")),
                };
                let module = self.program_unit_exits(unit);
                // `done` (and any exit named like a get_mail result) continues there.
                let exits: Vec<Edge> = module
                    .iter()
                    .map(|e| match e.as_str() {
                        "done" => result("next"),
                        other if spec.result(other).is_some() => result(other),
                        _ => Edge::Hangup,
                    })
                    .collect();
                let call = NodeKind::Call {
                    unit,
                    args: vec![mailbox],
                    exits,
                };
                if prompts.is_empty() {
                    call
                } else {
                    // The prompts play first, in a node of their own that continues to the call.
                    let call_node = Node {
                        name: format!("{}~collect", n.name.text),
                        line,
                        ops: Vec::new(),
                        on_fault,
                        kind: call,
                    };
                    let play = NodeKind::Effect(EffectNode {
                        action: Action::Play,
                        prompts,
                        args: Vec::new(),
                        into: None,
                        results: vec![Edge::Node(extra_base), Edge::Off, Edge::Node(extra_base)],
                        keys: Vec::new(),
                    });
                    let node = Node {
                        name: n.name.text.clone(),
                        line,
                        ops,
                        on_fault,
                        kind: play,
                    };
                    return Ok((node, vec![call_node]));
                }
            }
            "goto_start" => {
                let (kind, name) = start.ok_or_else(|| {
                    self.err(file, n.span, "`goto_start` needs `start KIND \"NAME\"`")
                })?;
                // `start KIND "NAME"`, or `start "KIND NAME"`, or `start "NAME"` (kind `named`).
                let (kind, name) = match kind {
                    Some(k) => (k.text.clone(), name.value.clone()),
                    None => match name.value.split_once(' ') {
                        Some((k, n)) => (k.to_string(), n.trim().to_string()),
                        None => ("named".to_string(), name.value.clone()),
                    },
                };
                NodeKind::GotoStart { kind, name }
            }
            "home" => NodeKind::Home,
            other => {
                let action = Action::from_name(other).ok_or_else(|| {
                    self.err(file, n.action.span, format!("`{other}` is not an effect"))
                })?;
                let mut args = Vec::new();
                let mut into = None;
                for p in spec.params {
                    let given = params.get(p.name).copied();
                    match p.kind {
                        ParamKind::Into(t) => {
                            let e = match given {
                                Some(ast::ParamValue::Expr(e)) => e,
                                _ => {
                                    return Err(self.err(
                                        file,
                                        n.span,
                                        format!("`{other}` needs `{}`", p.name),
                                    ));
                                }
                            };
                            let (place, ty) = self.place(scope, e)?;
                            if ty != Ty::from(t) {
                                return Err(self.err(
                                    file,
                                    e.span,
                                    format!("`{}` needs a {} variable", p.name, Ty::from(t).name()),
                                ));
                            }
                            into = Some(place);
                        }
                        kind => args.push(match given {
                            Some(ast::ParamValue::Duration(ms, _)) => {
                                Expr::Const(Value::Int(*ms as i64))
                            }
                            Some(ast::ParamValue::Expr(e)) => {
                                self.expr_of(scope, e, param_ty(kind))?
                            }
                            None => {
                                Expr::Const(self.default_value(p, &n.name.text, file, n.span)?)
                            }
                        }),
                    }
                }
                let results = spec.results.iter().map(|r| result(r.name)).collect();
                if spec.extra != Extra::Keys {
                    keys.clear();
                }
                NodeKind::Effect(EffectNode {
                    action,
                    prompts,
                    args,
                    into,
                    results,
                    keys,
                })
            }
        };
        Ok((
            Node {
                name: n.name.text.clone(),
                line,
                ops,
                on_fault,
                kind,
            },
            Vec::new(),
        ))
    }

    fn program_unit_exits(&self, unit: u32) -> Vec<String> {
        for ((file, name), &u) in &self.module_index {
            if u == unit
                && let Some((_, m)) = self.program.module(*file, None, name)
            {
                return m.exits.iter().map(|e| e.text.clone()).collect();
            }
        }
        Vec::new()
    }

    /// The edge of a result: connected, or what the action table says an
    /// unconnected one does.
    fn result_edge(
        &self,
        spec: &ActionSpec,
        on: &HashMap<&str, Edge>,
        name: &str,
        index: u32,
    ) -> Edge {
        if let Some(e) = on.get(name) {
            return *e;
        }
        match spec.result(name).map(|r| r.unconnected) {
            Some(Unconnected::Repeat) => Edge::Node(index),
            Some(Unconnected::Disabled) => Edge::Off,
            Some(Unconnected::Next) if name != "next" => self.result_edge(spec, on, "next", index),
            _ => Edge::Hangup,
        }
    }

    /// The default of an absent optional parameter, from the action table.
    fn default_value(
        &self,
        p: &actions::ParamSpec,
        node: &str,
        file: FileId,
        span: Span,
    ) -> Result<Value, LowerError> {
        let d = p.default;
        let bad = || self.err(file, span, format!("missing parameter `{}`", p.name));
        Ok(match p.kind {
            ParamKind::Duration => Value::Int(parse_duration(d).ok_or_else(bad)? as i64),
            ParamKind::PromptFile => Value::Str(d.trim_matches('"').to_string()),
            ParamKind::Expr(actions::Ty::Str) if p.name == "recording" && !d.starts_with('"') => {
                Value::Str(node.to_string())
            }
            ParamKind::Expr(actions::Ty::Str) => {
                if !(d.len() >= 2 && d.starts_with('"') && d.ends_with('"')) {
                    return Err(bad());
                }
                Value::Str(d[1..d.len() - 1].to_string())
            }
            ParamKind::Expr(actions::Ty::Int) => Value::Int(d.parse().map_err(|_| bad())?),
            ParamKind::Expr(actions::Ty::Bool) => Value::Bool(d.parse().map_err(|_| bad())?),
            ParamKind::Into(_) => return Err(bad()),
        })
    }

    fn place(&self, scope: &Scope, e: &ast::Expr) -> Result<(Place, Ty), LowerError> {
        match &e.kind {
            ast::ExprKind::SysVar(name) => match cp_index(name) {
                Some(i) => Ok((Place::Cp(i), Ty::Str)),
                None => Err(self.err(scope.file, e.span, format!("`${name}` is read-only"))),
            },
            ast::ExprKind::Name(Some(ns), name) if ns.text == "user" => {
                Ok((Place::User(name.text.clone()), Ty::Str))
            }
            ast::ExprKind::Name(None, name) => match scope.locals.get(name.text.as_str()) {
                Some(&(slot, ty)) => Ok((Place::Local(slot), ty)),
                None => Err(self.err(
                    scope.file,
                    e.span,
                    format!("unknown variable `{}`", name.text),
                )),
            },
            _ => Err(self.err(scope.file, e.span, "not a variable")),
        }
    }

    fn to_str(&self, (e, ty): (Expr, Ty)) -> Expr {
        if ty == Ty::Str {
            e
        } else {
            Expr::Call(Builtin::Str, vec![e])
        }
    }

    fn expr_of(&self, scope: &Scope, e: &ast::Expr, want: Ty) -> Result<Expr, LowerError> {
        let (x, ty) = self.expr(scope, e)?;
        if ty != want {
            return Err(self.err(
                scope.file,
                e.span,
                format!("expected {}, found {}", want.name(), ty.name()),
            ));
        }
        Ok(x)
    }

    fn expr(&self, scope: &Scope, e: &ast::Expr) -> Result<(Expr, Ty), LowerError> {
        use ast::ExprKind as K;
        let err = |m: String| self.err(scope.file, e.span, m);
        Ok(match &e.kind {
            K::Str(s) => (Expr::Const(Value::Str(s.clone())), Ty::Str),
            K::Int(i) => (Expr::Const(Value::Int(*i)), Ty::Int),
            K::Bool(b) => (Expr::Const(Value::Bool(*b)), Ty::Bool),
            K::SysVar(name) => match (cp_index(name), SysVar::from_name(name)) {
                (Some(i), _) => (Expr::Cp(i), Ty::Str),
                (None, Some(v)) => (Expr::Sys(v), Ty::Str),
                _ => return Err(err(format!("unknown system variable `${name}`"))),
            },
            K::Name(Some(ns), name) if ns.text == "user" => {
                (Expr::User(name.text.clone()), Ty::Str)
            }
            K::Name(None, name) => match scope.locals.get(name.text.as_str()) {
                Some(&(slot, ty)) => (Expr::Local(slot), ty),
                None => return Err(err(format!("unknown variable `{}`", name.text))),
            },
            K::Name(Some(ns), name) => {
                return Err(err(format!("`{}.{}` is not a value", ns.text, name.text)));
            }
            K::Call(f, args) if f.text == "in_profile" => {
                let [arg] = &args[..] else {
                    return Err(err("`in_profile` takes one profile".into()));
                };
                let (ns, name) = match &arg.kind {
                    K::Name(ns, name) => (ns.as_ref().map(|n| n.text.as_str()), name.text.as_str()),
                    _ => return Err(err("`in_profile` takes a profile name".into())),
                };
                let (pfile, p) = self
                    .program
                    .profile(scope.file, ns, name)
                    .ok_or_else(|| err(format!("unknown time profile `{name}`")))?;
                (
                    Expr::InProfile(self.profile_index[&(pfile, p.name.text.clone())]),
                    Ty::Bool,
                )
            }
            K::Call(f, args) => {
                let b = Builtin::from_name(&f.text)
                    .ok_or_else(|| err(format!("unknown function `{}`", f.text)))?;
                let (params, ret) = b.signature();
                if params.len() != args.len() {
                    return Err(err(format!(
                        "`{}` takes {} arguments",
                        f.text,
                        params.len()
                    )));
                }
                let mut xs = Vec::new();
                for (p, a) in params.iter().zip(args) {
                    xs.push(match p {
                        Some(t) => self.expr_of(scope, a, *t)?,
                        None => self.expr(scope, a)?.0,
                    });
                }
                (Expr::Call(b, xs), ret)
            }
            K::Unary(op, x) => match op {
                ast::UnOp::Neg => (
                    Expr::Unary(UnOp::Neg, Box::new(self.expr_of(scope, x, Ty::Int)?)),
                    Ty::Int,
                ),
                ast::UnOp::Not => (
                    Expr::Unary(UnOp::Not, Box::new(self.expr_of(scope, x, Ty::Bool)?)),
                    Ty::Bool,
                ),
            },
            K::Binary(op, l, r) => {
                let (a, ta) = self.expr(scope, l)?;
                let (b, tb) = self.expr(scope, r)?;
                use ast::BinOp as A;
                let (iop, want, ret) = match op {
                    A::Add if ta == Ty::Str => (BinOp::Concat, Ty::Str, Ty::Str),
                    A::Add => (BinOp::Add, Ty::Int, Ty::Int),
                    A::Sub => (BinOp::Sub, Ty::Int, Ty::Int),
                    A::Mul => (BinOp::Mul, Ty::Int, Ty::Int),
                    A::Div => (BinOp::Div, Ty::Int, Ty::Int),
                    A::Rem => (BinOp::Rem, Ty::Int, Ty::Int),
                    A::Eq => (BinOp::Eq, ta, Ty::Bool),
                    A::Ne => (BinOp::Ne, ta, Ty::Bool),
                    A::Lt => (BinOp::Lt, ta, Ty::Bool),
                    A::Le => (BinOp::Le, ta, Ty::Bool),
                    A::Gt => (BinOp::Gt, ta, Ty::Bool),
                    A::Ge => (BinOp::Ge, ta, Ty::Bool),
                    A::And => (BinOp::And, Ty::Bool, Ty::Bool),
                    A::Or => (BinOp::Or, Ty::Bool, Ty::Bool),
                    A::StartsWith => (BinOp::StartsWith, Ty::Str, Ty::Bool),
                    A::EndsWith => (BinOp::EndsWith, Ty::Str, Ty::Bool),
                    A::Contains => (BinOp::Contains, Ty::Str, Ty::Bool),
                };
                if ta != want || tb != want {
                    return Err(err(format!(
                        "`{}` cannot take {} and {}",
                        op.symbol(),
                        ta.name(),
                        tb.name()
                    )));
                }
                if matches!(iop, BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge) && want == Ty::Bool
                {
                    return Err(err(format!("`{}` cannot compare bools", op.symbol())));
                }
                (Expr::Binary(iop, Box::new(a), Box::new(b)), ret)
            }
            K::Error => return Err(err("an expression that did not parse".into())),
        })
    }
}

/// `CP7` → 7 for `$CP0` … `$CP15`.
pub fn cp_index(name: &str) -> Option<u8> {
    let n = name.strip_prefix("CP")?;
    if n.is_empty() || (n.len() > 1 && n.starts_with('0')) {
        return None;
    }
    let i: u8 = n.parse().ok()?;
    (usize::from(i) < actions::CALL_VARS).then_some(i)
}

/// `5s`, `500ms`, `2m`, `1h` → milliseconds.
pub fn parse_duration(s: &str) -> Option<u64> {
    let end = s.find(|c: char| !c.is_ascii_digit())?;
    let (num, unit) = s.split_at(end);
    let n: u64 = num.parse().ok()?;
    let f = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        _ => return None,
    };
    n.checked_mul(f)
}

fn lower_profile(p: &ast::TimeProfile) -> Profile {
    let date = |d: &ast::DateLit| Date {
        year: d.year,
        month: d.month,
        day: d.day,
    };
    Profile {
        name: p.name.text.clone(),
        rules: p
            .rules
            .iter()
            .map(|r| ProfileRule {
                except: r.except,
                days: r
                    .days
                    .iter()
                    .map(|d| match d {
                        ast::DaySpec::Weekdays { from, to, .. } => Days::Weekdays {
                            from: *from,
                            to: *to,
                        },
                        ast::DaySpec::Dates { from, to, .. } => Days::Dates {
                            from: date(from),
                            to: date(to),
                        },
                    })
                    .collect(),
                times: r
                    .times
                    .iter()
                    .map(|t| {
                        (
                            (t.from.hour * 60 + t.from.minute) as u16,
                            (t.to.hour * 60 + t.to.minute) as u16,
                        )
                    })
                    .collect(),
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::MemoryWorld;

    fn lower_src(src: &str) -> Program {
        let mut w = MemoryWorld::with_stdlib();
        for name in ["a.wav", "b.wav"] {
            w.add_prompt(&format!("t/prompts/{name}"));
        }
        let id = w.add("t/f.vflow", src);
        let c = crate::check::check(&mut w, &[id]);
        assert!(!c.has_errors(), "{:#?}", c.diagnostics);
        lower(&w, &c.program).unwrap()
    }

    fn effect(p: &Program, node: usize) -> &EffectNode {
        match &p.units[p.unit_by_name("f").unwrap() as usize].nodes[node].kind {
            NodeKind::Effect(e) => e,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn unconnected_results_follow_the_action_table() {
        let p = lower_src(
            r#"allow_transfer "0"
flow f {
  start named "f" -> p
  play p { prompt "a.wav"  on next -> m }
  menu m { prompt "b.wav"  on "1" -> bye }
  transfer t { to "0"  on busy -> bye }
  hangup bye
}"#,
        );
        // play: next connected; key unconnected → off (no barge-in); failure → like next.
        assert_eq!(
            effect(&p, 0).results,
            [Edge::Node(1), Edge::Off, Edge::Node(1)]
        );
        // menu: timeout and invalid repeat the menu; exhausted ends the call.
        assert_eq!(
            effect(&p, 1).results,
            [Edge::Node(1), Edge::Node(1), Edge::Hangup]
        );
        assert_eq!(
            effect(&p, 1).keys,
            [KeyEdge {
                keys: "1".into(),
                edge: Edge::Node(3)
            }]
        );
        // transfer: next (success) ends the call; unconnected failures end it too.
        assert_eq!(
            effect(&p, 2).results,
            [Edge::Hangup, Edge::Node(3), Edge::Hangup, Edge::Hangup]
        );
        assert_eq!(p.units[0].nodes[0].on_fault, None);
    }

    #[test]
    fn defaults_are_filled_in_and_durations_are_milliseconds() {
        let p = lower_src(
            r#"flow f {
  start named "f" -> m
  menu m { timeout 500ms  on "1" -> r }
  record r { on next -> bye  on failure -> bye }
  hangup bye
}"#,
        );
        let m = effect(&p, 0);
        let ints = |e: &EffectNode| {
            e.args
                .iter()
                .map(|a| match a {
                    Expr::Const(v) => v.to_text(),
                    other => format!("{other:?}"),
                })
                .collect::<Vec<_>>()
        };
        // timeout, retries, interdigit, invalid_prompt
        assert_eq!(ints(m), ["500", "2", "2000", ""]);
        // recording defaults to the node's name; max_length, silence, beep.
        assert_eq!(ints(effect(&p, 1)), ["r", "60000", "3000", "true"]);
        assert_eq!(p.units[0].nodes[1].on_fault, Some(Edge::Node(2)));
    }

    #[test]
    fn plus_is_typed_and_locals_are_slots() {
        let p = lower_src(
            r#"module m(a: int) -> done {
  var s: string = "x" + str(a + 1)
  play p { speak s  on next -> return done }
}
flow f { start named "f" -> c  call c { module m(a = 2)  on done -> bye }  hangup bye }"#,
        );
        let m = &p.units[p.unit_by_name("f.m").unwrap() as usize];
        assert_eq!(m.params, 1);
        assert_eq!(
            m.locals
                .iter()
                .map(|l| (l.name.as_str(), l.ty))
                .collect::<Vec<_>>(),
            [("a", Ty::Int), ("s", Ty::Str)]
        );
        let Expr::Binary(BinOp::Concat, _, rhs) = &m.init[0].value else {
            panic!("{:?}", m.init[0])
        };
        assert!(
            matches!(&**rhs, Expr::Call(Builtin::Str, args) if matches!(&args[0], Expr::Binary(BinOp::Add, ..)))
        );
        assert_eq!(m.init[0].line, 2);
        assert_eq!(
            m.nodes[0].kind,
            NodeKind::Effect(EffectNode {
                action: Action::Play,
                prompts: vec![PromptExpr::Speak(Expr::Local(1))],
                args: vec![],
                into: None,
                results: vec![Edge::Return(0), Edge::Off, Edge::Return(0)],
                keys: vec![],
            })
        );
    }
}
