//! Differential testing: the JIT against the interpreter (the oracle).
//!
//! 1. Random well-formed IR programs (every pure node kind and operator,
//!    every builtin and effect action, modules calling modules, loops through
//!    effect nodes and pure loops that exhaust fuel, initializers, faults with
//!    and without `failure` edges) driven by random outcome sequences.
//! 2. Every stdlib and example flow, every start point, random outcomes.
//!
//! For each case both engines must produce the same trace (effects, outcomes,
//! nodes), the same final `State` (frames, variables, `$KEY`, status) and the
//! same host side effects (`user.*`, nodes visited).
//!
//! The normal suite runs `VFLOW_DIFF_CASES` random programs (default 100,
//! about 15 s in a debug build). A longer run:
//! `VFLOW_DIFF_CASES=100000 cargo test --release -p vflow-compiler --test differential`;
//! `VFLOW_DIFF_SEED=N` reruns one failing case.

use std::collections::BTreeMap;
use vflow_compiler::actions::{ParamKind, Unconnected};
use vflow_compiler::exec::{self, CallInfo, Outcome, SimHost, State, TraceStep};
use vflow_compiler::interp::Interpreter;
use vflow_compiler::ir::*;
use vflow_compiler::jit::{CompiledProgram, Jit};

/// A small deterministic generator (SplitMix64): a case is its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
    fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len())]
    }
}

const INTS: &[i64] = &[
    0,
    1,
    2,
    3,
    -1,
    7,
    10,
    100,
    i64::MAX,
    i64::MIN,
    -7,
    4_000_000_000,
];
const STRS: &[&str] = &[
    "", "a", "12", "2001", " 42 ", "-5", "x1y", "ABC", "abc", "2xx", "é", "0",
];

/// Generates one unit's expressions against its locals.
struct Gen<'a> {
    rng: &'a mut Rng,
    locals: &'a [Local],
    profiles: u32,
}

impl Gen<'_> {
    fn local_of(&mut self, ty: Ty) -> Option<u32> {
        let ids: Vec<u32> = (0..self.locals.len() as u32)
            .filter(|i| self.locals[*i as usize].ty == ty)
            .collect();
        (!ids.is_empty()).then(|| *self.rng.pick(&ids))
    }

    fn expr(&mut self, ty: Ty, depth: u32) -> Expr {
        let leaf = depth == 0 || self.rng.chance(35);
        if leaf {
            if self.rng.chance(50)
                && let Some(i) = self.local_of(ty)
            {
                return Expr::Local(i);
            }
            return match ty {
                Ty::Int => Expr::Const(Value::Int(*self.rng.pick(INTS))),
                Ty::Bool => match self.rng.below(3) {
                    0 if self.profiles > 0 => {
                        Expr::InProfile(self.rng.below(self.profiles as usize) as u32)
                    }
                    _ => Expr::Const(Value::Bool(self.rng.chance(50))),
                },
                Ty::Str => match self.rng.below(6) {
                    0 => Expr::Cp(self.rng.below(4) as u8),
                    1 => Expr::Sys(*self.rng.pick(SysVar::ALL)),
                    2 => Expr::User(self.rng.pick(&["a", "b"]).to_string()),
                    _ => Expr::Const(Value::Str(self.rng.pick(STRS).to_string())),
                },
            };
        }
        let d = depth - 1;
        let b = |g: &mut Self, t: Ty| Box::new(g.expr(t, d));
        match ty {
            Ty::Int => match self.rng.below(9) {
                0 => Expr::Unary(UnOp::Neg, b(self, Ty::Int)),
                1..=3 => {
                    let op = *self.rng.pick(&[
                        BinOp::Add,
                        BinOp::Sub,
                        BinOp::Mul,
                        BinOp::Div,
                        BinOp::Rem,
                    ]);
                    Expr::Binary(op, b(self, Ty::Int), b(self, Ty::Int))
                }
                4 => Expr::Call(Builtin::Len, vec![self.expr(Ty::Str, d)]),
                5 => Expr::Call(Builtin::Int, vec![self.expr(Ty::Str, d)]),
                6 => Expr::Call(Builtin::Abs, vec![self.expr(Ty::Int, d)]),
                7 => {
                    let f = *self.rng.pick(&[Builtin::Min, Builtin::Max]);
                    Expr::Call(f, vec![self.expr(Ty::Int, d), self.expr(Ty::Int, d)])
                }
                _ => Expr::Binary(
                    BinOp::Add,
                    b(self, Ty::Int),
                    Box::new(Expr::Const(Value::Int(1))),
                ),
            },
            Ty::Bool => match self.rng.below(7) {
                0 => Expr::Unary(UnOp::Not, b(self, Ty::Bool)),
                1 => {
                    let op = *self.rng.pick(&[BinOp::And, BinOp::Or]);
                    Expr::Binary(op, b(self, Ty::Bool), b(self, Ty::Bool))
                }
                2 => {
                    let op = *self.rng.pick(&[
                        BinOp::Eq,
                        BinOp::Ne,
                        BinOp::Lt,
                        BinOp::Le,
                        BinOp::Gt,
                        BinOp::Ge,
                    ]);
                    let t = *self.rng.pick(&[Ty::Int, Ty::Str]);
                    Expr::Binary(op, b(self, t), b(self, t))
                }
                3 => {
                    let op = *self.rng.pick(&[BinOp::Eq, BinOp::Ne]);
                    Expr::Binary(op, b(self, Ty::Bool), b(self, Ty::Bool))
                }
                4 => {
                    let op = *self
                        .rng
                        .pick(&[BinOp::StartsWith, BinOp::EndsWith, BinOp::Contains]);
                    Expr::Binary(op, b(self, Ty::Str), b(self, Ty::Str))
                }
                5 => Expr::Call(Builtin::IsDigits, vec![self.expr(Ty::Str, d)]),
                _ => {
                    let op = *self.rng.pick(&[BinOp::Lt, BinOp::Ge]);
                    Expr::Binary(op, b(self, Ty::Int), b(self, Ty::Int))
                }
            },
            Ty::Str => match self.rng.below(8) {
                // The right side is never a variable, so a loop grows strings
                // linearly (both engines would happily build 2^n characters).
                0 | 1 => Expr::Binary(BinOp::Concat, b(self, Ty::Str), Box::new(self.text_const())),
                2 => {
                    let t = *self.rng.pick(&[Ty::Int, Ty::Bool, Ty::Str]);
                    Expr::Call(Builtin::Str, vec![self.expr(t, d)])
                }
                3 => Expr::Call(
                    Builtin::Substr,
                    vec![
                        self.expr(Ty::Str, d),
                        self.expr(Ty::Int, d),
                        self.expr(Ty::Int, d),
                    ],
                ),
                4 => {
                    let f = *self
                        .rng
                        .pick(&[Builtin::Trim, Builtin::Lower, Builtin::Upper]);
                    Expr::Call(f, vec![self.expr(Ty::Str, d)])
                }
                5 => Expr::Call(
                    Builtin::Replace,
                    vec![
                        self.expr(Ty::Str, d),
                        self.expr(Ty::Str, d),
                        self.text_const(),
                    ],
                ),
                _ => self.expr(Ty::Str, 0),
            },
        }
    }

    fn text_const(&mut self) -> Expr {
        match self.rng.below(4) {
            // Not `$RECORDING`: a `record` node can copy any variable there.
            0 => Expr::Sys(*self.rng.pick(&SysVar::ALL[..SysVar::ALL.len() - 1])),
            _ => Expr::Const(Value::Str(self.rng.pick(STRS).to_string())),
        }
    }

    fn place(&mut self, ty: Ty) -> Place {
        if ty == Ty::Str && self.rng.chance(30) {
            return if self.rng.chance(60) {
                Place::Cp(self.rng.below(4) as u8)
            } else {
                Place::User(self.rng.pick(&["a", "b"]).to_string())
            };
        }
        match self.local_of(ty) {
            Some(i) => Place::Local(i),
            None => Place::Cp(0),
        }
    }
}

fn any_ty(rng: &mut Rng) -> Ty {
    *rng.pick(&[Ty::Int, Ty::Int, Ty::Str, Ty::Bool])
}

/// One random unit. `callees` are the modules it may call, with their
/// parameter types and exit counts.
fn unit(
    rng: &mut Rng,
    index: usize,
    kind: UnitKind,
    params: &[Ty],
    exits: usize,
    modules: &[(u32, Vec<Ty>, usize)],
    profiles: u32,
) -> Unit {
    let mut locals: Vec<Local> = params
        .iter()
        .enumerate()
        .map(|(i, t)| Local {
            name: format!("p{i}"),
            ty: *t,
        })
        .collect();
    // One local of each type at least, so every `into` has a target.
    for (i, ty) in [Ty::Int, Ty::Str, Ty::Bool].into_iter().enumerate() {
        locals.push(Local {
            name: format!("t{i}"),
            ty,
        });
    }
    for i in 0..rng.below(4) {
        locals.push(Local {
            name: format!("v{i}"),
            ty: any_ty(rng),
        });
    }
    let n = 3 + rng.below(12);
    let mut init = Vec::new();
    {
        let mut g = Gen {
            rng,
            locals: &locals,
            profiles,
        };
        for (slot, local) in locals.iter().enumerate().skip(params.len()) {
            if g.rng.chance(50) {
                init.push(Init {
                    slot: slot as u32,
                    value: g.expr(local.ty, 2),
                    line: 2,
                });
            }
        }
    }
    let edge = |rng: &mut Rng| -> Edge {
        match rng.below(12) {
            0 => Edge::Hangup,
            1 | 2 if exits > 0 => Edge::Return(rng.below(exits) as u32),
            _ => Edge::Node(rng.below(n) as u32),
        }
    };
    let mut nodes = Vec::with_capacity(n);
    for i in 0..n {
        let mut g = Gen {
            rng,
            locals: &locals,
            profiles,
        };
        let mut ops = Vec::new();
        for _ in 0..g.rng.below(4) {
            let t = any_ty(g.rng);
            let place = g.place(t);
            let ty = match place {
                Place::Local(l) => locals[l as usize].ty,
                _ => Ty::Str,
            };
            ops.push(Assign {
                place,
                value: g.expr(ty, 3),
            });
        }
        let kind = match g.rng.below(10) {
            0 | 1 => NodeKind::Goto(edge(g.rng)),
            2 | 3 => {
                let arms = (0..1 + g.rng.below(3))
                    .map(|_| {
                        let cond = g.expr(Ty::Bool, 3);
                        Arm {
                            cond,
                            edge: edge(g.rng),
                        }
                    })
                    .collect();
                NodeKind::Branch {
                    arms,
                    otherwise: edge(g.rng),
                }
            }
            4 if !modules.is_empty() => {
                let (u, ps, x) = g.rng.pick(modules).clone();
                let args = ps.iter().map(|t| g.expr(*t, 2)).collect();
                NodeKind::Call {
                    unit: u,
                    args,
                    exits: (0..x).map(|_| edge(g.rng)).collect(),
                }
            }
            5 if g.rng.chance(15) => {
                if g.rng.chance(50) {
                    NodeKind::Home
                } else {
                    NodeKind::GotoStart {
                        kind: "leave".into(),
                        name: g.rng.pick(&["2001", "zzz", "named"]).to_string(),
                    }
                }
            }
            _ => NodeKind::Effect(effect(&mut g, &edge)),
        };
        let on_fault = g.rng.chance(40).then(|| edge(g.rng));
        nodes.push(Node {
            name: format!("n{i}"),
            line: 10 + i as u32,
            ops,
            on_fault,
            kind,
        });
    }
    Unit {
        kind,
        name: match kind {
            UnitKind::Flow => "f".into(),
            UnitKind::Module => format!("m.m{index}"),
        },
        file: 0,
        line: 1,
        params: params.len() as u32,
        locals,
        init,
        exits: (0..exits).map(|i| format!("x{i}")).collect(),
        allow_transfer: vec!["2xxx".into()],
        nodes,
    }
}

fn effect(g: &mut Gen, edge: &dyn Fn(&mut Rng) -> Edge) -> EffectNode {
    // Mostly the actions that loop through the caller; every action sometimes.
    let action = if g.rng.chance(60) {
        *g.rng.pick(&[
            Action::Menu,
            Action::Input,
            Action::Play,
            Action::MessageCount,
            Action::Transfer,
        ])
    } else {
        *g.rng.pick(Action::ALL)
    };
    let spec = action.spec();
    let prompts = if spec.prompts {
        (0..g.rng.below(3))
            .map(|_| {
                let e = g.expr(Ty::Str, 2);
                match g.rng.below(3) {
                    0 => PromptExpr::File(e),
                    1 => PromptExpr::Say(SayMode::Digits, e),
                    _ => PromptExpr::Speak(e),
                }
            })
            .collect()
    } else {
        Vec::new()
    };
    let args = action
        .arg_specs()
        .map(|p| match p.kind {
            // Small, mostly valid values so calls do not all fail at once.
            ParamKind::Duration => Expr::Const(Value::Int(*g.rng.pick(&[0, 500, 5000]))),
            ParamKind::Expr(vflow_compiler::actions::Ty::Int) if g.rng.chance(60) => {
                Expr::Const(Value::Int(*g.rng.pick(&[0, 1, 2, 3, -1])))
            }
            k => g.expr(param_ty(k), 2),
        })
        .collect();
    let into = action.into_ty().map(|t| g.place(t));
    let results = spec
        .results
        .iter()
        .map(|r| {
            if r.unconnected == Unconnected::Disabled && g.rng.chance(50) {
                Edge::Off
            } else {
                edge(g.rng)
            }
        })
        .collect();
    let keys = if action == Action::Menu {
        let mut keys = Vec::new();
        for k in ["1", "2", "12", "?", "9#", "*"] {
            if g.rng.chance(50) {
                keys.push(KeyEdge {
                    keys: k.to_string(),
                    edge: edge(g.rng),
                });
            }
        }
        keys
    } else {
        Vec::new()
    };
    EffectNode {
        action,
        prompts,
        args,
        into,
        results,
        keys,
    }
}

fn program(seed: u64) -> Program {
    let mut rng = Rng(seed);
    let profiles = vec![
        Profile {
            name: "office".into(),
            rules: vec![ProfileRule {
                except: false,
                days: vec![Days::Weekdays { from: 0, to: 4 }],
                times: vec![(480, 1080)],
            }],
        },
        Profile {
            name: "night".into(),
            rules: vec![
                ProfileRule {
                    except: false,
                    days: vec![Days::Weekdays { from: 0, to: 6 }],
                    times: vec![(1320, 360)],
                },
                ProfileRule {
                    except: true,
                    days: vec![Days::Dates {
                        from: Date {
                            year: 2026,
                            month: 3,
                            day: 2,
                        },
                        to: Date {
                            year: 2026,
                            month: 3,
                            day: 2,
                        },
                    }],
                    times: vec![],
                },
            ],
        },
    ];
    // Modules first (unit 1..), each may call the later ones and itself.
    let nmods = rng.below(3);
    let sigs: Vec<(u32, Vec<Ty>, usize)> = (0..nmods)
        .map(|i| {
            let ps = (0..rng.below(3)).map(|_| any_ty(&mut rng)).collect();
            (i as u32 + 1, ps, 1 + rng.below(2))
        })
        .collect();
    let mut units = vec![unit(&mut rng, 0, UnitKind::Flow, &[], 0, &sigs, 2)];
    for (i, (_, ps, x)) in sigs.iter().enumerate() {
        let callees: Vec<_> = sigs[i..].to_vec();
        units.push(unit(&mut rng, i + 1, UnitKind::Module, ps, *x, &callees, 2));
    }
    let n0 = units[0].nodes.len();
    let entries = vec![
        Entry {
            kind: "leave".into(),
            pattern: "*".into(),
            unit: 0,
            node: 0,
        },
        Entry {
            kind: "leave".into(),
            pattern: "named".into(),
            unit: 0,
            node: rng.below(n0) as u32,
        },
    ];
    Program {
        version: IR_VERSION,
        files: vec!["gen.vflow".into()],
        profiles,
        units,
        entries,
    }
}

fn outcomes(rng: &mut Rng) -> Vec<Outcome> {
    const ALL: &[&str] = &[
        "key:1",
        "key:2",
        "key:12",
        "key:9#",
        "key:5",
        "digits:123#",
        "digits:2001",
        "digits:9",
        "timeout",
        "ok",
        "ok",
        "fail",
        "busy",
        "no_answer",
        "recorded:5s",
        "valid",
        "invalid",
        "locked",
        "count:3",
        "count:0",
    ];
    let mut v: Vec<Outcome> = (0..rng.below(25))
        .map(|_| Outcome::parse(rng.pick::<&str>(ALL)).unwrap())
        .collect();
    if rng.chance(10) {
        v.push(Outcome::Hangup);
    }
    v
}

/// Everything a run leaves behind, for comparison.
#[derive(Debug, PartialEq)]
struct Run {
    trace: Vec<TraceStep>,
    state: State,
    user: BTreeMap<String, String>,
    visited: BTreeMap<(u32, u32), u64>,
}

fn run(
    engine: &dyn exec::Engine,
    mut state: State,
    clock: &jiff::ZonedDateTime,
    outs: &[Outcome],
) -> Run {
    let mut host = SimHost::new(clock.clone());
    host.track = true;
    host.user.insert("a".into(), "17".into());
    let trace = exec::drive(engine, &mut state, &mut host, outs.iter().cloned(), 40);
    Run {
        trace,
        state,
        user: host.user,
        visited: host.visited,
    }
}

fn compare(
    p: &Program,
    jit: &CompiledProgram,
    state: State,
    outs: &[Outcome],
    clock: &jiff::ZonedDateTime,
    what: &str,
) {
    let a = run(&Interpreter::new(p), state.clone(), clock, outs);
    let b = run(jit, state, clock, outs);
    assert_eq!(a.trace, b.trace, "{what}: traces differ");
    assert_eq!(a.state, b.state, "{what}: final states differ");
    assert_eq!(a.user, b.user, "{what}: user variables differ");
    assert_eq!(a.visited, b.visited, "{what}: visited nodes differ");
}

fn clocks() -> Vec<jiff::ZonedDateTime> {
    ["2026-03-02T10:00:00", "2026-03-07T23:30:00"]
        .iter()
        .map(|c| exec::parse_clock(c, Some("UTC")).unwrap())
        .collect()
}

#[test]
fn random_programs_agree() {
    let cases: u64 = std::env::var("VFLOW_DIFF_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(100);
    let only: Option<u64> = std::env::var("VFLOW_DIFF_SEED")
        .ok()
        .and_then(|s| s.parse().ok());
    let seeds: Vec<u64> = match only {
        Some(s) => vec![s],
        None => (0..cases).collect(),
    };
    let clocks = clocks();
    let mut effects = 0usize;
    let mut faults = 0usize;
    for seed in seeds {
        let p = program(seed);
        verify(&p).unwrap_or_else(|e| panic!("seed {seed}: the generator made invalid IR: {e}"));
        let jit = Jit::compile(&p).unwrap_or_else(|e| panic!("seed {seed}: {e}"));
        let mut rng = Rng(seed ^ 0xABCD);
        for round in 0..4 {
            let outs = outcomes(&mut rng);
            let clock = &clocks[round % clocks.len()];
            let name = if round % 2 == 0 { "2001" } else { "named" };
            let call = CallInfo {
                cli: "0123".into(),
                ddi: "2001".into(),
                caller_name: "Ann".into(),
                call_id: "c1".into(),
                reason: "busy".into(),
            };
            let mut state = exec::start(&p, "leave", name, call.clone()).unwrap();
            // Little fuel: random pure loops are common and should fault
            // quickly (round 3 nearly always runs out).
            state.fuel_per_resume = if round == 3 { 40 } else { 300 };
            let what = format!("seed {seed} round {round} outcomes {outs:?}");
            compare(&p, &jit, state, &outs, clock, &what);
            // Modules started directly, as module tests do.
            if let Some(m) = p.units.iter().position(|u| u.kind == UnitKind::Module) {
                let u = &p.units[m];
                let args = u.locals[..u.params as usize]
                    .iter()
                    .map(|l| l.ty.zero())
                    .collect();
                let state = exec::start_module(&p, &u.name, args, call).unwrap();
                compare(
                    &p,
                    &jit,
                    state,
                    &outs,
                    clock,
                    &format!("{what} module {}", u.name),
                );
            }
        }
        // Count what the cases exercised, so a generator that stops reaching
        // effects or faults shows up as a failure rather than as silence.
        let state = exec::start(&p, "leave", "2001", CallInfo::default()).unwrap();
        let t = run(&jit, state, &clocks[0], &[]).trace;
        effects += t.len();
        faults += t
            .iter()
            .filter(|s| matches!(s.effect, exec::Effect::Fault { .. }))
            .count();
    }
    if only.is_none() && cases >= 100 {
        assert!(
            effects > cases as usize,
            "the generator reaches too few effects ({effects})"
        );
        assert!(faults > 0, "the generator never reaches a fault");
    }
}

/// Adds a directory's `.vflow` files and prompts to the world, as `root/...`.
fn add_dir(
    w: &mut vflow_compiler::source::MemoryWorld,
    dir: &std::path::Path,
    root: &str,
    files: &mut Vec<vflow_compiler::source::FileId>,
) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<_> = rd.flatten().map(|e| e.path()).collect();
    entries.sort();
    for path in entries {
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let rel = format!("{root}/{name}");
        if path.is_dir() {
            add_dir(w, &path, &rel, files);
        } else if name.ends_with(".vflow") {
            files.push(w.add(&rel, &std::fs::read_to_string(&path).unwrap()));
        } else if name.ends_with(".wav") {
            w.add_prompt(&rel);
        }
    }
}

#[test]
fn stdlib_and_example_flows_agree() {
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap();
    let mut checked_files = 0;
    for dir in ["examples/flows", "stdlib"] {
        let mut w = vflow_compiler::source::MemoryWorld::with_stdlib();
        let mut files = Vec::new();
        if dir == "stdlib" {
            // The embedded stdlib, as flows import it.
            let names = std::fs::read_dir(repo.join(dir))
                .unwrap()
                .flatten()
                .map(|e| e.file_name().to_string_lossy().to_string());
            let mut names: Vec<String> = names.filter(|n| n.ends_with(".vflow")).collect();
            names.sort();
            files.extend(names.iter().filter_map(|n| w.id(&format!("std/{n}"))));
        } else {
            add_dir(&mut w, &repo.join(dir), "examples", &mut files);
        }
        // Each file alone, and all of them as one program (start points of
        // one file may be the `goto_start` targets of another).
        let mut sets: Vec<Vec<_>> = files.iter().map(|f| vec![*f]).collect();
        sets.push(files.clone());
        for set in sets {
            let checked = vflow_compiler::check::check(&mut w, &set);
            if checked.diagnostics.iter().any(|d| d.is_error()) {
                eprintln!(
                    "{dir}: skipped {set:?}: {:?}",
                    checked
                        .diagnostics
                        .iter()
                        .find(|d| d.is_error())
                        .map(|d| &d.message)
                );
                continue;
            }
            let Ok(p) = lower(&w, &checked.program) else {
                continue;
            };
            if verify(&p).is_err() {
                continue;
            }
            let jit = Jit::compile(&p).unwrap();
            checked_files += 1;
            let mut rng = Rng(checked_files as u64);
            for e in &p.entries {
                for _ in 0..20 {
                    let name = if e.pattern.contains('*') || e.pattern.contains('x') {
                        "2001".to_string()
                    } else {
                        e.pattern.clone()
                    };
                    let Ok(state) = exec::start(
                        &p,
                        &e.kind,
                        &name,
                        CallInfo {
                            cli: "0123".into(),
                            ..Default::default()
                        },
                    ) else {
                        continue;
                    };
                    let outs = outcomes(&mut rng);
                    compare(
                        &p,
                        &jit,
                        state,
                        &outs,
                        &clocks()[0],
                        &format!("{dir} {} {:?}", e.pattern, outs),
                    );
                }
            }
            for (ui, u) in p.units.iter().enumerate() {
                if u.kind != UnitKind::Module {
                    continue;
                }
                for _ in 0..10 {
                    let args = u.locals[..u.params as usize]
                        .iter()
                        .map(|l| match l.ty {
                            Ty::Str => Value::Str("2001".into()),
                            t => t.zero(),
                        })
                        .collect();
                    let state = exec::start_module(&p, &u.name, args, CallInfo::default()).unwrap();
                    let outs = outcomes(&mut rng);
                    compare(
                        &p,
                        &jit,
                        state,
                        &outs,
                        &clocks()[0],
                        &format!("{dir} unit {ui} {outs:?}"),
                    );
                }
            }
        }
    }
    assert!(
        checked_files >= 3,
        "found only {checked_files} compilable stdlib/example files"
    );
}
