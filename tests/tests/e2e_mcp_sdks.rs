//! End to end with unmodified real MCP clients: the official TypeScript SDK
//! (`@modelcontextprotocol/sdk`, `tests/mcp/node/e2e.mjs`) and the Python SDK (PyPI `mcp`,
//! `tests/mcp/python/e2e.py`) connect to the demo's `POST /mcp` with no pre-registration:
//! the 401 challenge, protected resource and authorization server metadata, dynamic
//! registration, the code flow with PKCE and `resource` through the demo's login and consent
//! pages, tools/list and tools/call of the clock, and a refresh (after revoking the access
//! token for TypeScript, after its expiry for Python). The two SDKs cover both MCP eras the
//! demo serves: TypeScript (1.32) opens with `initialize` and speaks 2025-11-25; Python (2.3)
//! probes `server/discover` at 2026-07-28, the stateless revision, and must stay there (its
//! probe answered, no `initialize` fallback, every POST carrying the 2026-07-28 headers). The demo runs on a loopback port with
//! a fresh SQLite file and its issuer set to match.
//!
//! The same with a client ID metadata document instead of registration: each SDK is given an
//! `https` client metadata URL (both SDKs insist on `https` with a path), the document is served
//! on loopback with a self-signed certificate, and the demo fetches it under the debug override
//! for special-use addresses, trusting that certificate.
//!
//! Skips with a notice when Node.js and the SDK (`cd tests/mcp/node && npm ci`) or the
//! Python venv (`python3 -m venv target/mcp-venv && target/mcp-venv/bin/pip install -r
//! tests/mcp/python/requirements.txt`) are missing, unless `TWISTED_OAUTH2_REQUIRE_MCP=1`
//! (set by `.ci/run`, which installs them).

mod common;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use rocket::config::TlsConfig;
use rocket::figment::Figment;
use rocket::http::ContentType;
use rocket::State;
use serde_json::json;

/// The most one client run may take (each needs a few seconds).
const CLIENT_TIMEOUT: Duration = Duration::from_secs(120);

/// Access-token lifetime of the Python run's demo: the SDK refreshes once it has passed.
const SHORT_ACCESS_TOKEN_LIFETIME: u64 = 3;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Skips (returns `true`) when `missing` names a missing tool, or panics when the MCP tests
/// are required.
fn skip(client: &str, missing: Option<String>) -> bool {
    let Some(why) = missing else { return false };
    if std::env::var("TWISTED_OAUTH2_REQUIRE_MCP").is_ok_and(|v| v == "1") {
        panic!("the {client} MCP SDK test is required but {why}");
    }
    eprintln!("skipping the {client} MCP SDK test: {why}");
    true
}

fn missing_node(dir: &Path) -> Option<String> {
    if Command::new("node").arg("--version").output().is_err() {
        return Some("node not found".into());
    }
    if !dir
        .join("node_modules/@modelcontextprotocol/sdk/package.json")
        .exists()
    {
        return Some(
            "@modelcontextprotocol/sdk not installed (cd tests/mcp/node && npm ci)".into(),
        );
    }
    None
}

fn missing_python(python: &Path) -> Option<String> {
    let ok = Command::new(python)
        .args(["-c", "import mcp.client.auth, mcp.client.streamable_http"])
        .output()
        .is_ok_and(|o| o.status.success());
    (!ok).then(|| {
        format!(
            "{} cannot import mcp (python3 -m venv target/mcp-venv && \
             target/mcp-venv/bin/pip install -r tests/mcp/python/requirements.txt)",
            python.display()
        )
    })
}

/// A fresh SQLite database file for one test's demo.
struct FreshDb(PathBuf);

impl FreshDb {
    fn new(name: &str) -> Self {
        let path =
            std::env::temp_dir().join(format!("twisted-oauth2-{name}-{}.db", std::process::id()));
        let db = FreshDb(path);
        db.remove();
        db
    }
    fn url(&self) -> String {
        format!("sqlite://{}", self.0.display())
    }
    fn remove(&self) {
        for ext in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{ext}", self.0.display()));
        }
    }
}

impl Drop for FreshDb {
    fn drop(&mut self) {
        self.remove();
    }
}

/// Runs `cmd` to its end (killed after `CLIENT_TIMEOUT`) off the async runtime; returns
/// whether it succeeded and its stdout and stderr.
async fn run(mut cmd: Command) -> (bool, String, String) {
    rocket::tokio::task::spawn_blocking(move || {
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the client starts");
        let mut out = child.stdout.take().unwrap();
        let mut err = child.stderr.take().unwrap();
        let out_reader = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = out.read_to_string(&mut s);
            s
        });
        let err_reader = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = err.read_to_string(&mut s);
            s
        });
        let deadline = Instant::now() + CLIENT_TIMEOUT;
        let status = loop {
            match child.try_wait().expect("wait for the client") {
                Some(status) => break Some(status),
                None if Instant::now() > deadline => {
                    let _ = child.kill();
                    let _ = child.wait();
                    break None;
                }
                None => std::thread::sleep(Duration::from_millis(50)),
            }
        };
        let stdout = out_reader.join().unwrap_or_default();
        let mut stderr = err_reader.join().unwrap_or_default();
        if status.is_none() {
            stderr.push_str(&format!("\n(killed after {CLIENT_TIMEOUT:?})"));
        }
        (status.is_some_and(|s| s.success()), stdout, stderr)
    })
    .await
    .expect("join")
}

/// The redirect URIs and names the clients use (`tests/mcp/node/e2e.mjs`, `tests/mcp/python/e2e.py`).
const TYPESCRIPT_CLIENT: (&str, &str) = (
    "http://127.0.0.1:53682/callback",
    "twisted-oauth2 e2e (MCP TypeScript SDK)",
);
const PYTHON_CLIENT: (&str, &str) = (
    "http://127.0.0.1:53683/callback",
    "twisted-oauth2 e2e (MCP Python SDK)",
);

/// The client metadata documents, by file name, and how often they were fetched.
struct Documents {
    docs: std::collections::BTreeMap<String, String>,
    fetched: Arc<AtomicUsize>,
}

#[rocket::get("/clients/<name>")]
fn client_document(name: &str, docs: &State<Documents>) -> Option<(ContentType, String)> {
    let doc = docs.docs.get(name)?;
    docs.fetched.fetch_add(1, Ordering::SeqCst);
    Some((ContentType::JSON, doc.clone()))
}

/// Client metadata documents served over https on loopback, and the PEM file of the
/// self-signed certificate that serves them (for the demo's `root_certificates`).
struct ClientHost {
    base: String,
    cert_file: PathBuf,
    fetched: Arc<AtomicUsize>,
    _server: Demo,
}

impl Drop for ClientHost {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.cert_file);
    }
}

impl ClientHost {
    /// The `client_id` (and URL) of the document named `name`.
    fn url(&self, name: &str) -> String {
        format!("{}/clients/{name}", self.base)
    }
}

/// Serves one metadata document per `(file name, (redirect URI, client name))`.
async fn serve_client_documents(clients: &[(&str, (&str, &str))]) -> ClientHost {
    let ck = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into()]).expect("certificate");
    let (cert, key) = (ck.cert.pem(), ck.signing_key.serialize_pem());
    let port = free_port();
    let cert_file = std::env::temp_dir().join(format!(
        "twisted-oauth2-mcp-client-{}-{port}.pem",
        std::process::id()
    ));
    std::fs::write(&cert_file, &cert).expect("certificate file");
    let base = format!("https://127.0.0.1:{port}");
    let docs = clients
        .iter()
        .map(|(name, (redirect_uri, client_name))| {
            let doc = json!({
                "client_id": format!("{base}/clients/{name}"),
                "client_name": client_name,
                "redirect_uris": [redirect_uri],
                "grant_types": ["authorization_code", "refresh_token"],
                "response_types": ["code"],
                "token_endpoint_auth_method": "none",
            });
            (name.to_string(), doc.to_string())
        })
        .collect();
    let figment = loopback_figment(port).merge((
        "tls",
        TlsConfig::from_bytes(cert.as_bytes(), key.as_bytes()),
    ));
    let fetched = Arc::new(AtomicUsize::new(0));
    let ignited = rocket::custom(figment)
        .manage(Documents {
            docs,
            fetched: fetched.clone(),
        })
        .mount("/", rocket::routes![client_document])
        .ignite()
        .await
        .expect("the client document server ignites");
    ClientHost {
        base,
        cert_file,
        fetched,
        _server: launch(ignited, port).await,
    }
}

/// The demo's figment with client ID metadata documents on, fetched from loopback (the debug
/// override) over https trusting `host`'s certificate.
fn with_client_metadata(figment: Figment, host: &ClientHost) -> Figment {
    figment
        .merge(("oauth2.client_metadata.enabled", true))
        .merge(("oauth2.client_metadata.allow_special_use_addresses", true))
        .merge((
            "oauth2.client_metadata.root_certificates",
            [host.cert_file.display().to_string()],
        ))
}

#[rocket::async_test]
async fn typescript_sdk_client_registers_authorizes_calls_the_clock_and_refreshes() {
    let dir = repo().join("tests/mcp/node");
    if skip("TypeScript", missing_node(&dir)) {
        return;
    }
    let db = FreshDb::new("mcp-typescript");
    let demo = serve_demo(demo_figment(free_port()).merge(("oauth2.storage", db.url()))).await;
    let mut cmd = Command::new("node");
    cmd.arg(dir.join("e2e.mjs"))
        .arg(&demo.base)
        .current_dir(&dir);
    let (ok, stdout, stderr) = run(cmd).await;
    assert!(ok, "the TypeScript SDK flow failed:\n{stdout}\n{stderr}");
    for step in [
        "ok: the SDK registered itself (RFC 7591)",
        "ok: resource is the protected resource metadata's resource",
        "ok: tools/list offers get_time",
        "ok: the SDK refreshed its tokens",
        "ok: initialize negotiated 2025-11-25",
        "mcp typescript sdk: all steps passed",
    ] {
        assert!(stdout.contains(step), "{step}:\n{stdout}\n{stderr}");
    }
}

#[rocket::async_test]
async fn python_sdk_client_registers_authorizes_calls_the_clock_and_refreshes_after_expiry() {
    let python = repo().join("target/mcp-venv/bin/python");
    if skip("Python", missing_python(&python)) {
        return;
    }
    let db = FreshDb::new("mcp-python");
    let figment = demo_figment(free_port())
        .merge(("oauth2.storage", db.url()))
        .merge(("oauth2.access_token_lifetime", SHORT_ACCESS_TOKEN_LIFETIME));
    let demo = serve_demo(figment).await;
    let mut cmd = Command::new(&python);
    cmd.arg(repo().join("tests/mcp/python/e2e.py"))
        .arg(&demo.base)
        .arg(SHORT_ACCESS_TOKEN_LIFETIME.to_string())
        .env("PYTHONDONTWRITEBYTECODE", "1");
    let (ok, stdout, stderr) = run(cmd).await;
    assert!(ok, "the Python SDK flow failed:\n{stdout}\n{stderr}");
    for step in [
        "ok: the SDK registered itself (RFC 7591)",
        "ok: the server/discover probe was answered 200",
        "ok: no initialize was sent (no fallback to the handshake era)",
        "ok: the client stayed on 2026-07-28",
        "ok: resource names the protected resource",
        "ok: tools/list offers get_time",
        "ok: the SDK refreshed its tokens",
        "mcp python sdk: all steps passed",
    ] {
        assert!(stdout.contains(step), "{step}:\n{stdout}\n{stderr}");
    }
}

#[rocket::async_test]
async fn typescript_sdk_client_with_a_client_metadata_document_authorizes_without_registering() {
    let dir = repo().join("tests/mcp/node");
    if skip("TypeScript", missing_node(&dir)) {
        return;
    }
    let host = serve_client_documents(&[("typescript.json", TYPESCRIPT_CLIENT)]).await;
    let db = FreshDb::new("mcp-typescript-cimd");
    let figment = demo_figment(free_port()).merge(("oauth2.storage", db.url()));
    let demo = serve_demo(with_client_metadata(figment, &host)).await;
    let mut cmd = Command::new("node");
    cmd.arg(dir.join("e2e.mjs"))
        .arg(&demo.base)
        .arg(host.url("typescript.json"))
        .current_dir(&dir);
    let (ok, stdout, stderr) = run(cmd).await;
    assert!(
        ok,
        "the TypeScript SDK flow with a client metadata document failed:\n{stdout}\n{stderr}"
    );
    for step in [
        "ok: the demo advertises client_id_metadata_document_supported",
        "ok: the SDK did not register: it uses its client metadata document",
        "ok: the client_id is the metadata document URL",
        "ok: the SDK refreshed its tokens",
        "ok: initialize negotiated 2025-11-25",
        "mcp typescript sdk: all steps passed (client metadata document)",
    ] {
        assert!(stdout.contains(step), "{step}:\n{stdout}\n{stderr}");
    }
    assert!(
        host.fetched.load(Ordering::SeqCst) >= 1,
        "the demo fetched the client's metadata document"
    );
}

#[rocket::async_test]
async fn python_sdk_client_with_a_client_metadata_document_authorizes_without_registering() {
    let python = repo().join("target/mcp-venv/bin/python");
    if skip("Python", missing_python(&python)) {
        return;
    }
    let host = serve_client_documents(&[("python.json", PYTHON_CLIENT)]).await;
    let db = FreshDb::new("mcp-python-cimd");
    let figment = demo_figment(free_port())
        .merge(("oauth2.storage", db.url()))
        .merge(("oauth2.access_token_lifetime", SHORT_ACCESS_TOKEN_LIFETIME));
    let demo = serve_demo(with_client_metadata(figment, &host)).await;
    let mut cmd = Command::new(&python);
    cmd.arg(repo().join("tests/mcp/python/e2e.py"))
        .arg(&demo.base)
        .arg(SHORT_ACCESS_TOKEN_LIFETIME.to_string())
        .arg(host.url("python.json"))
        .env("PYTHONDONTWRITEBYTECODE", "1");
    let (ok, stdout, stderr) = run(cmd).await;
    assert!(
        ok,
        "the Python SDK flow with a client metadata document failed:\n{stdout}\n{stderr}"
    );
    for step in [
        "ok: the demo advertises client_id_metadata_document_supported",
        "ok: the SDK did not register: it uses its client metadata document",
        "ok: the client_id is the metadata document URL",
        "ok: the client stayed on 2026-07-28",
        "ok: the SDK refreshed its tokens",
        "mcp python sdk: all steps passed (client metadata document)",
    ] {
        assert!(stdout.contains(step), "{step}:\n{stdout}\n{stderr}");
    }
    assert!(
        host.fetched.load(Ordering::SeqCst) >= 1,
        "the demo fetched the client's metadata document"
    );
}
