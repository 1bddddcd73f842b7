//! Storage backends: issuance-like (`put_access` of a fresh token) and validation-like
//! (`access` lookup of a live token among 10,000) operations, one at a time and 64 at once,
//! on every backend this build has: memory always, SQLite with `--features sqlite`,
//! PostgreSQL and Redis with their features and `TWISTED_OAUTH2_TEST_POSTGRES` /
//! `TWISTED_OAUTH2_TEST_REDIS` set.
//!
//! ```text
//! TWISTED_OAUTH2_TEST_POSTGRES=postgres://postgres@127.0.0.1:5432/test \
//! TWISTED_OAUTH2_TEST_REDIS=redis://127.0.0.1:6379 \
//! cargo bench -p twisted-oauth2 --features sqlite,postgres,redis --bench stores
//! ```
//!
//! With `-- --memory` (or `TWISTED_OAUTH2_BENCH_MEMORY=1`) it instead measures the memory
//! store's resident bytes per live access token at one million tokens and exits.

use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, Criterion, Throughput};
use twisted_oauth2::storage::memory::MemoryStore;
use twisted_oauth2::storage::{AccessTokenStore as _, GrantId, Stores, TokenRecord};
use twisted_oauth2::token::TokenDigest;
use twisted_oauth2::Scope;

const PRELOADED: usize = 10_000;
const BATCH: usize = 64;

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// A record as `client_credentials` issues it: the client id and scope are shared (the
/// server's scope cache), the grant is new.
fn record(client: &Arc<str>, scope: &Scope) -> TokenRecord {
    let t = now();
    TokenRecord::new(
        client.clone(),
        scope.clone(),
        GrantId::random(),
        t,
        t + 3600,
    )
}

/// The bench's SQLite file (removed, with its WAL files, when the bench ends).
fn sqlite_file() -> std::path::PathBuf {
    std::env::temp_dir().join(format!("twisted-oauth2-bench-{}.db", std::process::id()))
}

fn backends(rt: &tokio::runtime::Runtime) -> Vec<(&'static str, Stores)> {
    let mut out = vec![("memory", Stores::from_backend(Arc::new(MemoryStore::new())))];
    #[allow(unused_mut)] // no durable backend in a default build
    let mut urls: Vec<(&'static str, String)> = Vec::new();
    #[cfg(feature = "sqlite")]
    urls.push(("sqlite", format!("sqlite://{}", sqlite_file().display())));
    #[cfg(feature = "postgres")]
    match std::env::var("TWISTED_OAUTH2_TEST_POSTGRES") {
        Ok(u) => urls.push(("postgres", u)),
        Err(_) => eprintln!("skipping postgres: TWISTED_OAUTH2_TEST_POSTGRES unset"),
    }
    #[cfg(feature = "redis")]
    match std::env::var("TWISTED_OAUTH2_TEST_REDIS") {
        Ok(u) => {
            let sep = if u.contains('?') { '&' } else { '?' };
            urls.push((
                "redis",
                format!(
                    "{u}{sep}key_prefix=twisted-oauth2-bench:{}:",
                    std::process::id()
                ),
            ))
        }
        Err(_) => eprintln!("skipping redis: TWISTED_OAUTH2_TEST_REDIS unset"),
    }
    for (name, url) in urls {
        match rt.block_on(twisted_oauth2::storage::connect(&url)) {
            Ok(s) => out.push((name, s)),
            Err(e) => eprintln!("skipping {name}: {e:?}"),
        }
    }
    out
}

fn stores(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let client: Arc<str> = Arc::from("bench");
    let scope = Scope::from_tokens(["read", "write"]).unwrap();
    for (name, s) in backends(&rt) {
        let live: Vec<TokenDigest> = (0..PRELOADED)
            .map(|_| TokenDigest::from_bytes(rand::random()))
            .collect();
        rt.block_on(async {
            for d in &live {
                s.access
                    .put_access(d, &record(&client, &scope))
                    .await
                    .unwrap();
            }
        });
        let live = Arc::new(live);
        let mut g = c.benchmark_group(format!("stores/{name}"));
        g.measurement_time(Duration::from_secs(4));
        g.throughput(Throughput::Elements(1));
        g.bench_function("put_access", |b| {
            b.to_async(&rt).iter(|| async {
                let d = TokenDigest::from_bytes(rand::random());
                s.access
                    .put_access(&d, &record(&client, &scope))
                    .await
                    .unwrap()
            })
        });
        let mut i = 0usize;
        g.bench_function("access", |b| {
            b.to_async(&rt).iter(|| {
                i = (i + 7919) % PRELOADED;
                let d = live[i];
                let s = &s;
                async move { assert!(s.access.access(&d).await.unwrap().is_some()) }
            })
        });
        g.throughput(Throughput::Elements(BATCH as u64));
        g.bench_function(format!("put_access_x{BATCH}"), |b| {
            b.to_async(&rt).iter(|| {
                let tasks: Vec<_> = (0..BATCH)
                    .map(|_| {
                        let (store, rec) = (s.access.clone(), record(&client, &scope));
                        tokio::spawn(async move {
                            store
                                .put_access(&TokenDigest::from_bytes(rand::random()), &rec)
                                .await
                        })
                    })
                    .collect();
                async move {
                    for t in tasks {
                        t.await.unwrap().unwrap();
                    }
                }
            })
        });
        g.bench_function(format!("access_x{BATCH}"), |b| {
            b.to_async(&rt).iter(|| {
                let tasks: Vec<_> = (0..BATCH)
                    .map(|_| {
                        i = (i + 7919) % PRELOADED;
                        let (store, d) = (s.access.clone(), live[i]);
                        tokio::spawn(async move { store.access(&d).await })
                    })
                    .collect();
                async move {
                    for t in tasks {
                        assert!(t.await.unwrap().unwrap().is_some());
                    }
                }
            })
        });
        g.finish();
    }
}

criterion_group!(benches, stores);

/// Resident set size of this process in bytes (Linux), if readable.
fn rss() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

/// Inserts one million access tokens (each its own grant, as `client_credentials` issues
/// them) into a memory store and prints the resident bytes per token.
fn memory_footprint() {
    const N: usize = 1_000_000;
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let client: Arc<str> = Arc::from("bench");
    let scope = Scope::from_tokens(["read", "write"]).unwrap();
    let store = MemoryStore::new();
    let Some(before) = rss() else {
        eprintln!("memory footprint needs /proc/self/statm (Linux)");
        return;
    };
    rt.block_on(async {
        for _ in 0..N {
            let d = TokenDigest::from_bytes(rand::random());
            store
                .put_access(&d, &record(&client, &scope))
                .await
                .unwrap();
        }
    });
    let after = rss().unwrap_or(before);
    assert_eq!(store.access_token_count(), N);
    let per = (after.saturating_sub(before)) as f64 / N as f64;
    println!(
        "memory store: {N} live access tokens, RSS +{:.1} MiB = {per:.0} bytes per token",
        (after - before) as f64 / (1024.0 * 1024.0)
    );
    // Keep the store alive until measured.
    drop(store);
}

fn main() {
    let memory = std::env::args().any(|a| a == "--memory")
        || std::env::var_os("TWISTED_OAUTH2_BENCH_MEMORY").is_some();
    if memory {
        memory_footprint();
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
    let db = sqlite_file();
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
    }
}
