//! Parallel refresh over real HTTP (issue 19 item 5): an MCP host that fires tool calls in
//! parallel refreshes with one refresh token from several requests at once. With the demo's
//! `refresh_token_reuse_interval` (60 s in its Rocket.toml) four parallel refreshes all
//! succeed, every returned access token opens `/clock` and every returned refresh token
//! refreshes, on the demo's memory and SQLite stores.

mod common;

use common::*;
use sha2::Digest;

const CALLBACK: &str = "http://127.0.0.1:9000/callback";
const VERIFIER: &str = "parallel-refresh-verifier-0123456789-abcdefghijklmnopqrstuvwxyz";

fn query_param(url: &str, name: &str) -> Option<String> {
    url::Url::parse(url)
        .ok()?
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

fn authorize_url(base: &str) -> String {
    use base64::Engine;
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(sha2::Sha256::digest(VERIFIER.as_bytes()));
    let mut u = url::Url::parse(&format!("{base}/oauth2/authorize")).unwrap();
    u.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", "demo-web")
        .append_pair("redirect_uri", CALLBACK)
        .append_pair("scope", "VIEW_CLOCK")
        .append_pair("state", "st4te")
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256");
    u.into()
}

/// A token endpoint answer: status and JSON body.
async fn token(
    http: &oauth2::reqwest::Client,
    base: &str,
    form: &[(&str, &str)],
) -> (u16, serde_json::Value) {
    let r = http
        .post(format!("{base}/oauth2/token"))
        .form(form)
        .send()
        .await
        .expect("token request");
    let status = r.status().as_u16();
    let body = r.text().await.expect("token body");
    (
        status,
        serde_json::from_str(&body).unwrap_or(serde_json::Value::String(body)),
    )
}

async fn refresh(http: &oauth2::reqwest::Client, base: &str, rt: &str) -> (u16, serde_json::Value) {
    token(
        http,
        base,
        &[
            ("grant_type", "refresh_token"),
            ("client_id", "demo-web"),
            ("refresh_token", rt),
        ],
    )
    .await
}

fn field(v: &serde_json::Value, name: &str) -> String {
    v[name]
        .as_str()
        .unwrap_or_else(|| panic!("`{name}` in {v}"))
        .to_owned()
}

async fn clock_status(http: &oauth2::reqwest::Client, base: &str, access: &str) -> u16 {
    http.get(format!("{base}/clock"))
        .bearer_auth(access)
        .send()
        .await
        .expect("clock")
        .status()
        .as_u16()
}

async fn four_parallel_refreshes_all_succeed_and_every_token_works(
    figment: rocket::figment::Figment,
) {
    let demo = serve_demo(figment).await;
    let base = demo.base.clone();
    let mut browser = Browser::new();
    let landing = login_and_consent(
        &mut browser,
        &base,
        &authorize_url(&base),
        ("alice", "wonderland"),
        "allow",
    )
    .await;
    let code = query_param(&landing, "code").expect("code");
    let http = http_client();
    let (status, first) = token(
        &http,
        &base,
        &[
            ("grant_type", "authorization_code"),
            ("client_id", "demo-web"),
            ("code", &code),
            ("redirect_uri", CALLBACK),
            ("code_verifier", VERIFIER),
        ],
    )
    .await;
    assert_eq!(status, 200, "{first}");
    let rt = field(&first, "refresh_token");

    let tasks: Vec<_> = (0..4)
        .map(|_| {
            let (http, base, rt) = (http.clone(), base.clone(), rt.clone());
            rocket::tokio::spawn(async move { refresh(&http, &base, &rt).await })
        })
        .collect();
    let mut answers = Vec::new();
    for t in tasks {
        let (status, body) = t.await.expect("task");
        assert_eq!(status, 200, "every parallel refresh succeeds: {body}");
        answers.push(body);
    }
    let mut seen = std::collections::HashSet::new();
    for a in &answers {
        let (access, refresh_token) = (field(a, "access_token"), field(a, "refresh_token"));
        assert!(
            seen.insert(access.clone()) && seen.insert(refresh_token.clone()),
            "fresh tokens"
        );
        assert_eq!(
            clock_status(&http, &base, &access).await,
            200,
            "the access token opens /clock"
        );
    }
    for a in &answers {
        let (status, next) = refresh(&http, &base, &field(a, "refresh_token")).await;
        assert_eq!(
            status, 200,
            "every returned refresh token refreshes: {next}"
        );
        assert_eq!(
            clock_status(&http, &base, &field(&next, "access_token")).await,
            200
        );
    }
    // The family survived: the first access token still works.
    assert_eq!(
        clock_status(&http, &base, &field(&first, "access_token")).await,
        200
    );
}

#[rocket::async_test]
async fn four_parallel_refreshes_within_the_reuse_interval_all_succeed_on_the_memory_store() {
    four_parallel_refreshes_all_succeed_and_every_token_works(demo_figment(free_port())).await;
}

#[rocket::async_test]
async fn four_parallel_refreshes_within_the_reuse_interval_all_succeed_on_the_sqlite_store() {
    let db = std::env::temp_dir().join(format!(
        "twisted-oauth2-parallel-refresh-{:016x}.db",
        rand_u64()
    ));
    let figment =
        demo_figment(free_port()).merge(("oauth2.storage", format!("sqlite://{}", db.display())));
    four_parallel_refreshes_all_succeed_and_every_token_works(figment).await;
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
    }
}

/// A process-unique number for file names (time and address entropy; no `rand` here).
fn rand_u64() -> u64 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    t ^ (std::process::id() as u64) << 32
}
