//! Check throughput: one generated flow of 10,000 nodes, and 1,000 flows of 50
//! nodes each (in 1,000 files, as a large site would have).
//!
//! Run: `cargo bench -p vflow-compiler --bench check`

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use std::fmt::Write as _;
use vflow_compiler::check;
use vflow_compiler::source::{FileId, MemoryWorld};

/// A flow of `n` nodes cycling through menu, set, test and switch nodes, every
/// loop passing through a menu so it is valid.
fn flow(name: &str, n: usize) -> String {
    let mut s = format!(
        "flow {name} {{\n  start named \"{name}\" -> n0\n  var count: int = 0\n  var text: string = \"\"\n"
    );
    for i in 0..n {
        let next = if i + 1 < n {
            format!("n{}", i + 1)
        } else {
            "hangup".into()
        };
        match i % 4 {
            0 => writeln!(s, "  menu n{i} {{ prompt \"welcome.wav\" timeout 5s on \"1\" -> {next} on \"2#\" -> n0 on exhausted -> hangup }}"),
            1 => writeln!(s, "  set n{i} {{ count = count + {i} * 2  text = text + str(count)  $CP1 = substr(text, 0, 4)  on next -> {next} }}"),
            2 => writeln!(s, "  test n{i} {{ if count % 7 == 3 and len(text) > 2  on true -> {next}  on false -> {next} on failure -> hangup }}"),
            _ => writeln!(s, "  switch n{i} {{ when $CLI starts_with \"0044\" -> {next}  when count > 100 -> {next}  else -> {next} }}"),
        }
        .unwrap();
    }
    s.push_str("}\n");
    s
}

fn world_with(files: &[(String, String)]) -> (MemoryWorld, Vec<FileId>) {
    let mut w = MemoryWorld::with_stdlib();
    let ids = files.iter().map(|(p, t)| w.add(p, t)).collect();
    w.add_prompt("site/prompts/welcome.wav");
    (w, ids)
}

fn bench(c: &mut Criterion) {
    let big = vec![("site/big.vflow".to_string(), flow("big", 10_000))];
    let many: Vec<(String, String)> = (0..1000)
        .map(|i| (format!("site/f{i}.vflow"), flow(&format!("f{i}"), 50)))
        .collect();
    {
        let (mut w, ids) = world_with(&big);
        assert!(
            !check::check(&mut w, &ids).has_errors(),
            "generated flow must be valid"
        );
        let (mut w, ids) = world_with(&many);
        assert!(
            !check::check(&mut w, &ids).has_errors(),
            "generated flows must be valid"
        );
    }

    let mut g = c.benchmark_group("check");
    g.sample_size(10);
    g.throughput(Throughput::Elements(10_000));
    g.bench_function("one_flow_10000_nodes", |b| {
        b.iter_batched(
            || world_with(&big),
            |(mut w, ids)| check::check(&mut w, &ids),
            BatchSize::LargeInput,
        )
    });
    g.throughput(Throughput::Elements(1000 * 50));
    g.bench_function("1000_flows_50_nodes", |b| {
        b.iter_batched(
            || world_with(&many),
            |(mut w, ids)| check::check(&mut w, &ids),
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
