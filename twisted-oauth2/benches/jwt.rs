//! JWT access tokens: signing and first-seen verification per algorithm (EdDSA, ES256,
//! RS256), with the library's key ring and its RFC 9068 verifier (signature, algorithm
//! from the key, `typ`, `iss`, `aud`, `exp`): the cost a token pays the first time a
//! resource sees it, before the verified-token cache.
//!
//! `cargo bench -p twisted-oauth2 --features jwt --bench jwt`

use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion};
use jsonwebtoken::Algorithm;
use serde_json::json;
use twisted_oauth2::clock::SystemClock;
use twisted_oauth2::config::{ServerConfig, SigningKeyConfig, SigningKeysConfig};
use twisted_oauth2::jwt::{verify_access_token, Expectations, KeyRing};

const ISSUER: &str = "https://as.example";
const AUDIENCE: &str = "https://api.example";

fn ring(pem: &str) -> KeyRing {
    let config = ServerConfig {
        issuer: ISSUER.into(),
        signing_keys: SigningKeysConfig {
            enabled: true,
            keys: vec![SigningKeyConfig {
                pem: Some(pem.into()),
                ..Default::default()
            }],
            ..Default::default()
        },
        ..Default::default()
    };
    KeyRing::from_config(&config, Arc::new(SystemClock)).expect("test key loads")
}

fn bench_jwt(c: &mut Criterion) {
    let keys = [
        (
            "EdDSA",
            Algorithm::EdDSA,
            include_str!("../src/jwt/testdata/ed25519.pem"),
        ),
        (
            "ES256",
            Algorithm::ES256,
            include_str!("../src/jwt/testdata/p256.pem"),
        ),
        (
            "RS256",
            Algorithm::RS256,
            include_str!("../src/jwt/testdata/rsa2048.pem"),
        ),
    ];
    let now = chrono::Utc::now().timestamp();
    let mut group = c.benchmark_group("jwt");
    for (name, alg, pem) in keys {
        let ring = ring(pem);
        let signer = ring.signer().expect("a configured key signs");
        assert_eq!(signer.algorithm(), alg);
        let claims = json!({
            "iss": ISSUER, "sub": "alice", "aud": AUDIENCE, "client_id": "app",
            "scope": "read write", "iat": now, "exp": now + 3600, "jti": "b7d0c5f1e2a94c3b",
        });
        group.bench_function(format!("sign/{name}"), |b| {
            b.iter(|| signer.sign("at+jwt", &claims).expect("signs"))
        });
        let token = signer.sign("at+jwt", &claims).expect("signs");
        let set = ring.key_set();
        let algorithms = [alg];
        let audiences = [AUDIENCE];
        group.bench_function(format!("verify_first_seen/{name}"), |b| {
            b.iter(|| {
                let expect = Expectations::new(ISSUER, now)
                    .with_algorithms(&algorithms)
                    .with_audiences(&audiences)
                    .with_require_typ(true);
                verify_access_token(&token, &set, &expect).expect("verifies")
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench_jwt);
criterion_main!(benches);
