//! The action table: every action of language v1 with its parameters, their
//! types and defaults, and its fixed result set. The checker, the lowering and
//! docs/LANGUAGE.md all read this one table; adding an action starts here.

/// A value type of the language.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
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
        match s {
            "string" => Some(Ty::Str),
            "int" => Some(Ty::Int),
            "bool" => Some(Ty::Bool),
            _ => None,
        }
    }
}

/// The shape of a parameter's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamKind {
    /// An expression of this type.
    Expr(Ty),
    /// A duration literal (`5s`, `500ms`).
    Duration,
    /// A writable variable of this type (`into $CP2`).
    Into(Ty),
    /// A prompt file name (string expression); literal names are checked to exist.
    PromptFile,
}

#[derive(Debug, Clone, Copy)]
pub struct ParamSpec {
    pub name: &'static str,
    pub kind: ParamKind,
    pub required: bool,
    /// Allowed literal values for a string parameter (empty: any).
    pub one_of: &'static [&'static str],
    /// The default, as written in source, for documentation.
    pub default: &'static str,
    pub doc: &'static str,
}

/// What happens when a result is not connected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unconnected {
    /// The call ends, and `check` warns (V0503): usually a forgotten edge.
    Warn,
    /// The call ends normally, without a warning (e.g. after a blind transfer).
    End,
    /// The same node runs again (a menu's `timeout` and `invalid`).
    Repeat,
    /// The behaviour is off: `key` on `play` means no barge-in.
    Disabled,
    /// Execution continues as if `next` had been taken.
    Next,
}

#[derive(Debug, Clone, Copy)]
pub struct ResultSpec {
    pub name: &'static str,
    pub unconnected: Unconnected,
    pub doc: &'static str,
}

/// Which extra statement forms a node of the action accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Extra {
    None,
    /// `on "KEYS" -> …` results (menu).
    Keys,
    /// `LVALUE = EXPR` (set).
    Assign,
    /// `when EXPR -> …` and `else -> …` (switch).
    Branches,
    /// `module NAME(args)` with the module's exits as results (call).
    Module,
    /// `start KIND "NAME"` (goto_start).
    Start,
}

#[derive(Debug, Clone, Copy)]
pub struct ActionSpec {
    pub name: &'static str,
    pub doc: &'static str,
    /// Whether `prompt`, `say` and `speak` are accepted (played before the action).
    pub prompts: bool,
    pub params: &'static [ParamSpec],
    pub results: &'static [ResultSpec],
    pub extra: Extra,
    /// Whether the node hands control to the outside world (an effect). A loop
    /// through nodes none of which waits is a pure cycle (V0501).
    pub waits: bool,
    /// Whether control never continues to a result of this node.
    pub terminal: bool,
}

impl ActionSpec {
    pub fn param(&self, name: &str) -> Option<&'static ParamSpec> {
        self.params.iter().find(|p| p.name == name)
    }
    pub fn result(&self, name: &str) -> Option<&'static ResultSpec> {
        self.results.iter().find(|r| r.name == name)
    }
}

const fn p(name: &'static str, kind: ParamKind, doc: &'static str) -> ParamSpec {
    ParamSpec {
        name,
        kind,
        required: true,
        one_of: &[],
        default: "",
        doc,
    }
}
const fn opt(
    name: &'static str,
    kind: ParamKind,
    default: &'static str,
    doc: &'static str,
) -> ParamSpec {
    ParamSpec {
        name,
        kind,
        required: false,
        one_of: &[],
        default,
        doc,
    }
}
const fn r(name: &'static str, unconnected: Unconnected, doc: &'static str) -> ResultSpec {
    ResultSpec {
        name,
        unconnected,
        doc,
    }
}

use ParamKind::*;
use Ty::*;
use Unconnected as U;

const MAILBOX: ParamSpec = p("mailbox", Expr(Str), "the mailbox number or name");
const FOLDER: ParamSpec = ParamSpec {
    name: "folder",
    kind: Expr(Str),
    required: true,
    one_of: &["new", "saved", "deleted"],
    default: "",
    doc: "the folder: `\"new\"`, `\"saved\"` or `\"deleted\"`",
};
const INDEX: ParamSpec = p(
    "index",
    Expr(Int),
    "the message's position in the folder, from 0, as listed when the call first opened the mailbox",
);
const GREETING_KIND: ParamSpec = ParamSpec {
    name: "kind",
    kind: Expr(Str),
    required: false,
    one_of: &["unavailable", "busy", "name", "temporary"],
    default: "\"unavailable\"",
    doc: "which greeting",
};
const NEXT: ResultSpec = r("next", U::Warn, "the action completed");
const FAILURE: ResultSpec = r("failure", U::Warn, "the action could not be done");

/// Every action of language v1.
pub static ACTIONS: &[ActionSpec] = &[
    ActionSpec {
        name: "play",
        doc: "Plays prompts, spoken values and text to the caller.",
        prompts: true,
        params: &[],
        results: &[
            NEXT,
            r(
                "key",
                U::Disabled,
                "the caller pressed a key during playback (barge-in); `$KEY` holds it. Unconnected: no barge-in",
            ),
            r(
                "failure",
                U::Next,
                "a prompt could not be played; unconnected: continue with `next`",
            ),
        ],
        extra: Extra::None,
        waits: true,
        terminal: false,
    },
    ActionSpec {
        name: "menu",
        doc: "Plays prompts and waits for a key or key sequence.",
        prompts: true,
        params: &[
            opt(
                "timeout",
                Duration,
                "5s",
                "how long to wait for the first key",
            ),
            opt(
                "retries",
                Expr(Int),
                "2",
                "failures (timeout or invalid key) allowed before `exhausted`",
            ),
            opt(
                "interdigit",
                Duration,
                "2s",
                "how long to wait between the keys of a multi-key sequence",
            ),
            opt(
                "invalid_prompt",
                PromptFile,
                "",
                "played after an invalid key, before the menu repeats",
            ),
        ],
        results: &[
            r(
                "timeout",
                U::Repeat,
                "no key before the timeout; unconnected: the menu repeats",
            ),
            r(
                "invalid",
                U::Repeat,
                "a key sequence the menu does not list; unconnected: the menu repeats",
            ),
            r("exhausted", U::Warn, "the failure that goes past `retries`"),
        ],
        extra: Extra::Keys,
        waits: true,
        terminal: false,
    },
    ActionSpec {
        name: "input",
        doc: "Collects digits into a string variable.",
        prompts: true,
        params: &[
            p(
                "into",
                Into(Str),
                "the string variable that receives the digits (the terminator is not stored)",
            ),
            opt(
                "max_digits",
                Expr(Int),
                "20",
                "input ends after this many digits",
            ),
            opt(
                "terminator",
                Expr(Str),
                "\"#\"",
                "the key that ends input early; `\"\"` for none",
            ),
            opt("timeout", Duration, "5s", "how long to wait for each digit"),
        ],
        results: &[NEXT, r("timeout", U::Warn, "no digit before the timeout")],
        extra: Extra::None,
        waits: true,
        terminal: false,
    },
    ActionSpec {
        name: "hangup",
        doc: "Ends the call.",
        prompts: true,
        params: &[],
        results: &[],
        extra: Extra::None,
        waits: true,
        terminal: true,
    },
    ActionSpec {
        name: "leave_mail",
        doc: "Plays the mailbox greeting and a beep, then records a message into the mailbox.",
        prompts: true,
        params: &[
            MAILBOX,
            opt(
                "greeting",
                Expr(Bool),
                "true",
                "play the mailbox's greeting first",
            ),
            opt("beep", Expr(Bool), "true", "play a beep before recording"),
            opt("max_length", Duration, "120s", "the longest message"),
            opt(
                "review",
                Expr(Bool),
                "true",
                "after `#`, offer review: `1` accept, `2` listen, `3` re-record (hanging up keeps the message)",
            ),
            ParamSpec {
                name: "priority",
                kind: Expr(Str),
                required: false,
                one_of: &["normal", "urgent"],
                default: "\"normal\"",
                doc: "the message's priority",
            },
        ],
        results: &[
            r(
                "next",
                U::Warn,
                "the message was stored (a caller hanging up while recording keeps it)",
            ),
            r(
                "failure",
                U::Warn,
                "the mailbox is unknown or full, or nothing was recorded",
            ),
        ],
        extra: Extra::None,
        waits: true,
        terminal: false,
    },
    ActionSpec {
        name: "get_mail",
        doc: "Lets the mailbox owner collect messages (runs `std/mailbox.collect`).",
        prompts: true,
        params: &[MAILBOX],
        results: &[NEXT, FAILURE],
        extra: Extra::None,
        waits: true,
        terminal: false,
    },
    ActionSpec {
        name: "verify_pin",
        doc: "Checks a PIN against the mailbox; failures count towards the persistent lockout.",
        prompts: false,
        params: &[
            MAILBOX,
            p("pin", Expr(Str), "the digits the caller entered"),
        ],
        results: &[
            r("valid", U::Warn, "the PIN is right"),
            r(
                "invalid",
                U::Warn,
                "the PIN is wrong, or the mailbox does not exist (the two are not told apart)",
            ),
            r(
                "locked",
                U::Warn,
                "the mailbox is locked after too many failures",
            ),
        ],
        extra: Extra::None,
        waits: true,
        terminal: false,
    },
    ActionSpec {
        name: "message_count",
        doc: "Counts the messages in a mailbox folder into an int variable.",
        prompts: false,
        params: &[
            MAILBOX,
            FOLDER,
            p(
                "into",
                Into(Int),
                "the int variable that receives the count",
            ),
        ],
        results: &[NEXT, FAILURE],
        extra: Extra::None,
        waits: true,
        terminal: false,
    },
    ActionSpec {
        name: "play_message",
        doc: "Plays one message, optionally after its envelope (caller and time), and marks a new one as heard.",
        prompts: true,
        params: &[
            MAILBOX,
            FOLDER,
            INDEX,
            opt(
                "envelope",
                Expr(Bool),
                "true",
                "say who called and when first",
            ),
        ],
        results: &[
            NEXT,
            r(
                "key",
                U::Disabled,
                "the caller pressed a key during playback; `$KEY` holds it. Unconnected: no barge-in",
            ),
            r("failure", U::Warn, "there is no such message"),
        ],
        extra: Extra::None,
        waits: true,
        terminal: false,
    },
    ActionSpec {
        name: "save_message",
        doc: "Moves a message to the saved folder (also undeletes a deleted one).",
        prompts: true,
        params: &[MAILBOX, FOLDER, INDEX],
        results: &[NEXT, FAILURE],
        extra: Extra::None,
        waits: true,
        terminal: false,
    },
    ActionSpec {
        name: "delete_message",
        doc: "Moves a message to the deleted folder (removed by housekeeping).",
        prompts: true,
        params: &[MAILBOX, FOLDER, INDEX],
        results: &[NEXT, FAILURE],
        extra: Extra::None,
        waits: true,
        terminal: false,
    },
    ActionSpec {
        name: "record_greeting",
        doc: "Records a new greeting after a beep; it is used once `set_greeting` activates it.",
        prompts: true,
        params: &[
            MAILBOX,
            GREETING_KIND,
            opt("max_length", Duration, "60s", "the longest greeting"),
        ],
        results: &[NEXT, r("timeout", U::Warn, "nothing was recorded"), FAILURE],
        extra: Extra::None,
        waits: true,
        terminal: false,
    },
    ActionSpec {
        name: "set_greeting",
        doc: "Activates the greeting just recorded, or goes back to the default one.",
        prompts: true,
        params: &[
            MAILBOX,
            GREETING_KIND,
            ParamSpec {
                name: "use",
                kind: Expr(Str),
                required: false,
                one_of: &["recorded", "default"],
                default: "\"recorded\"",
                doc: "`\"recorded\"`: the one `record_greeting` took in this call; `\"default\"`: the system greeting",
            },
        ],
        results: &[NEXT, FAILURE],
        extra: Extra::None,
        waits: true,
        terminal: false,
    },
    ActionSpec {
        name: "set_pin",
        doc: "Changes the mailbox PIN, subject to the server's PIN policy.",
        prompts: true,
        params: &[MAILBOX, p("pin", Expr(Str), "the new PIN")],
        results: &[
            NEXT,
            r(
                "invalid",
                U::Warn,
                "the PIN policy refused it (too short, repeated or sequential digits, the mailbox number)",
            ),
            FAILURE,
        ],
        extra: Extra::None,
        waits: true,
        terminal: false,
    },
    ActionSpec {
        name: "transfer",
        doc: "Blind transfer (SIP REFER) to a destination the file's `allow_transfer` permits.",
        prompts: true,
        params: &[p("to", Expr(Str), "the destination number")],
        results: &[
            r(
                "next",
                U::End,
                "the transfer succeeded and the caller has left the flow",
            ),
            r("busy", U::Warn, "the destination was busy"),
            r("no_answer", U::Warn, "the destination did not answer"),
            r(
                "failure",
                U::Warn,
                "the transfer failed or the destination is not allowed",
            ),
        ],
        extra: Extra::None,
        waits: true,
        terminal: false,
    },
    ActionSpec {
        name: "assisted_transfer",
        doc: "Supervised transfer: the caller hears hold music while the destination is called.",
        prompts: true,
        params: &[
            p("to", Expr(Str), "the destination number"),
            opt(
                "timeout",
                Duration,
                "20s",
                "how long the destination may ring",
            ),
            opt(
                "music",
                PromptFile,
                "",
                "what the caller hears while waiting",
            ),
        ],
        results: &[
            r(
                "next",
                U::End,
                "the destination answered and the caller is connected",
            ),
            r("busy", U::Warn, "the destination was busy"),
            r(
                "no_answer",
                U::Warn,
                "the destination did not answer in time",
            ),
            r(
                "failure",
                U::Warn,
                "the transfer failed or the destination is not allowed",
            ),
        ],
        extra: Extra::None,
        waits: true,
        terminal: false,
    },
    ActionSpec {
        name: "record",
        doc: "Records the caller into a named recording; `$RECORDING` names the last one.",
        prompts: true,
        params: &[
            opt(
                "recording",
                Expr(Str),
                "the node name",
                "the recording's name",
            ),
            opt("max_length", Duration, "60s", "the longest recording"),
            opt(
                "silence",
                Duration,
                "3s",
                "stop after this much silence; `0s` never stops on silence",
            ),
            opt("beep", Expr(Bool), "true", "play a beep before recording"),
        ],
        results: &[NEXT, r("timeout", U::Warn, "nothing was recorded"), FAILURE],
        extra: Extra::None,
        waits: true,
        terminal: false,
    },
    ActionSpec {
        name: "email",
        doc: "Sends an email, optionally with the last recording attached.",
        prompts: false,
        params: &[
            p("to", Expr(Str), "the address"),
            opt("subject", Expr(Str), "\"\"", "the subject"),
            opt("body", Expr(Str), "\"\"", "the text"),
            opt(
                "attach",
                Expr(Bool),
                "false",
                "attach the last recording of this call",
            ),
        ],
        results: &[
            r("next", U::Warn, "the message was queued for delivery"),
            FAILURE,
        ],
        extra: Extra::None,
        waits: true,
        terminal: false,
    },
    ActionSpec {
        name: "set",
        doc: "Assigns variables, in order.",
        prompts: false,
        params: &[],
        results: &[
            NEXT,
            r(
                "failure",
                U::Warn,
                "an expression faulted (division by zero, bad `int()`)",
            ),
        ],
        extra: Extra::Assign,
        waits: false,
        terminal: false,
    },
    ActionSpec {
        name: "test",
        doc: "Branches on a condition.",
        prompts: false,
        params: &[p("if", Expr(Bool), "the condition")],
        results: &[
            r("true", U::Warn, "the condition holds"),
            r("false", U::Warn, "it does not"),
            r(
                "failure",
                U::Warn,
                "the condition faulted (division by zero, bad `int()`)",
            ),
        ],
        extra: Extra::None,
        waits: false,
        terminal: false,
    },
    ActionSpec {
        name: "switch",
        doc: "Takes the first `when` whose condition holds, else `else`.",
        prompts: false,
        params: &[],
        results: &[r("failure", U::Warn, "a condition faulted")],
        extra: Extra::Branches,
        waits: false,
        terminal: false,
    },
    ActionSpec {
        name: "call",
        doc: "Runs a module; its exits are this node's results.",
        prompts: false,
        params: &[],
        results: &[],
        extra: Extra::Module,
        waits: false,
        terminal: false,
    },
    ActionSpec {
        name: "wait",
        doc: "Holds the caller, with music or silence.",
        prompts: true,
        params: &[
            p("duration", Duration, "how long"),
            opt("music", PromptFile, "", "what the caller hears"),
        ],
        results: &[NEXT],
        extra: Extra::None,
        waits: true,
        terminal: false,
    },
    ActionSpec {
        name: "goto_start",
        doc: "Continues at another start point, as if the call had entered there.",
        prompts: false,
        params: &[],
        results: &[],
        extra: Extra::Start,
        waits: false,
        terminal: true,
    },
    ActionSpec {
        name: "home",
        doc: "Goes back to the start point the call entered by.",
        prompts: false,
        params: &[],
        results: &[],
        extra: Extra::None,
        waits: false,
        terminal: true,
    },
];

pub fn action(name: &str) -> Option<&'static ActionSpec> {
    ACTIONS.iter().find(|a| a.name == name)
}

/// Start point kinds: how a call enters a flow.
pub const START_KINDS: &[&str] = &[
    "leave",
    "collect",
    "auto_attendant",
    "queued",
    "still_queued",
    "named",
];

/// Read-only system variables (`$NAME`), all strings.
pub const SYSTEM_VARS: &[(&str, &str)] = &[
    ("CLI", "the caller's number"),
    ("DDI", "the number the caller dialled"),
    (
        "TARGET",
        "the mailbox or name the call entered for (the start point's name)",
    ),
    ("KEY", "the last key sequence the caller entered"),
    ("CALLER_NAME", "the caller's display name"),
    ("TIME", "the call's local time, `HH:MM`"),
    ("DATE", "the call's local date, `YYYY-MM-DD`"),
    ("DAY", "the weekday, `mon` … `sun`"),
    ("CALL_ID", "the call's unique id"),
    (
        "REASON",
        "why the call reached voicemail: `busy`, `no_answer`, `dnd`, `direct` or `unknown`",
    ),
    (
        "RECORDING",
        "the name of the last recording made in this call",
    ),
];

/// The number of call variables `$CP0` … `$CP15`.
pub const CALL_VARS: usize = 16;

/// Built-in functions: name, parameter types, result type, documentation.
/// Two more are handled specially by the checker: `str(any) -> string` and
/// `in_profile(PROFILE) -> bool`, which takes a time profile name.
pub const FUNCTIONS: &[(&str, &[Ty], Ty, &str)] = &[
    ("len", &[Str], Int, "the length in characters"),
    (
        "int",
        &[Str],
        Int,
        "parses a decimal number; a runtime fault if it is not one",
    ),
    (
        "substr",
        &[Str, Int, Int],
        Str,
        "`substr(s, start, length)`, clamped to the string",
    ),
    ("trim", &[Str], Str, "without leading and trailing spaces"),
    (
        "replace",
        &[Str, Str, Str],
        Str,
        "`replace(s, from, to)`, every occurrence",
    ),
    (
        "is_digits",
        &[Str],
        Bool,
        "whether the string is one or more digits 0-9",
    ),
    ("lower", &[Str], Str, "in lower case"),
    ("upper", &[Str], Str, "in upper case"),
    ("abs", &[Int], Int, "the absolute value"),
    ("min", &[Int, Int], Int, "the smaller"),
    ("max", &[Int, Int], Int, "the larger"),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique() {
        let mut names: Vec<_> = ACTIONS.iter().map(|a| a.name).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), ACTIONS.len());
        for a in ACTIONS {
            let mut ps: Vec<_> = a.params.iter().map(|p| p.name).collect();
            ps.sort();
            ps.dedup();
            assert_eq!(ps.len(), a.params.len(), "{}", a.name);
        }
    }

    #[test]
    fn every_design_action_is_present() {
        for name in [
            "play",
            "menu",
            "input",
            "hangup",
            "leave_mail",
            "get_mail",
            "verify_pin",
            "message_count",
            "play_message",
            "save_message",
            "delete_message",
            "record_greeting",
            "set_pin",
            "set_greeting",
            "transfer",
            "assisted_transfer",
            "record",
            "email",
            "set",
            "test",
            "switch",
            "call",
            "wait",
            "goto_start",
            "home",
        ] {
            assert!(action(name).is_some(), "{name}");
        }
    }
}
