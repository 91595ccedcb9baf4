//! Throughput of the model pipeline (entity model, then the stance model's actor
//! classifier over each candidate) on the team's sample articles, for each way of
//! using two cores.
//!
//! Run: `cargo bench --bench model` (needs the shipped model under models/;
//! prints a notice and measures nothing without it). The summary lines give
//! documents/s and words/s per configuration; criterion then times the default.

use std::time::Instant;

mod common;

use common::samples;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use stance::model::tagger::InferenceOptions;
use stance::model::threads::{self, Parallelism};
use stance::pipeline::ModelChoice;
use stance::{BackendChoice, Pipeline};

fn pipeline(threads: usize, parallelism: Parallelism) -> Option<Pipeline> {
    let choice = ModelChoice {
        options: InferenceOptions {
            threads,
            parallelism,
            ..Default::default()
        },
        ..Default::default()
    };
    match Pipeline::for_backend(BackendChoice::Model, &choice) {
        Ok((p, _)) => Some(p),
        Err(e) => {
            println!("model bench skipped: {e}");
            None
        }
    }
}

fn bench_model(c: &mut Criterion) {
    let docs = samples();
    let words: usize = docs.iter().map(|(_, t)| t.split_whitespace().count()).sum();
    let bytes: usize = docs.iter().map(|(_, t)| t.len()).sum();
    // candle reads its thread count per matrix product; workers run one thread each.
    // Set before any thread runs (criterion's own threads start later).
    std::env::set_var(
        threads::PRODUCT_THREADS_VAR,
        threads::product_threads(1, Parallelism::Workers).to_string(),
    );
    let cores = threads::available();
    for (t, p) in [(1, Parallelism::Workers), (cores, Parallelism::Workers)] {
        let Some(pipe) = pipeline(t, p) else { return };
        pipe.analyze("warm-up", &docs[0].1).unwrap();
        let start = Instant::now();
        for (id, text) in &docs {
            std::hint::black_box(pipe.analyze(id, text).unwrap());
        }
        let secs = start.elapsed().as_secs_f64();
        println!(
            "model pipeline, {t} thread(s), {}: {:.2} documents/s, {:.0} words/s ({} documents, {words} words)",
            p.as_str(),
            docs.len() as f64 / secs,
            words as f64 / secs,
            docs.len()
        );
    }
    let Some(pipe) = pipeline(cores, Parallelism::Workers) else {
        return;
    };
    let mut group = c.benchmark_group("model");
    group.sample_size(10);
    group.throughput(Throughput::Bytes(bytes as u64));
    group.bench_function("analyze_samples", |b| {
        b.iter(|| {
            for (id, text) in &docs {
                std::hint::black_box(pipe.analyze(id, text).unwrap());
            }
        })
    });
    group.finish();
}

criterion_group!(benches, bench_model);
criterion_main!(benches);
