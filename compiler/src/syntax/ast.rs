//! The syntax tree of one `.vflow` file, exactly as written, with spans.
//!
//! Nothing here is resolved or validated beyond the grammar: action names,
//! parameter names and result names are plain identifiers that `check`
//! validates against the action table (`crate::actions`).

use crate::source::Span;

/// An identifier (or any name) with the place it was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ident {
    pub text: String,
    pub span: Span,
}

/// A string literal, unescaped, with the span of the whole literal (quotes included).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StrLit {
    pub value: String,
    pub span: Span,
}

#[derive(Debug, Clone, Default)]
pub struct File {
    pub imports: Vec<StrLit>,
    pub allow_transfer: Vec<StrLit>,
    pub profiles: Vec<TimeProfile>,
    pub modules: Vec<Module>,
    pub flows: Vec<Flow>,
}

#[derive(Debug, Clone)]
pub struct TimeProfile {
    pub name: Ident,
    pub rules: Vec<ProfileRule>,
    pub span: Span,
}

/// One line of a time profile: when it is in, or an `except` line.
#[derive(Debug, Clone)]
pub struct ProfileRule {
    pub except: bool,
    pub days: Vec<DaySpec>,
    /// Empty means all day.
    pub times: Vec<TimeRange>,
    pub span: Span,
}

#[derive(Debug, Clone)]
pub enum DaySpec {
    /// Weekdays `0 = mon … 6 = sun`, inclusive; `from > to` wraps (`sat..mon`).
    Weekdays { from: u8, to: u8, span: Span },
    /// Calendar dates, inclusive, as written (`YYYY-MM-DD`); checked in `check`.
    Dates {
        from: DateLit,
        to: DateLit,
        span: Span,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DateLit {
    pub year: i16,
    pub month: i8,
    pub day: i8,
    pub span: Span,
}

/// `HH:MM..HH:MM`, minutes since midnight; `from > to` crosses midnight.
#[derive(Debug, Clone, Copy)]
pub struct TimeRange {
    pub from: ClockLit,
    pub to: ClockLit,
}

#[derive(Debug, Clone, Copy)]
pub struct ClockLit {
    pub hour: u32,
    pub minute: u32,
    pub span: Span,
}

#[derive(Debug, Clone)]
pub struct Flow {
    pub name: Ident,
    pub starts: Vec<StartPoint>,
    pub body: Body,
    pub span: Span,
}

#[derive(Debug, Clone)]
pub struct Module {
    pub name: Ident,
    pub params: Vec<ParamDecl>,
    pub exits: Vec<Ident>,
    pub body: Body,
    pub span: Span,
}

/// What flows and modules share: local variables and nodes, in source order.
#[derive(Debug, Clone, Default)]
pub struct Body {
    pub vars: Vec<VarDecl>,
    pub nodes: Vec<Node>,
}

#[derive(Debug, Clone)]
pub struct ParamDecl {
    pub name: Ident,
    pub ty: Ident,
}

#[derive(Debug, Clone)]
pub struct StartPoint {
    pub kind: Ident,
    pub pattern: StrLit,
    pub target: Ident,
    pub span: Span,
}

#[derive(Debug, Clone)]
pub struct VarDecl {
    pub name: Ident,
    pub ty: Ident,
    pub init: Expr,
    pub span: Span,
}

#[derive(Debug, Clone)]
pub struct Node {
    pub action: Ident,
    pub name: Ident,
    pub stmts: Vec<Stmt>,
    pub span: Span,
}

#[derive(Debug, Clone)]
pub enum Stmt {
    /// `on RESULT -> TARGET`
    On {
        label: ResultLabel,
        target: Target,
        span: Span,
    },
    /// `when EXPR -> TARGET` (switch)
    When {
        cond: Expr,
        target: Target,
        span: Span,
    },
    /// `else -> TARGET` (switch)
    Else { target: Target, span: Span },
    /// `prompt "a.wav" ("b" + $KEY + ".wav")`
    Prompt { items: Vec<Expr>, span: Span },
    /// `say digits|number|time|date EXPR`
    Say {
        mode: Ident,
        value: Expr,
        span: Span,
    },
    /// `speak EXPR`
    Speak { text: Expr, span: Span },
    /// `module NS.NAME(arg = expr, …)`
    Module {
        module: Ident,
        args: Vec<Arg>,
        span: Span,
    },
    /// `start KIND "NAME"` (goto_start)
    Start {
        kind: Option<Ident>,
        name: StrLit,
        span: Span,
    },
    /// `LVALUE = EXPR` (set)
    Assign {
        target: Expr,
        value: Expr,
        span: Span,
    },
    /// Any other `NAME VALUE` parameter.
    Param {
        name: Ident,
        value: ParamValue,
        span: Span,
    },
}

impl Stmt {
    pub fn span(&self) -> Span {
        match self {
            Stmt::On { span, .. }
            | Stmt::When { span, .. }
            | Stmt::Else { span, .. }
            | Stmt::Prompt { span, .. }
            | Stmt::Say { span, .. }
            | Stmt::Speak { span, .. }
            | Stmt::Module { span, .. }
            | Stmt::Start { span, .. }
            | Stmt::Assign { span, .. }
            | Stmt::Param { span, .. } => *span,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Arg {
    pub name: Ident,
    pub value: Expr,
}

/// The left of `on … ->`: a result name, or a menu key sequence in quotes.
#[derive(Debug, Clone)]
pub enum ResultLabel {
    Name(Ident),
    Keys(StrLit),
}

impl ResultLabel {
    pub fn span(&self) -> Span {
        match self {
            ResultLabel::Name(i) => i.span,
            ResultLabel::Keys(s) => s.span,
        }
    }
}

#[derive(Debug, Clone)]
pub enum Target {
    /// A node of the same flow or module, or `hangup`.
    Node(Ident),
    /// `return EXIT` inside a module.
    Return(Ident),
}

impl Target {
    pub fn span(&self) -> Span {
        match self {
            Target::Node(i) | Target::Return(i) => i.span,
        }
    }
}

#[derive(Debug, Clone)]
pub enum ParamValue {
    /// Milliseconds.
    Duration(u64, Span),
    Expr(Expr),
}

impl ParamValue {
    pub fn span(&self) -> Span {
        match self {
            ParamValue::Duration(_, s) => *s,
            ParamValue::Expr(e) => e.span,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Expr {
    pub kind: ExprKind,
    pub span: Span,
}

#[derive(Debug, Clone)]
pub enum ExprKind {
    Str(String),
    Int(i64),
    Bool(bool),
    /// `$NAME` (system variable or `$CPn`), without the `$`.
    SysVar(String),
    /// `name` or `ns.name` (a local, a parameter, `user.X`, or a profile reference).
    Name(Option<Ident>, Ident),
    Call(Ident, Vec<Expr>),
    Unary(UnOp, Box<Expr>),
    Binary(BinOp, Box<Expr>, Box<Expr>),
    /// A literal the parser could not read (bad escape, overflow); already reported.
    Error,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UnOp {
    Neg,
    Not,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
    Rem,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    And,
    Or,
    StartsWith,
    EndsWith,
    Contains,
}

impl BinOp {
    pub fn symbol(self) -> &'static str {
        match self {
            BinOp::Add => "+",
            BinOp::Sub => "-",
            BinOp::Mul => "*",
            BinOp::Div => "/",
            BinOp::Rem => "%",
            BinOp::Eq => "==",
            BinOp::Ne => "!=",
            BinOp::Lt => "<",
            BinOp::Le => "<=",
            BinOp::Gt => ">",
            BinOp::Ge => ">=",
            BinOp::And => "and",
            BinOp::Or => "or",
            BinOp::StartsWith => "starts_with",
            BinOp::EndsWith => "ends_with",
            BinOp::Contains => "contains",
        }
    }
}
