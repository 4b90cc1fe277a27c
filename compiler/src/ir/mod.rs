//! The IR: the compiled form of a checked program, and what both engines
//! (the interpreter and the JIT) execute. docs/IR.md is the reference.
//!
//! The IR is explicit where the language is implicit: every parameter has its
//! value (defaults filled in), every result has an edge (an unconnected result
//! becomes what the action table says it does), every variable is a typed slot,
//! and every node keeps the source line it came from.
//!
//! Invariant: an IR that passed [`verify::verify`] never makes an engine index
//! out of bounds or see an ill-typed value; engines may rely on it.

pub mod lower;
pub mod text;
pub mod verify;

pub use lower::{LowerError, lower};
pub use verify::{VerifyError, verify};

use serde::{Deserialize, Serialize};

/// The version of the IR format; a bundle or text form with another version is refused.
pub const IR_VERSION: u32 = 1;

/// A whole compiled program: every flow of the root files, every module they
/// can reach, the time profiles, and the start points.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Program {
    pub version: u32,
    /// Source file names, for the source map (`Unit::file`).
    pub files: Vec<String>,
    pub profiles: Vec<Profile>,
    pub units: Vec<Unit>,
    /// Start points, in source order.
    pub entries: Vec<Entry>,
}

/// `start KIND "PATTERN" -> NODE`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub kind: String,
    pub pattern: String,
    pub unit: u32,
    pub node: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UnitKind {
    Flow,
    Module,
}

/// A flow or a module.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Unit {
    pub kind: UnitKind,
    /// A flow's name, or a module's `namespace.name` (the namespace is its file's stem).
    pub name: String,
    /// Index into `Program::files`.
    pub file: u32,
    pub line: u32,
    /// The first `params` locals are the module's parameters, in order.
    pub params: u32,
    pub locals: Vec<Local>,
    /// Initial values of the `var` locals, run in order when a frame starts.
    pub init: Vec<Init>,
    /// Module exits (`return EXIT` targets), by index.
    pub exits: Vec<String>,
    /// The `allow_transfer` patterns of the unit's file, for computed targets.
    pub allow_transfer: Vec<String>,
    /// Node 0 is where a module starts.
    pub nodes: Vec<Node>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Local {
    pub name: String,
    pub ty: Ty,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Init {
    pub slot: u32,
    pub value: Expr,
    pub line: u32,
}

/// A value type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Ty {
    Str,
    Int,
    Bool,
}

impl Ty {
    pub fn name(self) -> &'static str {
        match self {
            Ty::Str => "string",
            Ty::Int => "int",
            Ty::Bool => "bool",
        }
    }
    pub fn from_name(s: &str) -> Option<Ty> {
        crate::actions::Ty::from_name(s).map(Ty::from)
    }
    /// The value a slot of this type holds before anything is assigned.
    pub fn zero(self) -> Value {
        match self {
            Ty::Str => Value::Str(String::new()),
            Ty::Int => Value::Int(0),
            Ty::Bool => Value::Bool(false),
        }
    }
}

impl From<crate::actions::Ty> for Ty {
    fn from(t: crate::actions::Ty) -> Ty {
        match t {
            crate::actions::Ty::Str => Ty::Str,
            crate::actions::Ty::Int => Ty::Int,
            crate::actions::Ty::Bool => Ty::Bool,
        }
    }
}

/// A runtime value.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Value {
    Str(String),
    Int(i64),
    Bool(bool),
}

impl Value {
    pub fn ty(&self) -> Ty {
        match self {
            Value::Str(_) => Ty::Str,
            Value::Int(_) => Ty::Int,
            Value::Bool(_) => Ty::Bool,
        }
    }
    /// The value as `str()` renders it.
    pub fn to_text(&self) -> String {
        match self {
            Value::Str(s) => s.clone(),
            Value::Int(i) => i.to_string(),
            Value::Bool(b) => b.to_string(),
        }
    }
}

/// One node: pure assignments, then exactly one of: a jump, a branch, a
/// module call, an effect, or a restart.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Node {
    pub name: String,
    /// 1-based line of the node in its unit's file (the source map).
    pub line: u32,
    /// Pure assignments, run in order before `kind` (the `set` action).
    pub ops: Vec<Assign>,
    /// Where a runtime fault in this node goes: the `failure` result when the
    /// source connects it; `None` ends the call with a `fault` effect.
    pub on_fault: Option<Edge>,
    pub kind: NodeKind,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Assign {
    pub place: Place,
    pub value: Expr,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum NodeKind {
    /// Continue at the edge (`set`).
    Goto(Edge),
    /// The first arm whose condition holds, else `otherwise` (`test`, `switch`).
    Branch { arms: Vec<Arm>, otherwise: Edge },
    /// Push a frame for `unit` with the arguments as its parameters; when it
    /// returns exit `i`, continue at `exits[i]`.
    Call {
        unit: u32,
        args: Vec<Expr>,
        exits: Vec<Edge>,
    },
    /// Hand an effect to the outside world and continue by its outcome.
    Effect(EffectNode),
    /// Restart the call at the start point that a call of `kind` for `name`
    /// would enter by (`goto_start`); `$TARGET` becomes `name`.
    GotoStart { kind: String, name: String },
    /// Restart the call at the start point it entered by (`home`).
    Home,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Arm {
    pub cond: Expr,
    pub edge: Edge,
}

/// Where control goes next.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Edge {
    /// A node of the same unit.
    Node(u32),
    /// End the call (the `hangup` target, and most unconnected results).
    Hangup,
    /// Leave the module by exit `i`.
    Return(u32),
    /// The result is switched off (an unconnected `key` result: no barge-in).
    Off,
}

/// An effectful node: the action, its prompts, every parameter's value
/// (positional, in the action table's order, `into` parameters excluded), the
/// variable an `into` parameter names, and one edge per result (positional,
/// in the action table's order).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EffectNode {
    pub action: Action,
    pub prompts: Vec<PromptExpr>,
    pub args: Vec<Expr>,
    pub into: Option<Place>,
    pub results: Vec<Edge>,
    /// Menu keys in source order (`on "1" -> …`); empty for other actions.
    pub keys: Vec<KeyEdge>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyEdge {
    pub keys: String,
    pub edge: Edge,
}

/// The actions that hand control to the outside world.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Play,
    Menu,
    Input,
    Hangup,
    LeaveMail,
    VerifyPin,
    MessageCount,
    PlayMessage,
    SaveMessage,
    DeleteMessage,
    RecordGreeting,
    SetGreeting,
    SetPin,
    Transfer,
    AssistedTransfer,
    Record,
    Email,
    Wait,
}

impl Action {
    pub const ALL: &'static [Action] = &[
        Action::Play,
        Action::Menu,
        Action::Input,
        Action::Hangup,
        Action::LeaveMail,
        Action::VerifyPin,
        Action::MessageCount,
        Action::PlayMessage,
        Action::SaveMessage,
        Action::DeleteMessage,
        Action::RecordGreeting,
        Action::SetGreeting,
        Action::SetPin,
        Action::Transfer,
        Action::AssistedTransfer,
        Action::Record,
        Action::Email,
        Action::Wait,
    ];

    /// The action's name in the language and the action table.
    pub fn name(self) -> &'static str {
        match self {
            Action::Play => "play",
            Action::Menu => "menu",
            Action::Input => "input",
            Action::Hangup => "hangup",
            Action::LeaveMail => "leave_mail",
            Action::VerifyPin => "verify_pin",
            Action::MessageCount => "message_count",
            Action::PlayMessage => "play_message",
            Action::SaveMessage => "save_message",
            Action::DeleteMessage => "delete_message",
            Action::RecordGreeting => "record_greeting",
            Action::SetGreeting => "set_greeting",
            Action::SetPin => "set_pin",
            Action::Transfer => "transfer",
            Action::AssistedTransfer => "assisted_transfer",
            Action::Record => "record",
            Action::Email => "email",
            Action::Wait => "wait",
        }
    }

    pub fn from_name(s: &str) -> Option<Action> {
        Action::ALL.iter().copied().find(|a| a.name() == s)
    }

    /// The action's entry in the action table.
    pub fn spec(self) -> &'static crate::actions::ActionSpec {
        crate::actions::action(self.name()).expect("every IR action is in the action table")
    }

    /// The parameters that `EffectNode::args` holds, in order (the action
    /// table's parameters without `into`).
    pub fn arg_specs(self) -> impl Iterator<Item = &'static crate::actions::ParamSpec> {
        self.spec()
            .params
            .iter()
            .filter(|p| !matches!(p.kind, crate::actions::ParamKind::Into(_)))
    }

    /// The type `into` writes, if the action has an `into` parameter.
    pub fn into_ty(self) -> Option<Ty> {
        self.spec().params.iter().find_map(|p| match p.kind {
            crate::actions::ParamKind::Into(t) => Some(Ty::from(t)),
            _ => None,
        })
    }

    /// Position of result `name` in `EffectNode::results`.
    pub fn result_index(self, name: &str) -> Option<usize> {
        self.spec().results.iter().position(|r| r.name == name)
    }
}

/// The type of an argument slot of an action parameter.
pub fn param_ty(kind: crate::actions::ParamKind) -> Ty {
    use crate::actions::ParamKind;
    match kind {
        ParamKind::Expr(t) | ParamKind::Into(t) => t.into(),
        ParamKind::Duration => Ty::Int,
        ParamKind::PromptFile => Ty::Str,
    }
}

/// One item of a node's prompt list, played in order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PromptExpr {
    /// A prompt file, by name.
    File(Expr),
    /// `say MODE EXPR`; the value is rendered with `str()`.
    Say(SayMode, Expr),
    /// Text to speech.
    Speak(Expr),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SayMode {
    Digits,
    Number,
    Time,
    Date,
}

impl SayMode {
    pub fn name(self) -> &'static str {
        match self {
            SayMode::Digits => "digits",
            SayMode::Number => "number",
            SayMode::Time => "time",
            SayMode::Date => "date",
        }
    }
    pub fn from_name(s: &str) -> Option<SayMode> {
        [
            SayMode::Digits,
            SayMode::Number,
            SayMode::Time,
            SayMode::Date,
        ]
        .into_iter()
        .find(|m| m.name() == s)
    }
}

/// A writable variable.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Place {
    /// A local slot of the current frame.
    Local(u32),
    /// `$CP0` … `$CP15`.
    Cp(u8),
    /// `user.NAME`, persistent and server-wide.
    User(String),
}

/// A pure expression. Every operator's operand types are fixed (see docs/IR.md);
/// faults (division by zero, overflow, bad `int()`) are values of `Err`, not panics.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Expr {
    Const(Value),
    Local(u32),
    Cp(u8),
    Sys(SysVar),
    User(String),
    Unary(UnOp, Box<Expr>),
    Binary(BinOp, Box<Expr>, Box<Expr>),
    Call(Builtin, Vec<Expr>),
    /// `in_profile(p)`: whether the call's clock is in profile `p`.
    InProfile(u32),
}

/// Read-only system variables, all strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SysVar {
    Cli,
    Ddi,
    Target,
    Key,
    CallerName,
    Time,
    Date,
    Day,
    CallId,
    Reason,
    Recording,
}

impl SysVar {
    pub const ALL: &'static [SysVar] = &[
        SysVar::Cli,
        SysVar::Ddi,
        SysVar::Target,
        SysVar::Key,
        SysVar::CallerName,
        SysVar::Time,
        SysVar::Date,
        SysVar::Day,
        SysVar::CallId,
        SysVar::Reason,
        SysVar::Recording,
    ];
    /// The name as written after `$`.
    pub fn name(self) -> &'static str {
        match self {
            SysVar::Cli => "CLI",
            SysVar::Ddi => "DDI",
            SysVar::Target => "TARGET",
            SysVar::Key => "KEY",
            SysVar::CallerName => "CALLER_NAME",
            SysVar::Time => "TIME",
            SysVar::Date => "DATE",
            SysVar::Day => "DAY",
            SysVar::CallId => "CALL_ID",
            SysVar::Reason => "REASON",
            SysVar::Recording => "RECORDING",
        }
    }
    pub fn from_name(s: &str) -> Option<SysVar> {
        SysVar::ALL.iter().copied().find(|v| v.name() == s)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UnOp {
    /// int → int (faults on overflow)
    Neg,
    /// bool → bool
    Not,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BinOp {
    /// int + int (faults on overflow)
    Add,
    Sub,
    Mul,
    /// faults on division by zero and overflow
    Div,
    Rem,
    /// string + string
    Concat,
    /// same type on both sides
    Eq,
    Ne,
    /// int or string (lexicographic), same type on both sides
    Lt,
    Le,
    Gt,
    Ge,
    /// bool, short-circuit
    And,
    Or,
    /// strings
    StartsWith,
    EndsWith,
    Contains,
}

impl BinOp {
    pub const ALL: &'static [BinOp] = &[
        BinOp::Add,
        BinOp::Sub,
        BinOp::Mul,
        BinOp::Div,
        BinOp::Rem,
        BinOp::Concat,
        BinOp::Eq,
        BinOp::Ne,
        BinOp::Lt,
        BinOp::Le,
        BinOp::Gt,
        BinOp::Ge,
        BinOp::And,
        BinOp::Or,
        BinOp::StartsWith,
        BinOp::EndsWith,
        BinOp::Contains,
    ];
    pub fn name(self) -> &'static str {
        match self {
            BinOp::Add => "add",
            BinOp::Sub => "sub",
            BinOp::Mul => "mul",
            BinOp::Div => "div",
            BinOp::Rem => "rem",
            BinOp::Concat => "concat",
            BinOp::Eq => "eq",
            BinOp::Ne => "ne",
            BinOp::Lt => "lt",
            BinOp::Le => "le",
            BinOp::Gt => "gt",
            BinOp::Ge => "ge",
            BinOp::And => "and",
            BinOp::Or => "or",
            BinOp::StartsWith => "starts_with",
            BinOp::EndsWith => "ends_with",
            BinOp::Contains => "contains",
        }
    }
    pub fn from_name(s: &str) -> Option<BinOp> {
        BinOp::ALL.iter().copied().find(|o| o.name() == s)
    }
}

/// Built-in functions (see `actions::FUNCTIONS`; `str` takes any type).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Builtin {
    Str,
    Len,
    Int,
    Substr,
    Trim,
    Replace,
    IsDigits,
    Lower,
    Upper,
    Abs,
    Min,
    Max,
}

impl Builtin {
    pub const ALL: &'static [Builtin] = &[
        Builtin::Str,
        Builtin::Len,
        Builtin::Int,
        Builtin::Substr,
        Builtin::Trim,
        Builtin::Replace,
        Builtin::IsDigits,
        Builtin::Lower,
        Builtin::Upper,
        Builtin::Abs,
        Builtin::Min,
        Builtin::Max,
    ];
    pub fn name(self) -> &'static str {
        match self {
            Builtin::Str => "str",
            Builtin::Len => "len",
            Builtin::Int => "int",
            Builtin::Substr => "substr",
            Builtin::Trim => "trim",
            Builtin::Replace => "replace",
            Builtin::IsDigits => "is_digits",
            Builtin::Lower => "lower",
            Builtin::Upper => "upper",
            Builtin::Abs => "abs",
            Builtin::Min => "min",
            Builtin::Max => "max",
        }
    }
    pub fn from_name(s: &str) -> Option<Builtin> {
        Builtin::ALL.iter().copied().find(|b| b.name() == s)
    }
    /// Parameter types (`None`: any type, for `str`) and the result type.
    pub fn signature(self) -> (Vec<Option<Ty>>, Ty) {
        if self == Builtin::Str {
            return (vec![None], Ty::Str);
        }
        let (_, params, ret, _) = crate::actions::FUNCTIONS
            .iter()
            .find(|(n, ..)| *n == self.name())
            .expect("every builtin but str is in actions::FUNCTIONS");
        (
            params.iter().map(|t| Some(Ty::from(*t))).collect(),
            Ty::from(*ret),
        )
    }
}

/// A time profile as data: in when some non-`except` rule matches and no
/// `except` rule does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Profile {
    pub name: String,
    pub rules: Vec<ProfileRule>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProfileRule {
    pub except: bool,
    pub days: Vec<Days>,
    /// Minutes since midnight `[from, to)`; `from >= to` runs past midnight into
    /// the next day. Empty: all day.
    pub times: Vec<(u16, u16)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Days {
    /// `0 = mon … 6 = sun`, inclusive; `from > to` wraps over the week end.
    Weekdays { from: u8, to: u8 },
    /// Calendar dates, inclusive.
    Dates { from: Date, to: Date },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Date {
    pub year: i16,
    pub month: i8,
    pub day: i8,
}

impl Program {
    /// The unit by name (a flow's name or a module's `ns.name`).
    pub fn unit_by_name(&self, name: &str) -> Option<u32> {
        self.units
            .iter()
            .position(|u| u.name == name)
            .map(|i| i as u32)
    }

    /// The entry for a call of `kind` for `name`: the most specific matching
    /// pattern wins (an exact name over a prefix `20*` over `*`); among equals,
    /// the first in source order.
    pub fn find_entry(&self, kind: &str, name: &str) -> Option<usize> {
        let mut best: Option<(usize, usize)> = None;
        for (i, e) in self.entries.iter().enumerate() {
            if e.kind != kind {
                continue;
            }
            let Some(score) = pattern_score(&e.pattern, name) else {
                continue;
            };
            if best.is_none_or(|(_, s)| score > s) {
                best = Some((i, score));
            }
        }
        best.map(|(i, _)| i)
    }

    /// `file:line` of a node, for faults.
    pub fn source_of(&self, unit: u32, node: u32) -> (String, u32) {
        let u = &self.units[unit as usize];
        let file = self.files.get(u.file as usize).cloned().unwrap_or_default();
        let line = u.nodes.get(node as usize).map_or(u.line, |n| n.line);
        (file, line)
    }
}

/// How well a start pattern matches a name: `None` no match; exact matches
/// score highest, then longer literal prefixes before a `*`, then `x` digit
/// wildcards count less than literal characters.
pub fn pattern_score(pattern: &str, name: &str) -> Option<usize> {
    if pattern == name {
        return Some(usize::MAX);
    }
    let (body, star) = match pattern.strip_suffix('*') {
        Some(b) => (b, true),
        None => (pattern, false),
    };
    let nb: Vec<char> = name.chars().collect();
    let pb: Vec<char> = body.chars().collect();
    if nb.len() < pb.len() || (!star && nb.len() != pb.len()) {
        return None;
    }
    let mut score = 0;
    for (p, c) in pb.iter().zip(nb.iter()) {
        if p == c {
            score += 2;
        } else if (*p == 'x' || *p == 'X') && c.is_ascii_digit() {
            score += 1;
        } else {
            return None;
        }
    }
    Some(score + usize::from(!star))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(kind: &str, pattern: &str, node: u32) -> Entry {
        Entry {
            kind: kind.into(),
            pattern: pattern.into(),
            unit: 0,
            node,
        }
    }

    #[test]
    fn most_specific_start_point_wins() {
        let p = Program {
            version: IR_VERSION,
            files: vec![],
            profiles: vec![],
            units: vec![],
            entries: vec![
                entry("leave", "*", 0),
                entry("leave", "2001", 1),
                entry("leave", "20*", 2),
                entry("collect", "2001", 3),
                entry("leave", "2xxx", 4),
            ],
        };
        assert_eq!(p.find_entry("leave", "2001"), Some(1));
        assert_eq!(p.find_entry("leave", "2002"), Some(4));
        assert_eq!(p.find_entry("leave", "20"), Some(2));
        assert_eq!(p.find_entry("leave", "3000"), Some(0));
        assert_eq!(p.find_entry("collect", "2001"), Some(3));
        assert_eq!(p.find_entry("collect", "2002"), None);
        assert_eq!(p.find_entry("named", "x"), None);
    }
}
