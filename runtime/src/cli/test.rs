//! `vflow test`: run the flow tests in `*.test.yaml` files (docs/TESTING.md)
//! and report failures as a diff of the expected and the actual call.

use super::SourceOpts;
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use vflow_compiler::exec::{self, CallInfo, Effect, Outcome, SimHost, TraceStep};
use vflow_compiler::ir::{self, Value};
use vflow_compiler::jit;

#[derive(clap::Args, Debug)]
pub struct TestArgs {
    /// Test files or directories (searched recursively for `*.test.yaml`).
    /// Default: `.` A bundle among them (`vflow build`; a `.vfb` file or one
    /// that starts with the bundle magic) is what every test runs on, in
    /// place of the flows each test file names; it needs --trusted-key.
    pub paths: Vec<PathBuf>,
    /// A public key (`vflow keygen`) bundles are checked against
    /// (repeatable); required to run a bundle.
    #[arg(long = "trusted-key", value_name = "FILE")]
    pub trusted_keys: Vec<PathBuf>,
    /// Report which nodes of each flow and module the tests executed.
    #[arg(long)]
    pub coverage: bool,
    /// Run only tests whose name contains this text.
    #[arg(long, value_name = "TEXT")]
    pub filter: Option<String>,
    /// The engine; default: the JIT where Cranelift supports the host.
    #[arg(long, value_enum)]
    pub engine: Option<super::simulate::EngineKind>,
    #[command(flatten)]
    pub source: SourceOpts,
}

/// One `*.test.yaml` file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TestFile {
    /// The .vflow files under test, relative to this file, or one bundle
    /// (checked with `--trusted-key`); default: every `.vflow` file in its
    /// directory.
    #[serde(default)]
    flows: Vec<String>,
    /// Defaults for every test of the file.
    #[serde(default)]
    defaults: Call,
    /// Each test: `name`, the call's fields (as in `defaults`), `outcomes`, `expect`.
    tests: Vec<serde_yaml::Mapping>,
}

#[derive(Debug, Default, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
struct Call {
    /// `KIND:NAME`.
    start: Option<String>,
    /// A module to run directly (`mailbox.collect`), with `args`.
    module: Option<String>,
    #[serde(default)]
    args: BTreeMap<String, serde_yaml::Value>,
    cli: Option<String>,
    ddi: Option<String>,
    caller_name: Option<String>,
    reason: Option<String>,
    call_id: Option<String>,
    /// The clock, RFC 3339.
    at: Option<String>,
    tz: Option<String>,
    /// User variables before the call.
    #[serde(default)]
    user: BTreeMap<String, serde_yaml::Value>,
    /// Transfer patterns allowed in addition to the entry file's.
    #[serde(default)]
    allow_transfer: Vec<String>,
}

#[derive(Debug)]
struct Test {
    name: String,
    call: Call,
    /// A list, or one comma-separated string.
    outcomes: Option<serde_yaml::Value>,
    expect: Expect,
}

impl Test {
    /// Splits a test's mapping into its own keys and the call's (which are
    /// checked for unknown keys like every other part of the file).
    fn from_yaml(mut m: serde_yaml::Mapping, index: usize) -> Result<Test, String> {
        let mut take = |k: &str| m.remove(serde_yaml::Value::String(k.into()));
        let name = match take("name") {
            Some(v) => scalar_text(&v),
            None => format!("test {}", index + 1),
        };
        let outcomes = take("outcomes");
        let expect = match take("expect") {
            Some(v) => serde_yaml::from_value(v).map_err(|e| format!("{name}: expect: {e}"))?,
            None => Expect::default(),
        };
        let call = serde_yaml::from_value(serde_yaml::Value::Mapping(m))
            .map_err(|e| format!("{name}: {e}"))?;
        Ok(Test {
            name,
            call,
            outcomes,
            expect,
        })
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Expect {
    /// The whole call, every effect in order.
    effects: Option<Vec<serde_yaml::Value>>,
    /// These effects, in this order, among the call's.
    includes: Option<Vec<serde_yaml::Value>>,
    /// None of the call's effects matches any of these.
    excludes: Option<Vec<serde_yaml::Value>>,
    /// The last node executed (`bye` or `flow.bye`).
    final_node: Option<String>,
    /// The exit a module test left by.
    exit: Option<String>,
    /// Variables at the end: flow locals by name, `$CP1`, `$KEY`, `$TARGET`, `$RECORDING`.
    #[serde(default)]
    vars: BTreeMap<String, serde_yaml::Value>,
    /// User variables at the end.
    #[serde(default)]
    user: BTreeMap<String, serde_yaml::Value>,
    /// The mailboxes messages were left in, in order (a `leave_mail` answered
    /// `ok`/`recorded`, or the caller hanging up while it recorded).
    messages: Option<Vec<String>>,
    /// The call ends in a fault whose message contains this text; `""` for any fault.
    fault: Option<String>,
    /// How the call ends: `hangup`, `ended` (caller hung up) or `fault`.
    end: Option<String>,
}

pub fn run(args: TestArgs) -> ExitCode {
    let (bundles, test_paths): (Vec<PathBuf>, Vec<PathBuf>) = args
        .paths
        .iter()
        .cloned()
        .partition(|p| crate::bundles::is_bundle_path(p));
    if bundles.len() > 1 {
        eprintln!(
            "error: give one bundle to test, not {} ({})",
            bundles.len(),
            bundles
                .iter()
                .map(|b| b.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
        return ExitCode::from(2);
    }
    let bundle = match bundles.first() {
        Some(b) => match super::simulate::load_bundle_program(b, &args.trusted_keys) {
            Ok(p) => {
                println!("testing bundle {}", b.display());
                Some(p)
            }
            Err((code, e)) => {
                eprintln!("error: {e}");
                return code;
            }
        },
        None => None,
    };
    let files = match find_tests(&test_paths) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    if files.is_empty() {
        eprintln!("error: no *.test.yaml files found");
        return ExitCode::from(2);
    }
    let mut passed = 0;
    let mut failed = 0;
    let mut coverage = Coverage::default();
    for file in &files {
        let (p, f) = run_file(file, &args, bundle.as_ref(), &mut coverage);
        passed += p;
        failed += f;
    }
    if args.coverage {
        coverage.report();
    }
    println!("\n{passed} passed, {failed} failed");
    if failed > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

fn find_tests(paths: &[PathBuf]) -> Result<Vec<PathBuf>, String> {
    let default = [PathBuf::from(".")];
    let paths = if paths.is_empty() {
        &default[..]
    } else {
        paths
    };
    let mut out = Vec::new();
    for p in paths {
        let meta =
            std::fs::metadata(p).map_err(|e| format!("cannot read `{}`: {e}", p.display()))?;
        if meta.is_dir() {
            walk(p, &mut out).map_err(|e| format!("cannot read `{}`: {e}", p.display()))?;
        } else {
            out.push(p.clone());
        }
    }
    Ok(out)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)?.collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let name = e.file_name().to_string_lossy().to_string();
        if name.starts_with('.') || name == "target" {
            continue;
        }
        if e.file_type()?.is_dir() {
            walk(&e.path(), out)?;
        } else if name.ends_with(".test.yaml") || name.ends_with(".test.yml") {
            out.push(e.path());
        }
    }
    Ok(())
}

/// Runs one test file on `bundle`, or else on the flows it names; returns
/// (passed, failed).
fn run_file(
    path: &Path,
    args: &TestArgs,
    bundle: Option<&ir::Program>,
    coverage: &mut Coverage,
) -> (usize, usize) {
    let shown = path.display();
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => {
            println!("FAIL {shown}: cannot read: {e}");
            return (0, 1);
        }
    };
    let tf: TestFile = match serde_yaml::from_str(&text) {
        Ok(t) => t,
        Err(e) => {
            let at = e
                .location()
                .map(|l| format!(":{}:{}", l.line(), l.column()))
                .unwrap_or_default();
            println!("FAIL {shown}{at}: {e}");
            return (0, 1);
        }
    };
    let mut tests = Vec::new();
    for (i, m) in tf.tests.into_iter().enumerate() {
        match Test::from_yaml(m, i) {
            Ok(t) => tests.push(t),
            Err(e) => {
                println!("FAIL {shown}: {e}");
                return (0, 1);
            }
        }
    }
    let dir = path
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    let flow_paths: Vec<PathBuf> = if tf.flows.is_empty() {
        let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
            .map(|rd| {
                rd.flatten()
                    .map(|e| e.path())
                    .filter(|p| p.extension().is_some_and(|x| x == "vflow"))
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    } else {
        tf.flows.iter().map(|f| dir.join(f)).collect()
    };
    let loaded;
    let program = match bundle {
        Some(p) => p,
        None => {
            let bundles = flow_paths
                .iter()
                .filter(|p| crate::bundles::is_bundle_path(p))
                .count();
            let result = match (bundles, flow_paths.len()) {
                (0, _) => super::ir::compile(&flow_paths, &args.source)
                    .map(|(_, p)| p)
                    .map_err(|_| "the flows do not compile (see above)".to_string()),
                (1, 1) => super::simulate::load_bundle_program(&flow_paths[0], &args.trusted_keys)
                    .map_err(|(_, e)| e),
                _ => Err("`flows` names either .vflow files or one bundle, not both".into()),
            };
            match result {
                Ok(p) => {
                    loaded = p;
                    &loaded
                }
                Err(e) => {
                    println!("FAIL {shown}: {e}");
                    return (0, tests.len().max(1));
                }
            }
        }
    };
    coverage.add_program(program);
    let kind = match args.engine {
        Some(super::simulate::EngineKind::Jit) => jit::EngineKind::Jit,
        Some(super::simulate::EngineKind::Interp) => jit::EngineKind::Interp,
        None => jit::EngineKind::default_for_host(),
    };
    let engine = match jit::load(program, kind) {
        Ok(e) => e,
        Err(e) => {
            println!("FAIL {shown}: {e}");
            return (0, tests.len().max(1));
        }
    };
    let (mut passed, mut failed) = (0, 0);
    for t in &tests {
        if args
            .filter
            .as_ref()
            .is_some_and(|f| !t.name.contains(f.as_str()))
        {
            continue;
        }
        match run_test(program, &engine, &tf.defaults, t, coverage) {
            Ok(()) => {
                println!("ok   {shown}: {}", t.name);
                passed += 1;
            }
            Err(report) => {
                println!("FAIL {shown}: {}\n{report}", t.name);
                failed += 1;
            }
        }
    }
    (passed, failed)
}

fn merge(defaults: &Call, c: &Call) -> Call {
    let pick = |a: &Option<String>, b: &Option<String>| a.clone().or_else(|| b.clone());
    let mut user = defaults.user.clone();
    user.extend(c.user.clone());
    let mut args = defaults.args.clone();
    args.extend(c.args.clone());
    Call {
        start: pick(&c.start, &defaults.start),
        module: pick(&c.module, &defaults.module),
        args,
        cli: pick(&c.cli, &defaults.cli),
        ddi: pick(&c.ddi, &defaults.ddi),
        caller_name: pick(&c.caller_name, &defaults.caller_name),
        reason: pick(&c.reason, &defaults.reason),
        call_id: pick(&c.call_id, &defaults.call_id),
        at: pick(&c.at, &defaults.at),
        tz: pick(&c.tz, &defaults.tz),
        user,
        allow_transfer: [defaults.allow_transfer.clone(), c.allow_transfer.clone()].concat(),
    }
}

fn scalar_text(v: &serde_yaml::Value) -> String {
    match v {
        serde_yaml::Value::String(s) => s.clone(),
        serde_yaml::Value::Null => String::new(),
        other => serde_yaml::to_string(other)
            .unwrap_or_default()
            .trim()
            .to_string(),
    }
}

fn run_test(
    program: &ir::Program,
    engine: &dyn exec::Engine,
    defaults: &Call,
    t: &Test,
    coverage: &mut Coverage,
) -> Result<(), String> {
    let c = merge(defaults, &t.call);
    let call = CallInfo {
        cli: c.cli.clone().unwrap_or_default(),
        ddi: c.ddi.clone().unwrap_or_default(),
        caller_name: c.caller_name.clone().unwrap_or_default(),
        call_id: c.call_id.clone().unwrap_or_else(|| "test-1".into()),
        reason: c.reason.clone().unwrap_or_else(|| "unknown".into()),
    };
    let mut state = match (&c.start, &c.module) {
        (Some(s), None) => {
            let (kind, name) = s
                .split_once(':')
                .ok_or("`start` takes KIND:NAME, e.g. `leave:2001`")?;
            exec::start(program, kind, name, call).map_err(|e| e.to_string())?
        }
        (None, Some(m)) => {
            let unit = program
                .unit_by_name(m)
                .ok_or_else(|| format!("no module `{m}`"))?;
            let u = &program.units[unit as usize];
            let mut vals = Vec::new();
            for l in &u.locals[..u.params as usize] {
                let v = c
                    .args
                    .get(&l.name)
                    .ok_or_else(|| format!("missing argument `{}` for `{m}`", l.name))?;
                vals.push(match l.ty {
                    ir::Ty::Str => Value::Str(scalar_text(v)),
                    ir::Ty::Int => Value::Int(
                        v.as_i64()
                            .ok_or_else(|| format!("argument `{}` is an int", l.name))?,
                    ),
                    ir::Ty::Bool => Value::Bool(
                        v.as_bool()
                            .ok_or_else(|| format!("argument `{}` is a bool", l.name))?,
                    ),
                });
            }
            exec::start_module(program, m, vals, call).map_err(|e| e.to_string())?
        }
        _ => return Err("give either `start: KIND:NAME` or `module: NS.NAME`".into()),
    };
    state
        .allow_transfer
        .extend(c.allow_transfer.iter().cloned());
    let clock = match &c.at {
        Some(at) => exec::parse_clock(at, c.tz.as_deref())?,
        None => exec::parse_clock(
            "2026-01-05T10:00:00",
            Some(c.tz.as_deref().unwrap_or("UTC")),
        )?,
    };
    let mut host = SimHost::new(clock);
    host.track = true;
    for (k, v) in &c.user {
        host.user.insert(k.clone(), scalar_text(v));
    }
    let outcomes = match &t.outcomes {
        None => Vec::new(),
        Some(serde_yaml::Value::String(s)) => Outcome::parse_list(s)?,
        Some(serde_yaml::Value::Sequence(items)) => items
            .iter()
            .map(|i| Outcome::parse(&scalar_text(i)))
            .collect::<Result<Vec<_>, _>>()?,
        Some(_) => return Err("`outcomes` is a list or a comma-separated string".into()),
    };
    let trace = exec::drive(engine, &mut state, &mut host, outcomes, 10_000);
    coverage.record(program, &host);
    check_expect(program, &state, &host, &trace, &t.expect)
}

fn effect_json(e: &Effect) -> serde_json::Value {
    e.to_json()
}

/// Whether an expected effect (a name, a line as `vflow simulate` prints it,
/// or a map of some of its fields) matches an actual one.
fn effect_matches(expected: &serde_yaml::Value, actual: &Effect) -> bool {
    match expected {
        serde_yaml::Value::String(s) if !s.contains(' ') => s == actual.name(),
        serde_yaml::Value::String(s) => s.trim() == actual.to_text(),
        other => match serde_json::to_value(other) {
            Ok(want) => subset(&want, &effect_json(actual)),
            Err(_) => false,
        },
    }
}

/// `want` is contained in `have`: objects by their keys, arrays element-wise,
/// scalars by their text (so `2001` matches `"2001"`).
fn subset(want: &serde_json::Value, have: &serde_json::Value) -> bool {
    use serde_json::Value as J;
    match (want, have) {
        (J::Object(w), J::Object(h)) => w.iter().all(|(k, v)| match h.get(k) {
            Some(hv) => subset(v, hv),
            None => k == "prompts" && v.as_array().is_some_and(Vec::is_empty),
        }),
        (J::Array(w), J::Array(h)) => {
            w.len() == h.len() && w.iter().zip(h).all(|(a, b)| subset(a, b))
        }
        (J::Array(w), J::Null) => w.is_empty(),
        (J::String(a), J::String(b)) => a == b,
        (J::String(a), b @ (J::Number(_) | J::Bool(_)))
        | (b @ (J::Number(_) | J::Bool(_)), J::String(a)) => a.as_str() == b.to_string().as_str(),
        (a, b) => a == b,
    }
}

fn show_expected(v: &serde_yaml::Value) -> String {
    match v {
        serde_yaml::Value::String(s) => s.clone(),
        other => serde_json::to_string(other).unwrap_or_default(),
    }
}

fn trace_lines(trace: &[TraceStep]) -> Vec<String> {
    trace
        .iter()
        .map(|s| match &s.outcome {
            Some(o) => format!("{}   <- {o}", s.effect.to_text()),
            None => s.effect.to_text(),
        })
        .collect()
}

fn check_expect(
    program: &ir::Program,
    state: &exec::State,
    host: &SimHost,
    trace: &[TraceStep],
    x: &Expect,
) -> Result<(), String> {
    let mut problems = Vec::new();
    let effects: Vec<&Effect> = trace.iter().map(|s| &s.effect).collect();
    if let Some(want) = &x.effects {
        let ok = want.len() == effects.len()
            && want.iter().zip(&effects).all(|(w, a)| effect_matches(w, a));
        if !ok {
            // Show actual lines where they match the expectation, so the diff shows only real differences.
            let expected: Vec<String> = want
                .iter()
                .enumerate()
                .map(|(i, w)| match effects.get(i) {
                    Some(a) if effect_matches(w, a) => a.to_text(),
                    _ => show_expected(w),
                })
                .collect();
            let actual: Vec<String> = effects.iter().map(|e| e.to_text()).collect();
            problems.push(format!(
                "effects differ (- expected, + actual):\n{}",
                diff(&expected, &actual)
            ));
        }
    }
    if let Some(want) = &x.includes {
        let mut it = effects.iter();
        let mut missing = None;
        for w in want {
            if !it.any(|a| effect_matches(w, a)) {
                missing = Some(show_expected(w));
                break;
            }
        }
        if let Some(m) = missing {
            problems.push(format!("expected, in order, an effect matching: {m}"));
        }
    }
    if let Some(not) = &x.excludes {
        for w in not {
            if let Some(a) = effects.iter().find(|a| effect_matches(w, a)) {
                problems.push(format!(
                    "unexpected effect: {} (excluded by {})",
                    a.to_text(),
                    show_expected(w)
                ));
            }
        }
    }
    if let Some(want) = &x.final_node {
        let actual = state.last_node.map(|(u, n)| {
            let unit = &program.units[u as usize];
            (unit.name.clone(), unit.nodes[n as usize].name.clone())
        });
        let ok = actual
            .as_ref()
            .is_some_and(|(u, n)| want == n || *want == format!("{u}.{n}"));
        if !ok {
            let shown = actual
                .map(|(u, n)| format!("{u}.{n}"))
                .unwrap_or_else(|| "none".into());
            problems.push(format!("final node: expected `{want}`, was `{shown}`"));
        }
    }
    if let Some(want) = &x.exit
        && state.exit.as_deref() != Some(want.as_str())
    {
        problems.push(format!("exit: expected `{want}`, was {:?}", state.exit));
    }
    for (name, want) in &x.vars {
        let want_text = scalar_text(want);
        match state.var(program, name) {
            Some(v) if v.to_text() == want_text => {}
            Some(v) => problems.push(format!(
                "variable `{name}`: expected {want_text:?}, was {:?}",
                v.to_text()
            )),
            None => problems.push(format!("variable `{name}`: no such variable")),
        }
    }
    for (name, want) in &x.user {
        let have = host
            .user
            .get(name.trim_start_matches("user."))
            .cloned()
            .unwrap_or_default();
        if have != scalar_text(want) {
            problems.push(format!(
                "user variable `{name}`: expected {:?}, was {have:?}",
                scalar_text(want)
            ));
        }
    }
    if let Some(want) = &x.messages {
        let left: Vec<String> = trace
            .iter()
            .filter_map(|s| match (&s.effect, &s.outcome) {
                (
                    Effect::LeaveMail { mailbox, .. },
                    Some(Outcome::Ok | Outcome::Recorded { .. } | Outcome::Hangup),
                ) => Some(mailbox.clone()),
                _ => None,
            })
            .collect();
        if &left != want {
            problems.push(format!("messages left: expected {want:?}, were {left:?}"));
        }
    }
    let last = effects.last();
    if let Some(want) = &x.fault {
        match last {
            Some(Effect::Fault { message, .. }) if message.contains(want.as_str()) => {}
            Some(e) => problems.push(format!(
                "expected a fault containing {want:?}, the call ended with: {}",
                e.to_text()
            )),
            None => problems.push("expected a fault; no effects".into()),
        }
    } else if let Some(Effect::Fault {
        message,
        file,
        line,
    }) = last
        && x.end.as_deref() != Some("fault")
    {
        problems.push(format!("the call faulted at {file}:{line}: {message}"));
    }
    if let Some(want) = &x.end {
        let have = last.map(|e| e.name()).unwrap_or("none");
        if have != want {
            problems.push(format!("end: expected `{want}`, was `{have}`"));
        }
    }
    if problems.is_empty() {
        return Ok(());
    }
    let mut report = String::new();
    for p in &problems {
        report.push_str(&indent(p));
    }
    report.push_str("  the call:\n");
    for l in trace_lines(trace) {
        report.push_str(&format!("      {l}\n"));
    }
    Err(report)
}

fn indent(s: &str) -> String {
    s.lines()
        .enumerate()
        .map(|(i, l)| {
            if i == 0 {
                format!("  {l}\n")
            } else {
                format!("    {l}\n")
            }
        })
        .collect()
}

fn diff(expected: &[String], actual: &[String]) -> String {
    let e = expected.join("\n") + "\n";
    let a = actual.join("\n") + "\n";
    let d = similar::TextDiff::from_lines(&e, &a);
    let mut out = String::new();
    for change in d.iter_all_changes() {
        let sign = match change.tag() {
            similar::ChangeTag::Delete => "-",
            similar::ChangeTag::Insert => "+",
            similar::ChangeTag::Equal => " ",
        };
        out.push_str(&format!("{sign} {}", change.value()));
    }
    out
}

/// Node coverage per unit, merged by unit name over every program tested.
#[derive(Default)]
struct Coverage {
    /// unit name → node names (all), and those executed.
    nodes: BTreeMap<String, (BTreeSet<String>, BTreeSet<String>)>,
}

impl Coverage {
    fn add_program(&mut self, p: &ir::Program) {
        for u in &p.units {
            let e = self.nodes.entry(u.name.clone()).or_default();
            e.0.extend(u.nodes.iter().map(|n| n.name.clone()));
        }
    }

    fn record(&mut self, p: &ir::Program, host: &SimHost) {
        for &(u, n) in host.visited.keys() {
            let unit = &p.units[u as usize];
            let e = self.nodes.entry(unit.name.clone()).or_default();
            e.1.insert(unit.nodes[n as usize].name.clone());
        }
    }

    fn report(&self) {
        println!("\ncoverage (nodes executed / nodes):");
        let (mut all, mut hit) = (0, 0);
        for (unit, (nodes, seen)) in &self.nodes {
            let covered = nodes.intersection(seen).count();
            all += nodes.len();
            hit += covered;
            let missing: Vec<&str> = nodes.difference(seen).map(String::as_str).collect();
            let pct = if nodes.is_empty() {
                100.0
            } else {
                covered as f64 * 100.0 / nodes.len() as f64
            };
            print!("  {unit:<32} {covered:>3}/{:<3} {pct:>5.1}%", nodes.len());
            if !missing.is_empty() {
                print!("  missing: {}", missing.join(", "));
            }
            println!();
        }
        let pct = if all == 0 {
            100.0
        } else {
            hit as f64 * 100.0 / all as f64
        };
        println!("  {:<32} {hit:>3}/{all:<3} {pct:>5.1}%", "total");
    }
}
