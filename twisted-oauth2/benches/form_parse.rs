//! Form parsing stays linear in the input: the time per byte is the same for 1,000,
//! 4,000 and 16,000 distinct parameter names (the duplicate check was quadratic: 16,000
//! names in 64 KiB took about a second of a worker).
//!
//! `cargo bench -p twisted-oauth2 --bench form_parse`

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use twisted_oauth2::form::Params;

fn names(n: usize) -> String {
    (0..n).map(|i| format!("{i:x}&")).collect()
}

fn parse(c: &mut Criterion) {
    let mut g = c.benchmark_group("form_parse_distinct_names");
    for n in [1_000usize, 4_000, 16_000] {
        let body = names(n);
        g.throughput(Throughput::Bytes(body.len() as u64));
        g.bench_with_input(BenchmarkId::from_parameter(n), &body, |b, body| {
            // The cap lifted, so the whole input is parsed: the worst case of the check.
            b.iter(|| Params::parse_limited(body.as_bytes(), usize::MAX).map(|_| ()))
        });
    }
    g.finish();
    let mut g = c.benchmark_group("form_parse_capped");
    let body = names(16_000);
    g.throughput(Throughput::Bytes(body.len() as u64));
    g.bench_function("16000_names_default_cap", |b| {
        // With the default cap the parser stops after 64 names.
        b.iter(|| Params::parse(body.as_bytes()).map(|_| ()))
    });
    g.finish();
}

criterion_group!(benches, parse);
criterion_main!(benches);
