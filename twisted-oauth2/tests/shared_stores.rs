//! Durable and shared stores through Rocket: two server instances on one PostgreSQL and on
//! one Redis (a token issued by one is accepted by the other; a code redeemed through both
//! at once gives one token), a SQLite-backed server restarted (old tokens still work), a
//! store that stops mid-run (RFC errors, no hang, recovery), and launch refused when the
//! `storage` URL cannot be opened.
//!
//! PostgreSQL and Redis tests need `TWISTED_OAUTH2_TEST_POSTGRES` /
//! `TWISTED_OAUTH2_TEST_REDIS` and skip with a notice otherwise.

#![cfg_attr(
    not(all(feature = "sqlite", feature = "postgres", feature = "redis")),
    allow(dead_code, unused_imports)
)]

mod common;

use common::put_code;

mod stores;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use rocket::http::{ContentType, Header, Status};
use rocket::local::asynchronous::{Client, LocalResponse};
use rocket::serde::json::Json;
use rocket::{get, routes};
use twisted_oauth2::config::{ClientConfig, ServerConfig};
use twisted_oauth2::rocket::{AuthResult, OAuth2};
use twisted_oauth2::TokenInfo;

const REDIRECT: &str = "https://client.example/cb";

#[get("/me")]
fn me(info: TokenInfo) -> Json<TokenInfo> {
    Json(info)
}

/// The outcome as text, never failing: `ok <client>` or `err <code>`.
#[get("/check")]
fn check(auth: AuthResult) -> String {
    match auth.result() {
        Ok(info) => format!("ok {}", info.client_id),
        Err(e) => format!("err {}", e.code()),
    }
}

fn config(storage: &str) -> ServerConfig {
    let c = ClientConfig {
        id: "app".into(),
        secret: Some("app-secret".into()),
        redirect_uris: vec![REDIRECT.into()],
        grant_types: vec![
            "authorization_code".into(),
            "refresh_token".into(),
            "client_credentials".into(),
        ],
        scopes: Some(vec!["a".into(), "b".into()]),
        ..Default::default()
    };
    let mut cfg = ServerConfig {
        issuer: "https://as.example".into(),
        trusted_proxy_header: Some("X-Forwarded-Proto".into()),
        storage: storage.into(),
        ..Default::default()
    };
    // Test keys in a shared Redis expire within the hour.
    cfg.refresh_token_lifetime = 3600;
    cfg.clients = vec![c];
    cfg
}

fn rocket_for(storage: &str) -> rocket::Rocket<rocket::Build> {
    let figment = rocket::Config::figment()
        .merge(("log_level", "off"))
        .merge(("oauth2", config(storage)));
    rocket::custom(figment)
        .attach(OAuth2::fairing().on_authenticate(common::NoConsent))
        .mount("/", routes![me, check])
}

async fn server(storage: &str) -> Client {
    match Client::untracked(rocket_for(storage)).await {
        Ok(c) => c,
        Err(e) => panic!("server on {storage:?} did not launch: {e}"),
    }
}

fn basic() -> String {
    format!("Basic {}", STANDARD.encode("app:app-secret"))
}

async fn token_req<'c>(c: &'c Client, body: &str) -> LocalResponse<'c> {
    c.post("/oauth2/token")
        .header(ContentType::Form)
        .header(Header::new("X-Forwarded-Proto", "https"))
        .header(Header::new("Authorization", basic()))
        .body(body)
        .dispatch()
        .await
}

async fn json(r: LocalResponse<'_>) -> (Status, serde_json::Value) {
    let status = r.status();
    let body = r.into_string().await.unwrap_or_default();
    match serde_json::from_str(&body) {
        Ok(v) => (status, v),
        Err(_) => panic!("expected a JSON body, got {status}: {body:?}"),
    }
}

async fn client_credentials(c: &Client) -> String {
    let (st, v) = json(token_req(c, "grant_type=client_credentials&scope=a").await).await;
    assert_eq!(st, Status::Ok, "{v}");
    v["access_token"].as_str().unwrap_or_default().to_owned()
}

async fn me_status(c: &Client, token: &str) -> Status {
    c.get("/me")
        .header(Header::new("X-Forwarded-Proto", "https"))
        .header(Header::new("Authorization", format!("Bearer {token}")))
        .dispatch()
        .await
        .status()
}

async fn check_text(c: &Client, token: &str) -> String {
    c.get("/check")
        .header(Header::new("X-Forwarded-Proto", "https"))
        .header(Header::new("Authorization", format!("Bearer {token}")))
        .dispatch()
        .await
        .into_string()
        .await
        .unwrap_or_default()
}

fn redeem_body(code: &str) -> String {
    format!("grant_type=authorization_code&code={code}")
}

/// Two instances on one store: tokens cross over, revocation crosses over, refresh
/// rotation crosses over, and each code redeemed through both at once yields one token.
async fn two_instances(url: &str) {
    let (a, b) = (server(url).await, server(url).await);
    let direct = match twisted_oauth2::storage::connect(url).await {
        Ok(s) => s,
        Err(e) => panic!("connect: {e:?}"),
    };

    let token = client_credentials(&a).await;
    assert_eq!(
        me_status(&b, &token).await,
        Status::Ok,
        "issued by A, accepted by B"
    );
    assert_eq!(check_text(&a, &token).await, "ok app");
    let r = b
        .post("/oauth2/revoke")
        .header(ContentType::Form)
        .header(Header::new("X-Forwarded-Proto", "https"))
        .header(Header::new("Authorization", basic()))
        .body(format!("token={token}"))
        .dispatch()
        .await;
    assert_eq!(r.status(), Status::Ok);
    assert_eq!(
        me_status(&a, &token).await,
        Status::Unauthorized,
        "revoked via B"
    );

    // Refresh issued by A, rotated by B; the old one is then refused by A.
    let code = put_code(&direct).await;
    let (st, v) = json(token_req(&a, &redeem_body(&code)).await).await;
    assert_eq!(st, Status::Ok, "{v}");
    let refresh = v["refresh_token"].as_str().unwrap_or_default().to_owned();
    let body = format!("grant_type=refresh_token&refresh_token={refresh}");
    let (st, v) = json(token_req(&b, &body).await).await;
    assert_eq!(st, Status::Ok, "{v}");
    let new_access = v["access_token"].as_str().unwrap_or_default().to_owned();
    assert_eq!(me_status(&a, &new_access).await, Status::Ok);
    let (st, v) = json(token_req(&a, &body).await).await;
    assert_eq!(
        (st, v["error"].as_str()),
        (Status::BadRequest, Some("invalid_grant"))
    );

    // One code, redeemed through both instances at once: at most one token response (the
    // loser's replay revokes the grant, and when that revocation comes before the winner's
    // token writes, the winner is refused too, RFC 6749 §4.1.2), the rest invalid_grant,
    // and no token of the code left working.
    for round in 0..8 {
        let code = put_code(&direct).await;
        let body = redeem_body(&code);
        let (ra, rb) = tokio::join!(token_req(&a, &body), token_req(&b, &body));
        let ((sa, va), (sb, vb)) = tokio::join!(json(ra), json(rb));
        let ok = [sa, sb].iter().filter(|s| **s == Status::Ok).count();
        assert!(ok <= 1, "round {round}: at most one token: {va} / {vb}");
        for (s, v) in [(sa, &va), (sb, &vb)] {
            if s == Status::Ok {
                let t = v["access_token"].as_str().unwrap_or_default();
                assert_eq!(
                    me_status(&a, t).await,
                    Status::Unauthorized,
                    "round {round}"
                );
            } else {
                assert_eq!(v["error"], "invalid_grant", "round {round}: {v}");
            }
        }
    }
}

#[cfg(feature = "postgres")]
#[rocket::async_test]
async fn postgres_two_instances_share_tokens_and_codes() {
    let Some(url) = stores::postgres_url().await else {
        return;
    };
    two_instances(&url).await;
}

#[cfg(feature = "redis")]
#[rocket::async_test]
async fn redis_two_instances_share_tokens_and_codes() {
    let Some(url) = stores::redis_url("two") else {
        return;
    };
    two_instances(&url).await;
}

#[cfg(feature = "sqlite")]
#[rocket::async_test]
async fn sqlite_two_instances_share_one_file() {
    two_instances(&stores::sqlite_url("two")).await;
}

#[cfg(feature = "sqlite")]
#[rocket::async_test]
async fn sqlite_restart_keeps_access_and_refresh_tokens() {
    let url = stores::sqlite_url("restart");
    let (access, refresh) = {
        let first = server(&url).await;
        let direct = match twisted_oauth2::storage::connect(&url).await {
            Ok(s) => s,
            Err(e) => panic!("connect: {e:?}"),
        };
        let code = put_code(&direct).await;
        let (st, v) = json(token_req(&first, &redeem_body(&code)).await).await;
        assert_eq!(st, Status::Ok, "{v}");
        assert_eq!(
            me_status(&first, v["access_token"].as_str().unwrap_or_default()).await,
            Status::Ok
        );
        let tokens = (
            v["access_token"].as_str().unwrap_or_default().to_owned(),
            v["refresh_token"].as_str().unwrap_or_default().to_owned(),
        );
        // Shut the first server down (its purge task ends and releases its pool) before
        // the second one opens the file.
        first.terminate().await;
        tokens
    };
    let second = server(&url).await;
    assert_eq!(
        me_status(&second, &access).await,
        Status::Ok,
        "old access token"
    );
    let body = format!("grant_type=refresh_token&refresh_token={refresh}");
    let (st, v) = json(token_req(&second, &body).await).await;
    assert_eq!(st, Status::Ok, "old refresh token: {v}");
    let fresh = v["access_token"].as_str().unwrap_or_default();
    assert_eq!(me_status(&second, fresh).await, Status::Ok);
}

/// A TCP forwarder the test can stop (listener closed, live connections cut) and resume
/// on the same port.
struct Proxy {
    port: u16,
    target: SocketAddr,
    tasks: Arc<Mutex<Vec<tokio::task::AbortHandle>>>,
}

impl Proxy {
    async fn start(target: SocketAddr) -> Proxy {
        let listener = match tokio::net::TcpListener::bind("127.0.0.1:0").await {
            Ok(l) => l,
            Err(e) => panic!("bind: {e}"),
        };
        let port = listener.local_addr().map(|a| a.port()).unwrap_or_default();
        let p = Proxy {
            port,
            target,
            tasks: Arc::default(),
        };
        p.serve(listener);
        p
    }

    fn serve(&self, listener: tokio::net::TcpListener) {
        let (target, tasks) = (self.target, self.tasks.clone());
        let accept = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let conn = tokio::spawn(async move {
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                if let Ok(mut t) = tasks.lock() {
                    t.push(conn.abort_handle());
                }
            }
        });
        if let Ok(mut t) = self.tasks.lock() {
            t.push(accept.abort_handle());
        }
    }

    /// Closes the listener and cuts every forwarded connection.
    async fn stop(&self) {
        let handles: Vec<_> = self
            .tasks
            .lock()
            .map(|mut t| t.drain(..).collect())
            .unwrap_or_default();
        for h in handles {
            h.abort();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    /// Listens again on the same port.
    async fn resume(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match tokio::net::TcpListener::bind(("127.0.0.1", self.port)).await {
                Ok(l) => return self.serve(l),
                Err(e) if Instant::now() > deadline => panic!("rebind: {e}"),
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }
}

fn addr_of(url: &str) -> (SocketAddr, url::Url) {
    let u = match url::Url::parse(url) {
        Ok(u) => u,
        Err(e) => panic!("bad URL: {e}"),
    };
    let host = u.host_str().unwrap_or("127.0.0.1");
    let host = if host == "localhost" {
        "127.0.0.1"
    } else {
        host
    };
    let port = u.port_or_known_default().unwrap_or(0);
    match format!("{host}:{port}").parse() {
        Ok(a) => (a, u),
        Err(e) => panic!("store address {host}:{port}: {e}"),
    }
}

/// The store behind `url` stops mid-run: requests are answered with
/// `temporarily_unavailable` (503, JSON) within a few seconds, not a hang, a panic or an
/// HTML 500; once the store is back, requests succeed again and old tokens still work.
///
/// Each request during the outage costs at most the store's connect/acquire timeout
/// (3 s for SQL; a refused Redis connection fails at once), so `rounds` stays small.
async fn outage(url: &str, rounds: usize) {
    let (target, mut u) = addr_of(url);
    let proxy = Proxy::start(target).await;
    let _ = u.set_port(Some(proxy.port));
    let _ = u.set_host(Some("127.0.0.1"));
    let proxied = u.to_string();
    let c = server(&proxied).await;
    let token = client_credentials(&c).await;
    assert_eq!(me_status(&c, &token).await, Status::Ok);

    proxy.stop().await;
    for _ in 0..rounds {
        let started = Instant::now();
        let r = token_req(&c, "grant_type=client_credentials&scope=a").await;
        let (st, v) = json(r).await;
        assert!(
            started.elapsed() < Duration::from_secs(12),
            "no hang: {:?}",
            started.elapsed()
        );
        assert_eq!(st, Status::ServiceUnavailable, "{v}");
        assert_eq!(v["error"], "temporarily_unavailable");
        eprintln!(
            "store down: token endpoint answered 503 in {:?}",
            started.elapsed()
        );
        let started = Instant::now();
        assert_eq!(check_text(&c, &token).await, "err temporarily_unavailable");
        assert_eq!(me_status(&c, &token).await, Status::ServiceUnavailable);
        assert!(started.elapsed() < Duration::from_secs(25), "no hang");
    }

    proxy.resume().await;
    let back = Instant::now();
    let deadline = back + Duration::from_secs(30);
    loop {
        let (st, v) = json(token_req(&c, "grant_type=client_credentials&scope=a").await).await;
        if st == Status::Ok {
            eprintln!("store back: first success after {:?}", back.elapsed());
            break;
        }
        assert_eq!(v["error"], "temporarily_unavailable", "while recovering");
        assert!(Instant::now() < deadline, "the store did not recover: {v}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        me_status(&c, &token).await,
        Status::Ok,
        "old token after recovery"
    );
    assert_eq!(check_text(&c, &token).await, "ok app");
    proxy.stop().await;
}

#[cfg(feature = "redis")]
#[rocket::async_test]
async fn redis_outage_answers_temporarily_unavailable_then_recovers() {
    let Some(url) = stores::redis_url("outage") else {
        return;
    };
    outage(&url, 3).await;
}

#[cfg(feature = "postgres")]
#[rocket::async_test]
async fn postgres_outage_answers_temporarily_unavailable_then_recovers() {
    let Some(url) = stores::postgres_url().await else {
        return;
    };
    outage(&url, 1).await;
}

/// A closed local port: nothing listens there.
fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(1)
}

async fn refuses_launch(storage: &str) {
    let started = Instant::now();
    match Client::untracked(rocket_for(storage)).await {
        Ok(_) => panic!("launch must be refused for {storage}"),
        Err(e) => assert!(
            matches!(e.kind(), rocket::error::ErrorKind::FailedFairings(_)),
            "{storage}: {e}"
        ),
    }
    assert!(started.elapsed() < Duration::from_secs(10), "fails fast");
}

#[rocket::async_test]
async fn unknown_storage_scheme_refuses_launch() {
    refuses_launch("mysql://127.0.0.1/db").await;
}

#[cfg(feature = "redis")]
#[rocket::async_test]
async fn unreachable_redis_refuses_launch() {
    refuses_launch(&format!("redis://127.0.0.1:{}", closed_port())).await;
}

#[cfg(feature = "postgres")]
#[rocket::async_test]
async fn unreachable_postgres_refuses_launch() {
    refuses_launch(&format!(
        "postgres://postgres@127.0.0.1:{}/test",
        closed_port()
    ))
    .await;
}

#[cfg(not(all(feature = "sqlite", feature = "postgres", feature = "redis")))]
#[rocket::async_test]
async fn storage_kind_without_its_feature_refuses_launch() {
    #[cfg(not(feature = "sqlite"))]
    refuses_launch("sqlite://never-created.db").await;
    #[cfg(not(feature = "postgres"))]
    refuses_launch("postgres://127.0.0.1/db").await;
    #[cfg(not(feature = "redis"))]
    refuses_launch("redis://127.0.0.1").await;
}
