//! Protocol tests of client ID metadata documents (draft-ietf-oauth-client-id-metadata-document)
//! with documents given in code: resolution at the authorization and token endpoints, the
//! document checks, the cache, and the metadata member.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use common::*;
use twisted_oauth2::client_metadata::{
    ClientMetadataConfig, ClientMetadataFetcher, FetchError, FetchLimits, FetchedDocument,
    StaticDocuments,
};
use twisted_oauth2::config::ServerConfig;
use twisted_oauth2::endpoint::authorize::{self, AuthorizeError};
use twisted_oauth2::{AuthorizationServer, ErrorCode};

const ID: &str = "https://app.example/oauth/client.json";
const CB: &str = "http://127.0.0.1:7777/callback";

fn document(id: &str) -> serde_json::Value {
    serde_json::json!({
        "client_id": id,
        "client_name": "Example Agent",
        "redirect_uris": [CB],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "none",
        "logo_uri": "https://app.example/logo.png",
    })
}

fn cimd_config() -> ServerConfig {
    let mut cfg = config();
    cfg.client_metadata = ClientMetadataConfig {
        enabled: true,
        ..Default::default()
    };
    cfg
}

fn server_with(fetcher: Arc<dyn ClientMetadataFetcher>) -> AuthorizationServer {
    AuthorizationServer::builder(cimd_config())
        .clock(Arc::new(twisted_oauth2::clock::FixedClock::at(T0)))
        .client_metadata_fetcher(fetcher)
        .build()
        .expect("valid config")
}

fn auth_query(id: &str) -> String {
    format!(
        "response_type=code&client_id={}&redirect_uri={}&scope=a&state=s&code_challenge={}&code_challenge_method=S256",
        enc(id),
        enc(CB),
        twisted_oauth2::pkce::s256_challenge(VERIFIER)
    )
}

fn enc(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// The error page an authorization request gets (the client cannot be trusted with a
/// redirect).
async fn page_error(server: &AuthorizationServer, id: &str) -> String {
    match authorize::validate(server, auth_query(id).as_bytes(), SECURE, BINDING).await {
        Err(AuthorizeError::Page(e)) => {
            assert_eq!(e.code(), ErrorCode::InvalidRequest);
            e.description().unwrap_or_default().to_owned()
        }
        other => panic!("expected an error page, got {other:?}"),
    }
}

#[tokio::test]
async fn a_url_client_id_is_resolved_from_its_document_through_the_code_flow() {
    let server = server_with(Arc::new(StaticDocuments::new().with(ID, &document(ID))));
    let pending = authorize::validate(&server, auth_query(ID).as_bytes(), SECURE, BINDING)
        .await
        .expect("the document's client is accepted");
    assert_eq!(pending.client.id(), ID);
    assert!(pending.client.is_metadata_document());
    assert!(!pending.client.is_verified(), "consent marks it unverified");
    assert!(pending.client.is_public());
    assert_eq!(pending.client.name(), "Example Agent");
    let redirect = authorize::grant(
        &server,
        &pending.request_id,
        Some(BINDING),
        &pending.csrf_token,
        authorize::Grant {
            subject: Some("alice".into()),
            ..Default::default()
        },
    )
    .await
    .expect("granted");
    let code = url::Url::parse(redirect.location())
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .into_owned();
    let body = format!(
        "grant_type=authorization_code&code={code}&client_id={}&redirect_uri={}&code_verifier={VERIFIER}",
        enc(ID),
        enc(CB)
    );
    let t = twisted_oauth2::endpoint::token::handle(
        &server,
        twisted_oauth2::endpoint::token::TokenRequest {
            body: body.as_bytes(),
            content_type: Some(FORM),
            transport: SECURE,
            ..Default::default()
        },
    )
    .await
    .expect("tokens for the document's client");
    assert!(t.refresh_token.is_some());
}

#[tokio::test]
async fn a_document_must_name_its_own_url_as_client_id() {
    let other = "https://app.example/other.json";
    let server = server_with(Arc::new(StaticDocuments::new().with(ID, &document(other))));
    let why = page_error(&server, ID).await;
    assert!(why.contains("client_id is not its URL"), "{why}");
}

#[tokio::test]
async fn a_document_with_secrets_or_a_confidential_auth_method_is_refused() {
    let mut with_secret = document(ID);
    with_secret["client_secret"] = "s3cret".into();
    let server = server_with(Arc::new(StaticDocuments::new().with(ID, &with_secret)));
    assert!(page_error(&server, ID).await.contains("client_secret"));

    let mut confidential = document(ID);
    confidential["token_endpoint_auth_method"] = "client_secret_basic".into();
    let server = server_with(Arc::new(StaticDocuments::new().with(ID, &confidential)));
    assert!(page_error(&server, ID)
        .await
        .contains("token_endpoint_auth_method"));
}

#[tokio::test]
async fn a_document_follows_the_redirect_uri_policy_of_registration() {
    let mut doc = document(ID);
    doc["redirect_uris"] = serde_json::json!(["http://evil.example/cb"]);
    let server = server_with(Arc::new(StaticDocuments::new().with(ID, &doc)));
    let why = page_error(&server, ID).await;
    assert!(why.contains("redirect URI"), "{why}");
    let mut doc = document(ID);
    doc.as_object_mut().unwrap().remove("redirect_uris");
    let server = server_with(Arc::new(StaticDocuments::new().with(ID, &doc)));
    assert!(page_error(&server, ID).await.contains("redirect_uris"));
}

#[tokio::test]
async fn malformed_client_id_urls_are_refused_without_a_fetch() {
    let fetcher = Arc::new(Counting::new(StaticDocuments::new()));
    let server = server_with(fetcher.clone());
    for bad in [
        "https://app.example",
        "https://app.example/",
        "https://app.example/a/../client.json",
        "https://user:pw@app.example/client.json",
    ] {
        let why = page_error(&server, bad).await;
        assert!(why.contains("client_id URL"), "{bad}: {why}");
    }
    assert_eq!(fetcher.count(), 0);
}

#[tokio::test]
async fn hosts_outside_the_allow_list_are_not_fetched() {
    let fetcher = Arc::new(Counting::new(
        StaticDocuments::new().with(ID, &document(ID)),
    ));
    let mut cfg = cimd_config();
    cfg.client_metadata.allowed_hosts = vec!["agents.example".into()];
    let server = AuthorizationServer::builder(cfg)
        .client_metadata_fetcher(fetcher.clone())
        .build()
        .unwrap();
    assert!(page_error(&server, ID).await.contains("not allowed"));
    assert_eq!(fetcher.count(), 0);
}

#[tokio::test]
async fn documents_and_failures_are_cached_so_lookups_do_not_refetch() {
    let fetcher = Arc::new(Counting::new(
        StaticDocuments::new().with(ID, &document(ID)),
    ));
    let server = server_with(fetcher.clone());
    for _ in 0..3 {
        assert!(server.client(ID).await.unwrap().is_some());
    }
    assert_eq!(fetcher.count(), 1, "one fetch for three lookups");
    let missing = "https://app.example/missing.json";
    for _ in 0..3 {
        assert!(server.client(missing).await.is_err());
    }
    assert_eq!(fetcher.count(), 2, "a failed fetch is remembered too");
}

#[tokio::test]
async fn the_cache_is_bounded() {
    let fetcher = Arc::new(Counting::new(StaticDocuments::new()));
    let mut cfg = cimd_config();
    cfg.client_metadata.max_cached_documents = 10;
    // 200 documents on one host: not what the per-host limit is for.
    cfg.client_metadata.host_fetches_per_minute = 0;
    let server = AuthorizationServer::builder(cfg)
        .client_metadata_fetcher(fetcher.clone())
        .build()
        .unwrap();
    for i in 0..200 {
        let _ = server
            .client(&format!("https://app.example/c{i}.json"))
            .await;
    }
    assert_eq!(fetcher.count(), 200);
    assert!(server.client_metadata_cached() <= 10);
}

#[tokio::test]
async fn the_server_advertises_client_id_metadata_document_supported() {
    let server = server_with(Arc::new(StaticDocuments::new()));
    let m = twisted_oauth2::endpoint::metadata::authorization_server_metadata(&server, true);
    let v = serde_json::to_value(&m).unwrap();
    assert_eq!(v["client_id_metadata_document_supported"], true);
    let plain = AuthorizationServer::builder(config()).build().unwrap();
    let v = serde_json::to_value(
        twisted_oauth2::endpoint::metadata::authorization_server_metadata(&plain, true),
    )
    .unwrap();
    assert!(v.get("client_id_metadata_document_supported").is_none());
}

#[tokio::test]
async fn without_the_feature_on_a_url_client_id_is_an_ordinary_unknown_client() {
    let server = AuthorizationServer::builder(config()).build().unwrap();
    assert!(server.client(ID).await.unwrap().is_none());
}

#[test]
fn the_special_use_override_needs_the_debug_flag() {
    let mut cfg = cimd_config();
    cfg.client_metadata.allow_special_use_addresses = true;
    let e = AuthorizationServer::builder(cfg.clone())
        .client_metadata_fetcher(Arc::new(StaticDocuments::new()))
        .build()
        .unwrap_err();
    assert!(e.to_string().contains("allow_special_use_addresses"), "{e}");
    cfg.allow_insecure_request_debug = true;
    AuthorizationServer::builder(cfg)
        .client_metadata_fetcher(Arc::new(StaticDocuments::new()))
        .build()
        .expect("allowed under the debug override");
}

/// A fetcher that counts its fetches.
struct Counting {
    inner: StaticDocuments,
    n: AtomicUsize,
}

impl Counting {
    fn new(inner: StaticDocuments) -> Self {
        Counting {
            inner,
            n: AtomicUsize::new(0),
        }
    }
    fn count(&self) -> usize {
        self.n.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl ClientMetadataFetcher for Counting {
    async fn fetch(
        &self,
        url: &url::Url,
        limits: &FetchLimits,
    ) -> Result<FetchedDocument, FetchError> {
        self.n.fetch_add(1, Ordering::SeqCst);
        self.inner.fetch(url, limits).await
    }
}

/// A fetcher whose fetches wait until released.
struct Gated {
    inner: StaticDocuments,
    gate: tokio::sync::Semaphore,
    started: AtomicUsize,
}

#[async_trait]
impl ClientMetadataFetcher for Gated {
    async fn fetch(
        &self,
        url: &url::Url,
        limits: &FetchLimits,
    ) -> Result<FetchedDocument, FetchError> {
        self.started.fetch_add(1, Ordering::SeqCst);
        let _permit = self.gate.acquire().await;
        self.inner.fetch(url, limits).await
    }
}

#[tokio::test]
async fn fetches_in_flight_are_bounded_and_the_overflow_is_503_not_cached() {
    let ids: Vec<String> = (0..3)
        .map(|i| format!("https://app.example/c{i}.json"))
        .collect();
    let mut docs = StaticDocuments::new();
    for id in &ids {
        docs = docs.with(id.clone(), &document(id));
    }
    let fetcher = Arc::new(Gated {
        inner: docs,
        gate: tokio::sync::Semaphore::new(0),
        started: AtomicUsize::new(0),
    });
    let mut cfg = cimd_config();
    cfg.client_metadata.max_concurrent_fetches = 2;
    cfg.client_metadata.max_concurrent_fetches_per_host = Some(2);
    let server = Arc::new(
        AuthorizationServer::builder(cfg)
            .client_metadata_fetcher(fetcher.clone())
            .build()
            .unwrap(),
    );
    let waiting: Vec<_> = ids[..2]
        .iter()
        .map(|id| {
            let (server, id) = (server.clone(), id.clone());
            tokio::spawn(async move { server.client(&id).await })
        })
        .collect();
    while fetcher.started.load(Ordering::SeqCst) < 2 {
        tokio::task::yield_now().await;
    }
    let e = server.client(&ids[2]).await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::TemporarilyUnavailable);
    assert_eq!(e.status(), 503);
    assert_eq!(fetcher.started.load(Ordering::SeqCst), 2, "no third fetch");
    fetcher.gate.add_permits(10);
    for w in waiting {
        assert!(w.await.unwrap().unwrap().is_some());
    }
    // The refusal was not remembered: the third client resolves now.
    assert!(server.client(&ids[2]).await.unwrap().is_some());
}

/// What real hosts publish (issue "MCP 2026-07-28 and what MCP hosts do", item 7): a
/// document without `token_endpoint_auth_method` is a public client (`none`), unknown
/// members are ignored, and `application_type: native` with a loopback redirect is
/// accepted; `web` with a loopback redirect follows the web rules (https only).
#[tokio::test]
async fn a_native_document_without_an_auth_method_is_a_public_client() {
    let mut doc = document(ID);
    let o = doc.as_object_mut().unwrap();
    o.remove("token_endpoint_auth_method");
    o.insert("application_type".into(), "native".into());
    o.insert(
        "software_statement_like_thing".into(),
        serde_json::json!({"x": 1}),
    );
    let server = server_with(Arc::new(StaticDocuments::new().with(ID, &doc)));
    let client = server.client(ID).await.unwrap().unwrap();
    assert!(client.is_public());
    assert!(
        authorize::validate(&server, auth_query(ID).as_bytes(), SECURE, BINDING)
            .await
            .is_ok()
    );
    let mut doc = document(ID);
    doc["application_type"] = "web".into();
    let server = server_with(Arc::new(StaticDocuments::new().with(ID, &doc)));
    assert!(page_error(&server, ID).await.contains("redirect URI"));
}
