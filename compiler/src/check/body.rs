//! Checks of flows and modules: names, actions, parameters, results, types,
//! prompts, transfer targets; and the program-wide start point checks.

use super::graph::{self, NodeInfo};
use super::{CheckedFile, Program, transfer};
use crate::actions::{self, ActionSpec, Extra, ParamKind, Ty, Unconnected};
use crate::diag::{Code, Diagnostic};
use crate::source::{FileId, Span, World};
use crate::syntax::ast::*;
use std::collections::{BTreeMap, HashMap};

/// Names a result target may use that are not nodes.
const RESERVED_NODE_NAMES: &[&str] = &["hangup", "return"];

pub(super) fn check_file(
    world: &dyn World,
    program: &Program,
    file: &CheckedFile,
    out: &mut Vec<Diagnostic>,
) {
    let ast = &file.ast;
    duplicates(
        file.id,
        ast.modules.iter().map(|m| &m.name),
        Code::DuplicateModule,
        "module",
        out,
    );
    duplicates(
        file.id,
        ast.profiles.iter().map(|p| &p.name),
        Code::DuplicateProfile,
        "time profile",
        out,
    );
    let patterns: Vec<String> = ast.allow_transfer.iter().map(|s| s.value.clone()).collect();
    for flow in &ast.flows {
        let mut cx = BodyCx::new(world, program, file.id, &patterns, None, &flow.starts);
        for s in &flow.starts {
            if !actions::START_KINDS.contains(&s.kind.text.as_str()) {
                out.push(
                    Diagnostic::new(
                        Code::UnknownStartKind,
                        file.id,
                        s.kind.span,
                        format!("unknown start point kind `{}`", s.kind.text),
                    )
                    .label("not a start point kind")
                    .help(format!("use one of {}", list(actions::START_KINDS))),
                );
            }
            if s.pattern.value.is_empty() {
                out.push(
                    Diagnostic::new(
                        Code::BadParamValue,
                        file.id,
                        s.pattern.span,
                        "empty start point name",
                    )
                    .label("empty")
                    .help("write a mailbox or name, or `\"*\"` for any"),
                );
            }
        }
        let entries: Vec<&Ident> = flow.starts.iter().map(|s| &s.target).collect();
        cx.check_body(&flow.body, &entries, &flow.name, out);
        if flow.starts.is_empty() {
            out.push(
                Diagnostic::new(
                    Code::NoStartPoint,
                    file.id,
                    flow.name.span,
                    format!("flow `{}` has no start point", flow.name.text),
                )
                .label("no call can enter this flow")
                .help(
                    "add `start KIND \"NAME\" -> NODE`, e.g. `start named \"main\" -> first_node`",
                ),
            );
        }
    }
    for module in &ast.modules {
        let mut params = BTreeMap::new();
        for p in &module.params {
            let Some(ty) = known_type(file.id, &p.ty, out) else {
                continue;
            };
            if params
                .insert(p.name.text.clone(), (ty, p.name.span))
                .is_some()
            {
                out.push(
                    Diagnostic::new(
                        Code::DuplicateVariable,
                        file.id,
                        p.name.span,
                        format!("parameter `{}` is declared twice", p.name.text),
                    )
                    .label("second declaration")
                    .help("give each parameter its own name"),
                );
            }
        }
        duplicates(
            file.id,
            module.exits.iter(),
            Code::DuplicateVariable,
            "exit",
            out,
        );
        let exits: Vec<String> = module.exits.iter().map(|e| e.text.clone()).collect();
        let mut cx = BodyCx::new(
            world,
            program,
            file.id,
            &patterns,
            Some((params, exits)),
            &[],
        );
        let entry: Vec<&Ident> = module
            .body
            .nodes
            .first()
            .map(|n| &n.name)
            .into_iter()
            .collect();
        cx.check_body(&module.body, &entry, &module.name, out);
        for exit in &module.exits {
            if !cx.returned.contains_key(&exit.text) {
                out.push(
                    Diagnostic::new(
                        Code::UnusedExit,
                        file.id,
                        exit.span,
                        format!("exit `{}` is never returned", exit.text),
                    )
                    .label("no `return` uses this exit")
                    .help(format!(
                        "return it from a node with `on RESULT -> return {}`, or remove it",
                        exit.text
                    )),
                );
            }
        }
    }
}

/// Program-wide: flow names and start points must be unique among root files;
/// `goto_start` must name a start point that exists.
pub(super) fn check_start_points(program: &Program, out: &mut Vec<Diagnostic>) {
    let mut flows: HashMap<&str, (FileId, Span)> = HashMap::new();
    let mut starts: HashMap<(&str, &str), (FileId, Span)> = HashMap::new();
    for (file, flow) in program.root_flows() {
        if let Some(&(f0, s0)) = flows.get(flow.name.text.as_str()) {
            out.push(
                Diagnostic::new(
                    Code::DuplicateFlow,
                    file,
                    flow.name.span,
                    format!("flow `{}` is defined twice", flow.name.text),
                )
                .label("second definition")
                .help("rename one of the flows")
                .related(f0, s0, "first defined here"),
            );
        } else {
            flows.insert(&flow.name.text, (file, flow.name.span));
        }
        for s in &flow.starts {
            let key = (s.kind.text.as_str(), s.pattern.value.as_str());
            if let Some(&(f0, s0)) = starts.get(&key) {
                out.push(
                    Diagnostic::new(
                        Code::DuplicateStartPoint,
                        file,
                        s.span,
                        format!("start point `{} \"{}\"` is claimed twice", key.0, key.1),
                    )
                    .label("second claim")
                    .help(
                        "each start point belongs to one flow; remove one or give it another name",
                    )
                    .related(f0, s0, "first claimed here"),
                );
            } else {
                starts.insert(key, (file, s.span));
            }
        }
    }
    for f in program.files.iter().filter(|f| f.is_root) {
        let bodies = f
            .ast
            .flows
            .iter()
            .map(|fl| &fl.body)
            .chain(f.ast.modules.iter().map(|m| &m.body));
        for body in bodies {
            for node in body.nodes.iter().filter(|n| n.action.text == "goto_start") {
                for st in &node.stmts {
                    let Stmt::Start { kind, name, span } = st else {
                        continue;
                    };
                    let (kind, name_text) = split_start(kind.as_ref(), &name.value);
                    let found = starts.keys().any(|(k, p)| {
                        *k == kind && crate::ir::pattern_score(p, name_text).is_some()
                    });
                    if !found && actions::START_KINDS.contains(&kind) {
                        out.push(
                            Diagnostic::new(Code::UnknownNode, f.id, *span, format!("no flow has start point `{kind} \"{name_text}\"`"))
                                .label("unknown start point")
                                .help("name a start point that a flow declares with `start KIND \"NAME\" -> NODE`"),
                        );
                    }
                }
            }
        }
    }
}

/// `start KIND "NAME"` or `start "KIND NAME"`: (kind, name).
pub fn split_start<'a>(kind: Option<&'a Ident>, name: &'a str) -> (&'a str, &'a str) {
    match kind {
        Some(k) => (k.text.as_str(), name),
        None => name
            .split_once(' ')
            .map(|(k, n)| (k, n.trim()))
            .unwrap_or(("named", name)),
    }
}

fn known_type(file: FileId, ty: &Ident, out: &mut Vec<Diagnostic>) -> Option<Ty> {
    let t = Ty::from_name(&ty.text);
    if t.is_none() {
        out.push(
            Diagnostic::new(
                Code::UnknownType,
                file,
                ty.span,
                format!("unknown type `{}`", ty.text),
            )
            .label("not a type")
            .help("the types are `string`, `int` and `bool`"),
        );
    }
    t
}

fn duplicates<'a>(
    file: FileId,
    names: impl Iterator<Item = &'a Ident>,
    code: Code,
    what: &str,
    out: &mut Vec<Diagnostic>,
) {
    let mut seen: HashMap<&str, Span> = HashMap::new();
    for n in names {
        if let Some(&first) = seen.get(n.text.as_str()) {
            out.push(
                Diagnostic::new(
                    code,
                    file,
                    n.span,
                    format!("{what} `{}` is defined twice", n.text),
                )
                .label("second definition")
                .help(format!(
                    "rename one of them; {what} names are unique in a file"
                ))
                .related(file, first, "first defined here"),
            );
        } else {
            seen.insert(&n.text, n.span);
        }
    }
}

/// `a`, `b` or `c`
pub(super) fn list(items: &[&str]) -> String {
    join_quoted(items, "or")
}

fn join_quoted(items: &[&str], conj: &str) -> String {
    let quoted: Vec<String> = items.iter().map(|i| format!("`{i}`")).collect();
    match quoted.as_slice() {
        [] => "nothing".into(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} {conj} {last}", init.join(", ")),
    }
}

/// The closest of `candidates` to `name`, if it is close enough to be a typo.
pub(super) fn suggest<'a>(
    name: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let limit = (name.chars().count() / 3).max(1);
    candidates
        .into_iter()
        .map(|c| (edit_distance(name, c), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, c)| (*d, *c))
        .map(|(_, c)| c)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            cur.push(
                (prev[j] + usize::from(ca != *cb))
                    .min(prev[j + 1] + 1)
                    .min(cur[j] + 1),
            );
        }
        prev = cur;
    }
    prev[b.len()]
}

fn did_you_mean(s: Option<&str>) -> String {
    s.map_or(String::new(), |s| format!("did you mean `{s}`? "))
}

type ModuleSig = (BTreeMap<String, (Ty, Span)>, Vec<String>);

struct BodyCx<'a> {
    world: &'a dyn World,
    program: &'a Program,
    file: FileId,
    allow: &'a [String],
    /// Parameters and exits when checking a module.
    module: Option<ModuleSig>,
    locals: BTreeMap<String, Ty>,
    /// Exits used by `return`, for V0506.
    returned: BTreeMap<String, Span>,
    /// The flow's start points (empty in a module), for `goto_start` edges.
    starts: &'a [StartPoint],
    /// The module the current `call` node runs, for messages.
    called_module: Option<String>,
}

impl<'a> BodyCx<'a> {
    fn new(
        world: &'a dyn World,
        program: &'a Program,
        file: FileId,
        allow: &'a [String],
        module: Option<ModuleSig>,
        starts: &'a [StartPoint],
    ) -> Self {
        BodyCx {
            world,
            program,
            file,
            allow,
            module,
            locals: BTreeMap::new(),
            returned: BTreeMap::new(),
            starts,
            called_module: None,
        }
    }

    fn diag(&self, code: Code, span: Span, msg: impl Into<String>) -> Diagnostic {
        Diagnostic::new(code, self.file, span, msg)
    }

    fn check_body(
        &mut self,
        body: &Body,
        entries: &[&Ident],
        owner: &Ident,
        out: &mut Vec<Diagnostic>,
    ) {
        if body.nodes.is_empty() {
            out.push(
                self.diag(
                    Code::EmptyBody,
                    owner.span,
                    format!("`{}` has no nodes", owner.text),
                )
                .label("nothing to run")
                .help("add at least one node, e.g. `hangup bye`"),
            );
        }
        for v in &body.vars {
            let clash = self
                .module
                .as_ref()
                .is_some_and(|(p, _)| p.contains_key(&v.name.text));
            if self.locals.contains_key(&v.name.text) || clash {
                out.push(
                    self.diag(
                        Code::DuplicateVariable,
                        v.name.span,
                        format!("variable `{}` is declared twice", v.name.text),
                    )
                    .label("second declaration")
                    .help("give each variable and parameter its own name"),
                );
                continue;
            }
            let declared = known_type(self.file, &v.ty, out);
            let got = self.expr(&v.init, out);
            if let (Some(d), Some(g)) = (declared, got) {
                if d != g {
                    out.push(self.mismatch(v.init.span, d, g));
                }
            }
            if let Some(d) = declared {
                self.locals.insert(v.name.text.clone(), d);
            }
        }

        let mut index: HashMap<&str, usize> = HashMap::new();
        // Nodes already reported as misnamed are not reported again as unreachable.
        let mut misnamed = Vec::new();
        for (i, n) in body.nodes.iter().enumerate() {
            if RESERVED_NODE_NAMES.contains(&n.name.text.as_str()) {
                misnamed.push(i);
                out.push(
                    self.diag(Code::ReservedName, n.name.span, format!("`{}` cannot name a node", n.name.text))
                        .label("reserved")
                        .help("`hangup` and `return` are result targets; choose another name such as `bye`"),
                );
                continue;
            }
            if let Some(&first) = index.get(n.name.text.as_str()) {
                misnamed.push(i);
                out.push(
                    self.diag(
                        Code::DuplicateNode,
                        n.name.span,
                        format!("node `{}` is defined twice", n.name.text),
                    )
                    .label("second definition")
                    .help("node names are unique within a flow or module; rename one")
                    .related(
                        self.file,
                        body.nodes[first].name.span,
                        "first defined here",
                    ),
                );
            } else {
                index.insert(&n.name.text, i);
            }
        }

        let mut infos = Vec::with_capacity(body.nodes.len());
        for node in &body.nodes {
            infos.push(self.node(node, &index, out));
        }
        let entry_ids: Vec<usize> = entries
            .iter()
            .filter_map(|e| match index.get(e.text.as_str()) {
                Some(&i) => Some(i),
                None => {
                    let s = suggest(&e.text, index.keys().copied());
                    out.push(
                        self.diag(
                            Code::UnknownNode,
                            e.span,
                            format!("unknown node `{}`", e.text),
                        )
                        .label("no node has this name")
                        .help(format!(
                            "{}start points and results must name a node of this flow",
                            did_you_mean(s)
                        )),
                    );
                    None
                }
            })
            .collect();
        graph::check(
            self.file,
            body,
            &infos,
            &entry_ids,
            &misnamed,
            self.program,
            out,
        );
    }

    /// Checks one node and returns what the graph checks need.
    fn node(
        &mut self,
        node: &Node,
        index: &HashMap<&str, usize>,
        out: &mut Vec<Diagnostic>,
    ) -> NodeInfo {
        let mut info = NodeInfo::default();
        self.called_module = None;
        let Some(spec) = actions::action(&node.action.text) else {
            let s = suggest(&node.action.text, actions::ACTIONS.iter().map(|a| a.name));
            out.push(
                self.diag(
                    Code::UnknownAction,
                    node.action.span,
                    format!("unknown action `{}`", node.action.text),
                )
                .label("not an action")
                .help(format!(
                    "{}see docs/LANGUAGE.md for the actions",
                    did_you_mean(s)
                )),
            );
            // Still follow its edges so one typo does not make the rest unreachable.
            info.waits = true;
            for st in &node.stmts {
                if let Stmt::On { target, .. } = st {
                    if let Some(t) = self.target(target, index, out) {
                        info.edges.extend(t);
                    }
                }
            }
            return info;
        };
        info.waits = spec.waits;
        info.terminal = spec.terminal;

        let mut params_seen: HashMap<&str, Span> = HashMap::new();
        let mut results_seen: HashMap<String, Span> = HashMap::new();
        let mut has_else = false;
        let mut has_keys = false;
        let mut assigns = 0usize;
        let mut module_exits: Option<Vec<String>> = None;
        let mut module_seen = false;
        let mut start_seen = false;
        let mut can_fault = false;

        // The call's module first: its exits are the node's results.
        for st in &node.stmts {
            if let Stmt::Module { module, args, span } = st {
                if spec.extra != Extra::Module {
                    out.push(self.not_here(spec, "module", *span));
                    continue;
                }
                if module_seen {
                    out.push(
                        self.diag(Code::DuplicateParam, *span, "`module` is given twice")
                            .label("second module")
                            .help("a `call` node runs one module"),
                    );
                    continue;
                }
                module_seen = true;
                self.called_module = Some(module.text.clone());
                module_exits = self.module_call(module, args, out);
                if let Some(m) = self.resolve_module(module) {
                    info.calls = Some(m);
                }
            }
        }

        for st in &node.stmts {
            match st {
                Stmt::On {
                    label,
                    target,
                    span,
                } => {
                    let key = match label {
                        ResultLabel::Name(n) => format!("`{}`", n.text),
                        ResultLabel::Keys(k) => format!("\"{}\"", k.value),
                    };
                    let ok = match label {
                        ResultLabel::Keys(k) => {
                            if spec.extra != Extra::Keys {
                                out.push(
                                    self.diag(
                                        Code::UnknownResult,
                                        k.span,
                                        format!("`{}` has no key results", spec.name),
                                    )
                                    .label("keys are results of `menu` only")
                                    .help(format!(
                                        "the results of `{}` are {}",
                                        spec.name,
                                        self.result_names(spec, &module_exits)
                                    )),
                                );
                                false
                            } else {
                                has_keys = true;
                                self.menu_key(k, out)
                            }
                        }
                        ResultLabel::Name(n) => {
                            let known = spec.result(&n.text).is_some()
                                || module_exits.as_ref().is_some_and(|e| e.contains(&n.text));
                            if !known {
                                // A call whose module did not resolve was reported already.
                                if spec.extra == Extra::Module && module_exits.is_none() {
                                    true
                                } else {
                                    out.push(self.unknown_result(spec, n, &module_exits));
                                    false
                                }
                            } else {
                                true
                            }
                        }
                    };
                    if ok {
                        if let Some(&first) = results_seen.get(&key) {
                            out.push(
                                self.diag(
                                    Code::DuplicateResult,
                                    label.span(),
                                    format!("result {key} is connected twice"),
                                )
                                .label("second connection")
                                .help("a result goes to one place; remove one of the `on` lines")
                                .related(
                                    self.file,
                                    first,
                                    "first connected here",
                                ),
                            );
                        } else {
                            results_seen.insert(key, *span);
                        }
                    }
                    if let Some(t) = self.target(target, index, out) {
                        info.edges.extend(t);
                    }
                }
                Stmt::When { cond, target, span } => {
                    if spec.extra != Extra::Branches {
                        out.push(self.not_here(spec, "when", *span));
                        continue;
                    }
                    can_fault |= may_fault(cond);
                    self.expect(cond, Ty::Bool, out);
                    if let Some(t) = self.target(target, index, out) {
                        info.edges.extend(t);
                    }
                }
                Stmt::Else { target, span } => {
                    if spec.extra != Extra::Branches {
                        out.push(self.not_here(spec, "else", *span));
                        continue;
                    }
                    if has_else {
                        out.push(
                            self.diag(Code::DuplicateResult, *span, "`else` is given twice")
                                .label("second else")
                                .help("a switch has one `else`"),
                        );
                    }
                    has_else = true;
                    if let Some(t) = self.target(target, index, out) {
                        info.edges.extend(t);
                    }
                }
                Stmt::Prompt { items, span } => {
                    if !spec.prompts {
                        out.push(self.not_here(spec, "prompt", *span));
                        continue;
                    }
                    for item in items {
                        can_fault |= may_fault(item);
                        self.prompt_file(item, out);
                    }
                }
                Stmt::Say { mode, value, span } => {
                    if !spec.prompts {
                        out.push(self.not_here(spec, "say", *span));
                        continue;
                    }
                    can_fault |= may_fault(value);
                    let got = self.expr(value, out);
                    let allowed: &[Ty] = match mode.text.as_str() {
                        "digits" => &[Ty::Str, Ty::Int],
                        "number" => &[Ty::Int],
                        "time" | "date" => &[Ty::Str],
                        _ => {
                            out.push(
                                self.diag(
                                    Code::BadParamValue,
                                    mode.span,
                                    format!("cannot say `{}`", mode.text),
                                )
                                .label("unknown way to say a value")
                                .help("use `say digits`, `say number`, `say time` or `say date`"),
                            );
                            continue;
                        }
                    };
                    if let Some(g) = got {
                        if !allowed.contains(&g) {
                            out.push(self.mismatch(value.span, allowed[0], g));
                        }
                    }
                }
                Stmt::Speak { text, span } => {
                    if !spec.prompts {
                        out.push(self.not_here(spec, "speak", *span));
                        continue;
                    }
                    can_fault |= may_fault(text);
                    self.expect(text, Ty::Str, out);
                }
                Stmt::Module { .. } => {}
                Stmt::Start { kind, name, span } => {
                    if spec.extra != Extra::Start {
                        out.push(self.not_here(spec, "start", *span));
                        continue;
                    }
                    if start_seen {
                        out.push(
                            self.diag(Code::DuplicateParam, *span, "`start` is given twice")
                                .label("second start")
                                .help("`goto_start` goes to one start point"),
                        );
                    }
                    start_seen = true;
                    let (k, _) = split_start(kind.as_ref(), &name.value);
                    if !actions::START_KINDS.contains(&k) {
                        let at = kind.as_ref().map_or(name.span, |k| k.span);
                        out.push(
                            self.diag(
                                Code::UnknownStartKind,
                                at,
                                format!("unknown start point kind `{k}`"),
                            )
                            .label("not a start point kind")
                            .help(format!("use one of {}", list(actions::START_KINDS))),
                        );
                    } else {
                        // Within the same flow, goto_start continues at that start point's node.
                        let n = split_start(kind.as_ref(), &name.value).1;
                        // The same matching as the runtime's (exact, then literal, `x`, `*`).
                        let best = self
                            .starts
                            .iter()
                            .filter(|s| s.kind.text == k)
                            .filter_map(|s| {
                                crate::ir::pattern_score(&s.pattern.value, n).map(|sc| (sc, s))
                            })
                            .max_by_key(|(sc, _)| *sc)
                            .map(|(_, s)| s);
                        if let Some(&i) = best.and_then(|s| index.get(s.target.text.as_str())) {
                            info.edges.push(graph::Edge::Node(i));
                        }
                    }
                }
                Stmt::Assign {
                    target,
                    value,
                    span,
                } => {
                    if spec.extra != Extra::Assign {
                        out.push(
                            self.diag(
                                Code::UnknownParam,
                                *span,
                                format!("`{}` does not assign variables", spec.name),
                            )
                            .label("assignment outside `set`")
                            .help("assign in a `set` node: `set NAME { x = 1  on next -> NODE }`"),
                        );
                        continue;
                    }
                    assigns += 1;
                    can_fault |= may_fault(value);
                    let got = self.expr(value, out);
                    if let Some(want) = self.lvalue(target, out) {
                        if let Some(g) = got {
                            if g != want {
                                out.push(self.mismatch(value.span, want, g));
                            }
                        }
                    }
                }
                Stmt::Param { name, value, span } => {
                    let Some(ps) = spec.param(&name.text) else {
                        let names: Vec<&str> = spec.params.iter().map(|p| p.name).collect();
                        let s = suggest(&name.text, names.iter().copied());
                        let help = if names.is_empty() {
                            format!("`{}` takes no parameters", spec.name)
                        } else {
                            format!(
                                "{}the parameters of `{}` are {}",
                                did_you_mean(s),
                                spec.name,
                                list(&names)
                            )
                        };
                        out.push(
                            self.diag(
                                Code::UnknownParam,
                                name.span,
                                format!("unknown parameter `{}` for `{}`", name.text, spec.name),
                            )
                            .label("unknown parameter")
                            .help(help),
                        );
                        continue;
                    };
                    if let Some(&first) = params_seen.get(ps.name) {
                        out.push(
                            self.diag(
                                Code::DuplicateParam,
                                name.span,
                                format!("parameter `{}` is given twice", ps.name),
                            )
                            .label("second value")
                            .help("give each parameter once")
                            .related(
                                self.file,
                                first,
                                "first given here",
                            ),
                        );
                        continue;
                    }
                    params_seen.insert(ps.name, *span);
                    if let ParamValue::Expr(e) = value {
                        can_fault |= may_fault(e);
                    }
                    self.param_value(spec, ps, value, out);
                }
            }
        }

        // Required parameters and statement forms.
        for ps in spec.params.iter().filter(|p| p.required) {
            if !params_seen.contains_key(ps.name) {
                out.push(
                    self.diag(
                        Code::MissingParam,
                        node.name.span,
                        format!("`{} {}` needs `{}`", spec.name, node.name.text, ps.name),
                    )
                    .label(format!("missing `{}`", ps.name))
                    .help(format!("add `{} VALUE` ({})", ps.name, ps.doc)),
                );
            }
        }
        let missing_extra = match spec.extra {
            Extra::Module if !module_seen => Some((
                "`module NAME(…)`",
                "say which module to run: `module NAME(arg = value)`",
            )),
            Extra::Start if !start_seen => Some((
                "`start KIND \"NAME\"`",
                "say where to go: `start auto_attendant \"Reception\"`",
            )),
            Extra::Assign if assigns == 0 => {
                Some(("an assignment", "assign at least one variable: `x = x + 1`"))
            }
            Extra::Keys if !has_keys => {
                Some(("a key", "connect at least one key: `on \"1\" -> NODE`"))
            }
            _ => None,
        };
        if let Some((what, help)) = missing_extra {
            out.push(
                self.diag(
                    Code::MissingParam,
                    node.name.span,
                    format!("`{} {}` needs {what}", spec.name, node.name.text),
                )
                .label(format!("missing {what}"))
                .help(help),
            );
        }

        // Unconnected results.
        let mut unconnected: Vec<String> = spec
            .results
            .iter()
            .filter(|r| !results_seen.contains_key(&format!("`{}`", r.name)))
            .filter(|r| match r.unconnected {
                Unconnected::Warn => r.name != "failure" || spec.waits || can_fault,
                _ => false,
            })
            .map(|r| r.name.to_string())
            .collect();
        if let Some(exits) = &module_exits {
            unconnected.extend(
                exits
                    .iter()
                    .filter(|e| !results_seen.contains_key(&format!("`{e}`")))
                    .cloned(),
            );
        }
        if spec.extra == Extra::Branches && !has_else {
            unconnected.push("else".into());
        }
        if !unconnected.is_empty() {
            let names: Vec<&str> = unconnected.iter().map(String::as_str).collect();
            let (msg, help) = if names == ["else"] {
                (
                    format!(
                        "`switch {}` has no `else`: the call ends when no condition holds",
                        node.name.text
                    ),
                    "add `else -> NODE`, or `else -> hangup` to end the call explicitly"
                        .to_string(),
                )
            } else {
                (
                    format!(
                        "result{} {} of `{} {}` {} not connected: the call ends there",
                        if names.len() == 1 { "" } else { "s" },
                        join_quoted(&names, "and"),
                        spec.name,
                        node.name.text,
                        if names.len() == 1 { "is" } else { "are" }
                    ),
                    format!(
                        "connect {} with `on {} -> NODE`, or `-> hangup` to end the call explicitly",
                        if names.len() == 1 { "it" } else { "them" },
                        names[0]
                    ),
                )
            };
            out.push(
                self.diag(Code::Unconnected, node.name.span, msg)
                    .label("unconnected")
                    .help(help),
            );
        }
        // Repeat-on-unconnected (menu timeout/invalid) loops back to the node itself.
        for r in spec
            .results
            .iter()
            .filter(|r| r.unconnected == Unconnected::Repeat)
        {
            if !results_seen.contains_key(&format!("`{}`", r.name)) {
                if let Some(&i) = index.get(node.name.text.as_str()) {
                    info.edges.push(graph::Edge::Node(i));
                }
            }
        }
        if spec.name == "home" {
            info.home = true;
        }
        info
    }

    fn not_here(&self, spec: &ActionSpec, what: &str, span: Span) -> Diagnostic {
        let help = match what {
            "prompt" | "say" | "speak" => format!(
                "`{}` plays nothing; put prompts in a `play` node before it",
                spec.name
            ),
            "when" | "else" => "`when` and `else` belong to a `switch` node".to_string(),
            "module" => "`module` belongs to a `call` node".to_string(),
            _ => "`start` belongs to a `goto_start` node".to_string(),
        };
        self.diag(
            Code::UnknownParam,
            span,
            format!("`{what}` is not a parameter of `{}`", spec.name),
        )
        .label(format!("`{}` does not take `{what}`", spec.name))
        .help(help)
    }

    fn result_names(&self, spec: &ActionSpec, exits: &Option<Vec<String>>) -> String {
        let mut names: Vec<&str> = spec.results.iter().map(|r| r.name).collect();
        if let Some(e) = exits {
            names.extend(e.iter().map(String::as_str));
        }
        if spec.extra == Extra::Keys {
            names.insert(0, "\"KEYS\"");
        }
        if spec.extra == Extra::Branches {
            names.extend(["when …", "else"]);
        }
        list(&names)
    }

    fn unknown_result(
        &self,
        spec: &ActionSpec,
        n: &Ident,
        exits: &Option<Vec<String>>,
    ) -> Diagnostic {
        let mut names: Vec<&str> = spec.results.iter().map(|r| r.name).collect();
        if let Some(e) = exits {
            names.extend(e.iter().map(String::as_str));
        }
        let s = suggest(&n.text, names.iter().copied());
        let code = if spec.extra == Extra::Module {
            Code::UnknownExit
        } else {
            Code::UnknownResult
        };
        let mut help = match (spec.extra, self.called_module.as_deref()) {
            (Extra::Module, Some(m)) => format!(
                "{}the exits of `{m}` are {}",
                did_you_mean(s),
                self.result_names(spec, exits)
            ),
            _ => format!(
                "{}the results of `{}` are {}",
                did_you_mean(s),
                spec.name,
                self.result_names(spec, exits)
            ),
        };
        if spec.extra == Extra::Keys && n.text.chars().all(|c| c.is_ascii_digit()) {
            help = format!("keys are written in quotes: `on \"{}\" -> NODE`", n.text);
        }
        let (message, label) = match (spec.extra, self.called_module.as_deref()) {
            (Extra::Module, Some(m)) => (
                format!("`{}` is not an exit of module `{m}`", n.text),
                "unknown exit",
            ),
            _ => (
                format!("`{}` is not a result of `{}`", n.text, spec.name),
                "unknown result",
            ),
        };
        self.diag(code, n.span, message).label(label).help(help)
    }

    fn menu_key(&self, k: &StrLit, out: &mut Vec<Diagnostic>) -> bool {
        let bad = k.value.is_empty()
            || !k
                .value
                .chars()
                .all(|c| c.is_ascii_digit() || "*#?".contains(c));
        if bad {
            out.push(
                self.diag(Code::BadMenuKey, k.span, format!("`\"{}\"` is not a key sequence", k.value))
                    .label("invalid keys")
                    .help("keys are `0`-`9`, `*` and `#`; `?` matches any one key; sequences such as `\"12#\"` are allowed"),
            );
        }
        !bad
    }

    /// Resolves a target to graph edges; `None` when it was reported unknown.
    fn target(
        &mut self,
        t: &Target,
        index: &HashMap<&str, usize>,
        out: &mut Vec<Diagnostic>,
    ) -> Option<Vec<graph::Edge>> {
        match t {
            Target::Node(n) if n.text == "hangup" => Some(vec![graph::Edge::End]),
            Target::Node(n) => match index.get(n.text.as_str()) {
                Some(&i) => Some(vec![graph::Edge::Node(i)]),
                None => {
                    let mut names: Vec<&str> = index.keys().copied().collect();
                    names.push("hangup");
                    let s = suggest(&n.text, names);
                    out.push(
                        self.diag(
                            Code::UnknownNode,
                            n.span,
                            format!("unknown node `{}`", n.text),
                        )
                        .label("no node has this name")
                        .help(format!(
                            "{}a result goes to a node of the same flow or module, `hangup`{}",
                            did_you_mean(s),
                            if self.module.is_some() {
                                " or `return EXIT`"
                            } else {
                                ""
                            }
                        )),
                    );
                    None
                }
            },
            Target::Return(e) => match &self.module {
                None => {
                    out.push(
                        self.diag(
                            Code::ReturnOutsideModule,
                            e.span,
                            "`return` is only possible inside a module",
                        )
                        .label("this is a flow")
                        .help("end the call with `hangup`, or go to another node"),
                    );
                    None
                }
                Some((_, exits)) => {
                    if exits.contains(&e.text) {
                        self.returned.entry(e.text.clone()).or_insert(e.span);
                        Some(vec![graph::Edge::Return])
                    } else {
                        let s = suggest(&e.text, exits.iter().map(String::as_str));
                        let exits_list: Vec<&str> = exits.iter().map(String::as_str).collect();
                        out.push(
                            self.diag(Code::UnknownExit, e.span, format!("the module has no exit `{}`", e.text))
                                .label("unknown exit")
                                .help(if exits.is_empty() {
                                    "declare exits after the parameters: `module NAME(…) -> done | failed`".to_string()
                                } else {
                                    format!("{}the exits are {}", did_you_mean(s), list(&exits_list))
                                }),
                        );
                        None
                    }
                }
            },
        }
    }

    fn resolve_module(&self, module: &Ident) -> Option<(FileId, usize)> {
        let (ns, name) = split_qualified(&module.text);
        let (fid, m) = self.program.module(self.file, ns, name)?;
        let file = self.program.file(fid)?;
        let idx = file.ast.modules.iter().position(|x| std::ptr::eq(x, m))?;
        Some((fid, idx))
    }

    /// Checks `module NAME(args)`; returns the module's exits when it resolves.
    fn module_call(
        &mut self,
        module: &Ident,
        args: &[Arg],
        out: &mut Vec<Diagnostic>,
    ) -> Option<Vec<String>> {
        let (ns, name) = split_qualified(&module.text);
        let Some((_, m)) = self.program.module(self.file, ns, name) else {
            let here = self.program.file(self.file);
            // A failed import was reported already; do not repeat it at every use.
            let import_failed = ns.is_some_and(|ns| {
                here.is_some_and(|f| {
                    !f.namespaces.contains_key(ns)
                        && f.ast
                            .imports
                            .iter()
                            .any(|i| super::namespace_of(&i.value) == ns)
                })
            });
            if import_failed {
                for a in args {
                    self.expr(&a.value, out);
                }
                return None;
            }
            let help = match (ns, here) {
                (Some(ns), Some(f)) if !f.namespaces.contains_key(ns) => {
                    format!(
                        "`{ns}` is not imported; add `import \"std/{ns}.vflow\"` or the file's path"
                    )
                }
                (Some(ns), _) => {
                    let names: Vec<&str> = self
                        .program
                        .file(self.file)
                        .and_then(|f| f.namespaces.get(ns))
                        .and_then(|id| self.program.file(*id))
                        .map(|f| f.ast.modules.iter().map(|m| m.name.text.as_str()).collect())
                        .unwrap_or_default();
                    format!(
                        "{}`{ns}` has the modules {}",
                        did_you_mean(suggest(name, names.iter().copied())),
                        list(&names)
                    )
                }
                (None, Some(f)) => {
                    let names: Vec<&str> =
                        f.ast.modules.iter().map(|m| m.name.text.as_str()).collect();
                    format!(
                        "{}a module of this file is named without prefix; an imported one as `FILE.NAME`",
                        did_you_mean(suggest(name, names.iter().copied()))
                    )
                }
                _ => "check the module's name".into(),
            };
            out.push(
                self.diag(
                    Code::UnknownModule,
                    module.span,
                    format!("unknown module `{}`", module.text),
                )
                .label("no such module")
                .help(help),
            );
            for a in args {
                self.expr(&a.value, out);
            }
            return None;
        };
        let mut given: HashMap<&str, Span> = HashMap::new();
        for a in args {
            let got = self.expr(&a.value, out);
            let Some(p) = m.params.iter().find(|p| p.name.text == a.name.text) else {
                let names: Vec<&str> = m.params.iter().map(|p| p.name.text.as_str()).collect();
                out.push(
                    self.diag(
                        Code::ModuleArgs,
                        a.name.span,
                        format!(
                            "module `{}` has no parameter `{}`",
                            module.text, a.name.text
                        ),
                    )
                    .label("unknown argument")
                    .help(if names.is_empty() {
                        format!("`{}` takes no arguments", module.text)
                    } else {
                        format!(
                            "{}its parameters are {}",
                            did_you_mean(suggest(&a.name.text, names.iter().copied())),
                            list(&names)
                        )
                    }),
                );
                continue;
            };
            if given.insert(&a.name.text, a.name.span).is_some() {
                out.push(
                    self.diag(
                        Code::ModuleArgs,
                        a.name.span,
                        format!("argument `{}` is given twice", a.name.text),
                    )
                    .label("second value")
                    .help("give each argument once"),
                );
                continue;
            }
            if let (Some(want), Some(g)) = (Ty::from_name(&p.ty.text), got) {
                if want != g {
                    out.push(
                        self.diag(
                            Code::ModuleArgs,
                            a.value.span,
                            format!(
                                "argument `{}` must be {}, not {}",
                                a.name.text,
                                want.name(),
                                g.name()
                            ),
                        )
                        .label(format!("this is {}", g.name()))
                        .help(convert_help(want, g)),
                    );
                }
            }
        }
        for p in &m.params {
            if !given.contains_key(p.name.text.as_str()) {
                out.push(
                    self.diag(
                        Code::ModuleArgs,
                        module.span,
                        format!(
                            "missing argument `{}` ({}) for `{}`",
                            p.name.text, p.ty.text, module.text
                        ),
                    )
                    .label("missing argument")
                    .help(format!(
                        "add `{} = VALUE` inside the parentheses",
                        p.name.text
                    )),
                );
            }
        }
        Some(m.exits.iter().map(|e| e.text.clone()).collect())
    }

    fn param_value(
        &mut self,
        spec: &ActionSpec,
        ps: &actions::ParamSpec,
        value: &ParamValue,
        out: &mut Vec<Diagnostic>,
    ) {
        match (ps.kind, value) {
            (ParamKind::Duration, ParamValue::Duration(..)) => {}
            (ParamKind::Duration, ParamValue::Expr(e)) => out.push(
                self.diag(
                    Code::BadParamValue,
                    e.span,
                    format!("`{}` of `{}` is a duration", ps.name, spec.name),
                )
                .label("not a duration")
                .help("write a duration with its unit: `500ms`, `5s`, `2m`, `1h`"),
            ),
            (_, ParamValue::Duration(_, span)) => out.push(
                self.diag(
                    Code::BadParamValue,
                    *span,
                    format!("`{}` of `{}` is not a duration", ps.name, spec.name),
                )
                .label("unexpected duration")
                .help(format!("`{}` takes {}", ps.name, ps.doc)),
            ),
            (ParamKind::Expr(want), ParamValue::Expr(e)) => {
                self.expect(e, want, out);
                if let ExprKind::Str(s) = &e.kind {
                    if !ps.one_of.is_empty() && !ps.one_of.contains(&s.as_str()) {
                        out.push(
                            self.diag(
                                Code::BadParamValue,
                                e.span,
                                format!("`\"{s}\"` is not a valid `{}`", ps.name),
                            )
                            .label("not allowed here")
                            .help(format!("use one of {}", list(ps.one_of))),
                        );
                    }
                }
                if let ExprKind::Unary(UnOp::Neg, _) = &e.kind {
                    if want == Ty::Int && matches!(ps.name, "retries" | "max_digits") {
                        out.push(
                            self.diag(
                                Code::BadParamValue,
                                e.span,
                                format!("`{}` cannot be negative", ps.name),
                            )
                            .label("negative")
                            .help("use 0 or more"),
                        );
                    }
                }
                if ps.name == "to" && matches!(spec.name, "transfer" | "assisted_transfer") {
                    if let ExprKind::Str(target) = &e.kind {
                        if !transfer::allowed(self.allow, target) {
                            let help = if self.allow.is_empty() {
                                format!(
                                    "this file allows no transfers; add `allow_transfer \"{target}\"` (or a pattern such as `\"2xxx\"`) at the top of the file"
                                )
                            } else {
                                let pats: Vec<&str> =
                                    self.allow.iter().map(String::as_str).collect();
                                format!(
                                    "the file allows {}; add a pattern with `allow_transfer` if this destination is intended",
                                    list(&pats)
                                )
                            };
                            out.push(
                                self.diag(
                                    Code::TransferNotAllowed,
                                    e.span,
                                    format!("transfer to `{target}` is not allowed"),
                                )
                                .label("outside allow_transfer")
                                .help(help),
                            );
                        }
                    }
                }
            }
            (ParamKind::Into(want), ParamValue::Expr(e)) => {
                if !matches!(e.kind, ExprKind::SysVar(_) | ExprKind::Name(..)) {
                    out.push(
                        self.diag(Code::BadParamValue, e.span, format!("`{}` needs a variable", ps.name))
                            .label("not a variable")
                            .help("name a writable variable: a `var` local, `$CP0`…`$CP15` or `user.NAME`"),
                    );
                    return;
                }
                if let Some(got) = self.lvalue(e, out) {
                    if got != want {
                        out.push(
                            self.diag(
                                Code::TypeMismatch,
                                e.span,
                                format!(
                                    "`{}` of `{}` needs a {} variable, this is {}",
                                    ps.name,
                                    spec.name,
                                    want.name(),
                                    got.name()
                                ),
                            )
                            .label(format!("{} variable", got.name()))
                            .help(format!(
                                "declare one: `var NAME: {} = {}`",
                                want.name(),
                                if want == Ty::Int { "0" } else { "\"\"" }
                            )),
                        );
                    }
                }
            }
            (ParamKind::PromptFile, ParamValue::Expr(e)) => self.prompt_file(e, out),
        }
    }

    fn prompt_file(&mut self, e: &Expr, out: &mut Vec<Diagnostic>) {
        if let ExprKind::Str(name) = &e.kind {
            if name.is_empty() || name.contains("..") || name.starts_with('/') {
                out.push(
                    self.diag(
                        Code::BadParamValue,
                        e.span,
                        format!("`\"{name}\"` is not a prompt file name"),
                    )
                    .label("invalid name")
                    .help("name a file under `prompts/` beside the flow, e.g. `\"welcome.wav\"`"),
                );
            } else if !self.world.prompt_exists(self.file, name) {
                out.push(
                    self.diag(Code::PromptNotFound, e.span, format!("prompt `{name}` does not exist"))
                        .label("no such prompt file")
                        .help(format!("add `prompts/{name}` beside this flow file (8 kHz mono WAV), or use a stdlib prompt")),
                );
            }
        } else {
            self.expect(e, Ty::Str, out);
        }
    }

    /// A writable variable's type; reports read-only and unknown variables.
    fn lvalue(&mut self, e: &Expr, out: &mut Vec<Diagnostic>) -> Option<Ty> {
        match &e.kind {
            ExprKind::SysVar(name) => {
                if call_var(name).is_some() {
                    return Some(Ty::Str);
                }
                if actions::SYSTEM_VARS.iter().any(|(n, _)| n == name) {
                    out.push(
                        self.diag(Code::ReadOnlyWrite, e.span, format!("`${name}` is read-only"))
                            .label("system variable")
                            .help("copy it into a call variable (`$CP0` … `$CP15`) or a `var` local and change that"),
                    );
                    return None;
                }
                out.push(self.unknown_sys(name, e.span));
                None
            }
            ExprKind::Name(Some(ns), _) if ns.text == "user" => Some(Ty::Str),
            ExprKind::Name(None, n) => {
                if let Some(t) = self.locals.get(&n.text) {
                    return Some(*t);
                }
                if self
                    .module
                    .as_ref()
                    .is_some_and(|(p, _)| p.contains_key(&n.text))
                {
                    out.push(
                        self.diag(
                            Code::ReadOnlyWrite,
                            e.span,
                            format!("module parameter `{}` is read-only", n.text),
                        )
                        .label("parameter")
                        .help(format!(
                            "copy it into a local: `var my_{0}: TYPE = {0}`",
                            n.text
                        )),
                    );
                    return None;
                }
                out.push(self.unknown_var(n));
                None
            }
            _ => {
                self.expr(e, out);
                out.push(
                    self.diag(
                        Code::BadParamValue,
                        e.span,
                        "only a variable can be assigned",
                    )
                    .label("not a variable")
                    .help("assign to a `var` local, `$CP0`…`$CP15` or `user.NAME`"),
                );
                None
            }
        }
    }

    fn unknown_sys(&self, name: &str, span: Span) -> Diagnostic {
        let names: Vec<&str> = actions::SYSTEM_VARS.iter().map(|(n, _)| *n).collect();
        let s = suggest(name, names.iter().copied());
        self.diag(
            Code::UnknownVariable,
            span,
            format!("unknown system variable `${name}`"),
        )
        .label("unknown variable")
        .help(format!(
            "{}the system variables are {} and `$CP0` … `$CP15`",
            did_you_mean(s),
            list(&names).replace('`', "`$").replace("`$ ", "` ")
        ))
    }

    fn unknown_var(&self, n: &Ident) -> Diagnostic {
        let mut names: Vec<&str> = self.locals.keys().map(String::as_str).collect();
        if let Some((p, _)) = &self.module {
            names.extend(p.keys().map(String::as_str));
        }
        let s = suggest(&n.text, names.iter().copied());
        let is_profile = self.program.profile(self.file, None, &n.text).is_some();
        let help = if is_profile {
            format!(
                "`{0}` is a time profile; test it with `in_profile({0})`",
                n.text
            )
        } else {
            format!(
                "{}declare it in the flow or module: `var {}: string = \"\"`",
                did_you_mean(s),
                n.text
            )
        };
        self.diag(
            Code::UnknownVariable,
            n.span,
            format!("unknown variable `{}`", n.text),
        )
        .label("not declared")
        .help(help)
    }

    fn mismatch(&self, span: Span, want: Ty, got: Ty) -> Diagnostic {
        self.diag(
            Code::TypeMismatch,
            span,
            format!("expected {}, found {}", want.name(), got.name()),
        )
        .label(format!("this is {}", got.name()))
        .help(convert_help(want, got))
    }

    fn expect(&mut self, e: &Expr, want: Ty, out: &mut Vec<Diagnostic>) {
        if let Some(got) = self.expr(e, out) {
            if got != want {
                out.push(self.mismatch(e.span, want, got));
            }
        }
    }

    /// The type of an expression; `None` when an error inside it was reported.
    fn expr(&mut self, e: &Expr, out: &mut Vec<Diagnostic>) -> Option<Ty> {
        match &e.kind {
            ExprKind::Str(_) => Some(Ty::Str),
            ExprKind::Int(_) => Some(Ty::Int),
            ExprKind::Bool(_) => Some(Ty::Bool),
            ExprKind::Error => None,
            ExprKind::SysVar(name) => {
                if call_var(name).is_some() || actions::SYSTEM_VARS.iter().any(|(n, _)| n == name) {
                    Some(Ty::Str)
                } else {
                    out.push(self.unknown_sys(name, e.span));
                    None
                }
            }
            ExprKind::Name(Some(ns), _) if ns.text == "user" => Some(Ty::Str),
            ExprKind::Name(Some(ns), n) => {
                let help = if self
                    .program
                    .profile(self.file, Some(&ns.text), &n.text)
                    .is_some()
                {
                    format!(
                        "`{}.{}` is a time profile; test it with `in_profile({0}.{1})`",
                        ns.text, n.text
                    )
                } else {
                    "user variables are written `user.NAME`; other dotted names are modules or profiles".to_string()
                };
                out.push(
                    self.diag(
                        Code::UnknownVariable,
                        e.span,
                        format!("unknown variable `{}.{}`", ns.text, n.text),
                    )
                    .label("not a variable")
                    .help(help),
                );
                None
            }
            ExprKind::Name(None, n) => {
                if let Some(t) = self.locals.get(&n.text) {
                    return Some(*t);
                }
                if let Some((t, _)) = self.module.as_ref().and_then(|(p, _)| p.get(&n.text)) {
                    return Some(*t);
                }
                out.push(self.unknown_var(n));
                None
            }
            ExprKind::Unary(op, inner) => {
                let want = if *op == UnOp::Neg { Ty::Int } else { Ty::Bool };
                let got = self.expr(inner, out)?;
                if got != want {
                    out.push(self.mismatch(inner.span, want, got));
                    return None;
                }
                Some(want)
            }
            ExprKind::Binary(op, l, r) => {
                let (lt, rt) = (self.expr(l, out), self.expr(r, out));
                let (lt, rt) = (lt?, rt?);
                use BinOp::*;
                let result = match op {
                    Add if lt == Ty::Str && rt == Ty::Str => Some(Ty::Str),
                    Add | Sub | Mul | Div | Rem if lt == Ty::Int && rt == Ty::Int => Some(Ty::Int),
                    Eq | Ne if lt == rt => Some(Ty::Bool),
                    Lt | Le | Gt | Ge if lt == rt && lt != Ty::Bool => Some(Ty::Bool),
                    And | Or if lt == Ty::Bool && rt == Ty::Bool => Some(Ty::Bool),
                    StartsWith | EndsWith | Contains if lt == Ty::Str && rt == Ty::Str => {
                        Some(Ty::Bool)
                    }
                    _ => None,
                };
                if result.is_none() {
                    let help = match op {
                        Add if lt != rt => "no implicit conversion: use `str(n)` to make text of a number, `int(s)` for the reverse".to_string(),
                        Add | Sub | Mul | Div | Rem => format!("`{}` works on two ints{}", op.symbol(), if *op == Add { " or two strings" } else { "" }),
                        Eq | Ne | Lt | Le | Gt | Ge => "compare values of the same type; convert with `str()` or `int()`".to_string(),
                        And | Or => format!("`{}` joins two conditions (bool)", op.symbol()),
                        _ => format!("`{}` works on two strings", op.symbol()),
                    };
                    out.push(
                        self.diag(
                            Code::TypeMismatch,
                            e.span,
                            format!(
                                "`{}` cannot combine {} and {}",
                                op.symbol(),
                                lt.name(),
                                rt.name()
                            ),
                        )
                        .label(format!("{} {} {}", lt.name(), op.symbol(), rt.name()))
                        .help(help),
                    );
                }
                result
            }
            ExprKind::Call(f, args) => self.call(f, args, e.span, out),
        }
    }

    fn call(
        &mut self,
        f: &Ident,
        args: &[Expr],
        span: Span,
        out: &mut Vec<Diagnostic>,
    ) -> Option<Ty> {
        let arity = |this: &Self, n: usize, sig: &str, out: &mut Vec<Diagnostic>| {
            out.push(
                this.diag(
                    Code::WrongArity,
                    span,
                    format!(
                        "`{}` takes {n} argument{}, found {}",
                        f.text,
                        if n == 1 { "" } else { "s" },
                        args.len()
                    ),
                )
                .label("wrong number of arguments")
                .help(format!("call it as `{sig}`")),
            );
        };
        match f.text.as_str() {
            "in_profile" => {
                if args.len() != 1 {
                    arity(self, 1, "in_profile(PROFILE)", out);
                    return Some(Ty::Bool);
                }
                let (ns, name) = match &args[0].kind {
                    ExprKind::Name(ns, n) => (ns.as_ref().map(|i| i.text.as_str()), n),
                    _ => {
                        out.push(
                            self.diag(Code::TypeMismatch, args[0].span, "`in_profile` takes the name of a time profile")
                                .label("not a profile name")
                                .help("write `in_profile(office_hours)` with a `time_profile` of this file or `in_profile(FILE.NAME)`"),
                        );
                        return Some(Ty::Bool);
                    }
                };
                if self.program.profile(self.file, ns, &name.text).is_none() {
                    let names: Vec<&str> = self
                        .program
                        .file(self.file)
                        .map(|f| {
                            f.ast
                                .profiles
                                .iter()
                                .map(|p| p.name.text.as_str())
                                .collect()
                        })
                        .unwrap_or_default();
                    out.push(
                        self.diag(
                            Code::UnknownProfile,
                            args[0].span,
                            format!("unknown time profile `{}`", name.text),
                        )
                        .label("no such time profile")
                        .help(format!(
                            "{}declare it with `time_profile {} {{ mon..fri 09:00..17:00 }}`",
                            did_you_mean(suggest(&name.text, names.iter().copied())),
                            name.text
                        )),
                    );
                }
                Some(Ty::Bool)
            }
            "str" => {
                if args.len() != 1 {
                    arity(self, 1, "str(VALUE)", out);
                }
                for a in args {
                    self.expr(a, out);
                }
                Some(Ty::Str)
            }
            name => {
                let Some((_, params, ret, _)) =
                    actions::FUNCTIONS.iter().find(|(n, ..)| *n == name)
                else {
                    let mut names: Vec<&str> =
                        actions::FUNCTIONS.iter().map(|(n, ..)| *n).collect();
                    names.extend(["str", "in_profile"]);
                    out.push(
                        self.diag(
                            Code::UnknownFunction,
                            f.span,
                            format!("unknown function `{name}`"),
                        )
                        .label("not a function")
                        .help(format!(
                            "{}the functions are {}",
                            did_you_mean(suggest(name, names.iter().copied())),
                            list(&names)
                        )),
                    );
                    for a in args {
                        self.expr(a, out);
                    }
                    return None;
                };
                let sig = format!(
                    "{name}({})",
                    params
                        .iter()
                        .map(|t| t.name())
                        .collect::<Vec<_>>()
                        .join(", ")
                );
                if args.len() != params.len() {
                    arity(self, params.len(), &sig, out);
                    for a in args {
                        self.expr(a, out);
                    }
                    return Some(*ret);
                }
                for (a, want) in args.iter().zip(params.iter()) {
                    self.expect(a, *want, out);
                }
                Some(*ret)
            }
        }
    }
}

fn convert_help(want: Ty, got: Ty) -> String {
    match (want, got) {
        (Ty::Str, Ty::Int) | (Ty::Str, Ty::Bool) => "convert with `str(…)`".into(),
        (Ty::Int, Ty::Str) => {
            "convert with `int(…)` (a runtime fault if the text is not a number)".into()
        }
        (Ty::Bool, _) => "write a condition, e.g. `x == 1` or `$KEY != \"\"`".into(),
        _ => format!("give a {} value", want.name()),
    }
}

/// `$CP0` … `$CP15`: the register number.
pub fn call_var(name: &str) -> Option<usize> {
    let n = name.strip_prefix("CP")?;
    if n.is_empty() || (n.len() > 1 && n.starts_with('0')) {
        return None;
    }
    n.parse::<usize>().ok().filter(|&i| i < actions::CALL_VARS)
}

/// `ns.name` → (Some(ns), name); `name` → (None, name).
pub fn split_qualified(s: &str) -> (Option<&str>, &str) {
    match s.split_once('.') {
        Some((ns, n)) => (Some(ns), n),
        None => (None, s),
    }
}

/// Whether evaluating `e` can fault at run time (division, remainder, `int()`).
pub fn may_fault(e: &Expr) -> bool {
    match &e.kind {
        ExprKind::Binary(op, l, r) => {
            let div_by_literal = matches!(op, BinOp::Div | BinOp::Rem)
                && matches!(r.kind, ExprKind::Int(n) if n != 0);
            (matches!(op, BinOp::Div | BinOp::Rem) && !div_by_literal)
                || may_fault(l)
                || may_fault(r)
        }
        ExprKind::Unary(_, x) => may_fault(x),
        ExprKind::Call(f, args) => f.text == "int" || args.iter().any(may_fault),
        _ => false,
    }
}
