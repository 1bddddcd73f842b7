//! `examples/resource-server` (its release build, its own `Rocket.toml`, configured through
//! `ROCKET_OAUTH2`) against an authorization server nobody here wrote: node-oidc-provider
//! (`tests/oidc-provider/provider.mjs`), which issues RFC 9068 JWT access tokens for the
//! resource indicator `https://api.example.com/notes`, JWTs for another audience, and opaque
//! tokens for `https://api.example.com/opaque` that the example introspects (RFC 7662) as
//! client `rs`. Every request goes over real HTTP between the three processes.
//!
//! Checked: the issuer's JWT → 200; for another audience, expired, or signed with a key the
//! issuer never published → 401; without the route's scope → 403; a signing-key rotation at
//! the issuer (restart with the new key first, then alone) picked up by the example without
//! restarting it; an opaque token accepted by introspection, then refused after its
//! revocation at the issuer once the example's introspection cache TTL has passed; the
//! issuer stopped → 503 `temporarily_unavailable` with `Retry-After` for what needs it, and
//! recovery when it is back.
//!
//! Skips with a notice when Node.js or the npm packages (`cd tests/oidc-provider && npm ci`)
//! are missing, unless `TWISTED_OAUTH2_REQUIRE_OIDC_PROVIDER=1` (set by `.ci/run`).
//! The example's release binary is built with `cargo build --release` on first use.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use oauth2::reqwest;
use rocket::tokio::time::sleep;
use serde_json::Value;

/// The example's package and binary (its contract, examples/resource-server/README.md).
const EXAMPLE_PACKAGE: &str = "twisted-oauth2-resource-server";
const EXAMPLE_BIN: &str = "twisted-oauth2-resource-server";
/// The resource whose tokens are JWTs, the one for another audience, the opaque one.
const NOTES: &str = "https://api.example.com/notes";
const OTHER: &str = "https://other.example.com";
const OPAQUE: &str = "https://api.example.com/opaque";
/// The example's introspection cache TTL in these tests, in seconds.
const CACHE_TTL: u64 = 1;

fn provider_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("oidc-provider")
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace")
        .to_owned()
}

/// Why the test cannot run here, or `None`.
fn missing() -> Option<String> {
    if Command::new("node").arg("--version").output().is_err() {
        return Some("node not found".into());
    }
    for package in ["oidc-provider", "jose"] {
        let manifest = provider_dir().join("node_modules").join(package);
        if !manifest.join("package.json").exists() {
            return Some(format!(
                "npm {package} not installed (cd tests/oidc-provider && npm ci)"
            ));
        }
    }
    None
}

fn skip() -> bool {
    let Some(why) = missing() else { return false };
    if std::env::var("TWISTED_OAUTH2_REQUIRE_OIDC_PROVIDER").is_ok_and(|v| v == "1") {
        panic!("the node-oidc-provider test is required but {why}");
    }
    eprintln!("skipping the node-oidc-provider test: {why}");
    true
}

/// A fresh directory under the system's temporary directory, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(what: &str) -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!(
            "twisted-oauth2-oidcp-{what}-{}-{n}",
            std::process::id()
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("a temporary directory");
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// A child process, killed on drop; its output goes to `log`, shown if the test fails.
struct Proc {
    name: String,
    child: Child,
    log: PathBuf,
}

impl Proc {
    fn spawn(name: &str, mut cmd: Command, log: PathBuf) -> Proc {
        let out = fs::File::create(&log).expect("a log file");
        let err = out.try_clone().expect("the log file again");
        let child = cmd
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("{name} starts: {e}"));
        Proc {
            name: name.to_owned(),
            child,
            log,
        }
    }

    fn still_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until `port` accepts connections (bounded), panicking with the log if the
    /// process exits or never listens.
    async fn wait_listening(&mut self, port: u16) {
        for _ in 0..1000 {
            if rocket::tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return;
            }
            if !self.still_running() {
                panic!("{} exited before listening:\n{}", self.name, self.log());
            }
            sleep(Duration::from_millis(20)).await;
        }
        panic!("{} never listened on {port}:\n{}", self.name, self.log());
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("--- {} output ---\n{}", self.name, self.log());
        }
    }
}

/// Runs `node keys.mjs ARGS` and returns what it printed.
fn keys_mjs(args: &[&str]) -> String {
    let out = Command::new("node")
        .current_dir(provider_dir())
        .arg("keys.mjs")
        .args(args)
        .output()
        .expect("node runs");
    assert!(
        out.status.success(),
        "keys.mjs {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .expect("UTF-8")
        .trim()
        .to_owned()
}

/// node-oidc-provider on a fixed loopback port, which can be stopped and started again
/// (with other keys) under the same issuer.
struct Issuer {
    port: u16,
    dir: TempDir,
    process: Option<Proc>,
    starts: usize,
}

impl Issuer {
    fn new() -> Issuer {
        Issuer {
            port: common::free_port(),
            dir: TempDir::new("issuer"),
            process: None,
            starts: 0,
        }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// A new private key `kid` (`alg`: ES256, RS256) in a JWKS file of its own.
    fn new_key(&self, kid: &str, alg: &str) -> PathBuf {
        let file = self.dir.0.join(format!("{kid}.json"));
        fs::write(&file, keys_mjs(&["generate", kid, alg])).expect("the key file");
        file
    }

    /// Starts the provider with `keys` (the first one signs, all are published).
    async fn start(&mut self, keys: &[&Path]) {
        assert!(self.process.is_none(), "the provider is already running");
        let mut cmd = Command::new("node");
        cmd.current_dir(provider_dir())
            .arg("provider.mjs")
            .arg(self.port.to_string())
            .args(keys);
        self.starts += 1;
        let log = self.dir.0.join(format!("provider-{}.log", self.starts));
        let mut p = Proc::spawn("node-oidc-provider", cmd, log);
        p.wait_listening(self.port).await;
        self.process = Some(p);
    }

    fn stop(&mut self) {
        self.process = None;
    }

    /// A `client_credentials` access token of `client` (secret `CLIENT-secret`) for
    /// `resource` with `scope`.
    async fn token(
        &self,
        http: &reqwest::Client,
        client: &str,
        resource: &str,
        scope: &str,
    ) -> String {
        let r = http
            .post(format!("{}/token", self.url()))
            .basic_auth(client, Some(format!("{client}-secret")))
            .form(&[
                ("grant_type", "client_credentials"),
                ("resource", resource),
                ("scope", scope),
            ])
            .send()
            .await
            .expect("the token request");
        let status = r.status();
        let body = json(r).await;
        assert_eq!(status, 200, "token for {resource}: {body}");
        body["access_token"]
            .as_str()
            .expect("access_token")
            .to_owned()
    }

    /// Revokes `token` at the provider as its client `cli` (RFC 7009).
    async fn revoke(&self, http: &reqwest::Client, token: &str) {
        let r = http
            .post(format!("{}/token/revocation", self.url()))
            .basic_auth("cli", Some("cli-secret"))
            .form(&[("token", token), ("token_type_hint", "access_token")])
            .send()
            .await
            .expect("the revocation request");
        assert_eq!(r.status(), 200, "revocation");
    }

    /// A token with every claim right for this issuer and [`NOTES`] but signed by a key
    /// the provider never had.
    fn forged_token(&self, scope: &str) -> String {
        keys_mjs(&["forge", &self.url(), NOTES, scope])
    }
}

/// The example's release binary, built once per test run.
fn example_binary() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let out = Command::new(cargo)
            .current_dir(workspace_root())
            .args([
                "build",
                "--release",
                "-p",
                EXAMPLE_PACKAGE,
                "--bin",
                EXAMPLE_BIN,
                "--message-format=json-render-diagnostics",
            ])
            .stderr(Stdio::inherit())
            .output()
            .expect("cargo runs");
        assert!(out.status.success(), "the example's release build failed");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|m| m["reason"] == "compiler-artifact" && m["target"]["name"] == EXAMPLE_BIN)
            .find_map(|m| m["executable"].as_str().map(PathBuf::from))
            .expect("cargo names the example's executable")
    })
    .clone()
}

/// `examples/resource-server` running from a directory holding a copy of its `Rocket.toml`,
/// configured for `issuer` through `ROCKET_OAUTH2` (the env override of its contract).
struct Example {
    base: String,
    process: Proc,
    _dir: TempDir,
}

impl Example {
    async fn start(issuer: &Issuer) -> Example {
        let bin = example_binary();
        let dir = TempDir::new("example");
        fs::copy(
            workspace_root().join("examples/resource-server/Rocket.toml"),
            dir.0.join("Rocket.toml"),
        )
        .expect("the example's Rocket.toml");
        let port = common::free_port();
        // `leeway = 0` so a token the provider made valid for one second is expired two
        // seconds later; plain HTTP is allowed for the loopback issuer (development only).
        let oauth2 = format!(
            "{{resource_server={{issuer=\"{}\",audience=[\"{NOTES}\",\"{OPAQUE}\"],\
             allow_http=true,leeway=0,\
             introspection={{client_id=\"rs\",client_secret=\"rs-secret\",cache_ttl={CACHE_TTL}}}}}}}",
            issuer.url()
        );
        let secret = base64::engine::general_purpose::STANDARD.encode(rand::random::<[u8; 32]>());
        let mut cmd = Command::new(bin);
        cmd.current_dir(&dir.0)
            .env("ROCKET_PORT", port.to_string())
            .env("ROCKET_ADDRESS", "127.0.0.1")
            .env("ROCKET_SECRET_KEY", secret)
            .env("ROCKET_OAUTH2", oauth2);
        let mut process = Proc::spawn("examples/resource-server", cmd, dir.0.join("example.log"));
        process.wait_listening(port).await;
        Example {
            base: format!("http://127.0.0.1:{port}"),
            process,
            _dir: dir,
        }
    }

    async fn get_notes(&self, http: &reqwest::Client, token: &str) -> reqwest::Response {
        http.get(format!("{}/notes", self.base))
            .bearer_auth(token)
            .send()
            .await
            .expect("GET /notes")
    }

    /// The status of `GET /notes` with `token`.
    async fn notes_status(&self, http: &reqwest::Client, token: &str) -> u16 {
        self.get_notes(http, token).await.status().as_u16()
    }
}

/// A response's JSON body.
async fn json(r: reqwest::Response) -> Value {
    let text = r.text().await.expect("a body");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

fn www_authenticate(r: &reqwest::Response) -> String {
    r.headers()
        .get("www-authenticate")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned()
}

/// A JWT's payload, decoded (not verified: the test reads its own token's `exp`).
fn claims(jwt: &str) -> Value {
    let payload = jwt.split('.').nth(1).expect("a JWS");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .expect("base64url");
    serde_json::from_slice(&bytes).expect("JSON claims")
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs() as i64
}

/// Asks `GET /notes` with `token` until it answers 200, at most `attempts` times, waiting
/// `pause` between tries; returns the statuses seen.
async fn until_ok(
    example: &Example,
    http: &reqwest::Client,
    token: &str,
    attempts: usize,
    pause: impl Fn(&reqwest::Response) -> Duration,
) -> Vec<u16> {
    let mut seen = Vec::new();
    for _ in 0..attempts {
        let r = example.get_notes(http, token).await;
        seen.push(r.status().as_u16());
        if r.status() == 200 {
            break;
        }
        sleep(pause(&r)).await;
    }
    seen
}

#[rocket::async_test]
async fn node_oidc_provider_jwts_are_accepted_for_the_audience_and_refused_otherwise() {
    if skip() {
        return;
    }
    let http = common::http_client();
    let mut issuer = Issuer::new();
    let key = issuer.new_key("key-a", "ES256");
    issuer.start(&[&key]).await;
    let example = Example::start(&issuer).await;

    let health = http
        .get(format!("{}/health", example.base))
        .send()
        .await
        .expect("GET /health");
    assert_eq!(health.status(), 200, "/health is open");

    // The issuer's RFC 9068 token for the resource, with the route's scope.
    let jwt = issuer.token(&http, "cli", NOTES, "notes:read").await;
    assert_eq!(jwt.split('.').count(), 3, "node-oidc-provider issued a JWT");
    let r = example.get_notes(&http, &jwt).await;
    assert_eq!(r.status(), 200, "{}", www_authenticate(&r));
    let body = json(r).await;
    assert_eq!(body["client_id"], "cli", "{body}");
    assert_eq!(body["sub"], "cli", "{body}");
    assert!(
        body["scope"]
            .as_str()
            .is_some_and(|s| s.split(' ').any(|s| s == "notes:read")),
        "{body}"
    );
    assert_eq!(
        example.notes_status(&http, &jwt).await,
        200,
        "the same token again"
    );

    // No token: the RFC 6750 challenge.
    let r = http
        .get(format!("{}/notes", example.base))
        .send()
        .await
        .expect("GET /notes");
    assert_eq!(r.status(), 401);
    assert!(
        www_authenticate(&r).starts_with("Bearer"),
        "{}",
        www_authenticate(&r)
    );

    // A token of the same issuer for another audience.
    let other = issuer.token(&http, "cli", OTHER, "notes:read").await;
    assert_eq!(claims(&other)["aud"], OTHER);
    let r = example.get_notes(&http, &other).await;
    assert_eq!(r.status(), 401, "another audience");
    assert!(
        www_authenticate(&r).contains("invalid_token"),
        "{}",
        www_authenticate(&r)
    );

    // Signed by a key the issuer never published (every claim otherwise right).
    let forged = issuer.forged_token("notes:read");
    let r = example.get_notes(&http, &forged).await;
    assert_eq!(r.status(), 401, "an unknown signing key");
    assert!(
        www_authenticate(&r).contains("invalid_token"),
        "{}",
        www_authenticate(&r)
    );

    // Without the route's scope: 403, and the scope it has is enough for POST.
    let write_only = issuer.token(&http, "cli", NOTES, "notes:write").await;
    let r = example.get_notes(&http, &write_only).await;
    assert_eq!(r.status(), 403, "notes:write does not read");
    assert!(
        www_authenticate(&r).contains("insufficient_scope"),
        "{}",
        www_authenticate(&r)
    );
    let r = http
        .post(format!("{}/notes", example.base))
        .bearer_auth(&write_only)
        .send()
        .await
        .expect("POST /notes");
    assert_eq!(r.status(), 201, "notes:write writes");

    // Expired: client `short` gets tokens valid one second; the example's leeway is 0.
    // The wait is the token's own lifetime (a protocol wait, not a timing assertion).
    let short = issuer.token(&http, "short", NOTES, "notes:read").await;
    let exp = claims(&short)["exp"].as_i64().expect("exp");
    while now() <= exp {
        sleep(Duration::from_millis(200)).await;
    }
    let r = example.get_notes(&http, &short).await;
    assert_eq!(r.status(), 401, "an expired token");
    assert!(
        www_authenticate(&r).contains("invalid_token"),
        "{}",
        www_authenticate(&r)
    );
}

#[rocket::async_test]
async fn a_key_rotation_at_node_oidc_provider_is_picked_up_without_restarting_the_example() {
    if skip() {
        return;
    }
    let http = common::http_client();
    let mut issuer = Issuer::new();
    let key_a = issuer.new_key("key-a", "ES256");
    let key_b = issuer.new_key("key-b", "RS256");
    issuer.start(&[&key_a]).await;
    let mut example = Example::start(&issuer).await;

    let signed_a = issuer.token(&http, "cli", NOTES, "notes:read").await;
    assert_eq!(example.notes_status(&http, &signed_a).await, 200, "key A");

    // The provider restarts with B signing and A still published.
    issuer.stop();
    issuer.start(&[&key_b, &key_a]).await;
    let signed_b = issuer.token(&http, "cli", NOTES, "notes:read").await;
    // B's kid is unknown to the example's cached key set: it refetches the JWKS, at most
    // once per 10 s (its rate limit against made-up kids), so it may answer 401 until that
    // window has passed. Waiting for it is a protocol wait, bounded at 25 s.
    let seen = until_ok(&example, &http, &signed_b, 25, |_| Duration::from_secs(1)).await;
    assert_eq!(seen.last(), Some(&200), "key B never accepted: {seen:?}");
    assert!(seen.iter().all(|s| *s == 200 || *s == 401), "{seen:?}");
    assert_eq!(
        example.notes_status(&http, &signed_a).await,
        200,
        "a token of key A while A is still published"
    );

    // Then B alone: new tokens are still accepted.
    issuer.stop();
    issuer.start(&[&key_b]).await;
    let signed_b2 = issuer.token(&http, "cli", NOTES, "notes:read").await;
    assert_eq!(
        example.notes_status(&http, &signed_b2).await,
        200,
        "key B alone"
    );
    assert!(
        example.process.still_running(),
        "the example was never restarted"
    );
}

#[rocket::async_test]
async fn opaque_node_oidc_provider_tokens_are_introspected_and_refused_after_revocation() {
    if skip() {
        return;
    }
    let http = common::http_client();
    let mut issuer = Issuer::new();
    let key = issuer.new_key("key-a", "ES256");
    issuer.start(&[&key]).await;
    let example = Example::start(&issuer).await;

    let opaque = issuer.token(&http, "cli", OPAQUE, "notes:read").await;
    assert_ne!(opaque.split('.').count(), 3, "an opaque token, not a JWS");
    let r = example.get_notes(&http, &opaque).await;
    assert_eq!(r.status(), 200, "introspected: {}", www_authenticate(&r));
    let body = json(r).await;
    assert_eq!(body["client_id"], "cli", "{body}");

    // Without the route's scope.
    let write_only = issuer.token(&http, "cli", OPAQUE, "notes:write").await;
    assert_eq!(example.notes_status(&http, &write_only).await, 403);
    // A string the issuer never issued (introspection says `active: false`).
    let r = example
        .get_notes(&http, "made-up-opaque-token-0123456789")
        .await;
    assert_eq!(r.status(), 401);
    assert!(
        www_authenticate(&r).contains("invalid_token"),
        "{}",
        www_authenticate(&r)
    );

    // Revoked at the issuer: the example may keep its positive answer for up to its cache
    // TTL (the documented trade-off); once that has passed, the token is refused. The wait
    // is that TTL (a protocol wait, not a timing assertion).
    issuer.revoke(&http, &opaque).await;
    sleep(Duration::from_secs(CACHE_TTL) + Duration::from_millis(1100)).await;
    let r = example.get_notes(&http, &opaque).await;
    assert_eq!(r.status(), 401, "revoked at the issuer");
    assert!(
        www_authenticate(&r).contains("invalid_token"),
        "{}",
        www_authenticate(&r)
    );
}

#[rocket::async_test]
async fn node_oidc_provider_stopped_gives_503_with_retry_after_and_the_example_recovers() {
    if skip() {
        return;
    }
    let http = common::http_client();
    let mut issuer = Issuer::new();
    let key = issuer.new_key("key-a", "ES256");
    issuer.start(&[&key]).await;
    let mut example = Example::start(&issuer).await;

    let jwt = issuer.token(&http, "cli", NOTES, "notes:read").await;
    assert_eq!(
        example.notes_status(&http, &jwt).await,
        200,
        "the key set is fetched"
    );
    let later_jwt = issuer.token(&http, "cli", NOTES, "notes:read").await;
    let opaque = issuer.token(&http, "cli", OPAQUE, "notes:read").await;

    issuer.stop();
    // An opaque token needs the issuer: 503 temporarily_unavailable with Retry-After.
    let r = example.get_notes(&http, &opaque).await;
    assert_eq!(r.status(), 503, "{}", www_authenticate(&r));
    let retry_after: u64 = r
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("Retry-After in seconds");
    assert!(
        retry_after > 0 && retry_after <= 300,
        "Retry-After {retry_after}"
    );
    let text = r.text().await.unwrap_or_default();
    assert!(text.contains("temporarily_unavailable"), "{text}");
    // A JWT of a key already fetched is verified locally while the issuer is down.
    assert_eq!(
        example.notes_status(&http, &later_jwt).await,
        200,
        "known keys stay in use"
    );

    issuer.start(&[&key]).await;
    // The provider's in-memory store forgot `opaque`; a fresh one is accepted once the
    // example asks the issuer again, after the Retry-After it announced (a protocol wait).
    let fresh = issuer.token(&http, "cli", OPAQUE, "notes:read").await;
    let seen = until_ok(&example, &http, &fresh, 5, |r| {
        let secs = r
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .unwrap_or(1u64);
        Duration::from_secs(secs.min(60))
    })
    .await;
    assert_eq!(seen.last(), Some(&200), "no recovery: {seen:?}");
    assert_eq!(
        example.notes_status(&http, &opaque).await,
        401,
        "the forgotten token is now inactive, not unavailable"
    );
    assert!(
        example.process.still_running(),
        "the example was never restarted"
    );
}
