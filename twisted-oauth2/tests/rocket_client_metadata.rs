//! Client ID metadata documents over HTTP (Rocket local client): where strangers cannot make
//! the server fetch (HTTP Basic, `client_secret_post`, introspection, `/register/<id>`), the
//! per-caller and per-host fetch limits, one cache entry per normalised URL, and the one
//! generic answer to a document that could not be retrieved.

mod common;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use rocket::http::{ContentType, Header, Status};
use rocket::local::asynchronous::{Client, LocalResponse};
use twisted_oauth2::client_metadata::{
    ClientMetadataConfig, ClientMetadataFetcher, FetchError, FetchLimits, FetchedDocument,
    StaticDocuments,
};
use twisted_oauth2::clock::FixedClock;
use twisted_oauth2::rocket::OAuth2;
use twisted_oauth2::ServerConfig;

const ID: &str = "https://agent.example/oauth/client.json";
const CB: &str = "http://127.0.0.1:7777/callback";

fn document(id: &str) -> serde_json::Value {
    serde_json::json!({
        "client_id": id,
        "client_name": "Agent",
        "redirect_uris": [CB],
        "token_endpoint_auth_method": "none",
    })
}

/// Serves documents given in code, counting fetches; fetches of a URL in `gated` wait
/// until the gate is opened; `refuse` answers a fetch error with internal details.
struct Fetcher {
    docs: StaticDocuments,
    fetches: AtomicUsize,
    gated: Vec<String>,
    gate: tokio::sync::Semaphore,
    refuse: Option<FetchError>,
}

impl Fetcher {
    fn new(docs: StaticDocuments) -> Self {
        Fetcher {
            docs,
            fetches: AtomicUsize::new(0),
            gated: Vec::new(),
            gate: tokio::sync::Semaphore::new(0),
            refuse: None,
        }
    }
    fn count(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl ClientMetadataFetcher for Fetcher {
    async fn fetch(
        &self,
        url: &url::Url,
        limits: &FetchLimits,
    ) -> Result<FetchedDocument, FetchError> {
        self.fetches.fetch_add(1, Ordering::SeqCst);
        if self.gated.iter().any(|g| g == url.as_str()) {
            let _permit = self.gate.acquire().await;
        }
        if let Some(e) = &self.refuse {
            return Err(e.clone());
        }
        self.docs.fetch(url, limits).await
    }
}

fn cimd(cm: ClientMetadataConfig) -> ServerConfig {
    let mut cfg = common::config();
    cfg.trusted_proxy_header = Some("X-Forwarded-Proto".into());
    cfg.client_metadata = ClientMetadataConfig {
        enabled: true,
        ..cm
    };
    cfg.registration.enabled = true;
    cfg
}

async fn app(cfg: ServerConfig, fetcher: Arc<Fetcher>) -> Client {
    let figment = rocket::Config::figment()
        .merge(("log_level", "off"))
        .merge(("oauth2", cfg));
    let rocket = rocket::custom(figment).attach(
        OAuth2::fairing()
            .clock(Arc::new(FixedClock::at(common::T0)))
            .client_metadata_fetcher(fetcher)
            .on_authenticate(common::NoConsent),
    );
    Client::untracked(rocket).await.expect("valid rocket")
}

fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

fn basic(id: &str, secret: &str) -> String {
    use base64::Engine;
    let b =
        base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", enc(id), enc(secret)));
    format!("Basic {b}")
}

fn from(last: u8) -> SocketAddr {
    SocketAddr::from(([203, 0, 113, last], 40000))
}

async fn post<'c>(
    c: &'c Client,
    path: &str,
    body: &str,
    auth: Option<&str>,
    remote: SocketAddr,
) -> LocalResponse<'c> {
    let mut req = c
        .post(format!("/oauth2/{path}"))
        .header(ContentType::Form)
        .header(Header::new("X-Forwarded-Proto", "https"))
        .remote(remote)
        .body(body);
    if let Some(a) = auth {
        req = req.header(Header::new("Authorization", a.to_owned()));
    }
    req.dispatch().await
}

/// A code exchange with a made-up code: `invalid_grant` once the client is known.
fn exchange(id: &str) -> String {
    format!(
        "grant_type=authorization_code&code=nope&redirect_uri={}&code_verifier={}&client_id={}",
        enc(CB),
        common::VERIFIER,
        enc(id)
    )
}

async fn json(r: LocalResponse<'_>) -> serde_json::Value {
    serde_json::from_str(&r.into_string().await.unwrap_or_default()).expect("JSON body")
}

#[rocket::async_test]
async fn a_url_client_id_with_a_secret_fails_authentication_without_a_fetch() {
    let fetcher = Arc::new(Fetcher::new(StaticDocuments::new().with(ID, &document(ID))));
    let c = app(cimd(Default::default()), fetcher.clone()).await;
    let code = format!(
        "grant_type=authorization_code&code=nope&redirect_uri={}&code_verifier={}",
        enc(CB),
        common::VERIFIER
    );
    for path in ["token", "revoke"] {
        let body = if path == "token" { &code } else { "token=t" };
        // HTTP Basic, with or without a password: 401 with the Basic challenge.
        for secret in ["", "guess"] {
            let r = post(&c, path, body, Some(&basic(ID, secret)), from(1)).await;
            assert_eq!(r.status(), Status::Unauthorized, "{path}");
            assert!(r
                .headers()
                .get_one("WWW-Authenticate")
                .is_some_and(|h| h.starts_with("Basic")));
            assert_eq!(json(r).await["error"], "invalid_client");
        }
        // client_secret_post.
        let with_post = format!("{body}&client_id={}&client_secret=guess", enc(ID));
        let r = post(&c, path, &with_post, None, from(1)).await;
        assert_eq!(r.status(), Status::Unauthorized, "{path}");
        assert_eq!(json(r).await["error"], "invalid_client");
    }
    assert_eq!(
        fetcher.count(),
        0,
        "no document fetched for a client with a secret"
    );
    // The flow a metadata-document client uses still resolves it.
    let r = post(&c, "token", &exchange(ID), None, from(1)).await;
    assert_eq!(
        json(r).await["error"],
        "invalid_grant",
        "the client was found"
    );
    assert_eq!(fetcher.count(), 1);
}

#[rocket::async_test]
async fn introspection_and_client_management_never_fetch_a_document() {
    let fetcher = Arc::new(Fetcher::new(StaticDocuments::new().with(ID, &document(ID))));
    let c = app(cimd(Default::default()), fetcher.clone()).await;
    let r = post(
        &c,
        "introspect",
        &format!("token=t&client_id={}", enc(ID)),
        None,
        from(1),
    )
    .await;
    assert_eq!(r.status(), Status::Unauthorized);
    assert_eq!(json(r).await["error"], "invalid_client");
    let r = post(&c, "introspect", "token=t", Some(&basic(ID, "")), from(1)).await;
    assert_eq!(r.status(), Status::Unauthorized);
    for method in [rocket::http::Method::Get, rocket::http::Method::Delete] {
        let r = c
            .req(method, format!("/oauth2/register/{}", enc(ID)))
            .header(Header::new("X-Forwarded-Proto", "https"))
            .header(Header::new("Authorization", "Bearer some-token"))
            .remote(from(1))
            .dispatch()
            .await;
        assert_eq!(r.status(), Status::Unauthorized);
        assert_eq!(json(r).await["error"], "invalid_token");
    }
    assert_eq!(fetcher.count(), 0);
}

#[rocket::async_test]
async fn a_document_that_cannot_be_retrieved_gets_one_generic_error_and_the_cause_is_not_told() {
    let mut f = Fetcher::new(StaticDocuments::new());
    f.refuse = Some(FetchError::Refused(
        "vm.internal resolves to 10.1.2.3, a special-use address: private use".into(),
    ));
    let fetcher = Arc::new(f);
    let c = app(cimd(Default::default()), fetcher.clone()).await;
    let r = post(&c, "token", &exchange(ID), None, from(1)).await;
    assert_eq!(r.status(), Status::Unauthorized);
    let body = r.into_string().await.unwrap();
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["error"], "invalid_client");
    assert_eq!(
        v["error_description"],
        "the client metadata document could not be retrieved"
    );
    for secret in ["vm.internal", "10.1.2.3", "special-use"] {
        assert!(!body.contains(secret), "{body}");
    }
    // The authorization endpoint's error page says no more.
    let other = "https://agent.example/other.json";
    let page = c
        .get(format!(
            "/oauth2/authorize?response_type=code&client_id={}&redirect_uri={}&code_challenge={}&code_challenge_method=S256",
            enc(other),
            enc(CB),
            twisted_oauth2::pkce::s256_challenge(common::VERIFIER)
        ))
        .header(Header::new("X-Forwarded-Proto", "https"))
        .remote(from(1))
        .dispatch()
        .await
        .into_string()
        .await
        .unwrap();
    assert!(page.contains("could not be retrieved"), "{page}");
    for secret in ["vm.internal", "10.1.2.3", "special-use"] {
        assert!(!page.contains(secret), "{page}");
    }
    assert_eq!(fetcher.count(), 2);
}

#[rocket::async_test]
async fn a_caller_over_its_fetch_limit_gets_429_and_others_still_fetch() {
    let ids: Vec<String> = (0..4)
        .map(|i| format!("https://agent{i}.example/c.json"))
        .collect();
    let docs = ids.iter().fold(StaticDocuments::new(), |d, id| {
        d.with(id.clone(), &document(id))
    });
    let fetcher = Arc::new(Fetcher::new(docs));
    let cfg = cimd(ClientMetadataConfig {
        caller_fetches_per_minute: 2,
        ..Default::default()
    });
    let c = app(cfg, fetcher.clone()).await;
    for id in &ids[..2] {
        let r = post(&c, "token", &exchange(id), None, from(7)).await;
        assert_eq!(json(r).await["error"], "invalid_grant");
    }
    let r = post(&c, "token", &exchange(&ids[2]), None, from(7)).await;
    assert_eq!(r.status(), Status::TooManyRequests);
    let wait: u64 = r
        .headers()
        .get_one("Retry-After")
        .and_then(|v| v.parse().ok())
        .expect("Retry-After");
    assert!(wait >= 1);
    assert_eq!(json(r).await["error"], "temporarily_unavailable");
    assert_eq!(fetcher.count(), 2, "nothing fetched over the limit");
    // Documents already cached are still served to that caller.
    let r = post(&c, "token", &exchange(&ids[0]), None, from(7)).await;
    assert_eq!(json(r).await["error"], "invalid_grant");
    // Another caller fetches the refused document: the refusal was not cached.
    let r = post(&c, "token", &exchange(&ids[2]), None, from(8)).await;
    assert_eq!(json(r).await["error"], "invalid_grant");
    assert_eq!(fetcher.count(), 3);
}

#[rocket::async_test]
async fn one_host_with_slow_documents_holds_only_its_share_of_the_fetch_slots() {
    let slow: Vec<String> = (0..3)
        .map(|i| format!("https://slow.example/c{i}.json"))
        .collect();
    let fast = "https://fast.example/c.json".to_owned();
    let docs = slow
        .iter()
        .chain([&fast])
        .fold(StaticDocuments::new(), |d, id| {
            d.with(id.clone(), &document(id))
        });
    let mut f = Fetcher::new(docs);
    // The first two wait; the third would be answered at once if it were fetched.
    f.gated = slow[..2].to_vec();
    let fetcher = Arc::new(f);
    // Eight slots: a quarter, two, for one host.
    let cfg = cimd(ClientMetadataConfig {
        max_concurrent_fetches: 8,
        ..Default::default()
    });
    let c = app(cfg, fetcher.clone()).await;
    let held = async {
        let (ea, eb) = (exchange(&slow[0]), exchange(&slow[1]));
        let a = post(&c, "token", &ea, None, from(1));
        let b = post(&c, "token", &eb, None, from(2));
        let (a, b) = tokio::join!(a, b);
        (json(a).await, json(b).await)
    };
    let probe = async {
        while fetcher.count() < 2 {
            tokio::task::yield_now().await;
        }
        let third = post(&c, "token", &exchange(&slow[2]), None, from(3)).await;
        let third = (third.status(), json(third).await);
        let other = json(post(&c, "token", &exchange(&fast), None, from(4)).await).await;
        fetcher.gate.add_permits(10);
        (third, other)
    };
    let ((a, b), ((third_status, third), other)) = tokio::join!(held, probe);
    assert_eq!(third_status, Status::ServiceUnavailable);
    assert_eq!(third["error"], "temporarily_unavailable");
    assert_eq!(
        other["error"], "invalid_grant",
        "another host is fetched meanwhile"
    );
    assert_eq!(a["error"], "invalid_grant");
    assert_eq!(b["error"], "invalid_grant");
    assert_eq!(
        fetcher.count(),
        3,
        "the third slow document was not fetched"
    );
}

#[rocket::async_test]
async fn a_host_over_its_fetch_limit_gets_503_whoever_asks() {
    let ids: Vec<String> = (0..3)
        .map(|i| format!("https://busy.example/c{i}.json"))
        .collect();
    let docs = ids.iter().fold(StaticDocuments::new(), |d, id| {
        d.with(id.clone(), &document(id))
    });
    let fetcher = Arc::new(Fetcher::new(docs));
    let cfg = cimd(ClientMetadataConfig {
        host_fetches_per_minute: 2,
        ..Default::default()
    });
    let c = app(cfg, fetcher.clone()).await;
    for (i, id) in ids[..2].iter().enumerate() {
        let r = post(&c, "token", &exchange(id), None, from(i as u8)).await;
        assert_eq!(json(r).await["error"], "invalid_grant");
    }
    let r = post(&c, "token", &exchange(&ids[2]), None, from(9)).await;
    assert_eq!(r.status(), Status::ServiceUnavailable);
    assert_eq!(json(r).await["error"], "temporarily_unavailable");
    assert_eq!(fetcher.count(), 2);
}

#[rocket::async_test]
async fn spellings_of_one_url_share_one_fetch_and_only_the_documents_own_is_accepted() {
    // The document names itself with an upper-case host.
    let own = "https://Agent.example/c.json";
    let fetcher = Arc::new(Fetcher::new(
        StaticDocuments::new().with("https://agent.example/c.json", &document(own)),
    ));
    let c = app(cimd(Default::default()), fetcher.clone()).await;
    let r = post(&c, "token", &exchange(own), None, from(1)).await;
    assert_eq!(
        json(r).await["error"],
        "invalid_grant",
        "the document's own spelling"
    );
    for other in [
        "https://agent.example/c.json",
        "https://agent.example:443/c.json",
        "HTTPS://AGENT.EXAMPLE/c.json",
    ] {
        let r = post(&c, "token", &exchange(other), None, from(1)).await;
        assert_eq!(r.status(), Status::BadRequest, "{other}");
        let v = json(r).await;
        assert_eq!(v["error"], "invalid_request", "{other}");
        assert!(
            v["error_description"]
                .as_str()
                .unwrap()
                .contains("differs from the client_id of its document"),
            "{v}"
        );
    }
    assert_eq!(fetcher.count(), 1, "one fetch for every spelling");
}
