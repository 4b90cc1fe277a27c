//! Property: the parser and checker never panic, whatever the input; every
//! diagnostic's span lies inside its file.

use proptest::prelude::*;
use vflow_compiler::check;
use vflow_compiler::source::{MemoryWorld, World};

/// Fragments of real syntax, so that generated inputs get deep into the grammar.
const TOKENS: &[&str] = &[
    "flow",
    "module",
    "import",
    "allow_transfer",
    "time_profile",
    "start",
    "var",
    "on",
    "when",
    "else",
    "return",
    "hangup",
    "menu",
    "play",
    "set",
    "test",
    "switch",
    "call",
    "input",
    "transfer",
    "leave_mail",
    "goto_start",
    "home",
    "prompt",
    "say",
    "speak",
    "digits",
    "module",
    "f",
    "n1",
    "n2",
    "x",
    "{",
    "}",
    "(",
    ")",
    "->",
    "=",
    "==",
    "+",
    "-",
    "*",
    "/",
    "%",
    "and",
    "or",
    "not",
    ":",
    ",",
    ".",
    "..",
    "|",
    "\"1\"",
    "\"welcome.wav\"",
    "\"2xxx\"",
    "\"*\"",
    "5s",
    "500ms",
    "42",
    "-1",
    "$CLI",
    "$CP1",
    "$NOPE",
    "user.x",
    "int",
    "string",
    "bool",
    "true",
    "false",
    "in_profile",
    "str",
    "mon..fri",
    "08:30..17:30",
    "2026-12-25",
    "except",
    "\n",
    " ",
    "//c\n",
    "/*",
    "*/",
    "\"",
    "\\",
    "é",
    "\u{0}",
    "named",
    "leave",
    "collect",
    "next",
    "timeout",
    "invalid",
    "exhausted",
];

fn soup() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(TOKENS), 0..80).prop_map(|v| v.join(" "))
}

fn check_text(text: &str) {
    let mut w = MemoryWorld::with_stdlib();
    let id = w.add("p/main.vflow", text);
    w.add("p/other.vflow", text);
    let checked = check::check(&mut w, &[id]);
    for d in &checked.diagnostics {
        let len = w.file(d.file).text.len() as u32;
        assert!(
            d.span.start <= d.span.end && d.span.end <= len,
            "span {:?} outside file of {len} bytes",
            d.span
        );
        let _ = d.render(w.file(d.file), |id| Some(w.file(id)), false);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn token_soup_never_panics(text in soup()) {
        check_text(&text);
    }

    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,300}") {
        check_text(&text);
    }

    #[test]
    fn mutated_valid_flow_never_panics(pos in 0usize..400, cut in 0usize..40, insert in prop::sample::select(TOKENS)) {
        let base = "import \"other.vflow\"\nallow_transfer \"2xxx\"\ntime_profile h { mon..fri 08:00..18:00 except 2026-12-25 }\n\
            flow f {\n start named \"x\" -> m\n var n: int = 0\n menu m { prompt \"a.wav\" on \"1\" -> s on timeout -> m }\n\
            set s { n = n + 1 $CP1 = str(n) on next -> t }\n test t { if n > 2 and in_profile(h) on true -> bye on false -> m }\n\
            transfer tr { to \"2001\" on busy -> bye }\n hangup bye\n}\n";
        let mut s = base.to_string();
        let at = s.char_indices().map(|(i, _)| i).nth(pos % s.chars().count()).unwrap_or(0);
        let end = s[at..].char_indices().map(|(i, _)| at + i).nth(cut).unwrap_or(s.len());
        s.replace_range(at..end, insert);
        check_text(&s);
    }
}
