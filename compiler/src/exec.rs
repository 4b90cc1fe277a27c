//! The execution contract (DESIGN §3), the same for every engine: a compiled
//! flow is a resumable state machine. [`start`] makes the [`State`] of a new
//! call; [`Engine::resume`] runs pure nodes until one needs the outside world
//! and returns that [`Effect`]; the runtime performs it and resumes with the
//! [`Outcome`]. The first resume passes [`Outcome::Start`].
//!
//! `State` is plain data (slots, frames, node indices), so the interpreter
//! and the JIT can share it and a call could be persisted. Everything that is
//! not the flow's own state — the clock, persistent user variables — comes
//! through the [`Host`] passed to each resume.
//!
//! Invariant: `resume` never panics on a verified IR. Runtime faults become a
//! `failure` result or an [`Effect::Fault`] with the `.vflow` file and line;
//! once a call has ended (`Hangup`, `Fault`, `Ended`) every further resume
//! returns the same terminal effect.

use crate::ir::{self, Edge, Value};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// What the runtime knows about a call when it starts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallInfo {
    pub cli: String,
    pub ddi: String,
    pub caller_name: String,
    pub call_id: String,
    /// `busy`, `no_answer`, `dnd`, `direct` or `unknown`.
    pub reason: String,
}

/// One item the caller hears, in order. Serialized as a plain string for a
/// file, `{"say":MODE,"value":V}` or `{"speak":TEXT}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum PromptItem {
    File(String),
    Say { say: ir::SayMode, value: String },
    Speak { speak: String },
}

impl fmt::Display for PromptItem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PromptItem::File(s) => write!(f, "{s}"),
            PromptItem::Say { say, value } => write!(f, "say {} {value:?}", say.name()),
            PromptItem::Speak { speak } => write!(f, "speak {speak:?}"),
        }
    }
}

fn no_prompts(p: &[PromptItem]) -> bool {
    p.is_empty()
}

/// What the flow asks of the outside world. Durations are milliseconds.
/// Serialized with `"effect"` naming the variant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "effect", rename_all = "snake_case")]
pub enum Effect {
    /// Play prompts; with `barge_in` a key interrupts (answer `Keys`).
    Play {
        #[serde(default, skip_serializing_if = "no_prompts")]
        prompts: Vec<PromptItem>,
        barge_in: bool,
    },
    /// Play prompts and collect a key sequence matching one of `keys`
    /// (`?` = any key); answer `Keys` or `Timeout`.
    Menu {
        #[serde(default, skip_serializing_if = "no_prompts")]
        prompts: Vec<PromptItem>,
        keys: Vec<String>,
        timeout_ms: u64,
        interdigit_ms: u64,
        retries: i64,
        /// Played after an invalid key, before the menu goes on (the engine
        /// emits it as a `play`; the runtime need not act on this field).
        #[serde(default, skip_serializing_if = "String::is_empty")]
        invalid_prompt: String,
    },
    /// Collect up to `max_digits` digits, ended early by `terminator`; answer `Digits` or `Timeout`.
    Input {
        #[serde(default, skip_serializing_if = "no_prompts")]
        prompts: Vec<PromptItem>,
        max_digits: i64,
        terminator: String,
        timeout_ms: u64,
    },
    /// The flow ends the call (after playing the prompts).
    Hangup {
        #[serde(default, skip_serializing_if = "no_prompts")]
        prompts: Vec<PromptItem>,
    },
    LeaveMail {
        #[serde(default, skip_serializing_if = "no_prompts")]
        prompts: Vec<PromptItem>,
        mailbox: String,
        greeting: bool,
        beep: bool,
        max_length_ms: u64,
        /// After `#`, offer review (`1` accept, `2` listen, `3` re-record).
        review: bool,
        priority: String,
    },
    VerifyPin {
        mailbox: String,
        pin: String,
    },
    MessageCount {
        mailbox: String,
        folder: String,
    },
    PlayMessage {
        #[serde(default, skip_serializing_if = "no_prompts")]
        prompts: Vec<PromptItem>,
        mailbox: String,
        folder: String,
        index: i64,
        envelope: bool,
        barge_in: bool,
    },
    SaveMessage {
        #[serde(default, skip_serializing_if = "no_prompts")]
        prompts: Vec<PromptItem>,
        mailbox: String,
        folder: String,
        index: i64,
    },
    DeleteMessage {
        #[serde(default, skip_serializing_if = "no_prompts")]
        prompts: Vec<PromptItem>,
        mailbox: String,
        folder: String,
        index: i64,
    },
    RecordGreeting {
        #[serde(default, skip_serializing_if = "no_prompts")]
        prompts: Vec<PromptItem>,
        mailbox: String,
        kind: String,
        max_length_ms: u64,
    },
    SetGreeting {
        #[serde(default, skip_serializing_if = "no_prompts")]
        prompts: Vec<PromptItem>,
        mailbox: String,
        kind: String,
        #[serde(rename = "use")]
        use_: String,
    },
    SetPin {
        #[serde(default, skip_serializing_if = "no_prompts")]
        prompts: Vec<PromptItem>,
        mailbox: String,
        pin: String,
    },
    /// Blind transfer; the target passed the file's `allow_transfer`.
    Transfer {
        #[serde(default, skip_serializing_if = "no_prompts")]
        prompts: Vec<PromptItem>,
        target: String,
    },
    AssistedTransfer {
        #[serde(default, skip_serializing_if = "no_prompts")]
        prompts: Vec<PromptItem>,
        target: String,
        timeout_ms: u64,
        music: String,
    },
    Record {
        #[serde(default, skip_serializing_if = "no_prompts")]
        prompts: Vec<PromptItem>,
        recording: String,
        max_length_ms: u64,
        silence_ms: u64,
        beep: bool,
    },
    Email {
        to: String,
        subject: String,
        body: String,
        attach: bool,
    },
    Wait {
        #[serde(default, skip_serializing_if = "no_prompts")]
        prompts: Vec<PromptItem>,
        duration_ms: u64,
        music: String,
    },
    /// A runtime fault ended the call; the runtime logs it and hangs up.
    Fault {
        message: String,
        file: String,
        line: u32,
    },
    /// The caller hung up; the flow is over and nothing more is to be done.
    Ended,
}

impl Effect {
    /// The effect's name, as in `"effect"`.
    pub fn name(&self) -> &'static str {
        match self {
            Effect::Play { .. } => "play",
            Effect::Menu { .. } => "menu",
            Effect::Input { .. } => "input",
            Effect::Hangup { .. } => "hangup",
            Effect::LeaveMail { .. } => "leave_mail",
            Effect::VerifyPin { .. } => "verify_pin",
            Effect::MessageCount { .. } => "message_count",
            Effect::PlayMessage { .. } => "play_message",
            Effect::SaveMessage { .. } => "save_message",
            Effect::DeleteMessage { .. } => "delete_message",
            Effect::RecordGreeting { .. } => "record_greeting",
            Effect::SetGreeting { .. } => "set_greeting",
            Effect::SetPin { .. } => "set_pin",
            Effect::Transfer { .. } => "transfer",
            Effect::AssistedTransfer { .. } => "assisted_transfer",
            Effect::Record { .. } => "record",
            Effect::Email { .. } => "email",
            Effect::Wait { .. } => "wait",
            Effect::Fault { .. } => "fault",
            Effect::Ended => "ended",
        }
    }

    /// Whether the call is over after this effect.
    pub fn is_terminal(&self) -> bool {
        matches!(
            self,
            Effect::Hangup { .. } | Effect::Fault { .. } | Effect::Ended
        )
    }

    /// The effect as JSON (`{"effect":"transfer","target":"2001"}`).
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).expect("effects serialize")
    }

    /// One line for people: the name, then `key=value` for each parameter;
    /// prompts as a bracketed list.
    pub fn to_text(&self) -> String {
        let serde_json::Value::Object(map) = self.to_json() else {
            return self.name().to_string();
        };
        let mut out = self.name().to_string();
        if let Some(serde_json::Value::Array(items)) = map.get("prompts") {
            let ps: Vec<PromptItem> = items
                .iter()
                .filter_map(|i| serde_json::from_value(i.clone()).ok())
                .collect();
            out.push_str(" [");
            out.push_str(
                &ps.iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", "),
            );
            out.push(']');
        }
        for (k, v) in &map {
            if k == "effect" || k == "prompts" {
                continue;
            }
            match v {
                serde_json::Value::String(s)
                    if !s.is_empty()
                        && s.chars()
                            .all(|c| c.is_ascii_alphanumeric() || "*#+._-/@:".contains(c)) =>
                {
                    out.push_str(&format!(" {k}={s}"))
                }
                other => out.push_str(&format!(" {k}={other}")),
            }
        }
        out
    }
}

/// What the outside world answers to an effect.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The first resume of a call.
    Start,
    /// The effect completed (played, transferred, stored, sent…).
    Ok,
    /// A key or key sequence (menu, barge-in).
    Keys(String),
    /// Digits entered for `input`, possibly ending with the terminator.
    Digits(String),
    /// Nothing came in time (no key, no answer for an assisted transfer, nothing recorded).
    Timeout,
    /// The caller hung up.
    Hangup,
    Busy,
    NoAnswer,
    /// The effect failed (unknown mailbox, transfer refused, mail not sent…).
    Fail,
    /// A recording ended; its length.
    Recorded {
        ms: u64,
    },
    /// `verify_pin`: the PIN is right.
    Valid,
    /// `verify_pin`: wrong PIN; `set_pin`: the policy refused it.
    Invalid,
    /// `verify_pin`: the mailbox is locked.
    Locked,
    /// `message_count`: the count.
    Count(i64),
}

impl Outcome {
    /// Parses the CLI/test form: `key:1`, `keys:12#`, `digits:1234#`, `timeout`,
    /// `hangup`, `busy`, `no_answer`, `ok`, `fail`, `recorded:5s`, `valid`,
    /// `invalid`, `locked`, `count:3`.
    pub fn parse(s: &str) -> Result<Outcome, String> {
        let s = s.trim();
        let (head, arg) = match s.split_once(':') {
            Some((h, a)) => (h, Some(a)),
            None => (s, None),
        };
        let need = |what: &str| {
            arg.map(str::to_string)
                .ok_or_else(|| format!("`{head}` needs a value: `{head}:{what}`"))
        };
        let none = |o: Outcome| match arg {
            None => Ok(o),
            Some(_) => Err(format!("`{head}` takes no value")),
        };
        match head {
            "start" => none(Outcome::Start),
            "ok" | "done" | "next" => none(Outcome::Ok),
            "key" | "keys" => {
                let k = need("1")?;
                if k.is_empty()
                    || !k
                        .chars()
                        .all(|c| c.is_ascii_digit() || c == '*' || c == '#')
                {
                    return Err(format!("`{s}`: keys are 0-9, * and #"));
                }
                Ok(Outcome::Keys(k))
            }
            "digits" => {
                let d = need("1234#")?;
                if !d
                    .chars()
                    .all(|c| c.is_ascii_digit() || c == '*' || c == '#')
                {
                    return Err(format!("`{s}`: digits are 0-9, * and #"));
                }
                Ok(Outcome::Digits(d))
            }
            "timeout" => none(Outcome::Timeout),
            "hangup" => none(Outcome::Hangup),
            "busy" => none(Outcome::Busy),
            "no_answer" => none(Outcome::NoAnswer),
            "fail" | "failure" => none(Outcome::Fail),
            "recorded" => {
                let v = arg.unwrap_or("5s");
                let ms = crate::ir::lower::parse_duration(v)
                    .or_else(|| v.parse().ok())
                    .ok_or_else(|| format!("`{s}`: write the length as `recorded:5s`"))?;
                Ok(Outcome::Recorded { ms })
            }
            "valid" => none(Outcome::Valid),
            "invalid" => none(Outcome::Invalid),
            "locked" => none(Outcome::Locked),
            "count" => Ok(Outcome::Count(
                need("3")?
                    .parse()
                    .map_err(|_| format!("`{s}`: the count is a number"))?,
            )),
            _ => Err(format!(
                "unknown outcome `{s}`; expected key:K, digits:D, timeout, hangup, busy, no_answer, ok, fail, recorded:5s, valid, invalid, locked or count:N"
            )),
        }
    }

    /// Parses a comma-separated list.
    pub fn parse_list(s: &str) -> Result<Vec<Outcome>, String> {
        s.split(',')
            .map(str::trim)
            .filter(|x| !x.is_empty())
            .map(Outcome::parse)
            .collect()
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Start => write!(f, "start"),
            Outcome::Ok => write!(f, "ok"),
            Outcome::Keys(k) => write!(f, "key:{k}"),
            Outcome::Digits(d) => write!(f, "digits:{d}"),
            Outcome::Timeout => write!(f, "timeout"),
            Outcome::Hangup => write!(f, "hangup"),
            Outcome::Busy => write!(f, "busy"),
            Outcome::NoAnswer => write!(f, "no_answer"),
            Outcome::Fail => write!(f, "fail"),
            Outcome::Recorded { ms } => write!(f, "recorded:{ms}ms"),
            Outcome::Valid => write!(f, "valid"),
            Outcome::Invalid => write!(f, "invalid"),
            Outcome::Locked => write!(f, "locked"),
            Outcome::Count(n) => write!(f, "count:{n}"),
        }
    }
}

/// What an engine needs from the runtime while it runs: the call's clock and
/// the persistent user variables. `node_entered` lets tools observe coverage.
pub trait Host {
    /// The call's current local time, in the server's time zone.
    fn now(&self) -> jiff::ZonedDateTime;
    /// `user.NAME`; unset variables read as `""`.
    fn user_var(&self, name: &str) -> String;
    fn set_user_var(&mut self, name: &str, value: String);
    /// Called for every node an engine executes.
    fn node_entered(&mut self, _unit: u32, _node: u32) {}
}

/// A host for simulation and tests: a fixed clock and user variables in memory.
#[derive(Debug, Clone)]
pub struct SimHost {
    pub clock: jiff::ZonedDateTime,
    pub user: BTreeMap<String, String>,
    /// Nodes executed, per unit, when `track` is set.
    pub visited: BTreeMap<(u32, u32), u64>,
    pub track: bool,
}

impl SimHost {
    pub fn new(clock: jiff::ZonedDateTime) -> SimHost {
        SimHost {
            clock,
            user: BTreeMap::new(),
            visited: BTreeMap::new(),
            track: false,
        }
    }
}

impl Host for SimHost {
    fn now(&self) -> jiff::ZonedDateTime {
        self.clock.clone()
    }
    fn user_var(&self, name: &str) -> String {
        self.user.get(name).cloned().unwrap_or_default()
    }
    fn set_user_var(&mut self, name: &str, value: String) {
        self.user.insert(name.to_string(), value);
    }
    fn node_entered(&mut self, unit: u32, node: u32) {
        if self.track {
            *self.visited.entry((unit, node)).or_default() += 1;
        }
    }
}

/// Where a call starts, and where `home` goes back to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Home {
    pub unit: u32,
    pub node: u32,
    /// The start point's kind and the name the call entered for (`$TARGET`).
    pub kind: String,
    pub name: String,
    /// Arguments when the call starts directly in a module (tests); empty for flows.
    pub args: Vec<Value>,
}

/// One activation of a flow or module.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Frame {
    pub unit: u32,
    /// The current node; while a callee runs, the `call` node.
    pub node: u32,
    pub locals: Vec<Value>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Not started: the next resume must be `Outcome::Start`.
    New,
    /// Waiting for the outcome of the effect of the top frame's node.
    Waiting,
    /// Waiting for the `invalid_prompt` of a menu to finish; then take this edge.
    AfterPrompt(Edge),
    /// Over; the terminal effect is repeated on every resume.
    Done(Effect),
}

/// The whole state of one call: plain data shared by every engine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    pub call: CallInfo,
    pub home: Home,
    /// `$TARGET`: the name the call entered for (changes with `goto_start`).
    pub target: String,
    /// `$CP0` … `$CP15`.
    pub cp: Vec<String>,
    /// `$KEY`.
    pub key: String,
    /// `$RECORDING`.
    pub recording: String,
    pub frames: Vec<Frame>,
    /// Failures per menu node `(unit, node)` during this call.
    pub menu_failures: Vec<((u32, u32), u32)>,
    /// Where computed transfer targets may go: the entry flow file's `allow_transfer`.
    pub allow_transfer: Vec<String>,
    pub status: Status,
    /// The effect being waited for (its evaluated parameters).
    pub pending: Option<Effect>,
    /// The last node executed `(unit, node)`.
    pub last_node: Option<(u32, u32)>,
    /// The exit a call started in a module left by (tests).
    pub exit: Option<String>,
    /// Back edges, calls and restarts allowed per resume before the call faults.
    pub fuel_per_resume: u64,
    /// Nodes executed so far (for benchmarks).
    pub steps: u64,
}

/// The default fuel per resume: far above any real flow between two waits.
pub const DEFAULT_FUEL: u64 = 100_000;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StartError {
    #[error("no start point `{kind} \"{name}\"`{}", if .known.is_empty() { String::new() } else { format!("; start points: {}", .known.join(", ")) })]
    NoEntry {
        kind: String,
        name: String,
        known: Vec<String>,
    },
    #[error("no module `{0}`")]
    NoModule(String),
    #[error("module `{module}` takes {want} arguments, given {given}")]
    BadArgs {
        module: String,
        want: usize,
        given: usize,
    },
}

impl State {
    fn new(call: CallInfo, home: Home, allow_transfer: Vec<String>) -> State {
        State {
            call,
            target: home.name.clone(),
            home,
            cp: vec![String::new(); crate::actions::CALL_VARS],
            key: String::new(),
            recording: String::new(),
            frames: Vec::new(),
            menu_failures: Vec::new(),
            allow_transfer,
            status: Status::New,
            pending: None,
            last_node: None,
            exit: None,
            fuel_per_resume: DEFAULT_FUEL,
            steps: 0,
        }
    }

    pub fn is_done(&self) -> bool {
        matches!(self.status, Status::Done(_))
    }

    /// The value of a variable as tests name it: `$CP1`, `$KEY`, `$TARGET`,
    /// `$RECORDING`, or a local of the bottom frame (the flow) by name.
    pub fn var(&self, program: &ir::Program, name: &str) -> Option<Value> {
        if let Some(sys) = name.strip_prefix('$') {
            if let Some(i) = ir::lower::cp_index(sys) {
                return self.cp.get(usize::from(i)).cloned().map(Value::Str);
            }
            return match sys {
                "KEY" => Some(Value::Str(self.key.clone())),
                "TARGET" => Some(Value::Str(self.target.clone())),
                "RECORDING" => Some(Value::Str(self.recording.clone())),
                "CLI" => Some(Value::Str(self.call.cli.clone())),
                "DDI" => Some(Value::Str(self.call.ddi.clone())),
                _ => None,
            };
        }
        let frame = self.frames.first()?;
        let unit = program.units.get(frame.unit as usize)?;
        let slot = unit.locals.iter().position(|l| l.name == name)?;
        frame.locals.get(slot).cloned()
    }
}

/// The state of a new call that enters `program` by start point `kind` for `name`.
pub fn start(
    program: &ir::Program,
    kind: &str,
    name: &str,
    call: CallInfo,
) -> Result<State, StartError> {
    let Some(i) = program.find_entry(kind, name) else {
        return Err(StartError::NoEntry {
            kind: kind.into(),
            name: name.into(),
            known: program
                .entries
                .iter()
                .map(|e| format!("{} \"{}\"", e.kind, e.pattern))
                .collect(),
        });
    };
    let e = &program.entries[i];
    let allow = program.units[e.unit as usize].allow_transfer.clone();
    let home = Home {
        unit: e.unit,
        node: e.node,
        kind: kind.into(),
        name: name.into(),
        args: Vec::new(),
    };
    Ok(State::new(call, home, allow))
}

/// The state of a call that runs one module directly (module tests); when
/// the module returns, the call ends and `State::exit` names the exit.
pub fn start_module(
    program: &ir::Program,
    module: &str,
    args: Vec<Value>,
    call: CallInfo,
) -> Result<State, StartError> {
    let unit = program
        .unit_by_name(module)
        .ok_or_else(|| StartError::NoModule(module.into()))?;
    let u = &program.units[unit as usize];
    if u.kind != ir::UnitKind::Module {
        return Err(StartError::NoModule(module.into()));
    }
    if args.len() != u.params as usize {
        return Err(StartError::BadArgs {
            module: module.into(),
            want: u.params as usize,
            given: args.len(),
        });
    }
    let home = Home {
        unit,
        node: 0,
        kind: "module".into(),
        name: module.into(),
        args,
    };
    Ok(State::new(call, home, u.allow_transfer.clone()))
}

/// An engine: the interpreter, or the JIT.
pub trait Engine {
    /// Runs the call until it needs the outside world; see the module docs.
    fn resume(&self, state: &mut State, outcome: Outcome, host: &mut dyn Host) -> Effect;
}

/// One effect of a call and what the world answered to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TraceStep {
    pub effect: Effect,
    /// `None` for the terminal effect.
    pub outcome: Option<Outcome>,
    /// The node that produced the effect `(unit, node)`.
    pub node: Option<(u32, u32)>,
}

/// Runs a call to its end, answering effects from `outcomes` in order. When
/// they run out the caller times out once, then hangs up (as `vflow simulate`
/// and `vflow test` do). Stops after `max_effects` effects.
pub fn drive(
    engine: &dyn Engine,
    state: &mut State,
    host: &mut dyn Host,
    outcomes: impl IntoIterator<Item = Outcome>,
    max_effects: usize,
) -> Vec<TraceStep> {
    let mut outcomes = outcomes.into_iter();
    let mut trace = Vec::new();
    let mut effect = engine.resume(state, Outcome::Start, host);
    let mut timed_out = false;
    loop {
        let node = state.last_node;
        if effect.is_terminal() || trace.len() >= max_effects {
            trace.push(TraceStep {
                effect,
                outcome: None,
                node,
            });
            return trace;
        }
        let outcome = outcomes.next().unwrap_or_else(|| {
            if timed_out {
                Outcome::Hangup
            } else {
                timed_out = true;
                Outcome::Timeout
            }
        });
        let next = engine.resume(state, outcome.clone(), host);
        trace.push(TraceStep {
            effect,
            outcome: Some(outcome),
            node,
        });
        effect = next;
    }
}

/// Parses a call clock for simulation and tests: RFC 3339 with an offset
/// (`2026-03-02T10:00:00+01:00`, local time in that offset unless `tz` is
/// given), RFC 9557 with a zone (`2026-03-02T10:00[Europe/Paris]`), or a civil
/// time (`2026-03-02T10:00`) in `tz` or else the system's time zone.
pub fn parse_clock(s: &str, tz: Option<&str>) -> Result<jiff::ZonedDateTime, String> {
    use jiff::tz::TimeZone;
    let zone = match tz {
        Some(name) => {
            Some(TimeZone::get(name).map_err(|e| format!("unknown time zone `{name}`: {e}"))?)
        }
        None => None,
    };
    if let Ok(z) = s.parse::<jiff::ZonedDateTime>() {
        return Ok(match zone {
            Some(tz) => z.timestamp().to_zoned_datetime(tz),
            None => z,
        });
    }
    if let Ok(ts) = s.parse::<jiff::Timestamp>() {
        let tz = match zone {
            Some(tz) => tz,
            None => match jiff::fmt::temporal::Pieces::parse(s)
                .ok()
                .and_then(|p| p.offset())
            {
                Some(jiff::fmt::temporal::PiecesOffset::Numeric(n)) => TimeZone::fixed(n.offset()),
                _ => TimeZone::UTC,
            },
        };
        return Ok(ts.to_zoned_datetime(tz));
    }
    if let Ok(dt) = s.parse::<jiff::civil::DateTime>() {
        let tz = zone.unwrap_or_else(TimeZone::system);
        return dt.to_zoned_datetime(tz).map_err(|e| format!("`{s}`: {e}"));
    }
    Err(format!(
        "`{s}` is not a time; write RFC 3339, e.g. `2026-03-02T10:00:00+01:00`"
    ))
}

/// Whether a menu key pattern (`?` = any key) matches an entered sequence.
pub fn key_matches(pattern: &str, entered: &str) -> bool {
    pattern.chars().count() == entered.chars().count()
        && pattern
            .chars()
            .zip(entered.chars())
            .all(|(p, c)| p == '?' || p == c)
}

/// Which listed key sequence an entered one selects: an exact match first,
/// then the first pattern with `?` that matches, in source order.
pub fn match_key<'a>(
    patterns: impl IntoIterator<Item = &'a str> + Clone,
    entered: &str,
) -> Option<usize> {
    let ps: Vec<&str> = patterns.into_iter().collect();
    ps.iter()
        .position(|p| *p == entered)
        .or_else(|| ps.iter().position(|p| key_matches(p, entered)))
}

/// For the runtime collecting menu keys: whether `entered` may still grow
/// into a longer listed sequence (then wait `interdigit` for another key).
pub fn key_prefix_of_longer(patterns: &[String], entered: &str) -> bool {
    let n = entered.chars().count();
    patterns.iter().any(|p| {
        p.chars().count() > n && key_matches(&p.chars().take(n).collect::<String>(), entered)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_parse_and_print() {
        for s in [
            "key:1",
            "digits:1234#",
            "timeout",
            "hangup",
            "busy",
            "no_answer",
            "ok",
            "fail",
            "valid",
            "invalid",
            "locked",
            "count:3",
        ] {
            let o = Outcome::parse(s).unwrap();
            assert_eq!(o.to_string(), s);
        }
        assert_eq!(
            Outcome::parse("recorded:5s").unwrap(),
            Outcome::Recorded { ms: 5000 }
        );
        assert_eq!(
            Outcome::parse("keys:12#").unwrap(),
            Outcome::Keys("12#".into())
        );
        assert!(Outcome::parse("key:").is_err());
        assert!(Outcome::parse("key:a").is_err());
        assert!(Outcome::parse("bogus").is_err());
        assert_eq!(
            Outcome::parse_list("key:1, busy,").unwrap(),
            vec![Outcome::Keys("1".into()), Outcome::Busy]
        );
    }

    #[test]
    fn effects_serialize_with_their_name() {
        let t = Effect::Transfer {
            prompts: vec![],
            target: "2001".into(),
        };
        assert_eq!(
            serde_json::to_string(&t).unwrap(),
            r#"{"effect":"transfer","target":"2001"}"#
        );
        assert_eq!(
            serde_json::to_string(&Effect::Hangup { prompts: vec![] }).unwrap(),
            r#"{"effect":"hangup"}"#
        );
        let p = Effect::Play {
            prompts: vec![
                PromptItem::File("a.wav".into()),
                PromptItem::Say {
                    say: ir::SayMode::Digits,
                    value: "12".into(),
                },
                PromptItem::Speak { speak: "hi".into() },
            ],
            barge_in: false,
        };
        let json = serde_json::to_string(&p).unwrap();
        assert_eq!(
            json,
            r#"{"effect":"play","prompts":["a.wav",{"say":"digits","value":"12"},{"speak":"hi"}],"barge_in":false}"#
        );
        assert_eq!(serde_json::from_str::<Effect>(&json).unwrap(), p);
        assert_eq!(
            p.to_text(),
            r#"play [a.wav, say digits "12", speak "hi"] barge_in=false"#
        );
    }

    #[test]
    fn clocks_parse_in_the_written_offset() {
        let z = parse_clock("2026-03-02T10:00:00+01:00", None).unwrap();
        assert_eq!((z.hour(), z.minute()), (10, 0));
        let z = parse_clock("2026-03-02T10:00:00+01:00", Some("UTC")).unwrap();
        assert_eq!(z.hour(), 9);
        let z = parse_clock("2026-03-02T10:00", Some("UTC")).unwrap();
        assert_eq!(z.hour(), 10);
        assert!(parse_clock("yesterday", None).is_err());
    }

    #[test]
    fn menu_keys_match_exact_first_then_wildcards() {
        let ps = ["?", "1", "1?", "12#"];
        assert_eq!(match_key(ps, "1"), Some(1));
        assert_eq!(match_key(ps, "5"), Some(0));
        assert_eq!(match_key(ps, "17"), Some(2));
        assert_eq!(match_key(ps, "12#"), Some(3));
        assert_eq!(match_key(ps, "55"), None);
        let owned: Vec<String> = ps.iter().map(|s| s.to_string()).collect();
        assert!(key_prefix_of_longer(&owned, "1"));
        assert!(key_prefix_of_longer(&owned, "12"));
        assert!(!key_prefix_of_longer(&owned, "5"));
    }
}
