//! The JIT against the interpreter on hand-written flows; the random
//! differential tests are in `tests/differential.rs`.

use super::*;
use crate::exec::{CallInfo, SimHost, TraceStep, drive, start};
use crate::source::MemoryWorld;

fn compile(src: &str) -> ir::Program {
    let mut w = MemoryWorld::with_stdlib();
    for part in src.split('"').skip(1).step_by(2) {
        if part.ends_with(".wav") {
            w.add_prompt(&format!("t/prompts/{part}"));
        }
    }
    let id = w.add("t/flow.vflow", src);
    let checked = crate::check::check(&mut w, &[id]);
    let errors: Vec<_> = checked
        .diagnostics
        .iter()
        .filter(|d| d.is_error())
        .map(|d| d.message.clone())
        .collect();
    assert!(errors.is_empty(), "{errors:#?}");
    let p = ir::lower(&w, &checked.program).expect("lowers");
    ir::verify(&p).expect("verifies");
    p
}

fn both(p: &ir::Program, start_at: &str, outcomes: &str) -> (Vec<TraceStep>, State) {
    let (kind, name) = start_at.split_once(':').unwrap();
    let clock = crate::exec::parse_clock("2026-03-02T10:00:00", Some("UTC")).unwrap();
    let call = CallInfo {
        cli: "01234".into(),
        ddi: "100".into(),
        ..Default::default()
    };
    let outs = Outcome::parse_list(outcomes).unwrap();
    let mut s1 = start(p, kind, name, call.clone()).unwrap();
    let mut h1 = SimHost::new(clock.clone());
    let t1 = drive(&Interpreter::new(p), &mut s1, &mut h1, outs.clone(), 200);
    let jit = Jit::compile(p).expect("compiles");
    let mut s2 = start(p, kind, name, call).unwrap();
    let mut h2 = SimHost::new(clock);
    let t2 = drive(&jit, &mut s2, &mut h2, outs, 200);
    assert_eq!(t1, t2, "traces differ");
    assert_eq!(s1, s2, "final states differ");
    assert_eq!(h1.user, h2.user, "user variables differ");
    (t2, s2)
}

#[test]
fn arithmetic_strings_and_branches_match_the_interpreter() {
    let p = compile(
        r#"
flow f {
  start leave "*" -> a
  var n: int = 3
  var s: string = "x"
  var b: bool = true
  set a { n = n * 7 - 1  s = s + str(n) + $CLI  $CP1 = upper(s)  user.last = str(n % 4)  on next -> t }
  test t { if len(s) > 3 and s starts_with "x2" on true -> w  on false -> bye }
  switch w {
    when n / 2 == 10 -> p
    when s contains "0123" -> q
    else -> bye
  }
  play p { speak s  say digits str(n)  on next -> bye }
  play q { speak "q"  on next -> bye }
  hangup bye
}
"#,
    );
    let (t, s) = both(&p, "leave:1", "");
    assert_eq!(
        t[0].effect.to_text(),
        r#"play [speak "x2001234", say digits "20"] barge_in=false"#
    );
    assert_eq!(s.cp[1], "X2001234");
}

#[test]
fn faults_take_the_failure_edge_or_end_the_call() {
    let p = compile(
        r#"
flow f {
  start leave "a" -> d
  start leave "b" -> i
  var z: int = 0
  set d { z = 10 / z  on next -> bye }
  set i { z = int("12x")  on next -> bye  on failure -> f }
  play f { speak "failed"  on next -> bye }
  hangup bye
}
"#,
    );
    let (t, _) = both(&p, "leave:a", "");
    assert!(
        matches!(&t[0].effect, Effect::Fault { message, .. } if message == "division by zero"),
        "{t:?}"
    );
    let (t, _) = both(&p, "leave:b", "");
    assert_eq!(
        t[0].effect.to_text(),
        r#"play [speak "failed"] barge_in=false"#
    );
}

#[test]
fn fuel_runs_out_on_the_same_node() {
    // The checker rejects pure cycles, so close the loop in the IR by hand.
    let mut p = compile(
        r#"
flow f {
  start leave "*" -> a
  var n: int = 0
  set a { n = n + 1  on next -> b }
  test b { if n < 1000000 on true -> bye  on false -> bye }
  hangup bye
}
"#,
    );
    let u = p.unit_by_name("f").unwrap() as usize;
    let ir::NodeKind::Branch { arms, .. } = &mut p.units[u].nodes[1].kind else {
        panic!("b is a branch")
    };
    arms[0].edge = Edge::Node(0);
    ir::verify(&p).unwrap();
    let (t, s) = both(&p, "leave:x", "");
    assert!(
        matches!(&t[0].effect, Effect::Fault { message, .. } if message.starts_with("fuel exhausted")),
        "{t:?}"
    );
    assert_eq!(s.var(&p, "n"), Some(Value::Int(100_001)));
}

#[test]
fn menus_inputs_and_modules_match_the_interpreter() {
    let p = compile(
        r#"
allow_transfer "2xxx"
module count(start: int, label: string) -> done | big {
  var k: int = start * 2
  set inc { k = k + 1  on next -> chk }
  test chk { if k > 10 on true -> return big  on false -> return done }
}
flow f {
  start leave "*" -> m
  var got: string = ""
  var r: int = 0
  menu m {
    prompt "hello.wav"
    on "1" -> in
    on "2?" -> c
    on timeout -> m
    on invalid -> m
    on exhausted -> bye
  }
  input in { into got  max_digits 4  on next -> c  on timeout -> bye }
  call c { module count(start = len(got) + 3, label = got)  on done -> x  on big -> y }
  transfer x { to "2" + got  on busy -> bye  on no_answer -> bye  on failure -> y }
  play y { speak got  on next -> m }
  hangup bye
}
"#,
    );
    both(&p, "leave:x", "key:1,digits:123#,busy");
    both(
        &p,
        "leave:x",
        "key:9,key:1,digits:9,ok,key:25,ok,timeout,timeout,timeout",
    );
    both(&p, "leave:x", "key:1,digits:12345678,fail,ok,hangup");
}

#[test]
fn code_lives_while_a_clone_does() {
    let p = compile(
        "flow f {\n  start leave \"*\" -> a\n  play a { speak \"hi\"  on next -> bye }\n  hangup bye\n}\n",
    );
    let jit = Jit::compile(&p).unwrap();
    let keep = jit.clone();
    assert_eq!(keep.users(), 2);
    drop(jit);
    assert_eq!(keep.users(), 1);
    let mut s = start(&p, "leave", "x", CallInfo::default()).unwrap();
    let mut h = SimHost::new(crate::exec::parse_clock("2026-03-02T10:00:00", Some("UTC")).unwrap());
    assert_eq!(
        keep.resume(&mut s, Outcome::Start, &mut h).to_text(),
        r#"play [speak "hi"] barge_in=false"#
    );
}
