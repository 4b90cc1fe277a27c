//! JIT against interpreter: call-step throughput on a pure-node-heavy flow
//! (`pure_heavy.vflow`: 1,000 set/switch nodes between two inputs, so one
//! resume runs about 1,000 nodes), and JIT compile time per IR node.
//!
//! `cargo bench -p vflow-compiler --bench engines`; BENCHMARKS.md records the
//! figures.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use vflow_compiler::exec::{self, CallInfo, Engine, Outcome, SimHost, State};
use vflow_compiler::interp::Interpreter;
use vflow_compiler::ir;
use vflow_compiler::jit::Jit;
use vflow_compiler::source::MemoryWorld;

const PURE_HEAVY: &str = include_str!("pure_heavy.vflow");

fn compile(src: &str) -> ir::Program {
    let mut w = MemoryWorld::with_stdlib();
    let id = w.add("bench/pure_heavy.vflow", src);
    let checked = vflow_compiler::check::check(&mut w, &[id]);
    assert!(
        !checked.diagnostics.iter().any(|d| d.is_error()),
        "the bench flow checks"
    );
    let p = ir::lower(&w, &checked.program).expect("lowers");
    ir::verify(&p).expect("verifies");
    p
}

/// A call waiting at the input, ready for `digits` outcomes.
fn waiting(p: &ir::Program, engine: &dyn Engine, host: &mut SimHost) -> State {
    let mut s = exec::start(p, "leave", "1", CallInfo::default()).unwrap();
    let e = engine.resume(&mut s, Outcome::Start, host);
    assert_eq!(e.name(), "input");
    s
}

fn nodes_per_resume(p: &ir::Program, engine: &dyn Engine) -> u64 {
    let mut host = SimHost::new(exec::parse_clock("2026-03-02T10:00:00", Some("UTC")).unwrap());
    let mut s = waiting(p, engine, &mut host);
    let before = s.steps;
    engine.resume(&mut s, Outcome::Digits("5".into()), &mut host);
    s.steps - before
}

fn step_throughput(c: &mut Criterion) {
    let p = compile(PURE_HEAVY);
    let interp = Interpreter::new(&p);
    let jit = Jit::compile(&p).unwrap();
    let nodes = nodes_per_resume(&p, &interp);
    assert_eq!(
        nodes,
        nodes_per_resume(&p, &jit),
        "both engines run the same nodes"
    );
    let mut g = c.benchmark_group("resume_pure_heavy");
    g.throughput(Throughput::Elements(nodes));
    let engines: [(&str, &dyn Engine); 2] = [("interp", &interp), ("jit", &jit)];
    for (name, engine) in engines {
        g.bench_function(BenchmarkId::from_parameter(name), |b| {
            let mut host =
                SimHost::new(exec::parse_clock("2026-03-02T10:00:00", Some("UTC")).unwrap());
            let mut s = waiting(&p, engine, &mut host);
            b.iter(|| black_box(engine.resume(&mut s, Outcome::Digits("5".into()), &mut host)));
        });
    }
    g.finish();
}

fn compile_time(c: &mut Criterion) {
    let p = compile(PURE_HEAVY);
    let nodes: usize = p.units.iter().map(|u| u.nodes.len()).sum();
    let mut g = c.benchmark_group("jit_compile");
    g.throughput(Throughput::Elements(nodes as u64));
    g.sample_size(20);
    g.bench_function(BenchmarkId::new("pure_heavy", nodes), |b| {
        b.iter(|| black_box(Jit::compile(&p).unwrap()))
    });
    g.finish();
}

criterion_group!(benches, step_throughput, compile_time);
criterion_main!(benches);
