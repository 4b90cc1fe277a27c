//! The stable text form of the IR (`vflow ir`): S-expressions, one top-level
//! form per file, profile, unit and entry, one line per node. [`parse`] reads
//! back exactly what [`print`] writes (`parse(print(p)) == p`); docs/IR.md
//! has the grammar. `;` starts a comment that runs to the end of the line.

use super::*;
use std::fmt::Write as _;

// ---------------------------------------------------------------- printing

/// The program as text.
pub fn print(p: &Program) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "(vflow-ir {})", p.version);
    for f in &p.files {
        let _ = writeln!(o, "(file {})", q(f));
    }
    for pr in &p.profiles {
        let _ = write!(o, "(profile {}", q(&pr.name));
        for r in &pr.rules {
            o.push_str(if r.except { "\n  (except" } else { "\n  (in" });
            for d in &r.days {
                match d {
                    Days::Weekdays { from, to } => {
                        let _ = write!(o, " (weekdays {} {})", weekday(*from), weekday(*to));
                    }
                    Days::Dates { from, to } => {
                        let _ = write!(o, " (dates {} {})", date(*from), date(*to));
                    }
                }
            }
            for (a, b) in &r.times {
                let _ = write!(o, " (at {} {})", clock(*a), clock(*b));
            }
            o.push(')');
        }
        o.push_str(")\n");
    }
    for (ui, u) in p.units.iter().enumerate() {
        let kind = match u.kind {
            UnitKind::Flow => "flow",
            UnitKind::Module => "module",
        };
        let _ = write!(
            o,
            "({kind} {} ; unit {ui}\n  (file {}) (line {}) (params {})",
            q(&u.name),
            u.file,
            u.line,
            u.params
        );
        for l in &u.locals {
            let _ = write!(o, "\n  (local {} {})", q(&l.name), l.ty.name());
        }
        for i in &u.init {
            let _ = write!(
                o,
                "\n  (init {} {} (line {}))",
                i.slot,
                expr(&i.value),
                i.line
            );
        }
        for e in &u.exits {
            let _ = write!(o, "\n  (exit {})", q(e));
        }
        for a in &u.allow_transfer {
            let _ = write!(o, "\n  (allow {})", q(a));
        }
        for n in &u.nodes {
            let _ = write!(o, "\n  (node {} (line {})", q(&n.name), n.line);
            if let Some(e) = n.on_fault {
                let _ = write!(o, " (fault {})", edge(u, e));
            }
            for op in &n.ops {
                let _ = write!(o, " (set {} {})", place(&op.place), expr(&op.value));
            }
            o.push(' ');
            o.push_str(&kind_text(u, &n.kind));
            o.push(')');
        }
        o.push_str(")\n");
    }
    for e in &p.entries {
        let _ = writeln!(
            o,
            "(entry {} {} {} {})",
            q(&e.kind),
            q(&e.pattern),
            e.unit,
            e.node
        );
    }
    o
}

/// Items each preceded by a space.
fn spaced(items: &[String]) -> String {
    items.iter().map(|i| format!(" {i}")).collect()
}

fn q(s: &str) -> String {
    serde_json::to_string(s).expect("strings serialize")
}

const WEEKDAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

fn weekday(d: u8) -> String {
    WEEKDAYS
        .get(d as usize)
        .map_or_else(|| d.to_string(), |s| s.to_string())
}

fn date(d: Date) -> String {
    format!("{:04}-{:02}-{:02}", d.year, d.month, d.day)
}

fn clock(m: u16) -> String {
    format!("{:02}:{:02}", m / 60, m % 60)
}

fn edge(u: &Unit, e: Edge) -> String {
    match e {
        Edge::Node(i) => match u.nodes.get(i as usize) {
            Some(n) => format!("@{}", n.name),
            None => format!("@{i}"),
        },
        Edge::Hangup => "hangup".into(),
        Edge::Off => "off".into(),
        Edge::Return(i) => match u.exits.get(i as usize) {
            Some(x) => format!("return:{x}"),
            None => format!("return:{i}"),
        },
    }
}

fn place(p: &Place) -> String {
    match p {
        Place::Local(i) => format!("(local {i})"),
        Place::Cp(i) => format!("(cp {i})"),
        Place::User(n) => format!("(user {})", q(n)),
    }
}

fn expr(e: &Expr) -> String {
    match e {
        Expr::Const(Value::Str(s)) => q(s),
        Expr::Const(Value::Int(i)) => i.to_string(),
        Expr::Const(Value::Bool(b)) => b.to_string(),
        Expr::Local(i) => format!("(local {i})"),
        Expr::Cp(i) => format!("(cp {i})"),
        Expr::Sys(v) => format!("(sys {})", v.name()),
        Expr::User(n) => format!("(user {})", q(n)),
        Expr::Unary(UnOp::Neg, x) => format!("(neg {})", expr(x)),
        Expr::Unary(UnOp::Not, x) => format!("(not {})", expr(x)),
        Expr::Binary(op, a, b) => format!("({} {} {})", op.name(), expr(a), expr(b)),
        Expr::Call(f, args) => {
            let mut s = format!("(call {}", f.name());
            for a in args {
                s.push(' ');
                s.push_str(&expr(a));
            }
            s.push(')');
            s
        }
        Expr::InProfile(i) => format!("(in_profile {i})"),
    }
}

fn kind_text(u: &Unit, k: &NodeKind) -> String {
    match k {
        NodeKind::Goto(e) => format!("(goto {})", edge(u, *e)),
        NodeKind::Branch { arms, otherwise } => {
            let mut s = "(branch".to_string();
            for a in arms {
                let _ = write!(s, " (when {} {})", expr(&a.cond), edge(u, a.edge));
            }
            let _ = write!(s, " (else {}))", edge(u, *otherwise));
            s
        }
        NodeKind::Call { unit, args, exits } => {
            let args: Vec<String> = args.iter().map(expr).collect();
            // Exits are edges of the calling unit.
            let exits: Vec<String> = exits.iter().map(|e| edge(u, *e)).collect();
            format!(
                "(call {unit} (args {}) (exits {}))",
                args.join(" "),
                exits.join(" ")
            )
        }
        NodeKind::Effect(e) => {
            let mut s = format!("(effect {}", e.action.name());
            if !e.prompts.is_empty() {
                s.push_str(" (prompts");
                for p in &e.prompts {
                    match p {
                        PromptExpr::File(x) => {
                            let _ = write!(s, " (file {})", expr(x));
                        }
                        PromptExpr::Say(m, x) => {
                            let _ = write!(s, " (say {} {})", m.name(), expr(x));
                        }
                        PromptExpr::Speak(x) => {
                            let _ = write!(s, " (speak {})", expr(x));
                        }
                    }
                }
                s.push(')');
            }
            let args: Vec<String> = e.args.iter().map(expr).collect();
            let _ = write!(s, " (args{})", spaced(&args));
            if let Some(p) = &e.into {
                let _ = write!(s, " (into {})", place(p));
            }
            let rs: Vec<String> = e.results.iter().map(|r| edge(u, *r)).collect();
            let _ = write!(s, " (results{})", spaced(&rs));
            if !e.keys.is_empty() {
                s.push_str(" (keys");
                for k in &e.keys {
                    let _ = write!(s, " ({} {})", q(&k.keys), edge(u, k.edge));
                }
                s.push(')');
            }
            s.push(')');
            s
        }
        NodeKind::GotoStart { kind, name } => format!("(goto_start {} {})", q(kind), q(name)),
        NodeKind::Home => "(home)".into(),
    }
}

// ----------------------------------------------------------------- parsing

/// Why IR text could not be read: the line and what was wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct ParseError {
    pub line: u32,
    pub message: String,
}

#[derive(Debug, Clone)]
enum Sx {
    Atom(String, u32),
    Str(String, u32),
    List(Vec<Sx>, u32),
}

impl Sx {
    fn line(&self) -> u32 {
        match self {
            Sx::Atom(_, l) | Sx::Str(_, l) | Sx::List(_, l) => *l,
        }
    }
}

type R<T> = Result<T, ParseError>;

fn err<T>(line: u32, m: impl Into<String>) -> R<T> {
    Err(ParseError {
        line,
        message: m.into(),
    })
}

/// Deeper than any lowering writes: source parentheses nest at most 64 deep.
const MAX_DEPTH: usize = 512;

fn read(text: &str) -> R<Vec<Sx>> {
    let b = text.as_bytes();
    let mut i = 0;
    let mut line = 1u32;
    let mut stack: Vec<(Vec<Sx>, u32)> = vec![(Vec::new(), 1)];
    while i < b.len() {
        match b[i] {
            b'\n' => {
                line += 1;
                i += 1;
            }
            c if c.is_ascii_whitespace() => i += 1,
            b';' => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'(' => {
                // Bounded, so the recursive readers below and the drop of the
                // tree cannot exhaust the stack on hostile input.
                if stack.len() > MAX_DEPTH {
                    return err(line, format!("lists nested more than {MAX_DEPTH} deep"));
                }
                stack.push((Vec::new(), line));
                i += 1;
            }
            b')' => {
                let (items, l) = stack.pop().expect("stack has the top level");
                let Some(parent) = stack.last_mut() else {
                    return err(line, "unbalanced `)`");
                };
                parent.0.push(Sx::List(items, l));
                if stack.is_empty() {
                    return err(line, "unbalanced `)`");
                }
                i += 1;
            }
            b'"' => {
                let start = i;
                i += 1;
                while i < b.len() && b[i] != b'"' {
                    if b[i] == b'\\' {
                        i += 1;
                    }
                    if i < b.len() && b[i] == b'\n' {
                        return err(line, "newline in a string");
                    }
                    i += 1;
                }
                if i >= b.len() {
                    return err(line, "unterminated string");
                }
                i += 1;
                let s: String = serde_json::from_str(&text[start..i])
                    .or_else(|e| err(line, format!("bad string: {e}")))?;
                stack
                    .last_mut()
                    .expect("top level")
                    .0
                    .push(Sx::Str(s, line));
            }
            _ => {
                let start = i;
                while i < b.len()
                    && !b[i].is_ascii_whitespace()
                    && !matches!(b[i], b'(' | b')' | b'"' | b';')
                {
                    i += 1;
                }
                stack
                    .last_mut()
                    .expect("top level")
                    .0
                    .push(Sx::Atom(text[start..i].to_string(), line));
            }
        }
        if stack.is_empty() {
            return err(line, "unbalanced `)`");
        }
    }
    if stack.len() != 1 {
        return err(line, "missing `)`");
    }
    Ok(stack.pop().expect("top level").0)
}

/// A list's head atom and its items.
fn form(s: &Sx) -> R<(&str, &[Sx], u32)> {
    match s {
        Sx::List(items, l) => match items.first() {
            Some(Sx::Atom(h, _)) => Ok((h.as_str(), &items[1..], *l)),
            _ => err(*l, "expected `(NAME …)`"),
        },
        other => err(other.line(), "expected a list"),
    }
}

fn expect_form<'a>(s: &'a Sx, head: &str) -> R<&'a [Sx]> {
    let (h, rest, l) = form(s)?;
    if h != head {
        return err(l, format!("expected `({head} …)`, found `({h} …)`"));
    }
    Ok(rest)
}

fn atom(s: &Sx) -> R<&str> {
    match s {
        Sx::Atom(a, _) => Ok(a),
        other => err(other.line(), "expected a word or number"),
    }
}

fn string(s: &Sx) -> R<String> {
    match s {
        Sx::Str(v, _) => Ok(v.clone()),
        other => err(other.line(), "expected a string"),
    }
}

fn num<T: std::str::FromStr>(s: &Sx) -> R<T> {
    let a = atom(s)?;
    a.parse()
        .or_else(|_| err(s.line(), format!("expected a number, found `{a}`")))
}

fn one<'a>(items: &'a [Sx], l: u32, what: &str) -> R<&'a Sx> {
    match items {
        [x] => Ok(x),
        _ => err(l, format!("`{what}` takes one value")),
    }
}

/// Reads IR text. The result still needs [`verify`](super::verify) before it runs.
pub fn parse(text: &str) -> R<Program> {
    let forms = read(text)?;
    let mut it = forms.iter();
    let first = it.next().ok_or(ParseError {
        line: 1,
        message: "empty IR text".into(),
    })?;
    let v = expect_form(first, "vflow-ir")?;
    let version: u32 = num(one(v, first.line(), "vflow-ir")?)?;
    if version != IR_VERSION {
        return err(
            first.line(),
            format!("IR version {version} is not supported (this vflow reads {IR_VERSION})"),
        );
    }
    let mut p = Program {
        version,
        files: Vec::new(),
        profiles: Vec::new(),
        units: Vec::new(),
        entries: Vec::new(),
    };
    for f in it {
        let (h, rest, l) = form(f)?;
        match h {
            "file" => p.files.push(string(one(rest, l, "file")?)?),
            "profile" => p.profiles.push(profile(rest, l)?),
            "flow" | "module" => p.units.push(unit(h, rest, l)?),
            "entry" => match rest {
                [k, pat, u, n] => p.entries.push(Entry {
                    kind: string(k)?,
                    pattern: string(pat)?,
                    unit: num(u)?,
                    node: num(n)?,
                }),
                _ => return err(l, "`entry` takes KIND PATTERN UNIT NODE"),
            },
            other => return err(l, format!("unknown form `{other}`")),
        }
    }
    Ok(p)
}

fn profile(rest: &[Sx], l: u32) -> R<Profile> {
    let Some((name, rules)) = rest.split_first() else {
        return err(l, "`profile` needs a name");
    };
    let mut out = Profile {
        name: string(name)?,
        rules: Vec::new(),
    };
    for r in rules {
        let (h, items, rl) = form(r)?;
        let except = match h {
            "in" => false,
            "except" => true,
            other => return err(rl, format!("expected `in` or `except`, found `{other}`")),
        };
        let mut rule = ProfileRule {
            except,
            days: Vec::new(),
            times: Vec::new(),
        };
        for it in items {
            let (h, args, il) = form(it)?;
            let [a, b] = args else {
                return err(il, format!("`{h}` takes two values"));
            };
            match h {
                "weekdays" => rule.days.push(Days::Weekdays {
                    from: parse_weekday(a)?,
                    to: parse_weekday(b)?,
                }),
                "dates" => rule.days.push(Days::Dates {
                    from: parse_date(a)?,
                    to: parse_date(b)?,
                }),
                "at" => rule.times.push((parse_clock(a)?, parse_clock(b)?)),
                other => return err(il, format!("unknown profile item `{other}`")),
            }
        }
        out.rules.push(rule);
    }
    Ok(out)
}

fn parse_weekday(s: &Sx) -> R<u8> {
    let a = atom(s)?;
    WEEKDAYS
        .iter()
        .position(|d| *d == a)
        .map(|i| i as u8)
        .ok_or(ParseError {
            line: s.line(),
            message: format!("bad weekday `{a}`"),
        })
}

fn parse_date(s: &Sx) -> R<Date> {
    let a = atom(s)?;
    let bad = || ParseError {
        line: s.line(),
        message: format!("bad date `{a}`"),
    };
    let mut parts = a.splitn(3, '-');
    let mut next = || parts.next().ok_or_else(bad);
    let (y, m, d) = (next()?, next()?, next()?);
    Ok(Date {
        year: y.parse().map_err(|_| bad())?,
        month: m.parse().map_err(|_| bad())?,
        day: d.parse().map_err(|_| bad())?,
    })
}

fn parse_clock(s: &Sx) -> R<u16> {
    let a = atom(s)?;
    let bad = || ParseError {
        line: s.line(),
        message: format!("bad time `{a}`"),
    };
    let (h, m) = a.split_once(':').ok_or_else(bad)?;
    let h: u16 = h.parse().map_err(|_| bad())?;
    let m: u16 = m.parse().map_err(|_| bad())?;
    Ok(h * 60 + m)
}

fn unit(kind: &str, rest: &[Sx], l: u32) -> R<Unit> {
    let Some((name, items)) = rest.split_first() else {
        return err(l, "a unit needs a name");
    };
    let mut u = Unit {
        kind: if kind == "flow" {
            UnitKind::Flow
        } else {
            UnitKind::Module
        },
        name: string(name)?,
        file: 0,
        line: 0,
        params: 0,
        locals: Vec::new(),
        init: Vec::new(),
        exits: Vec::new(),
        allow_transfer: Vec::new(),
        nodes: Vec::new(),
    };
    // Node and exit names first: edges refer to them by name.
    let mut node_forms = Vec::new();
    for it in items {
        let (h, args, il) = form(it)?;
        match h {
            "file" => u.file = num(one(args, il, h)?)?,
            "line" => u.line = num(one(args, il, h)?)?,
            "params" => u.params = num(one(args, il, h)?)?,
            "local" => match args {
                [n, t] => {
                    let ty = Ty::from_name(atom(t)?).ok_or(ParseError {
                        line: il,
                        message: "unknown type".into(),
                    })?;
                    u.locals.push(Local {
                        name: string(n)?,
                        ty,
                    });
                }
                _ => return err(il, "`local` takes NAME TYPE"),
            },
            "init" => match args {
                [slot, value, line] => {
                    let line = num(one(expect_form(line, "line")?, il, "line")?)?;
                    u.init.push(Init {
                        slot: num(slot)?,
                        value: parse_expr(value)?,
                        line,
                    });
                }
                _ => return err(il, "`init` takes SLOT EXPR (line N)"),
            },
            "exit" => u.exits.push(string(one(args, il, h)?)?),
            "allow" => u.allow_transfer.push(string(one(args, il, h)?)?),
            "node" => {
                let Some(n) = args.first() else {
                    return err(il, "`node` needs a name");
                };
                node_forms.push((string(n)?, &args[1..], il));
            }
            other => return err(il, format!("unknown unit item `{other}`")),
        }
    }
    let names: Vec<String> = node_forms.iter().map(|(n, ..)| n.clone()).collect();
    let cx = EdgeCx {
        nodes: &names,
        exits: &u.exits,
    };
    for (name, args, il) in node_forms {
        u.nodes.push(node(&cx, name, args, il)?);
    }
    Ok(u)
}

struct EdgeCx<'a> {
    nodes: &'a [String],
    exits: &'a [String],
}

impl EdgeCx<'_> {
    fn edge(&self, s: &Sx) -> R<Edge> {
        let a = atom(s)?;
        let bad = |m: String| ParseError {
            line: s.line(),
            message: m,
        };
        Ok(match a {
            "hangup" => Edge::Hangup,
            "off" => Edge::Off,
            _ => {
                if let Some(n) = a.strip_prefix('@') {
                    match self.nodes.iter().position(|x| x == n) {
                        Some(i) => Edge::Node(i as u32),
                        None => {
                            Edge::Node(n.parse().map_err(|_| bad(format!("unknown node `{n}`")))?)
                        }
                    }
                } else if let Some(x) = a.strip_prefix("return:") {
                    match self.exits.iter().position(|e| e == x) {
                        Some(i) => Edge::Return(i as u32),
                        None => {
                            Edge::Return(x.parse().map_err(|_| bad(format!("unknown exit `{x}`")))?)
                        }
                    }
                } else {
                    return Err(bad(format!(
                        "expected an edge (`@NODE`, `hangup`, `return:EXIT`, `off`), found `{a}`"
                    )));
                }
            }
        })
    }
}

fn node(cx: &EdgeCx, name: String, items: &[Sx], l: u32) -> R<Node> {
    let mut n = Node {
        name,
        line: 0,
        ops: Vec::new(),
        on_fault: None,
        kind: NodeKind::Home,
    };
    let mut kind = None;
    for it in items {
        let (h, args, il) = form(it)?;
        match h {
            "line" => n.line = num(one(args, il, h)?)?,
            "fault" => n.on_fault = Some(cx.edge(one(args, il, h)?)?),
            "set" => match args {
                [p, e] => n.ops.push(Assign {
                    place: parse_place(p)?,
                    value: parse_expr(e)?,
                }),
                _ => return err(il, "`set` takes PLACE EXPR"),
            },
            "goto" => kind = Some(NodeKind::Goto(cx.edge(one(args, il, h)?)?)),
            "branch" => {
                let mut arms = Vec::new();
                let mut otherwise = None;
                for a in args {
                    let (h, xs, al) = form(a)?;
                    match (h, xs) {
                        ("when", [c, e]) => arms.push(Arm {
                            cond: parse_expr(c)?,
                            edge: cx.edge(e)?,
                        }),
                        ("else", [e]) => otherwise = Some(cx.edge(e)?),
                        _ => return err(al, "expected `(when EXPR EDGE)` or `(else EDGE)`"),
                    }
                }
                let otherwise = otherwise.ok_or(ParseError {
                    line: il,
                    message: "`branch` needs `(else EDGE)`".into(),
                })?;
                kind = Some(NodeKind::Branch { arms, otherwise });
            }
            "call" => match args {
                [u, a, e] => {
                    let args = expect_form(a, "args")?
                        .iter()
                        .map(parse_expr)
                        .collect::<R<_>>()?;
                    let exits = expect_form(e, "exits")?
                        .iter()
                        .map(|x| cx.edge(x))
                        .collect::<R<_>>()?;
                    kind = Some(NodeKind::Call {
                        unit: num(u)?,
                        args,
                        exits,
                    });
                }
                _ => return err(il, "`call` takes UNIT (args …) (exits …)"),
            },
            "effect" => kind = Some(NodeKind::Effect(effect(cx, args, il)?)),
            "goto_start" => match args {
                [k, nm] => {
                    kind = Some(NodeKind::GotoStart {
                        kind: string(k)?,
                        name: string(nm)?,
                    })
                }
                _ => return err(il, "`goto_start` takes KIND NAME"),
            },
            "home" => kind = Some(NodeKind::Home),
            other => return err(il, format!("unknown node item `{other}`")),
        }
    }
    n.kind = kind.ok_or(ParseError {
        line: l,
        message: format!("node `{}` has no kind", n.name),
    })?;
    Ok(n)
}

fn effect(cx: &EdgeCx, items: &[Sx], l: u32) -> R<EffectNode> {
    let Some((action, rest)) = items.split_first() else {
        return err(l, "`effect` needs an action");
    };
    let a = atom(action)?;
    let action = Action::from_name(a).ok_or(ParseError {
        line: l,
        message: format!("unknown action `{a}`"),
    })?;
    let mut e = EffectNode {
        action,
        prompts: Vec::new(),
        args: Vec::new(),
        into: None,
        results: Vec::new(),
        keys: Vec::new(),
    };
    for it in rest {
        let (h, xs, il) = form(it)?;
        match h {
            "prompts" => {
                for p in xs {
                    let (ph, pa, pl) = form(p)?;
                    e.prompts.push(match (ph, pa) {
                        ("file", [x]) => PromptExpr::File(parse_expr(x)?),
                        ("speak", [x]) => PromptExpr::Speak(parse_expr(x)?),
                        ("say", [m, x]) => {
                            let m = atom(m)?;
                            let mode = SayMode::from_name(m).ok_or(ParseError {
                                line: pl,
                                message: format!("bad say mode `{m}`"),
                            })?;
                            PromptExpr::Say(mode, parse_expr(x)?)
                        }
                        _ => return err(pl, "expected `(file E)`, `(say MODE E)` or `(speak E)`"),
                    });
                }
            }
            "args" => e.args = xs.iter().map(parse_expr).collect::<R<_>>()?,
            "into" => e.into = Some(parse_place(one(xs, il, h)?)?),
            "results" => e.results = xs.iter().map(|x| cx.edge(x)).collect::<R<_>>()?,
            "keys" => {
                for k in xs {
                    match k {
                        Sx::List(pair, kl) => match &pair[..] {
                            [keys, edge] => e.keys.push(KeyEdge {
                                keys: string(keys)?,
                                edge: cx.edge(edge)?,
                            }),
                            _ => return err(*kl, "a key is `(\"KEYS\" EDGE)`"),
                        },
                        other => return err(other.line(), "a key is `(\"KEYS\" EDGE)`"),
                    }
                }
            }
            other => return err(il, format!("unknown effect item `{other}`")),
        }
    }
    Ok(e)
}

fn parse_place(s: &Sx) -> R<Place> {
    let (h, xs, l) = form(s)?;
    Ok(match h {
        "local" => Place::Local(num(one(xs, l, h)?)?),
        "cp" => Place::Cp(num(one(xs, l, h)?)?),
        "user" => Place::User(string(one(xs, l, h)?)?),
        other => return err(l, format!("expected a variable, found `{other}`")),
    })
}

fn parse_expr(s: &Sx) -> R<Expr> {
    match s {
        Sx::Str(v, _) => Ok(Expr::Const(Value::Str(v.clone()))),
        Sx::Atom(a, l) => match a.as_str() {
            "true" => Ok(Expr::Const(Value::Bool(true))),
            "false" => Ok(Expr::Const(Value::Bool(false))),
            n => n
                .parse()
                .map(|i| Expr::Const(Value::Int(i)))
                .or_else(|_| err(*l, format!("bad value `{n}`"))),
        },
        Sx::List(..) => {
            let (h, xs, l) = form(s)?;
            let args = || xs.iter().map(parse_expr).collect::<R<Vec<_>>>();
            Ok(match h {
                "local" => Expr::Local(num(one(xs, l, h)?)?),
                "cp" => Expr::Cp(num(one(xs, l, h)?)?),
                "user" => Expr::User(string(one(xs, l, h)?)?),
                "sys" => {
                    let n = atom(one(xs, l, h)?)?;
                    Expr::Sys(SysVar::from_name(n).ok_or(ParseError {
                        line: l,
                        message: format!("unknown system variable `{n}`"),
                    })?)
                }
                "in_profile" => Expr::InProfile(num(one(xs, l, h)?)?),
                "neg" => Expr::Unary(UnOp::Neg, Box::new(parse_expr(one(xs, l, h)?)?)),
                "not" => Expr::Unary(UnOp::Not, Box::new(parse_expr(one(xs, l, h)?)?)),
                "call" => {
                    let Some((f, rest)) = xs.split_first() else {
                        return err(l, "`call` needs a function");
                    };
                    let f = atom(f)?;
                    let b = Builtin::from_name(f).ok_or(ParseError {
                        line: l,
                        message: format!("unknown function `{f}`"),
                    })?;
                    Expr::Call(b, rest.iter().map(parse_expr).collect::<R<_>>()?)
                }
                op => match BinOp::from_name(op) {
                    Some(b) => match &args()?[..] {
                        [x, y] => Expr::Binary(b, Box::new(x.clone()), Box::new(y.clone())),
                        _ => return err(l, format!("`{op}` takes two operands")),
                    },
                    None => return err(l, format!("unknown expression `{op}`")),
                },
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_every_construct() {
        let p = crate::interp::tests::sample_programs();
        for prog in p {
            let text = print(&prog);
            let back = parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
            assert_eq!(back, prog, "{text}");
            assert_eq!(print(&back), text);
        }
    }

    #[test]
    fn parse_errors_name_the_line() {
        assert_eq!(parse("").unwrap_err().message, "empty IR text");
        assert!(
            parse("(vflow-ir 2)")
                .unwrap_err()
                .message
                .contains("not supported")
        );
        let e = parse("(vflow-ir 1)\n(flow \"f\"\n  (node \"a\" (goto @b)))").unwrap_err();
        assert_eq!(e.line, 3);
        assert!(e.message.contains("unknown node `b`"), "{e}");
        assert!(parse("(vflow-ir 1) (file \"x\"").is_err());
        assert!(parse("(vflow-ir 1))").is_err());
        assert!(parse("(vflow-ir 1) (bogus)").is_err());
        assert!(parse("(vflow-ir 1) (file \"unterminated)").is_err());
    }
}
