//! The demo's log holds no secrets at `log_level = "normal"` or `"debug"`: a full flow
//! (login form, consent, code exchange with HTTP Basic, a browser client landing on
//! `/client?code=...` and exchanging with PKCE, a bearer call, a refresh with
//! `client_secret_post`, a revocation, a login form with an extra field) runs against the demo in a
//! child process whose standard output and error are captured.
//!
//! A process has one global logger, so the demo runs in a child: this test binary again,
//! filtered to [`child_serves_the_demo`], which installs
//! [`twisted_oauth2::rocket::RedactingLogger`] the way the demo's `main` does. The control
//! test runs the same flow with Rocket's own logger and requires the secrets to show up,
//! which proves the capture would see them.

mod common;

use std::io::Read;
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::*;
use twisted_oauth2::pkce::s256_challenge;

/// Set in the child: the Rocket `log_level` to serve the demo at.
const CHILD_LEVEL: &str = "TWISTED_OAUTH2_LOG_TEST_LEVEL";
/// Set in the child: the port.
const CHILD_PORT: &str = "TWISTED_OAUTH2_LOG_TEST_PORT";
/// Set in the child: the SQLite URL.
const CHILD_STORAGE: &str = "TWISTED_OAUTH2_LOG_TEST_STORAGE";
/// Set in the child for the control run: keep Rocket's own logger.
const CHILD_UNREDACTED: &str = "TWISTED_OAUTH2_LOG_TEST_UNREDACTED";

const REDIRECT: &str = "http://127.0.0.1:9000/callback";

/// Not a test of its own: the child process's entry point (returns at once otherwise).
#[test]
fn child_serves_the_demo() {
    let Ok(level) = std::env::var(CHILD_LEVEL) else {
        return;
    };
    let port: u16 = std::env::var(CHILD_PORT).unwrap().parse().unwrap();
    let storage = std::env::var(CHILD_STORAGE).unwrap();
    let figment = demo_figment(port)
        .merge(("log_level", level.as_str()))
        .merge(("cli_colors", false))
        .merge(("oauth2.storage", storage.as_str()));
    if std::env::var_os(CHILD_UNREDACTED).is_none() {
        twisted_oauth2::rocket::RedactingLogger::from_figment(&figment)
            .init()
            .expect("no other logger yet");
    }
    rocket::execute(async move {
        let ignited = twisted_oauth2_demo::rocket(figment)
            .ignite()
            .await
            .expect("demo ignites");
        let shutdown = ignited.shutdown();
        // The parent kills this process; stop anyway if it never does.
        rocket::tokio::spawn(async move {
            rocket::tokio::time::sleep(Duration::from_secs(120)).await;
            shutdown.notify();
        });
        let _ = ignited.launch().await;
    });
}

/// The demo in a child process, its output collected; killed on drop.
struct DemoProcess {
    child: std::process::Child,
    output: Arc<Mutex<Vec<u8>>>,
    readers: Vec<JoinHandle<()>>,
    dir: std::path::PathBuf,
    base: String,
}

impl DemoProcess {
    fn start(level: &str, redacted: bool) -> Self {
        let port = free_port();
        let dir = std::env::temp_dir().join(format!(
            "twisted-oauth2-log-{}-{level}-{redacted}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let storage = format!("sqlite://{}", dir.join("demo.db").display());
        let mut cmd = Command::new(std::env::current_exe().unwrap());
        cmd.args([
            "--exact",
            "child_serves_the_demo",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_LEVEL, level)
        .env(CHILD_PORT, port.to_string())
        .env(CHILD_STORAGE, storage)
        .env_remove("ROCKET_LOG_LEVEL")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        if !redacted {
            cmd.env(CHILD_UNREDACTED, "1");
        }
        let mut child = cmd.spawn().expect("spawn the test binary as the demo");
        let output = Arc::new(Mutex::new(Vec::new()));
        let mut readers = Vec::new();
        let streams: [Box<dyn Read + Send>; 2] = [
            Box::new(child.stdout.take().unwrap()),
            Box::new(child.stderr.take().unwrap()),
        ];
        for mut stream in streams {
            let output = output.clone();
            readers.push(std::thread::spawn(move || {
                let mut buf = [0u8; 8192];
                while let Ok(n) = stream.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    output.lock().unwrap().extend_from_slice(&buf[..n]);
                }
            }));
        }
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = child.try_wait() {
                panic!(
                    "demo child exited ({status}): {}",
                    String::from_utf8_lossy(&output.lock().unwrap())
                );
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "demo child did not listen"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        DemoProcess {
            child,
            output,
            readers,
            dir,
            base: format!("http://127.0.0.1:{port}"),
        }
    }

    /// Stops the child and returns everything it printed.
    fn finish(mut self) -> String {
        // Log lines are written before the responses they describe are sent; give the
        // last ones a moment anyway.
        std::thread::sleep(Duration::from_millis(300));
        let _ = self.child.kill();
        let _ = self.child.wait();
        for r in self.readers.drain(..) {
            let _ = r.join();
        }
        let out = String::from_utf8_lossy(&self.output.lock().unwrap()).into_owned();
        out
    }
}

impl Drop for DemoProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn json(body: &str) -> serde_json::Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("JSON ({e}): {body}"))
}

fn query_param(url: &str, name: &str) -> String {
    url::Url::parse(url)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| panic!("{name} in {url}"))
}

fn authorize_url(base: &str, client: &str, redirect: &str, verifier: &str) -> String {
    let mut u = url::Url::parse(&format!("{base}/oauth2/authorize")).unwrap();
    u.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", client)
        .append_pair("redirect_uri", redirect)
        .append_pair("scope", "VIEW_CLOCK")
        .append_pair("state", "st4te")
        .append_pair("code_challenge", &s256_challenge(verifier))
        .append_pair("code_challenge_method", "S256");
    u.into()
}

/// Runs the flow against `base`; returns every secret that went over the wire, named.
async fn full_flow(base: &str) -> Vec<(String, String)> {
    let mut secrets: Vec<(String, String)> = vec![
        ("password".into(), "wonderland".into()),
        ("client secret".into(), "app-secret".into()),
        // base64("demo-app:app-secret"), the Basic credentials as sent.
        (
            "Basic credentials".into(),
            "ZGVtby1hcHA6YXBwLXNlY3JldA==".into(),
        ),
    ];
    let http = http_client();

    // 1. Confidential client demo-app: login, consent, code, exchange with HTTP Basic.
    let verifier = "log-test-verifier-0123456789-abcdefghijklmnopqrstuvwxyz";
    secrets.push(("code_verifier".into(), verifier.into()));
    let mut b = Browser::new();
    let location = login_and_consent(
        &mut b,
        base,
        &authorize_url(base, "demo-app", REDIRECT, verifier),
        ("alice", "wonderland"),
        "allow",
    )
    .await;
    let code = query_param(&location, "code");
    secrets.push(("code (demo-app)".into(), code.clone()));
    let body = http
        .post(format!("{base}/oauth2/token"))
        .basic_auth("demo-app", Some("app-secret"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", verifier),
        ])
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let tokens = json(&body);
    let access = tokens["access_token"].as_str().expect(&body).to_owned();
    let refresh = tokens["refresh_token"].as_str().expect(&body).to_owned();
    secrets.push(("access token".into(), access.clone()));
    secrets.push(("refresh token".into(), refresh.clone()));

    // 2. Bearer call.
    let r = http
        .get(format!("{base}/clock"))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200, "bearer call");

    // 3. Refresh with client_secret_post (the secret as a form field).
    let body = http
        .post(format!("{base}/oauth2/token"))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", &refresh),
            ("client_id", "demo-app"),
            ("client_secret", "app-secret"),
        ])
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let tokens = json(&body);
    let access2 = tokens["access_token"].as_str().expect(&body).to_owned();
    let refresh2 = tokens["refresh_token"].as_str().expect(&body).to_owned();
    secrets.push(("refreshed access token".into(), access2.clone()));
    secrets.push(("rotated refresh token".into(), refresh2.clone()));

    // 4. Revoke the new refresh token (HTTP Basic).
    let r = http
        .post(format!("{base}/oauth2/revoke"))
        .basic_auth("demo-app", Some("app-secret"))
        .form(&[("token", refresh2.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200, "revocation");

    // 5. The demo's browser client: lands on /client?code=... and exchanges with PKCE.
    let verifier2 = "log-test-spa-verifier-0123456789-abcdefghijklmnopqrstuvwxyz";
    secrets.push(("code_verifier (demo-spa)".into(), verifier2.into()));
    let spa_redirect = format!("{base}/client");
    let mut b2 = Browser::new();
    let location = login_and_consent(
        &mut b2,
        base,
        &authorize_url(base, "demo-spa", &spa_redirect, verifier2),
        ("alice", "wonderland"),
        "allow",
    )
    .await;
    assert!(location.starts_with(&spa_redirect), "{location}");
    let code2 = query_param(&location, "code");
    secrets.push(("code (demo-spa)".into(), code2.clone()));
    let r = b2.get(&location).await;
    assert_eq!(r.status().as_u16(), 200, "the browser client page");
    let body = http
        .post(format!("{base}/oauth2/token"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", &code2),
            ("redirect_uri", &spa_redirect),
            ("client_id", "demo-spa"),
            ("code_verifier", verifier2),
        ])
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let access3 = json(&body)["access_token"]
        .as_str()
        .expect(&body)
        .to_owned();
    secrets.push(("access token (demo-spa)".into(), access3));

    // 6. A login form with an extra field (`client_secret`): Rocket traces every field at
    // debug, the unexpected one too, and ignores it.
    let r = http
        .post(format!("{base}/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("username=alice&password=wonderland&client_secret=app-secret")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 303, "login with an extra field");

    // Every cookie value and the consent form's hidden fields of both browsers.
    for (i, browser) in [&b, &b2].into_iter().enumerate() {
        for (name, value) in &browser.cookies {
            secrets.push((format!("cookie {name} (browser {i})"), value.clone()));
        }
    }
    secrets
}

/// The consent pages' csrf tokens and request ids are only in the HTML; collect them by
/// running the consent step by hand once more.
async fn consent_form_secrets(base: &str) -> Vec<(String, String)> {
    let mut b = Browser::new();
    let r = b
        .get(&authorize_url(
            base,
            "demo-app",
            REDIRECT,
            "another-verifier-0123456789-abcdefghijkl",
        ))
        .await;
    let login_url = absolute(base, r.headers()["location"].to_str().unwrap());
    let page = b.get(&login_url).await.text().await.unwrap();
    let next = hidden_input(&page, "next").unwrap();
    let r = b
        .post_form(
            &format!("{base}/login"),
            &[
                ("username", "alice"),
                ("password", "wonderland"),
                ("next", &next),
            ],
        )
        .await;
    let consent_url = absolute(base, r.headers()["location"].to_str().unwrap());
    let page = b.get(&consent_url).await.text().await.unwrap();
    let rid = hidden_input(&page, "request_id").unwrap();
    let csrf = hidden_input(&page, "csrf_token").unwrap();
    let r = b
        .post_form(
            &format!("{base}/consent"),
            &[
                ("request_id", &rid),
                ("csrf_token", &csrf),
                ("decision", "deny"),
            ],
        )
        .await;
    assert_eq!(r.status().as_u16(), 303, "deny redirects");
    let mut secrets = vec![
        ("consent request_id".to_owned(), rid),
        ("csrf token".to_owned(), csrf),
    ];
    for (name, value) in &b.cookies {
        secrets.push((format!("cookie {name} (consent browser)"), value.clone()));
    }
    secrets
}

/// Runs both flows against a demo child at `level`; returns (log, secrets).
async fn capture(level: &str, redacted: bool) -> (String, Vec<(String, String)>) {
    let demo = DemoProcess::start(level, redacted);
    let base = demo.base.clone();
    let mut secrets = full_flow(&base).await;
    secrets.extend(consent_form_secrets(&base).await);
    for (what, value) in &secrets {
        assert!(
            value.len() >= 8,
            "{what} is long enough to search for: {value:?}"
        );
    }
    (demo.finish(), secrets)
}

fn leaks<'a>(log: &str, secrets: &'a [(String, String)]) -> Vec<&'a str> {
    secrets
        .iter()
        .filter(|(_, v)| log.contains(v.as_str()))
        .map(|(what, _)| what.as_str())
        .collect()
}

fn assert_redacted(level: &str, log: &str, secrets: &[(String, String)]) {
    assert!(!log.trim().is_empty(), "the {level} log is empty");
    for line in [
        "POST /login",
        "POST /consent",
        "POST /oauth2/token",
        "POST /oauth2/revoke",
        "GET /clock",
        "GET /client?",
    ] {
        assert!(
            log.contains(line),
            "the {level} log shows request line {line:?}:\n{log}"
        );
    }
    let leaked = leaks(log, secrets);
    assert!(
        leaked.is_empty(),
        "the {level} log holds secrets: {leaked:?}\n{log}"
    );
}

#[rocket::async_test]
async fn normal_log_holds_no_secrets() {
    let (log, secrets) = capture("normal", true).await;
    assert_redacted("normal", &log, &secrets);
    assert!(
        log.contains("GET /consent?request_id=<redacted>"),
        "request ids in request lines are masked:\n{log}"
    );
}

#[rocket::async_test]
async fn debug_log_holds_no_secrets() {
    let (log, secrets) = capture("debug", true).await;
    if std::env::var_os("TWISTED_OAUTH2_LOG_TEST_SHOW").is_some() {
        eprintln!("{log}");
    }
    assert_redacted("debug", &log, &secrets);
    for shown in [
        "received request:",
        "sending response:",
        "\"authorization\": \"Basic <redacted>\"",
        "\"authorization\": \"Bearer <redacted>\"",
        "url-encoded field: (\"username\", \"alice\")",
        "url-encoded field: (\"password\", \"<redacted>\")",
        "code=<redacted>",
    ] {
        assert!(log.contains(shown), "the debug log shows {shown:?}:\n{log}");
    }
    assert!(
        !log.contains("SECRETS WILL BE LOGGED"),
        "no warning with the redacting logger"
    );
}

/// The control: with Rocket's own logger the same capture holds the secrets (so the two
/// tests above would fail without the redaction), and the fairing warns at launch.
///
/// Refresh tokens and code verifiers are not among them: the token and revocation
/// endpoints read their bodies themselves, so Rocket never traces those form fields.
#[rocket::async_test]
async fn rocket_logger_at_debug_leaks_and_is_warned_about() {
    let (log, secrets) = capture("debug", false).await;
    let leaked = leaks(&log, &secrets);
    let kept: Vec<&str> = secrets
        .iter()
        .map(|(w, _)| w.as_str())
        .filter(|w| !leaked.contains(w))
        .collect();
    eprintln!("Rocket's own logger at debug leaked {leaked:?}; not seen: {kept:?}");
    for what in [
        "password",
        "client secret",
        "Basic credentials",
        "code (demo-app)",
        "code (demo-spa)",
        "access token",
        "csrf token",
        "consent request_id",
    ] {
        assert!(
            leaked.contains(&what),
            "Rocket's logger prints the {what}: {leaked:?}"
        );
    }
    assert!(
        leaked.iter().any(|w| w.starts_with("cookie ")),
        "cookie values: {leaked:?}"
    );
    assert!(
        log.contains("SECRETS WILL BE LOGGED"),
        "the fairing warns at launch:\n{log}"
    );
}
