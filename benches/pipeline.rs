//! Throughput of the rule-based pipeline on the team's sample articles.
//!
//! Run: `cargo bench --bench pipeline`. Criterion reports time per iteration and
//! throughput in bytes/s; the summary line printed first gives documents/s.

use std::time::Instant;

mod common;

use common::samples;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use stance::Pipeline;

fn bench_pipeline(c: &mut Criterion) {
    let docs = samples();
    let pipeline = Pipeline::rules();
    let bytes: usize = docs.iter().map(|(_, t)| t.len()).sum();
    let words: usize = docs.iter().map(|(_, t)| t.split_whitespace().count()).sum();

    // A plain summary in units people use, measured once outside criterion.
    let rounds = 50;
    let start = Instant::now();
    for _ in 0..rounds {
        for (id, text) in &docs {
            std::hint::black_box(pipeline.analyze(id, text).unwrap());
        }
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "rules pipeline: {:.0} documents/s, {:.0} words/s ({} documents, {} words, {} rounds)",
        (rounds * docs.len()) as f64 / secs,
        (rounds * words) as f64 / secs,
        docs.len(),
        words,
        rounds
    );

    let mut group = c.benchmark_group("rules");
    group.throughput(Throughput::Bytes(bytes as u64));
    group.bench_function("analyze_samples", |b| {
        b.iter(|| {
            for (id, text) in &docs {
                std::hint::black_box(pipeline.analyze(id, text).unwrap());
            }
        })
    });
    group.finish();
}

criterion_group!(benches, bench_pipeline);
criterion_main!(benches);
