//! Text to syntax tree: the pest grammar (`vflow.pest`), the tree builder and
//! syntax-error recovery.
//!
//! Invariant: `parse` never panics and always returns a tree, possibly partial,
//! with every syntax error as a `V0001` diagnostic. When the whole file does not
//! parse, each top-level item (and, inside a broken flow or module, each node) is
//! parsed on its own so that one typo does not hide every other error.

pub mod ast;

use crate::diag::{Code, Diagnostic};
use crate::source::{FileId, Span};
use ast::*;
use pest::Parser as _;
use pest::iterators::{Pair, Pairs};
use pest::pratt_parser::{Assoc, Op, PrattParser};
use std::sync::LazyLock;

#[derive(pest_derive::Parser)]
#[grammar = "syntax/vflow.pest"]
struct Grammar;

/// Parses one file. Spans are byte offsets into `text`.
pub fn parse(file: FileId, text: &str) -> (ast::File, Vec<Diagnostic>) {
    let mut b = Builder {
        file,
        diags: Vec::new(),
        offset: 0,
        in_expr: false,
    };
    let mut out = ast::File::default();
    if let Some(at) = too_deep(text) {
        let d = Diagnostic::new(
            Code::Syntax,
            file,
            Span::new(at, at + 1),
            format!("parentheses nested more than {MAX_NESTING} deep"),
        )
        .label("too deep")
        .help("split the expression across several assignments in a `set` node");
        return (out, vec![d]);
    }
    match Grammar::parse(Rule::file, text) {
        Ok(mut pairs) => {
            let file_pair = pairs.next().expect("rule `file` yields one pair");
            for item in file_pair.into_inner() {
                b.item(item, &mut out);
            }
        }
        Err(first) => {
            b.diags.push(syntax_error(file, text, 0, &first));
            recover_items(&mut b, text, &mut out);
        }
    }
    (out, b.diags)
}

/// The deepest parenthesis nesting the parser accepts; it keeps every
/// recursive walk over expressions far from the stack's end.
const MAX_NESTING: usize = 64;
/// The most grammar nodes one expression may have, for the same reason.
const MAX_EXPR_NODES: usize = 2_000;

/// The offset of the first `(` nested deeper than `MAX_NESTING`, outside strings and comments.
fn too_deep(text: &str) -> Option<usize> {
    let b = text.as_bytes();
    let (mut depth, mut i) = (0usize, 0usize);
    while i < b.len() {
        match b[i] {
            b'"' => {
                i += 1;
                while i < b.len() && b[i] != b'"' && b[i] != b'\n' {
                    i += if b[i] == b'\\' { 2 } else { 1 };
                }
            }
            b'/' if b.get(i + 1) == Some(&b'/') => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'(' => {
                depth += 1;
                if depth > MAX_NESTING {
                    return Some(i);
                }
            }
            b')' => depth = depth.saturating_sub(1),
            _ => {}
        }
        i += 1;
    }
    None
}

/// Re-parses top-level chunks one by one after a syntax error. The first
/// error was already reported; errors at the same place are not repeated.
fn recover_items(b: &mut Builder, text: &str, out: &mut ast::File) {
    for (start, end) in chunks(text, 0, text.len(), true) {
        let chunk = &text[start..end];
        match Grammar::parse(Rule::item_only, chunk) {
            Ok(mut pairs) => {
                b.offset = start;
                let item = pairs.next().expect("item_only yields one pair");
                for p in item.into_inner() {
                    if p.as_rule() != Rule::EOI {
                        b.item(p, out);
                    }
                }
                b.offset = 0;
            }
            Err(e) => {
                let d = syntax_error(b.file, chunk, start, &e);
                if !b.diags.iter().any(|x| x.span.start == d.span.start) {
                    b.diags.push(d);
                }
                recover_body(b, text, start, end, out);
            }
        }
    }
}

/// Inside a flow or module whose header parses, parses each body item alone.
fn recover_body(b: &mut Builder, text: &str, start: usize, end: usize, out: &mut ast::File) {
    let chunk = &text[start..end];
    let Some(open) = chunk.find('{') else { return };
    let header = chunk[..open].trim();
    let mut words = header.split_whitespace();
    let (Some(kw @ ("flow" | "module")), Some(name)) = (words.next(), words.next()) else {
        return;
    };
    let name_text: String = name
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect();
    let name_at = start + chunk.find(name).unwrap_or(0);
    let name = Ident {
        text: name_text,
        span: Span::new(name_at, name_at + name.len()),
    };
    let close = chunk
        .rfind('}')
        .filter(|&c| c > open)
        .unwrap_or(chunk.len());
    let mut body = Body::default();
    let mut starts = Vec::new();
    for (s, e) in chunks(text, start + open + 1, start + close, false) {
        match Grammar::parse(Rule::body_item_only, &text[s..e]) {
            Ok(mut pairs) => {
                b.offset = s;
                let it = pairs.next().expect("body_item_only yields one pair");
                for p in it.into_inner() {
                    match p.as_rule() {
                        Rule::start_point => starts.push(b.start_point(p)),
                        Rule::var_decl => body.vars.push(b.var_decl(p)),
                        Rule::node => body.nodes.push(b.node(p)),
                        _ => {}
                    }
                }
                b.offset = 0;
            }
            Err(err) => {
                let d = syntax_error(b.file, &text[s..e], s, &err);
                if !b.diags.iter().any(|x| x.span.start == d.span.start) {
                    b.diags.push(d);
                }
            }
        }
    }
    let span = Span::new(start, end);
    if kw == "flow" {
        out.flows.push(Flow {
            name,
            starts,
            body,
            span,
        });
    } else {
        // The parameter list and exits are lost with a broken module; the
        // checker then sees a module with none, which only affects calls to it.
        out.modules.push(Module {
            name,
            params: Vec::new(),
            exits: Vec::new(),
            body,
            span,
        });
    }
}

/// Splits `text[from..to]` into items: a chunk ends at the `}` that brings the
/// brace depth back to zero, or (for body items, and for top-level lines
/// without braces) at a newline at depth zero when no brace was opened.
/// Strings and comments are skipped so braces inside them do not count.
fn chunks(text: &str, from: usize, to: usize, top_level: bool) -> Vec<(usize, usize)> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut depth = 0usize;
    let mut start: Option<usize> = None;
    let mut opened = false;
    let mut i = from;
    while i < to {
        let c = bytes[i];
        match c {
            b'/' if bytes.get(i + 1) == Some(&b'/') => {
                while i < to && bytes[i] != b'\n' {
                    i += 1;
                }
                continue;
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                i += 2;
                while i + 1 < to && !(bytes[i] == b'*' && bytes[i + 1] == b'/') {
                    i += 1;
                }
                i += 2;
                continue;
            }
            b'"' => {
                start.get_or_insert(i);
                i += 1;
                while i < to && bytes[i] != b'"' && bytes[i] != b'\n' {
                    if bytes[i] == b'\\' {
                        i += 1;
                    }
                    i += 1;
                }
            }
            b'{' => {
                start.get_or_insert(i);
                depth += 1;
                opened = true;
            }
            b'}' => {
                if depth > 0 {
                    depth -= 1;
                    if depth == 0 {
                        if let Some(s) = start.take() {
                            out.push((s, i + 1));
                        }
                        opened = false;
                    }
                } else if let Some(s) = start.take() {
                    out.push((s, i));
                }
            }
            b'\n' if depth == 0 && !opened => {
                // A line-ended item, unless the next non-blank line continues
                // it with `{` (a block opened on the following line).
                let next = text[i..to].trim_start();
                let continues = next.starts_with('{') || (top_level && !starts_item(next));
                if !continues {
                    if let Some(s) = start.take() {
                        out.push((s, i));
                    }
                }
            }
            c if !c.is_ascii_whitespace() => {
                start.get_or_insert(i);
            }
            _ => {}
        }
        i += 1;
    }
    if let Some(s) = start {
        out.push((s, to.min(text.len())));
    }
    out
}

fn starts_item(s: &str) -> bool {
    ["import", "allow_transfer", "time_profile", "module", "flow"]
        .iter()
        .any(|k| {
            s.starts_with(k) && !s[k.len()..].starts_with(|c: char| c.is_alphanumeric() || c == '_')
        })
        || s.is_empty()
}

/// Maps a pest error onto a V0001 diagnostic that says in words what was expected.
fn syntax_error(
    file: FileId,
    text: &str,
    offset: usize,
    e: &pest::error::Error<Rule>,
) -> Diagnostic {
    use pest::error::{ErrorVariant, InputLocation};
    let pos = match e.location {
        InputLocation::Pos(p) => p,
        InputLocation::Span((s, _)) => s,
    };
    let found = describe_found(&text[pos.min(text.len())..]);
    let mut expected: Vec<String> = match &e.variant {
        ErrorVariant::ParsingError { positives, .. } => {
            let mut v: Vec<String> = positives
                .iter()
                .filter_map(|r| rule_words(*r))
                .map(String::from)
                .collect();
            v.sort();
            v.dedup();
            v
        }
        ErrorVariant::CustomError { message } => vec![message.clone()],
    };
    if expected.is_empty() {
        expected.push("something else".into());
    }
    let list = join_or(&expected);
    let len = found
        .1
        .max(1)
        .min(text.len().saturating_sub(pos))
        .max(if pos < text.len() { 1 } else { 0 });
    let span = Span::new(offset + pos, offset + pos + len);
    let help = syntax_help(&expected, &text[pos.min(text.len())..]);
    Diagnostic::new(
        Code::Syntax,
        file,
        span,
        format!("expected {list}, found {}", found.0),
    )
    .label(format!("expected {list}"))
    .help(help)
}

/// A short description of what stands at the error position, and its length.
fn describe_found(rest: &str) -> (String, usize) {
    let rest_line = rest.split('\n').next().unwrap_or("");
    if rest.is_empty() {
        return ("the end of the file".into(), 0);
    }
    if rest_line.trim().is_empty() {
        return ("the end of the line".into(), 1);
    }
    let word: String = rest_line
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == '$')
        .collect();
    if !word.is_empty() {
        return (format!("`{word}`"), word.len());
    }
    let c = rest_line.chars().next().unwrap_or(' ');
    (format!("`{c}`"), c.len_utf8())
}

fn join_or(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
    }
}

/// What a grammar rule is, in words a flow author understands.
fn rule_words(r: Rule) -> Option<&'static str> {
    Some(match r {
        Rule::EOI => "the end of the file",
        Rule::import => "`import`",
        Rule::allow_transfer => "`allow_transfer`",
        Rule::time_profile => "`time_profile`",
        Rule::module => "`module`",
        Rule::flow => "`flow`",
        Rule::string | Rule::string_inner => "a string in double quotes",
        Rule::ident | Rule::word => "a name",
        Rule::name_ref => "a name",
        Rule::expr => "an expression",
        Rule::int => "a number",
        Rule::bool => "`true` or `false`",
        Rule::sys_var => "a `$VARIABLE`",
        Rule::call => "a function call",
        Rule::duration => "a duration such as `5s` or `500ms`",
        Rule::block => "a `{ … }` block",
        Rule::node => "a node (`ACTION NAME { … }`)",
        Rule::start_point => "a start point (`start KIND \"NAME\" -> NODE`)",
        Rule::var_decl => "a variable (`var NAME: TYPE = VALUE`)",
        Rule::on_clause => "`on RESULT -> NODE`",
        Rule::when_clause => "`when CONDITION -> NODE`",
        Rule::else_clause => "`else -> NODE`",
        Rule::prompt_param => "`prompt \"file.wav\"`",
        Rule::say_param => "`say digits|number|time|date VALUE`",
        Rule::speak_param => "`speak \"text\"`",
        Rule::module_param => "`module NAME(…)`",
        Rule::start_param => "`start KIND \"NAME\"`",
        Rule::assignment => "an assignment (`NAME = VALUE`)",
        Rule::param => "a parameter (`NAME VALUE`)",
        Rule::target => "a node name, `hangup` or `return EXIT`",
        Rule::return_target => "`return EXIT`",
        Rule::result_label => "a result name or a key in quotes",
        Rule::param_decl => "a parameter (`name: type`)",
        Rule::exit_list => "`-> exit | exit`",
        Rule::arg => "an argument (`name = value`)",
        Rule::tp_except => "`except DATE`",
        Rule::tp_rule => "a day rule such as `mon..fri 08:30..17:30`",
        Rule::weekday | Rule::weekday_range => "a weekday (`mon` … `sun`)",
        Rule::date | Rule::date_range => "a date (`YYYY-MM-DD`)",
        Rule::time_range => "a time range (`HH:MM..HH:MM`)",
        Rule::clock => "a time (`HH:MM`)",
        Rule::add
        | Rule::sub
        | Rule::mul
        | Rule::div
        | Rule::rem
        | Rule::eq
        | Rule::ne
        | Rule::le
        | Rule::ge
        | Rule::lt
        | Rule::gt
        | Rule::and
        | Rule::or
        | Rule::starts_with
        | Rule::ends_with
        | Rule::contains => "an operator",
        Rule::neg | Rule::not => "`-` or `not`",
        Rule::kw_start => "`start`",
        Rule::kw_var => "`var`",
        Rule::reserved_stmt => "`on`, `when` or `else`",
        Rule::kw_prompt => "`prompt`",
        Rule::kw_say => "`say`",
        Rule::kw_speak => "`speak`",
        Rule::kw_module => "`module`",
        Rule::kw_import => "`import`",
        Rule::kw_allow_transfer => "`allow_transfer`",
        Rule::kw_time_profile => "`time_profile`",
        Rule::kw_flow => "`flow`",
        Rule::kw_except => "`except`",
        _ => return None,
    })
}

fn syntax_help(expected: &[String], rest: &str) -> String {
    let line = rest.split('\n').next().unwrap_or("");
    if line.starts_with('"') && line[1..].find('"').is_none() {
        return "close the string with `\"` on the same line".into();
    }
    if expected.iter().any(|e| e.contains("on RESULT")) && line.starts_with("->") {
        return "connect a result with `on RESULT -> NODE`, e.g. `on next -> goodbye`".into();
    }
    if line.starts_with('=') && expected.iter().any(|e| e == "an operator") {
        return "compare with `==`; assign only in a `set` node".into();
    }
    if expected.iter().any(|e| e.contains("block"))
        || (line.starts_with('}') && expected.iter().any(|e| e.starts_with("the end")))
    {
        return "check that every `{` has its `}`".into();
    }
    format!(
        "write {} here (see docs/LANGUAGE.md for the syntax)",
        join_or(expected)
    )
}

static PRATT: LazyLock<PrattParser<Rule>> = LazyLock::new(|| {
    PrattParser::new()
        .op(Op::infix(Rule::or, Assoc::Left))
        .op(Op::infix(Rule::and, Assoc::Left))
        .op(Op::prefix(Rule::not))
        .op(Op::infix(Rule::eq, Assoc::Left)
            | Op::infix(Rule::ne, Assoc::Left)
            | Op::infix(Rule::lt, Assoc::Left)
            | Op::infix(Rule::le, Assoc::Left)
            | Op::infix(Rule::gt, Assoc::Left)
            | Op::infix(Rule::ge, Assoc::Left))
        .op(Op::infix(Rule::starts_with, Assoc::Left)
            | Op::infix(Rule::ends_with, Assoc::Left)
            | Op::infix(Rule::contains, Assoc::Left))
        .op(Op::infix(Rule::add, Assoc::Left) | Op::infix(Rule::sub, Assoc::Left))
        .op(Op::infix(Rule::mul, Assoc::Left)
            | Op::infix(Rule::div, Assoc::Left)
            | Op::infix(Rule::rem, Assoc::Left))
        .op(Op::prefix(Rule::neg))
});

struct Builder {
    file: FileId,
    diags: Vec<Diagnostic>,
    /// Added to every span (non-zero while building a re-parsed chunk).
    offset: usize,
    /// Inside an expression (nested ones are not size-checked again).
    in_expr: bool,
}

impl Builder {
    fn span(&self, s: pest::Span<'_>) -> Span {
        Span::from(s).shifted(self.offset)
    }

    fn ident(&self, p: Pair<Rule>) -> Ident {
        Ident {
            text: p.as_str().to_string(),
            span: self.span(p.as_span()),
        }
    }

    fn item(&mut self, p: Pair<Rule>, out: &mut ast::File) {
        match p.as_rule() {
            Rule::import => {
                let s = self.string(kids(p).next().expect("import has a string"));
                out.imports.push(s);
            }
            Rule::allow_transfer => {
                for s in kids(p) {
                    let s = self.string(s);
                    out.allow_transfer.push(s);
                }
            }
            Rule::time_profile => {
                let tp = self.time_profile(p);
                out.profiles.push(tp);
            }
            Rule::module => {
                let m = self.module(p);
                out.modules.push(m);
            }
            Rule::flow => {
                let f = self.flow(p);
                out.flows.push(f);
            }
            _ => {}
        }
    }

    fn string(&mut self, p: Pair<Rule>) -> StrLit {
        let span = self.span(p.as_span());
        let raw = kids(p).next().map_or("", |i| i.as_str());
        let mut value = String::with_capacity(raw.len());
        let mut chars = raw.chars();
        while let Some(c) = chars.next() {
            if c != '\\' {
                value.push(c);
                continue;
            }
            match chars.next() {
                Some('"') => value.push('"'),
                Some('\\') => value.push('\\'),
                Some('n') => value.push('\n'),
                Some('t') => value.push('\t'),
                other => {
                    let shown = other.map_or(String::new(), String::from);
                    self.diags.push(
                        Diagnostic::new(Code::BadLiteral, self.file, span, format!("unknown escape `\\{shown}` in string"))
                            .label("unknown escape")
                            .help("the escapes are `\\\"`, `\\\\`, `\\n` and `\\t`; write `\\\\` for a backslash"),
                    );
                }
            }
        }
        StrLit { value, span }
    }

    fn time_profile(&mut self, p: Pair<Rule>) -> TimeProfile {
        let span = self.span(p.as_span());
        let mut inner = kids(p);
        let name = self.ident(inner.next().expect("profile name"));
        let mut rules = Vec::new();
        for r in inner {
            let rspan = self.span(r.as_span());
            let except = r.as_rule() == Rule::tp_except;
            let mut days = Vec::new();
            let mut times = Vec::new();
            for part in kids(r) {
                match part.as_rule() {
                    Rule::weekday_range => {
                        let s = self.span(part.as_span());
                        let mut w = kids(part).map(|d| weekday_index(d.as_str()));
                        let from = w.next().unwrap_or(0);
                        let to = w.next().unwrap_or(from);
                        days.push(DaySpec::Weekdays { from, to, span: s });
                    }
                    Rule::date_range => {
                        let s = self.span(part.as_span());
                        let mut d = kids(part).map(|d| self.date(d));
                        let from = d.next().expect("date range has a date");
                        let to = d.next().unwrap_or(from);
                        days.push(DaySpec::Dates { from, to, span: s });
                    }
                    Rule::time_range => {
                        let mut c = kids(part).map(|c| self.clock(c));
                        let from = c.next().expect("time range start");
                        let to = c.next().expect("time range end");
                        times.push(TimeRange { from, to });
                    }
                    _ => {}
                }
            }
            rules.push(ProfileRule {
                except,
                days,
                times,
                span: rspan,
            });
        }
        TimeProfile { name, rules, span }
    }

    fn date(&self, p: Pair<Rule>) -> DateLit {
        let s = p.as_str();
        let span = self.span(p.as_span());
        // The grammar guarantees `DDDD-DD-DD`; range checks happen in `check`.
        DateLit {
            year: s[0..4].parse().unwrap_or(0),
            month: s[5..7].parse().unwrap_or(0),
            day: s[8..10].parse().unwrap_or(0),
            span,
        }
    }

    fn clock(&self, p: Pair<Rule>) -> ClockLit {
        let s = p.as_str();
        let (h, m) = s.split_once(':').unwrap_or(("0", "0"));
        ClockLit {
            hour: h.parse().unwrap_or(99),
            minute: m.parse().unwrap_or(99),
            span: self.span(p.as_span()),
        }
    }

    fn flow(&mut self, p: Pair<Rule>) -> Flow {
        let span = self.span(p.as_span());
        let mut inner = kids(p);
        let name = self.ident(inner.next().expect("flow name"));
        let mut starts = Vec::new();
        let mut body = Body::default();
        for it in inner {
            match it.as_rule() {
                Rule::start_point => starts.push(self.start_point(it)),
                Rule::var_decl => body.vars.push(self.var_decl(it)),
                Rule::node => body.nodes.push(self.node(it)),
                _ => {}
            }
        }
        Flow {
            name,
            starts,
            body,
            span,
        }
    }

    fn module(&mut self, p: Pair<Rule>) -> Module {
        let span = self.span(p.as_span());
        let mut inner = kids(p);
        let name = self.ident(inner.next().expect("module name"));
        let mut params = Vec::new();
        let mut exits = Vec::new();
        let mut body = Body::default();
        for it in inner {
            match it.as_rule() {
                Rule::param_decl => {
                    let mut pi = kids(it);
                    let name = self.ident(pi.next().expect("param name"));
                    let ty = self.ident(pi.next().expect("param type"));
                    params.push(ParamDecl { name, ty });
                }
                Rule::exit_list => exits.extend(kids(it).map(|e| self.ident(e))),
                Rule::var_decl => body.vars.push(self.var_decl(it)),
                Rule::node => body.nodes.push(self.node(it)),
                _ => {}
            }
        }
        Module {
            name,
            params,
            exits,
            body,
            span,
        }
    }

    fn start_point(&mut self, p: Pair<Rule>) -> StartPoint {
        let span = self.span(p.as_span());
        let mut inner = kids(p);
        let kind = self.ident(inner.next().expect("start kind"));
        let pattern = self.string(inner.next().expect("start pattern"));
        let target = self.ident(inner.next().expect("start target"));
        StartPoint {
            kind,
            pattern,
            target,
            span,
        }
    }

    fn var_decl(&mut self, p: Pair<Rule>) -> VarDecl {
        let span = self.span(p.as_span());
        let mut inner = kids(p);
        let name = self.ident(inner.next().expect("var name"));
        let ty = self.ident(inner.next().expect("var type"));
        let init = self.expr(inner.next().expect("var init"));
        VarDecl {
            name,
            ty,
            init,
            span,
        }
    }

    fn node(&mut self, p: Pair<Rule>) -> Node {
        let span = self.span(p.as_span());
        let mut inner = kids(p);
        let action = self.ident(inner.next().expect("node action"));
        let name = self.ident(inner.next().expect("node name"));
        let mut stmts = Vec::new();
        if let Some(block) = inner.next() {
            for s in kids(block) {
                stmts.push(self.stmt(s));
            }
        }
        Node {
            action,
            name,
            stmts,
            span,
        }
    }

    fn target(&self, p: Pair<Rule>) -> Target {
        let t = kids(p).next().expect("target has one child");
        match t.as_rule() {
            Rule::return_target => Target::Return(self.ident(kids(t).next().expect("exit name"))),
            _ => Target::Node(self.ident(t)),
        }
    }

    fn stmt(&mut self, p: Pair<Rule>) -> Stmt {
        let span = self.span(p.as_span());
        let rule = p.as_rule();
        let mut inner = kids(p);
        match rule {
            Rule::on_clause => {
                let l = kids(inner.next().expect("result label"))
                    .next()
                    .expect("label child");
                let label = match l.as_rule() {
                    Rule::string => ResultLabel::Keys(self.string(l)),
                    _ => ResultLabel::Name(self.ident(l)),
                };
                let target = self.target(inner.next().expect("on target"));
                Stmt::On {
                    label,
                    target,
                    span,
                }
            }
            Rule::when_clause => {
                let cond = self.expr(inner.next().expect("when condition"));
                let target = self.target(inner.next().expect("when target"));
                Stmt::When { cond, target, span }
            }
            Rule::else_clause => Stmt::Else {
                target: self.target(inner.next().expect("else target")),
                span,
            },
            Rule::prompt_param => {
                let items = inner
                    .map(|i| match i.as_rule() {
                        Rule::string => {
                            let s = self.string(i);
                            Expr {
                                kind: ExprKind::Str(s.value),
                                span: s.span,
                            }
                        }
                        _ => self.expr(i),
                    })
                    .collect();
                Stmt::Prompt { items, span }
            }
            Rule::say_param => {
                let mode = self.ident(inner.next().expect("say mode"));
                let value = self.expr(inner.next().expect("say value"));
                Stmt::Say { mode, value, span }
            }
            Rule::speak_param => Stmt::Speak {
                text: self.expr(inner.next().expect("speak text")),
                span,
            },
            Rule::module_param => {
                let module = self.ident(inner.next().expect("module name"));
                let args = inner
                    .map(|a| {
                        let mut ai = kids(a);
                        let name = self.ident(ai.next().expect("arg name"));
                        let value = self.expr(ai.next().expect("arg value"));
                        Arg { name, value }
                    })
                    .collect();
                Stmt::Module { module, args, span }
            }
            Rule::start_param => {
                let mut parts: Vec<Pair<Rule>> = inner.collect();
                let name = self.string(parts.pop().expect("start name"));
                let kind = parts.pop().map(|k| self.ident(k));
                Stmt::Start { kind, name, span }
            }
            Rule::assignment => {
                let lhs = inner.next().expect("assignment target");
                let target = self.atom(lhs);
                let value = self.expr(inner.next().expect("assignment value"));
                Stmt::Assign {
                    target,
                    value,
                    span,
                }
            }
            Rule::param => {
                let name = self.ident(inner.next().expect("param name"));
                let v = inner.next().expect("param value");
                let value = match v.as_rule() {
                    Rule::duration => {
                        ParamValue::Duration(self.duration(&v), self.span(v.as_span()))
                    }
                    _ => ParamValue::Expr(self.expr(v)),
                };
                Stmt::Param { name, value, span }
            }
            other => unreachable!("grammar produced {other:?} as a statement"),
        }
    }

    fn duration(&mut self, p: &Pair<Rule>) -> u64 {
        let s = p.as_str();
        let digits_end = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
        let (num, unit) = s.split_at(digits_end);
        let factor: u64 = match unit {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            _ => 3_600_000,
        };
        match num.parse::<u64>().ok().and_then(|n| n.checked_mul(factor)) {
            Some(ms) if ms <= u32::MAX as u64 => ms,
            _ => {
                self.diags.push(
                    Diagnostic::new(
                        Code::BadLiteral,
                        self.file,
                        self.span(p.as_span()),
                        "duration is too long",
                    )
                    .label("too long")
                    .help("durations are at most 49 days; write a shorter one such as `30s`"),
                );
                0
            }
        }
    }

    fn expr(&mut self, p: Pair<Rule>) -> Expr {
        debug_assert_eq!(p.as_rule(), Rule::expr);
        if self.in_expr {
            return self.pratt(p.into_inner());
        }
        let span = self.span(p.as_span());
        if p.clone().into_inner().flatten().count() > MAX_EXPR_NODES {
            self.diags.push(
                Diagnostic::new(Code::Syntax, self.file, span, "expression is too long")
                    .label(format!("more than {MAX_EXPR_NODES} parts"))
                    .help("split it across several assignments in a `set` node"),
            );
            return Expr {
                kind: ExprKind::Error,
                span,
            };
        }
        self.in_expr = true;
        let e = self.pratt(p.into_inner());
        self.in_expr = false;
        e
    }

    fn pratt(&mut self, pairs: Pairs<Rule>) -> Expr {
        // PrattParser's closures each borrow `self`; share it through a RefCell.
        let this = std::cell::RefCell::new(self);
        PRATT
            .map_primary(|p| this.borrow_mut().atom(p))
            .map_prefix(|op, e| {
                let span = this.borrow().span(op.as_span()).to(e.span);
                let op = if op.as_rule() == Rule::neg {
                    UnOp::Neg
                } else {
                    UnOp::Not
                };
                Expr {
                    kind: ExprKind::Unary(op, Box::new(e)),
                    span,
                }
            })
            .map_infix(|l, op, r| {
                let span = l.span.to(r.span);
                let op = match op.as_rule() {
                    Rule::add => BinOp::Add,
                    Rule::sub => BinOp::Sub,
                    Rule::mul => BinOp::Mul,
                    Rule::div => BinOp::Div,
                    Rule::rem => BinOp::Rem,
                    Rule::eq => BinOp::Eq,
                    Rule::ne => BinOp::Ne,
                    Rule::lt => BinOp::Lt,
                    Rule::le => BinOp::Le,
                    Rule::gt => BinOp::Gt,
                    Rule::ge => BinOp::Ge,
                    Rule::and => BinOp::And,
                    Rule::or => BinOp::Or,
                    Rule::starts_with => BinOp::StartsWith,
                    Rule::ends_with => BinOp::EndsWith,
                    _ => BinOp::Contains,
                };
                Expr {
                    kind: ExprKind::Binary(op, Box::new(l), Box::new(r)),
                    span,
                }
            })
            .parse(pairs)
    }

    fn atom(&mut self, p: Pair<Rule>) -> Expr {
        let span = self.span(p.as_span());
        let kind = match p.as_rule() {
            Rule::expr => return self.expr(p),
            Rule::string => ExprKind::Str(self.string(p).value),
            Rule::int => match p.as_str().parse::<i64>() {
                Ok(n) => ExprKind::Int(n),
                Err(_) => {
                    self.diags.push(
                        Diagnostic::new(Code::BadLiteral, self.file, span, "number is too large")
                            .label("does not fit in 64 bits")
                            .help("numbers are 64-bit integers; keep long digit strings such as phone numbers in quotes"),
                    );
                    ExprKind::Error
                }
            },
            Rule::bool => ExprKind::Bool(p.as_str() == "true"),
            Rule::sys_var => ExprKind::SysVar(p.as_str()[1..].to_string()),
            Rule::name_ref => {
                let mut parts: Vec<Ident> = kids(p).map(|i| self.ident(i)).collect();
                let last = parts.pop().expect("name_ref has an ident");
                ExprKind::Name(parts.pop(), last)
            }
            Rule::call => {
                let mut inner = kids(p);
                let name = self.ident(inner.next().expect("function name"));
                let args = inner.map(|a| self.expr(a)).collect();
                ExprKind::Call(name, args)
            }
            other => unreachable!("grammar produced {other:?} as a primary"),
        };
        Expr { kind, span }
    }
}

/// The children of a pair without the keyword tokens (`kw_*`), which carry no data.
fn kids(p: Pair<'_, Rule>) -> impl Iterator<Item = Pair<'_, Rule>> {
    p.into_inner().filter(|c| {
        !matches!(
            c.as_rule(),
            Rule::kw_start
                | Rule::kw_var
                | Rule::kw_prompt
                | Rule::kw_say
                | Rule::kw_speak
                | Rule::kw_module
                | Rule::kw_import
                | Rule::kw_allow_transfer
                | Rule::kw_time_profile
                | Rule::kw_flow
                | Rule::kw_except
        )
    })
}

fn weekday_index(s: &str) -> u8 {
    ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
        .iter()
        .position(|d| *d == s)
        .unwrap_or(0) as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_ok(src: &str) -> ast::File {
        let (f, d) = parse(FileId(0), src);
        assert!(d.is_empty(), "unexpected diagnostics: {d:#?}");
        f
    }

    #[test]
    fn parses_design_example_shapes() {
        let f = parse_ok(
            r#"
            import "std/mailbox.vflow"
            allow_transfer "2xxx" "0"
            time_profile office_hours {
              mon..fri 08:30..17:30
              sat 09:00..12:00
              except 2026-12-25, 2026-12-26
            }
            flow reception {
              start auto_attendant "Reception" -> hours
              var attempts: int = 0
              switch hours {
                when in_profile(office_hours) -> welcome
                when $CLI starts_with "0044" -> welcome
                else -> bye
              }
              menu welcome { prompt "welcome.wav" "options.wav" timeout 5s retries 2 on "1" -> bye on timeout -> welcome }
              set count_try { attempts = attempts + 1  $CP1 = "tries:" + str(attempts)  on next -> check }
              test check { if attempts >= 3  on true -> bye  on false -> welcome }
              call c { module mailbox.leave(mailbox = $TARGET) on done -> bye }
              play closed { prompt "closed.wav"  say digits $CLI  on next -> bye }
              hangup bye
            }
            "#,
        );
        assert_eq!(f.imports[0].value, "std/mailbox.vflow");
        assert_eq!(f.allow_transfer.len(), 2);
        assert_eq!(f.profiles[0].rules.len(), 3);
        assert!(f.profiles[0].rules[2].except);
        let flow = &f.flows[0];
        assert_eq!(flow.starts[0].kind.text, "auto_attendant");
        assert_eq!(flow.body.nodes.len(), 7);
        assert_eq!(flow.body.nodes[6].action.text, "hangup");
        assert!(flow.body.nodes[6].stmts.is_empty());
    }

    #[test]
    fn precedence() {
        let f = parse_ok(
            "flow f { test t { if not 1 + 2 * 3 == 7 and true or false on true -> hangup } }",
        );
        let Stmt::Param {
            value: ParamValue::Expr(e),
            ..
        } = &f.flows[0].body.nodes[0].stmts[0]
        else {
            panic!()
        };
        // ((not ((1 + (2*3)) == 7)) and true) or false
        let ExprKind::Binary(BinOp::Or, l, _) = &e.kind else {
            panic!("{e:?}")
        };
        let ExprKind::Binary(BinOp::And, l, _) = &l.kind else {
            panic!()
        };
        let ExprKind::Unary(UnOp::Not, inner) = &l.kind else {
            panic!()
        };
        assert!(matches!(inner.kind, ExprKind::Binary(BinOp::Eq, _, _)));
    }

    #[test]
    fn module_with_exits_and_return() {
        let f = parse_ok(
            "module m(a: string, b: int) -> done | failed { play p { prompt \"x.wav\" on next -> return done } }",
        );
        let m = &f.modules[0];
        assert_eq!(m.params.len(), 2);
        assert_eq!(
            m.exits.iter().map(|e| e.text.as_str()).collect::<Vec<_>>(),
            ["done", "failed"]
        );
        let Stmt::On {
            target: Target::Return(e),
            ..
        } = &m.body.nodes[0].stmts[1]
        else {
            panic!()
        };
        assert_eq!(e.text, "done");
    }

    #[test]
    fn durations_and_keys() {
        let f = parse_ok(
            r#"flow f { menu m { timeout 500ms on "12#" -> hangup on "?" -> hangup on true -> hangup } }"#,
        );
        let n = &f.flows[0].body.nodes[0];
        assert!(matches!(
            n.stmts[0],
            Stmt::Param {
                value: ParamValue::Duration(500, _),
                ..
            }
        ));
        assert!(
            matches!(&n.stmts[1], Stmt::On { label: ResultLabel::Keys(k), .. } if k.value == "12#")
        );
    }

    #[test]
    fn reports_every_broken_item() {
        let src = "flow a {\n  play p { prompt }\n  hangup h\n}\nflow b {\n  menu m { on \"1\" - x }\n}\nflow c { hangup ok }\n";
        let (f, d) = parse(FileId(0), src);
        assert_eq!(d.len(), 2, "{d:#?}");
        assert!(d.iter().all(|d| d.code == Code::Syntax));
        // The good flow and the good nodes of broken flows survive.
        assert_eq!(f.flows.len(), 3);
        assert_eq!(f.flows[0].body.nodes.len(), 1);
    }

    #[test]
    fn pathological_nesting_is_an_error_not_a_crash() {
        let deep = format!(
            "flow f {{ set s {{ $CP1 = {}1{} on next -> hangup }} }}",
            "(".repeat(100_000),
            ")".repeat(100_000)
        );
        let (_, d) = parse(FileId(0), &deep);
        assert_eq!(d[0].code, Code::Syntax);
        let long = format!(
            "flow f {{ set s {{ $CP1 = str(1{}) on next -> hangup }} }}",
            " + 1".repeat(50_000)
        );
        let (_, d) = parse(FileId(0), &long);
        assert!(d.iter().any(|d| d.message.contains("too long")), "{d:?}");
    }

    #[test]
    fn unterminated_string_is_explained() {
        let (_, d) = parse(FileId(0), "flow f {\n  play p { prompt \"a.wav }\n}\n");
        assert_eq!(d[0].code, Code::Syntax);
        assert!(!d[0].message.is_empty());
    }
}
