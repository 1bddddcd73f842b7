//! Hot paths: token validation and issuance, in the protocol core and through Rocket,
//! beside the same Rocket route without protection (the ceiling).
//!
//! `cargo bench -p twisted-oauth2 --bench hot_paths`

use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use rocket::http::{ContentType, Header};
use rocket::local::asynchronous::Client;
use rocket::{get, routes};
use twisted_oauth2::config::{ClientConfig, ServerConfig};
use twisted_oauth2::endpoint::resource::{self, BearerRequest};
use twisted_oauth2::endpoint::token::{self, TokenRequest};
use twisted_oauth2::endpoint::Transport;
use twisted_oauth2::rocket::OAuth2;
use twisted_oauth2::{oauth, AuthorizationServer};

#[oauth(scope = "read")]
#[get("/protected")]
fn protected() -> &'static str {
    "protected resource\n"
}

#[get("/open")]
fn open() -> &'static str {
    "protected resource\n"
}

fn config() -> ServerConfig {
    let c = ClientConfig {
        id: "bench".into(),
        secret: Some("bench-secret".into()),
        grant_types: vec!["client_credentials".into()],
        scopes: Some(vec!["read".into(), "write".into()]),
        ..Default::default()
    };
    ServerConfig {
        issuer: "http://127.0.0.1:8000".into(),
        allow_insecure_request_debug: true,
        clients: vec![c],
        ..Default::default()
    }
}

const BASIC: &str = "Basic YmVuY2g6YmVuY2gtc2VjcmV0"; // bench:bench-secret

fn core(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let server = Arc::new(AuthorizationServer::builder(config()).build().unwrap());
    let req = TokenRequest {
        body: b"grant_type=client_credentials&scope=read",
        content_type: Some("application/x-www-form-urlencoded"),
        authorization: Some(BASIC),
        query: None,
        transport: Transport { secure: true },
        ..Default::default()
    };
    let tok = rt
        .block_on(token::handle(&server, req))
        .unwrap()
        .access_token;
    let header = format!("Bearer {tok}");
    let mut g = c.benchmark_group("core");
    g.throughput(Throughput::Elements(1));
    g.bench_function("validate_token", |b| {
        b.to_async(&rt).iter(|| async {
            let breq = BearerRequest {
                authorization: Some(&header),
                ..Default::default()
            };
            resource::authorize(&server, &breq, Transport { secure: true }, "read")
                .await
                .unwrap()
        })
    });
    g.bench_function("issue_token_client_credentials", |b| {
        b.to_async(&rt)
            .iter(|| async { token::handle(&server, req).await.unwrap() })
    });
    g.finish();
}

fn through_rocket(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let figment = rocket::Config::figment().merge(("log_level", "off"));
    let rocket = rocket::custom(figment)
        .attach(OAuth2::fairing().config(config()))
        .mount("/", routes![protected, open]);
    let client = rt.block_on(Client::untracked(rocket)).unwrap();
    let tok = rt.block_on(async {
        let r = client
            .post("/oauth2/token")
            .header(ContentType::Form)
            .header(Header::new("Authorization", BASIC))
            .body("grant_type=client_credentials&scope=read")
            .dispatch()
            .await;
        let v: serde_json::Value = serde_json::from_str(&r.into_string().await.unwrap()).unwrap();
        v["access_token"].as_str().unwrap().to_owned()
    });
    let bearer = format!("Bearer {tok}");
    let mut g = c.benchmark_group("rocket_local");
    g.throughput(Throughput::Elements(1));
    g.bench_function("open_route", |b| {
        b.to_async(&rt)
            .iter(|| async { client.get("/open").dispatch().await.status() })
    });
    g.bench_function("protected_route", |b| {
        b.to_async(&rt).iter(|| async {
            let s = client
                .get("/protected")
                .header(Header::new("Authorization", bearer.clone()))
                .dispatch()
                .await
                .status();
            assert_eq!(s.code, 200);
            s
        })
    });
    g.bench_function("token_endpoint", |b| {
        b.to_async(&rt).iter(|| async {
            client
                .post("/oauth2/token")
                .header(ContentType::Form)
                .header(Header::new("Authorization", BASIC))
                .body("grant_type=client_credentials&scope=read")
                .dispatch()
                .await
                .status()
        })
    });
    g.finish();
}

criterion_group!(benches, core, through_rocket);
criterion_main!(benches);
