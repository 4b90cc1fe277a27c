//! The interpreter's semantics, action by action, over flows that pass the checker.

use super::*;
use crate::check;
use crate::exec::{CallInfo, SimHost, TraceStep, drive, start};
use crate::ir::{Program, Unit, UnitKind};
use crate::source::MemoryWorld;

/// Checks, lowers and verifies one file (prompt files it names are made to exist).
pub(crate) fn compile(src: &str) -> Program {
    let mut w = MemoryWorld::with_stdlib();
    for part in src.split('"').skip(1).step_by(2) {
        if part.ends_with(".wav") {
            w.add_prompt(&format!("t/prompts/{part}"));
        }
    }
    let id = w.add("t/flow.vflow", src);
    let checked = check::check(&mut w, &[id]);
    let errors: Vec<_> = checked
        .diagnostics
        .iter()
        .filter(|d| d.is_error())
        .map(|d| d.message.clone())
        .collect();
    assert!(errors.is_empty(), "{errors:#?}");
    let p = crate::ir::lower(&w, &checked.program).expect("lowers");
    crate::ir::verify(&p).expect("verifies");
    p
}

fn clock(s: &str) -> jiff::ZonedDateTime {
    crate::exec::parse_clock(s, Some("UTC")).unwrap()
}

fn host() -> SimHost {
    SimHost::new(clock("2026-03-02T10:00:00"))
}

fn run_with(
    p: &Program,
    h: &mut SimHost,
    start_at: &str,
    outcomes: &str,
) -> (Vec<TraceStep>, State) {
    let (kind, name) = start_at.split_once(':').unwrap();
    let mut state = start(
        p,
        kind,
        name,
        CallInfo {
            cli: "01234".into(),
            ddi: "100".into(),
            ..Default::default()
        },
    )
    .unwrap();
    let trace = drive(
        &Interpreter::new(p),
        &mut state,
        h,
        Outcome::parse_list(outcomes).unwrap(),
        500,
    );
    (trace, state)
}

/// The effects of a call, one `to_text` line each.
fn run(p: &Program, start_at: &str, outcomes: &str) -> Vec<String> {
    run_with(p, &mut host(), start_at, outcomes)
        .0
        .iter()
        .map(|s| s.effect.to_text())
        .collect()
}

const RECEPTION: &str = r#"
allow_transfer "2xxx" "0"
flow reception {
  start auto_attendant "Reception" -> welcome
  start leave "*" -> vm
  menu welcome {
    prompt "welcome.wav"
    timeout 5s
    retries 2
    on "1" -> sales
    on "0" -> operator
    on timeout -> welcome
    on invalid -> welcome
    on exhausted -> operator
  }
  transfer sales { to "2001"  on busy -> vm  on no_answer -> vm  on failure -> vm }
  transfer operator { to "0"  on busy -> bye  on no_answer -> bye  on failure -> bye }
  leave_mail vm { mailbox "2001"  on next -> bye  on failure -> bye }
  hangup bye
}
"#;

#[test]
fn menu_key_transfers_and_busy_leaves_mail() {
    let p = compile(RECEPTION);
    let t = run(&p, "auto_attendant:Reception", "key:1,busy,recorded:5s");
    assert_eq!(
        t,
        [
            "menu [welcome.wav] interdigit_ms=2000 keys=[\"1\",\"0\"] retries=2 timeout_ms=5000",
            "transfer target=2001",
            "leave_mail beep=true greeting=true mailbox=2001 max_length_ms=120000 priority=normal review=true",
            "hangup",
        ]
    );
    // A successful blind transfer with `next` unconnected ends the call.
    let t = run(&p, "auto_attendant:Reception", "key:1,ok");
    assert_eq!(t.last().unwrap(), "hangup");
    assert_eq!(t.len(), 3);
}

#[test]
fn menu_counts_failures_and_a_valid_key_resets() {
    let p = compile(RECEPTION);
    // retries 2: two failures go back to the menu, the third is `exhausted`.
    let t = run(&p, "auto_attendant:Reception", "timeout,key:7,timeout,ok");
    assert_eq!(t.iter().filter(|e| e.starts_with("menu")).count(), 3);
    assert_eq!(t[3], "transfer target=0");
    // A valid key resets the count: after it, two more failures are allowed.
    let p2 = compile(
        r#"
flow f {
  start named "f" -> m
  menu m { retries 1  on "1" -> p  on exhausted -> bye }
  play p { prompt "p.wav"  on next -> m }
  hangup bye
}"#,
    );
    let t = run(&p2, "named:f", "timeout,key:1,ok,timeout,timeout");
    let menus = t.iter().filter(|e| e.starts_with("menu")).count();
    assert_eq!(menus, 4, "{t:#?}");
    assert_eq!(t.last().unwrap(), "hangup");
}

#[test]
fn unconnected_timeout_and_invalid_repeat_the_menu() {
    let p = compile(
        r#"
flow f {
  start named "f" -> m
  menu m { retries 3 invalid_prompt "sorry.wav"  on "1" -> bye  on exhausted -> bye }
  hangup bye
}"#,
    );
    let t = run(&p, "named:f", "timeout,key:9,ok,key:1");
    assert!(t[0].starts_with("menu"));
    assert!(t[1].starts_with("menu"));
    assert_eq!(t[2], "play [sorry.wav] barge_in=false");
    assert!(t[3].starts_with("menu"));
    assert_eq!(t[4], "hangup");
}

#[test]
fn menu_keys_multi_and_wildcards() {
    let p = compile(
        r#"
flow f {
  start named "f" -> m
  menu m {
    on "12#" -> a
    on "1?" -> b
    on "?" -> c
    on "*" -> d
    on exhausted -> bye
  }
  play a { speak "a" on next -> bye }
  play b { speak "b" say digits $KEY on next -> bye }
  play c { speak "c" on next -> bye }
  play d { speak "d" on next -> bye }
  hangup bye
}"#,
    );
    assert_eq!(
        run(&p, "named:f", "keys:12#")[1],
        r#"play [speak "a"] barge_in=false"#
    );
    assert_eq!(
        run(&p, "named:f", "keys:17")[1],
        r#"play [speak "b", say digits "17"] barge_in=false"#
    );
    assert_eq!(
        run(&p, "named:f", "key:5")[1],
        r#"play [speak "c"] barge_in=false"#
    );
    assert_eq!(
        run(&p, "named:f", "key:*")[1],
        r#"play [speak "d"] barge_in=false"#
    );
    // `?` alone is any single key, not a longer sequence.
    assert!(run(&p, "named:f", "keys:555")[1].starts_with("menu"));
}

#[test]
fn input_terminator_max_digits_and_timeout() {
    let p = compile(
        r##"
flow f {
  start named "f" -> i
  input i { into $CP2 max_digits 4 terminator "#" on next -> say on timeout -> late }
  play say { say digits $CP2 on next -> bye }
  play late { speak "late" on next -> bye }
  hangup bye
}"##,
    );
    let t = run(&p, "named:f", "digits:12#");
    assert_eq!(t[0], "input max_digits=4 terminator=# timeout_ms=5000");
    assert_eq!(t[1], r#"play [say digits "12"] barge_in=false"#);
    assert_eq!(
        run(&p, "named:f", "digits:123456")[1],
        r#"play [say digits "1234"] barge_in=false"#
    );
    assert_eq!(
        run(&p, "named:f", "timeout")[1],
        r#"play [speak "late"] barge_in=false"#
    );
    // Only the terminator: input ended, with no digits.
    assert_eq!(
        run(&p, "named:f", "digits:#")[1],
        r#"play [say digits ""] barge_in=false"#
    );
}

#[test]
fn set_test_switch_and_variables() {
    let p = compile(
        r#"
flow f {
  start named "f" -> count
  var n: int = 0
  var who: string = "x" + $CLI
  set count { n = n + 1  $CP1 = "tries:" + str(n)  user.last = who  on next -> check }
  test check { if n >= 3  on true -> done  on false -> again }
  play again { prompt "again.wav"  on next -> count }
  switch done {
    when $CP1 == "tries:2" -> bye
    when len(who) > 3 and $CLI starts_with "012" -> yes
    else -> bye
  }
  play yes { speak upper("ok") + str(n * 2 - 1)  on next -> bye }
  hangup bye
}"#,
    );
    let mut h = host();
    let (t, state) = run_with(&p, &mut h, "named:f", "ok,ok,ok");
    let t: Vec<_> = t.iter().map(|s| s.effect.to_text()).collect();
    assert_eq!(t.len(), 4, "{t:#?}");
    assert_eq!(t[2], r#"play [speak "OK5"] barge_in=false"#);
    assert_eq!(state.var(&p, "n"), Some(Value::Int(3)));
    assert_eq!(state.var(&p, "$CP1"), Some(Value::Str("tries:3".into())));
    assert_eq!(h.user.get("last").map(String::as_str), Some("x01234"));
}

#[test]
fn user_variables_persist_through_the_host() {
    let p = compile(
        r#"
flow f {
  start named "f" -> s
  set s { user.count = str(int("0" + user.count) + 1)  on next -> p }
  play p { say number int(user.count)  on next -> bye }
  hangup bye
}"#,
    );
    let mut h = host();
    run_with(&p, &mut h, "named:f", "ok");
    let (t, _) = run_with(&p, &mut h, "named:f", "ok");
    assert_eq!(
        t[0].effect.to_text(),
        r#"play [say number "2"] barge_in=false"#
    );
}

#[test]
fn nested_module_calls_return_by_exit() {
    let p = compile(
        r#"
module outer(x: int) -> even | odd {
  var y: int = x * 10
  call c { module inner(v = y + 1)  on big -> return odd  on small -> check }
  test check { if x % 2 == 0  on true -> return even  on false -> return odd }
}
module inner(v: int) -> big | small {
  play p { say number v  on next -> t }
  test t { if v > 50  on true -> return big  on false -> return small }
}
flow f {
  start named "f" -> a
  start named "g" -> b
  call a { module outer(x = 2)  on even -> yes  on odd -> no }
  call b { module outer(x = 9)  on even -> yes  on odd -> no }
  play yes { speak "even"  on next -> bye }
  play no { speak "odd"  on next -> bye }
  hangup bye
}"#,
    );
    let t = run(&p, "named:f", "ok,ok");
    assert_eq!(t[0], r#"play [say number "21"] barge_in=false"#);
    assert_eq!(t[1], r#"play [speak "even"] barge_in=false"#);
    let t = run(&p, "named:g", "ok,ok");
    assert_eq!(t[0], r#"play [say number "91"] barge_in=false"#);
    assert_eq!(t[1], r#"play [speak "odd"] barge_in=false"#);
    assert_eq!(t[2], "hangup");
}

#[test]
fn play_barge_in_only_when_key_is_connected() {
    let p = compile(
        r#"
flow f {
  start named "f" -> a
  play a { prompt "a.wav"  on key -> b  on next -> bye }
  play b { prompt "b.wav"  say digits $KEY  on next -> bye }
  hangup bye
}"#,
    );
    let t = run(&p, "named:f", "key:3,ok");
    assert_eq!(
        t,
        [
            "play [a.wav] barge_in=true",
            r#"play [b.wav, say digits "3"] barge_in=false"#,
            "hangup"
        ]
    );
    // Without barge-in a key just ends the prompt.
    assert_eq!(run(&p, "named:f", "ok,key:4")[1], "hangup");
}

#[test]
fn unconnected_play_failure_continues_with_next() {
    let p = compile(
        r#"
flow f {
  start named "f" -> a
  play a { prompt "a.wav"  on next -> b }
  play b { prompt "b.wav"  on next -> bye }
  hangup bye { prompt "bye.wav" }
}"#,
    );
    assert_eq!(
        run(&p, "named:f", "fail,ok"),
        [
            "play [a.wav] barge_in=false",
            "play [b.wav] barge_in=false",
            "hangup [bye.wav]"
        ]
    );
}

#[test]
fn computed_transfer_targets_are_checked_at_run_time() {
    let p = compile(
        r#"
allow_transfer "2xxx"
flow f {
  start named "f" -> i
  input i { into $CP0  on next -> t  on timeout -> bye }
  transfer t { to $CP0  on busy -> bye  on no_answer -> bye  on failure -> denied }
  play denied { speak "no"  on next -> bye }
  hangup bye
}"#,
    );
    assert_eq!(
        run(&p, "named:f", "digits:2001#,ok")[1],
        "transfer target=2001"
    );
    // Caller digits cannot reach a destination the file does not allow.
    assert_eq!(
        run(&p, "named:f", "digits:9011441234#")[1],
        r#"play [speak "no"] barge_in=false"#
    );
    assert_eq!(run(&p, "named:f", "digits:2001,busy")[2], "hangup");
    assert_eq!(run(&p, "named:f", "digits:2001,no_answer")[2], "hangup");
}

#[test]
fn mailbox_primitives_and_record() {
    let p = compile(
        r#"
flow f {
  start collect "*" -> pin
  var n: int = 0
  input pin { into $CP0  on next -> check  on timeout -> bye }
  verify_pin check { mailbox $TARGET  pin $CP0  on valid -> count  on invalid -> pin  on locked -> bye }
  message_count count { mailbox $TARGET  folder "new"  into n  on next -> say  on failure -> bye }
  play say { say number n  on next -> msg }
  play_message msg { mailbox $TARGET  folder "new"  index 0  on next -> save  on key -> del  on failure -> bye }
  save_message save { mailbox $TARGET  folder "new"  index 0  on next -> rec  on failure -> bye }
  delete_message del { mailbox $TARGET  folder "new"  index 0  on next -> rec  on failure -> bye }
  record rec { max_length 30s  on next -> mail  on timeout -> bye  on failure -> bye }
  email mail { to "a@example.com"  subject "new " + $RECORDING  attach true  on next -> bye  on failure -> bye }
  hangup bye
}"#,
    );
    let t = run(
        &p,
        "collect:2001",
        "digits:1234#,invalid,digits:1111#,valid,count:3,ok,ok,ok,recorded:4s,ok",
    );
    assert_eq!(t[1], "verify_pin mailbox=2001 pin=1234");
    assert_eq!(t[4], "message_count folder=new mailbox=2001");
    assert_eq!(t[5], r#"play [say number "3"] barge_in=false"#);
    assert_eq!(
        t[6],
        "play_message barge_in=true envelope=true folder=new index=0 mailbox=2001"
    );
    assert_eq!(t[7], "save_message folder=new index=0 mailbox=2001");
    assert_eq!(
        t[8],
        "record beep=true max_length_ms=30000 recording=rec silence_ms=3000"
    );
    assert_eq!(
        t[9],
        r#"email attach=true body="" subject="new rec" to=a@example.com"#
    );
    assert_eq!(t[10], "hangup");
    let t = run(&p, "collect:2001", "digits:1#,locked");
    assert_eq!(t[2], "hangup");
    let t = run(&p, "collect:2001", "digits:1#,valid,count:1,ok,key:7,ok");
    assert_eq!(t[5], "delete_message folder=new index=0 mailbox=2001");
}

#[test]
fn greetings_pins_waits_and_assisted_transfer() {
    let p = compile(
        r#"
allow_transfer "2xxx"
flow f {
  start named "f" -> g
  record_greeting g { mailbox "2001"  kind "busy"  on next -> s  on timeout -> bye  on failure -> bye }
  set_greeting s { mailbox "2001"  kind "busy"  on next -> pin  on failure -> bye }
  set_pin pin { mailbox "2001"  pin "4711"  on next -> w  on invalid -> bad  on failure -> bye }
  wait w { duration 2s  music "hold.wav"  on next -> at }
  assisted_transfer at { to "2002"  timeout 15s  on busy -> bye  on no_answer -> bye  on failure -> bye }
  play bad { speak "bad"  on next -> bye }
  hangup bye
}"#,
    );
    let t = run(&p, "named:f", "recorded:3s,ok,ok,ok,ok");
    assert_eq!(
        t[0],
        "record_greeting kind=busy mailbox=2001 max_length_ms=60000"
    );
    assert_eq!(t[1], "set_greeting kind=busy mailbox=2001 use=recorded");
    assert_eq!(t[2], "set_pin mailbox=2001 pin=4711");
    assert_eq!(t[3], "wait duration_ms=2000 music=hold.wav");
    assert_eq!(
        t[4],
        "assisted_transfer music=\"\" target=2002 timeout_ms=15000"
    );
    assert_eq!(t[5], "hangup");
    assert_eq!(
        run(&p, "named:f", "ok,ok,invalid,ok")[3],
        r#"play [speak "bad"] barge_in=false"#
    );
}

#[test]
fn caller_hangup_ends_the_call_and_resume_repeats_the_end() {
    let p = compile(RECEPTION);
    let mut h = host();
    let mut s = start(&p, "auto_attendant", "Reception", CallInfo::default()).unwrap();
    let i = Interpreter::new(&p);
    assert!(matches!(
        i.resume(&mut s, Outcome::Start, &mut h),
        Effect::Menu { .. }
    ));
    assert_eq!(i.resume(&mut s, Outcome::Hangup, &mut h), Effect::Ended);
    assert_eq!(
        i.resume(&mut s, Outcome::Keys("1".into()), &mut h),
        Effect::Ended
    );
    assert!(s.is_done());
}

#[test]
fn an_outcome_that_does_not_fit_is_a_fault_not_a_panic() {
    let p = compile(RECEPTION);
    let t = run(&p, "auto_attendant:Reception", "busy");
    assert_eq!(t.len(), 2);
    assert!(
        t[1].starts_with(
            "fault file=t/flow.vflow line=6 message=\"`busy` is not an outcome of `menu`\""
        ),
        "{}",
        t[1]
    );
}

#[test]
fn faults_take_failure_or_end_with_file_and_line() {
    let p = compile(
        r#"
flow f {
  start named "div" -> d
  start named "int" -> i
  start named "caught" -> c
  start named "ovf" -> o
  var zero: int = 0
  set d { $CP0 = str(10 / zero)  on next -> bye }
  set i { $CP0 = str(int("12a"))  on next -> bye }
  set c { $CP0 = str(10 % zero)  on next -> bye  on failure -> oops }
  set o { $CP0 = str(9223372036854775807 + 1)  on next -> bye }
  play oops { speak "caught"  on next -> bye }
  hangup bye
}"#,
    );
    let fault =
        |name: &str| match &run_with(&p, &mut host(), &format!("named:{name}"), "").0[0].effect {
            Effect::Fault {
                message,
                file,
                line,
            } => (message.clone(), file.clone(), *line),
            other => panic!("{other:?}"),
        };
    assert_eq!(
        fault("div"),
        ("division by zero".into(), "t/flow.vflow".into(), 8)
    );
    assert_eq!(
        fault("int"),
        (
            "int(\"12a\"): not a whole number".into(),
            "t/flow.vflow".into(),
            9
        )
    );
    assert_eq!(fault("ovf").0, "integer overflow in `+`");
    assert_eq!(
        run(&p, "named:caught", "ok")[0],
        r#"play [speak "caught"] barge_in=false"#
    );
}

#[test]
fn fuel_guards_loops_that_never_wait() {
    // The checker rejects pure cycles, so build the IR by hand: a set node that jumps to itself.
    let mut p = compile(
        "flow f { start named \"f\" -> s  set s { $CP0 = \"x\"  on next -> bye }  hangup bye }",
    );
    let u = p.unit_by_name("f").unwrap() as usize;
    p.units[u].nodes[0].kind = ir::NodeKind::Goto(Edge::Node(0));
    ir::verify(&p).unwrap();
    let mut s = start(&p, "named", "f", CallInfo::default()).unwrap();
    s.fuel_per_resume = 50;
    let e = Interpreter::new(&p).resume(&mut s, Outcome::Start, &mut host());
    assert!(
        matches!(&e, Effect::Fault { message, line: 1, .. } if message.starts_with("fuel exhausted")),
        "{e:?}"
    );
    assert_eq!(s.steps, 51);
}

#[test]
fn deep_recursion_faults() {
    let mut p = compile(
        r#"
module m() -> done { play p { speak "x"  on next -> return done } }
flow f { start named "f" -> c  call c { module m()  on done -> bye }  hangup bye }"#,
    );
    // Make the module call itself before waiting.
    let m = p.unit_by_name("flow.m").unwrap();
    p.units[m as usize].nodes.insert(
        0,
        ir::Node {
            name: "again".into(),
            line: 2,
            ops: vec![],
            on_fault: None,
            kind: ir::NodeKind::Call {
                unit: m,
                args: vec![],
                exits: vec![Edge::Return(0)],
            },
        },
    );
    if let ir::NodeKind::Effect(e) = &mut p.units[m as usize].nodes[1].kind {
        e.results = e
            .results
            .iter()
            .map(|r| {
                if let Edge::Node(i) = r {
                    Edge::Node(i + 1)
                } else {
                    *r
                }
            })
            .collect();
    }
    ir::verify(&p).unwrap();
    let t = run(&p, "named:f", "");
    assert!(t[0].contains("nested deeper than 64"), "{t:?}");
}

#[test]
fn goto_start_and_home_restart_the_call() {
    let p = compile(
        r#"
flow f {
  start named "main" -> m
  start leave "*" -> vm
  var visits: int = 0
  menu m { on "1" -> other  on "2" -> again  on exhausted -> bye }
  goto_start other { start leave "3001" }
  set again { $CP3 = "kept"  on next -> h }
  home h
  leave_mail vm { mailbox $TARGET  on next -> bye  on failure -> bye }
  hangup bye
}"#,
    );
    let t = run(&p, "named:main", "key:1,ok");
    assert!(t[1].contains("mailbox=3001"), "{t:?}");
    let (t, s) = run_with(&p, &mut host(), "named:main", "key:2,key:1,ok");
    assert!(t[1].effect.to_text().starts_with("menu"));
    assert_eq!(s.var(&p, "$CP3"), Some(Value::Str("kept".into())));
    assert_eq!(s.var(&p, "$TARGET"), Some(Value::Str("3001".into())));
}

#[test]
fn get_mail_runs_the_stdlib_collect_module() {
    let p = compile(
        r#"
import "std/mailbox.vflow"
flow f {
  start collect "*" -> gm
  get_mail gm { mailbox $TARGET  on next -> bye  on failure -> bye }
  hangup bye
}"#,
    );
    let (_, s) = run_with(&p, &mut host(), "collect:2001", "");
    let first = s.last_node.unwrap();
    assert_eq!(p.units[first.0 as usize].name, "mailbox.collect");
    let collect = p.unit_by_name("mailbox.collect").unwrap();
    let gm = &p.units[p.unit_by_name("f").unwrap() as usize].nodes[0];
    assert!(
        matches!(&gm.kind, ir::NodeKind::Call { unit, exits, .. } if *unit == collect && exits[0] == Edge::Node(1))
    );
}

fn profile_flow() -> Program {
    compile(
        r#"
time_profile late {
  fri 22:00..02:00
}
time_profile weekend {
  sat..mon
  except 2026-03-09
}
time_profile office {
  mon..fri 08:30..17:30
  sat 09:00..12:00
  except 2026-12-25, 2026-12-26
}
flow f {
  start named "f" -> s
  switch s {
    when in_profile(late) -> l
    when in_profile(office) -> o
    when in_profile(weekend) -> w
    else -> bye
  }
  play l { speak "late" on next -> bye }
  play o { speak "office" on next -> bye }
  play w { speak "weekend" on next -> bye }
  hangup bye
}"#,
    )
}

#[test]
fn time_profiles_across_midnight_weekdays_and_except_dates() {
    let p = profile_flow();
    let at = |when: &str| {
        let mut h = SimHost::new(clock(when));
        run_with(&p, &mut h, "named:f", "").0[0].effect.to_text()
    };
    let said = |s: &str| format!("play [speak {s:?}] barge_in=false");
    // 2026-03-06 is a Friday.
    assert_eq!(at("2026-03-06T23:30"), said("late"));
    assert_eq!(at("2026-03-07T01:59"), said("late")); // Saturday morning, Friday's range
    assert_eq!(at("2026-03-07T02:00"), said("weekend"));
    assert_eq!(at("2026-03-06T21:59"), "hangup");
    assert_eq!(at("2026-03-05T23:30"), "hangup"); // Thursday night is not `late`
    assert_eq!(at("2026-03-06T08:30"), said("office"));
    assert_eq!(at("2026-03-06T17:30"), "hangup"); // the end is exclusive
    assert_eq!(at("2026-03-07T11:00"), said("office")); // Saturday morning
    assert_eq!(at("2026-03-07T13:00"), said("weekend"));
    assert_eq!(at("2026-03-09T07:00"), "hangup"); // Monday 2026-03-09 is excepted
    assert_eq!(at("2026-03-02T07:00"), said("weekend")); // an ordinary Monday, sat..mon wraps
    assert_eq!(at("2026-12-25T10:00"), "hangup"); // Friday, Christmas
    assert_eq!(at("2026-12-24T10:00"), said("office"));
}

#[test]
fn system_variables_follow_the_clock_and_call() {
    let p = compile(
        r#"
flow f {
  start named "f" -> p
  play p { speak $DAY + " " + $DATE + " " + $TIME + " " + $CLI + " " + $DDI + " " + $TARGET + " " + $REASON  on next -> bye }
  hangup bye
}"#,
    );
    let mut h = SimHost::new(clock("2026-03-06T09:05"));
    let t = run_with(&p, &mut h, "named:f", "").0;
    assert_eq!(
        t[0].effect.to_text(),
        r#"play [speak "fri 2026-03-06 09:05 01234 100 f unknown"] barge_in=false"#
    );
}

#[test]
fn a_module_can_be_started_directly() {
    let p = compile(
        r#"
module m(a: string) -> yes | no {
  test t { if a == "y"  on true -> return yes  on false -> return no }
}
flow f { start named "f" -> bye  hangup bye }"#,
    );
    let mut s = crate::exec::start_module(
        &p,
        "flow.m",
        vec![Value::Str("y".into())],
        CallInfo::default(),
    )
    .unwrap();
    let e = Interpreter::new(&p).resume(&mut s, Outcome::Start, &mut host());
    assert_eq!(e, Effect::Hangup { prompts: vec![] });
    assert_eq!(s.exit.as_deref(), Some("yes"));
    assert!(crate::exec::start_module(&p, "flow.m", vec![], CallInfo::default()).is_err());
    assert!(crate::exec::start_module(&p, "f", vec![], CallInfo::default()).is_err());
}

#[test]
fn verifier_rejects_broken_ir() {
    let good = compile(RECEPTION);
    let mut p = good.clone();
    p.version = 99;
    assert!(ir::verify(&p).is_err());
    let mut p = good.clone();
    if let ir::NodeKind::Effect(e) = &mut p.units[0].nodes[0].kind {
        e.results[0] = Edge::Node(99);
    }
    assert!(
        ir::verify(&p)
            .unwrap_err()
            .message
            .contains("edge to node 99")
    );
    let mut p = good.clone();
    if let ir::NodeKind::Effect(e) = &mut p.units[0].nodes[1].kind {
        e.args[0] = ir::Expr::Const(Value::Int(1));
    }
    assert!(ir::verify(&p).is_err());
    let mut p = good.clone();
    p.units.push(Unit {
        kind: UnitKind::Flow,
        name: "empty".into(),
        file: 0,
        line: 1,
        params: 0,
        locals: vec![],
        init: vec![],
        exits: vec![],
        allow_transfer: vec![],
        nodes: vec![],
    });
    assert!(ir::verify(&p).is_err());
    let mut p = good;
    p.entries[0].node = 42;
    assert!(ir::verify(&p).is_err());
}

/// Programs that together use every IR construct (for the text form's round trip).
pub(crate) fn sample_programs() -> Vec<Program> {
    let everything = r##"
import "std/mailbox.vflow"
import "std/attendant.vflow"
allow_transfer "2xxx" "0"
time_profile night { mon..fri, 2026-12-24..2026-12-31 18:00..08:00  except 2026-12-25 }
module helper(a: string, b: int) -> ok | bad {
  var c: bool = not (b > 3) or a contains "x"
  test t { if c and -b < 0  on true -> return ok  on false -> return bad  on failure -> return bad }
}
flow everything {
  start named "e" -> s
  start leave "*" -> gm
  var n: int = -5
  var s2: string = substr(trim(" abc "), 1, 1) + replace("a-b", "-", "+") + lower("X") + upper("y")
  set s { n = abs(n) % 3 + min(1, 2) * max(3, 4) / 2 - len("ab")  $CP15 = str(is_digits("12"))  user.u = str(int("7"))
          on next -> sw  on failure -> bye }
  switch sw { when in_profile(night) -> gs  when $CLI ends_with "9" and $DAY != "sun" -> bye  when $TIME >= "12:00" -> c  else -> m }
  goto_start gs { start leave "2001" }
  home h
  call c { module helper(a = $CP1, b = n)  on ok -> m  on bad -> bye }
  menu m { prompt "a.wav" ("b" + $KEY + ".wav")  say digits $CLI  speak "hi"  timeout 3s  retries 1  invalid_prompt "inv.wav"
           on "1" -> i  on "0" -> h  on "2?" -> mc  on "#" -> att  on timeout -> m  on exhausted -> bye }
  input i { into $CP2  max_digits 4  terminator "*"  on next -> mc  on timeout -> bye }
  message_count mc { mailbox $CP2  folder "saved"  into n  on next -> bye  on failure -> bye }
  call att { module attendant.main(operator = "0", mailbox = "200")  on done -> gm }
  get_mail gm { prompt "gm.wav"  mailbox $TARGET  on next -> bye  on failure -> bye }
  hangup bye { speak "bye" }
}
"##;
    vec![compile(RECEPTION), profile_flow(), compile(everything)]
}
