//! The HTTPS fetcher of client ID metadata documents against a real TLS server on loopback:
//! the fetch limits (no redirect, 200 JSON only (or `text/plain` holding a JSON object), size, time) under the debug override, the
//! cache lifetime from `Cache-Control`, and the refusal of special-use addresses without it.

mod common;

use common::*;
use rocket::config::TlsConfig;
use rocket::http::{ContentType, Header};
use rocket::response::Redirect;
use rocket::{get, routes, Responder};
use twisted_oauth2::client_metadata::{
    ClientMetadataConfig, ClientMetadataFetcher, FetchError, FetchLimits, HttpFetcher,
};

#[derive(Responder)]
#[response(content_type = "json")]
struct Doc(String, Header<'static>);

#[get("/client.json")]
fn client_json() -> Doc {
    Doc(
        r#"{"client_id":"x"}"#.into(),
        Header::new("Cache-Control", "public, max-age=600"),
    )
}

#[get("/redirect")]
fn redirect() -> Redirect {
    Redirect::to("/client.json")
}

#[get("/html")]
fn html() -> (ContentType, &'static str) {
    (ContentType::HTML, "<html></html>")
}

/// What raw GitHub and some static hosts do with a `.json` file.
#[get("/plain.json")]
fn plain_json() -> (ContentType, &'static str) {
    (ContentType::Plain, r#"{"client_id":"x"}"#)
}

#[get("/plain.txt")]
fn plain_text() -> (ContentType, &'static str) {
    (ContentType::Plain, "client_id: x")
}

#[get("/vendor.json")]
fn vendor_json() -> (ContentType, &'static str) {
    (
        ContentType::new("application", "vnd.example+json"),
        r#"{"client_id":"x"}"#,
    )
}

#[get("/big")]
fn big() -> (ContentType, String) {
    (
        ContentType::JSON,
        format!("{{\"pad\":\"{}\"}}", "a".repeat(20_000)),
    )
}

#[get("/slow")]
async fn slow() -> (ContentType, &'static str) {
    rocket::tokio::time::sleep(std::time::Duration::from_secs(4)).await;
    (ContentType::JSON, "{}")
}

struct Server {
    _demo: Demo,
    port: u16,
    pem_path: std::path::PathBuf,
}

async fn tls_server() -> Server {
    let ck = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into(), "localhost".into()])
        .expect("certificate");
    let (cert, key) = (ck.cert.pem(), ck.signing_key.serialize_pem());
    let pem_path = std::env::temp_dir().join(format!(
        "twisted-oauth2-cimd-ca-{}-{:x}.pem",
        std::process::id(),
        rand_suffix()
    ));
    std::fs::write(&pem_path, &cert).unwrap();
    let port = free_port();
    let figment = loopback_figment(port).merge((
        "tls",
        TlsConfig::from_bytes(cert.as_bytes(), key.as_bytes()),
    ));
    let ignited = rocket::custom(figment)
        .mount(
            "/",
            routes![
                client_json,
                redirect,
                html,
                plain_json,
                plain_text,
                vendor_json,
                big,
                slow
            ],
        )
        .ignite()
        .await
        .unwrap();
    Server {
        _demo: launch(ignited, port).await,
        port,
        pem_path,
    }
}

fn rand_suffix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos() as u64)
        .unwrap_or(0)
}

fn debug_config(pem: &std::path::Path) -> ClientMetadataConfig {
    ClientMetadataConfig {
        enabled: true,
        allow_special_use_addresses: true,
        root_certificates: vec![pem.display().to_string()],
        fetch_timeout: 1,
        max_document_size: 5120,
        ..Default::default()
    }
}

fn limits(cfg: &ClientMetadataConfig) -> FetchLimits {
    FetchLimits::from_config(cfg)
}

async fn fetch(cfg: &ClientMetadataConfig, url: &str) -> Result<Vec<u8>, FetchError> {
    let f = HttpFetcher::new(cfg).expect("fetcher");
    f.fetch(&url::Url::parse(url).unwrap(), &limits(cfg))
        .await
        .map(|d| d.body)
}

#[rocket::async_test]
async fn a_json_document_is_fetched_over_tls_with_its_cache_lifetime() {
    let s = tls_server().await;
    let cfg = debug_config(&s.pem_path);
    let f = HttpFetcher::new(&cfg).unwrap();
    let url = url::Url::parse(&format!("https://127.0.0.1:{}/client.json", s.port)).unwrap();
    let d = f.fetch(&url, &limits(&cfg)).await.expect("fetched");
    assert_eq!(d.body, br#"{"client_id":"x"}"#);
    assert_eq!(d.max_age, Some(600));
}

#[rocket::async_test]
async fn redirects_non_200_non_json_oversize_and_slow_answers_are_refused() {
    let s = tls_server().await;
    let cfg = debug_config(&s.pem_path);
    let base = format!("https://127.0.0.1:{}", s.port);
    assert_eq!(
        fetch(&cfg, &format!("{base}/redirect")).await,
        Err(FetchError::Redirect)
    );
    assert_eq!(
        fetch(&cfg, &format!("{base}/missing")).await,
        Err(FetchError::Status(404))
    );
    assert_eq!(
        fetch(&cfg, &format!("{base}/html")).await,
        Err(FetchError::NotJson)
    );
    assert_eq!(
        fetch(&cfg, &format!("{base}/big")).await,
        Err(FetchError::TooLarge(5120))
    );
    assert_eq!(
        fetch(&cfg, &format!("{base}/slow")).await,
        Err(FetchError::Timeout)
    );
}

/// `text/plain` (raw GitHub, some static hosts) is accepted when the body is a JSON object,
/// as is a `+json` type; a text page served as `text/plain` is refused as not JSON.
#[rocket::async_test]
async fn a_document_served_as_text_plain_is_accepted_only_when_it_is_a_json_object() {
    let s = tls_server().await;
    let cfg = debug_config(&s.pem_path);
    let base = format!("https://127.0.0.1:{}", s.port);
    assert_eq!(
        fetch(&cfg, &format!("{base}/plain.json")).await.as_deref(),
        Ok(&br#"{"client_id":"x"}"#[..])
    );
    assert_eq!(
        fetch(&cfg, &format!("{base}/vendor.json")).await.as_deref(),
        Ok(&br#"{"client_id":"x"}"#[..])
    );
    assert_eq!(
        fetch(&cfg, &format!("{base}/plain.txt")).await,
        Err(FetchError::NotJson)
    );
}

#[rocket::async_test]
async fn an_untrusted_certificate_is_a_network_error() {
    let s = tls_server().await;
    let cfg = ClientMetadataConfig {
        root_certificates: Vec::new(),
        ..debug_config(&s.pem_path)
    };
    let r = fetch(&cfg, &format!("https://127.0.0.1:{}/client.json", s.port)).await;
    assert!(matches!(r, Err(FetchError::Network(_))), "{r:?}");
}

#[rocket::async_test]
async fn special_use_addresses_are_refused_without_the_debug_override() {
    let s = tls_server().await;
    let cfg = ClientMetadataConfig {
        allow_special_use_addresses: false,
        ..debug_config(&s.pem_path)
    };
    for url in [
        format!("https://127.0.0.1:{}/client.json", s.port),
        format!("https://localhost:{}/client.json", s.port),
        "https://169.254.169.254/latest/meta-data".to_owned(),
        "https://10.0.0.1/client.json".to_owned(),
        "https://[::1]/client.json".to_owned(),
        "https://[::ffff:127.0.0.1]/client.json".to_owned(),
        // IPv6 forms embedding a loopback or private IPv4 address: IPv4-compatible,
        // NAT64, IPv4-translated, 6to4, Teredo (client 127.0.0.1).
        "https://[::127.0.0.1]/client.json".to_owned(),
        "https://[64:ff9b::7f00:1]/client.json".to_owned(),
        "https://[::ffff:0:7f00:1]/client.json".to_owned(),
        "https://[2002:7f00:1::1]/client.json".to_owned(),
        "https://[2001:0:808:808:0:0:80ff:fffe]/client.json".to_owned(),
        // Other special-purpose blocks: AS112, benchmarking, documentation, SRv6 SIDs.
        "https://192.31.196.1/client.json".to_owned(),
        "https://[2001:2::1]/client.json".to_owned(),
        "https://[3fff::1]/client.json".to_owned(),
        "https://[5f00::1]/client.json".to_owned(),
    ] {
        let r = fetch(&cfg, &url).await;
        assert!(matches!(r, Err(FetchError::Refused(_))), "{url}: {r:?}");
    }
}

#[rocket::async_test]
async fn a_missing_root_certificate_file_is_a_config_error() {
    let cfg = ClientMetadataConfig {
        root_certificates: vec!["/nonexistent/ca.pem".into()],
        ..Default::default()
    };
    let e = HttpFetcher::new(&cfg).unwrap_err();
    assert!(e.to_string().contains("root_certificates"), "{e}");
}
