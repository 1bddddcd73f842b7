//! Writable clients through the server ([`AuthorizationServer::client_registry`]): composition
//! with the configured clients, creation time, use over HTTP, survival of a restart on
//! every durable backend; plaintext secrets never shown; `build` and `build_connected`
//! with a `storage` URL.
//!
//! PostgreSQL and Redis cases need `TWISTED_OAUTH2_TEST_POSTGRES` /
//! `TWISTED_OAUTH2_TEST_REDIS` and skip with a notice otherwise.

#![cfg_attr(
    not(all(feature = "sqlite", feature = "postgres", feature = "redis")),
    allow(dead_code, unused_imports)
)]

mod stores;

use std::sync::Arc;

use async_trait::async_trait;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use rocket::http::{ContentType, Header, Status};
use rocket::local::asynchronous::Client as HttpClient;
use twisted_oauth2::client::{Client, SecretDigest};
use twisted_oauth2::clock::FixedClock;
use twisted_oauth2::config::{ClientConfig, ServerConfig};
use twisted_oauth2::error::{ConfigError, StorageError};
use twisted_oauth2::rocket::{OAuth2, OAuth2State};
use twisted_oauth2::server::AuthorizationServer;
use twisted_oauth2::storage::memory::MemoryStore;
use twisted_oauth2::storage::{ClientRecord, ClientStore, Stores};

const PLAIN: &str = "hunter2-plaintext-secret";

fn base() -> ServerConfig {
    ServerConfig {
        issuer: "https://as.example".into(),
        trusted_proxy_header: Some("X-Forwarded-Proto".into()),
        ..Default::default()
    }
}

/// A configuration with the confidential client `app` (secret [`PLAIN`]).
fn with_app() -> ServerConfig {
    let c = ClientConfig {
        id: "app".into(),
        secret: Some(PLAIN.into()),
        grant_types: vec!["client_credentials".into()],
        ..Default::default()
    };
    let mut cfg = base();
    cfg.clients = vec![c];
    cfg
}

fn service(id: &str, secret: &str) -> Client {
    Client::builder(id)
        .secret(secret)
        .grant_type("client_credentials")
        .build()
        .unwrap()
}

fn registry(server: &AuthorizationServer) -> &Arc<dyn twisted_oauth2::storage::ClientRegistry> {
    server
        .client_registry()
        .expect("the default memory store is writable")
}

// --- composition ---------------------------------------------------------------------

#[tokio::test]
async fn configured_clients_win_and_cannot_be_changed_through_the_registry() {
    let server = AuthorizationServer::builder(with_app()).build().unwrap();
    let reg = registry(&server);
    let impostor = service("app", "other");
    assert!(matches!(
        reg.create_client(&impostor).await,
        Err(StorageError::ClientExists)
    ));
    assert!(matches!(
        reg.update_client(&impostor).await,
        Err(StorageError::ClientReadOnly)
    ));
    assert!(matches!(
        reg.delete_client("app").await,
        Err(StorageError::ClientReadOnly)
    ));
    let app = server.client("app").await.unwrap().unwrap();
    assert!(app.verify_secret(PLAIN) && !app.verify_secret("other"));
    assert_eq!(app.registered_at(), None, "configured clients have no time");
}

#[tokio::test]
async fn a_client_stored_under_a_configured_id_stays_shadowed() {
    let mem = Arc::new(MemoryStore::new());
    mem.add_client(service("app", "stored"));
    let server = AuthorizationServer::builder(with_app())
        .stores(Stores::from_backend(mem))
        .build()
        .unwrap();
    let app = server.client("app").await.unwrap().unwrap();
    assert!(
        app.verify_secret(PLAIN),
        "the configured client wins on lookup"
    );
    assert!(matches!(
        registry(&server).delete_client("app").await,
        Err(StorageError::ClientReadOnly)
    ));
}

#[tokio::test]
async fn created_clients_are_found_at_once_and_stamped_with_the_server_clock() {
    let server = AuthorizationServer::builder(base())
        .clock(Arc::new(FixedClock::at(1_700_000_000)))
        .build()
        .unwrap();
    let reg = registry(&server);
    reg.create_client(&service("dyn", "s1")).await.unwrap();
    let stored = server.client("dyn").await.unwrap().unwrap();
    assert_eq!(stored.registered_at(), Some(1_700_000_000));
    assert!(stored.verify_secret("s1"));
    assert!(matches!(
        reg.create_client(&service("dyn", "s2")).await,
        Err(StorageError::ClientExists)
    ));

    // An update without a time keeps the stored one; one with a time sets it.
    assert!(reg.update_client(&service("dyn", "s3")).await.unwrap());
    let stored = server.client("dyn").await.unwrap().unwrap();
    assert_eq!(stored.registered_at(), Some(1_700_000_000));
    assert!(stored.verify_secret("s3") && !stored.verify_secret("s1"));
    let mut r = ClientRecord::from_client(&stored);
    r.registered_at = Some(5);
    r.expires_at = Some(10);
    assert!(reg.update_client(&r.to_client().unwrap()).await.unwrap());
    let stored = server.client("dyn").await.unwrap().unwrap();
    assert_eq!(
        (stored.registered_at(), stored.expires_at()),
        (Some(5), Some(10))
    );

    assert!(!reg.update_client(&service("nobody", "x")).await.unwrap());
    assert!(server.client("nobody").await.unwrap().is_none());
    assert!(reg.delete_client("dyn").await.unwrap());
    assert!(server.client("dyn").await.unwrap().is_none());
    assert!(!reg.delete_client("dyn").await.unwrap());
}

/// A client store that is not a registry.
struct ReadOnly;

#[async_trait]
impl ClientStore for ReadOnly {
    async fn client(&self, _id: &str) -> Result<Option<Arc<Client>>, StorageError> {
        Ok(None)
    }
}

#[tokio::test]
async fn the_registry_is_the_writable_client_store_if_any() {
    let mut stores = Stores::from_backend(Arc::new(MemoryStore::new()));
    stores.clients = Arc::new(ReadOnly);
    let server = AuthorizationServer::builder(base())
        .stores(stores.clone())
        .build()
        .unwrap();
    assert!(server.client_registry().is_none());

    // A writable store given to `client_store` is the registry, behind the configured
    // clients.
    let extra = Arc::new(MemoryStore::new());
    let server = AuthorizationServer::builder(with_app())
        .stores(stores)
        .client_store(extra.clone())
        .build()
        .unwrap();
    let reg = registry(&server);
    reg.create_client(&service("dyn", "s")).await.unwrap();
    assert!(extra.client("dyn").await.unwrap().is_some());
    assert!(server.client("dyn").await.unwrap().is_some());
    assert!(matches!(
        reg.create_client(&service("app", "s")).await,
        Err(StorageError::ClientExists)
    ));

    // A read-only `client_store` shadows the backend's registry like configured clients.
    let ro_with_app = Arc::new(MemoryStore::new());
    ro_with_app.add_client(service("fixed", "f"));
    struct Wrap(Arc<MemoryStore>);
    #[async_trait]
    impl ClientStore for Wrap {
        async fn client(&self, id: &str) -> Result<Option<Arc<Client>>, StorageError> {
            self.0.client(id).await
        }
    }
    let server = AuthorizationServer::builder(base())
        .client_store(Arc::new(Wrap(ro_with_app)))
        .build()
        .unwrap();
    let reg = registry(&server);
    assert!(matches!(
        reg.create_client(&service("fixed", "s")).await,
        Err(StorageError::ClientExists)
    ));
    assert!(matches!(
        reg.delete_client("fixed").await,
        Err(StorageError::ClientReadOnly)
    ));
}

// --- over HTTP -----------------------------------------------------------------------

async fn token_status(c: &HttpClient, id: &str, secret: &str) -> Status {
    let basic = STANDARD.encode(format!("{id}:{secret}"));
    c.post("/oauth2/token")
        .header(ContentType::Form)
        .header(Header::new("X-Forwarded-Proto", "https"))
        .header(Header::new("Authorization", format!("Basic {basic}")))
        .body("grant_type=client_credentials&scope=a")
        .dispatch()
        .await
        .status()
}

#[rocket::async_test]
async fn a_client_created_at_run_time_gets_tokens_over_http_until_deleted() {
    let figment = rocket::Config::figment()
        .merge(("log_level", "off"))
        .merge(("oauth2", base()));
    let rocket = rocket::custom(figment).attach(OAuth2::fairing());
    let c = HttpClient::untracked(rocket).await.unwrap();
    let server = c
        .rocket()
        .state::<OAuth2State>()
        .unwrap()
        .server()
        .unwrap()
        .clone();
    assert_eq!(
        token_status(&c, "svc", "s3cret").await,
        Status::Unauthorized
    );
    registry(&server)
        .create_client(&service("svc", "s3cret"))
        .await
        .unwrap();
    assert_eq!(token_status(&c, "svc", "s3cret").await, Status::Ok);
    assert_eq!(token_status(&c, "svc", "wrong").await, Status::Unauthorized);
    assert!(registry(&server).delete_client("svc").await.unwrap());
    assert_eq!(
        token_status(&c, "svc", "s3cret").await,
        Status::Unauthorized
    );
}

// --- restart survival ------------------------------------------------------------------

#[cfg(feature = "testkit")]
/// Creates a client through a server on `url`, drops everything, connects again and finds
/// the client with every field.
async fn survives_restart(url: &str) {
    let id = twisted_oauth2::testkit::client_id();
    let client = twisted_oauth2::testkit::full_client(&id);
    {
        let mut cfg = base();
        cfg.storage = url.into();
        let server = AuthorizationServer::builder(cfg)
            .build_connected()
            .await
            .unwrap();
        registry(&server).create_client(&client).await.unwrap();
    }
    let mut cfg = base();
    cfg.storage = url.into();
    let server = AuthorizationServer::builder(cfg)
        .build_connected()
        .await
        .unwrap();
    let stored = server.client(&id).await.unwrap().expect("survives");
    assert_eq!(
        ClientRecord::from_client(&stored),
        ClientRecord::from_client(&client)
    );
    assert!(stored.verify_secret("kit-secret"));
    assert!(matches!(
        registry(&server).create_client(&client).await,
        Err(StorageError::ClientExists)
    ));
    assert!(registry(&server).delete_client(&id).await.unwrap());
}

#[cfg(all(feature = "sqlite", feature = "testkit"))]
#[tokio::test]
async fn sqlite_clients_survive_a_restart() {
    survives_restart(&stores::sqlite_url("clients-restart")).await;
}

#[cfg(all(feature = "postgres", feature = "testkit"))]
#[tokio::test]
async fn postgres_clients_survive_a_restart() {
    if let Some(url) = stores::postgres_url().await {
        survives_restart(&url).await;
    }
}

#[cfg(all(feature = "redis", feature = "testkit"))]
#[tokio::test]
async fn redis_clients_survive_a_restart() {
    if let Some(url) = stores::redis_url("clients-restart") {
        survives_restart(&url).await;
    }
}

// --- the cap on unused registrations ----------------------------------------------------

/// `trim_unused_clients` on a store holding only this test's clients: expired unused ones
/// go, then the oldest beyond `keep`; clients that received a token (no expiry) stay.
async fn trims_unused_oldest_first(stores: Stores) {
    let reg = stores.clients.clone().as_registry().expect("a registry");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let unused = |id: &str, at: i64| {
        Client::builder(id)
            .redirect_uri("https://client.example/cb")
            .grant_type("authorization_code")
            .expires_at(at)
            .build()
            .unwrap()
    };
    let ids: Vec<String> = (0..5)
        .map(|i| format!("u{i}-{}", rand::random::<u32>()))
        .collect();
    // At `at`, u0 has expired (Redis would already have dropped a key expired in real time,
    // so it expires shortly after now); u1..u4 expire later in that order.
    let at = now + 50;
    reg.create_client(&unused(&ids[0], now + 20)).await.unwrap();
    for (i, id) in ids.iter().enumerate().skip(1) {
        reg.create_client(&unused(id, now + 100 + i as i64))
            .await
            .unwrap();
    }
    let used = format!("used-{}", rand::random::<u32>());
    reg.create_client(&service(&used, "s")).await.unwrap();
    // u1 received a token: its expiry is cleared, so it is no longer unused.
    let first_use = reg.client(&ids[1]).await.unwrap().unwrap();
    let mut record = ClientRecord::from_client(&first_use);
    record.expires_at = None;
    reg.update_client(&record.to_client().unwrap())
        .await
        .unwrap();
    // Unused now: u2, u3, u4 (u0 expired). Keep the newest two.
    let deleted = reg.trim_unused_clients(2, at).await.unwrap();
    assert_eq!(deleted, 2, "u0 (expired) and u2 (oldest unused)");
    let present = |id: String| {
        let reg = reg.clone();
        async move { reg.client(&id).await.unwrap().is_some() }
    };
    assert!(!present(ids[0].clone()).await);
    assert!(
        present(ids[1].clone()).await,
        "a used client is never trimmed"
    );
    assert!(!present(ids[2].clone()).await);
    assert!(present(ids[3].clone()).await && present(ids[4].clone()).await);
    assert!(present(used.clone()).await);
    assert_eq!(
        reg.trim_unused_clients(2, at).await.unwrap(),
        0,
        "within the cap"
    );
    assert_eq!(reg.trim_unused_clients(0, at).await.unwrap(), 2);
    assert!(present(ids[1].clone()).await && present(used).await);
}

#[tokio::test]
async fn memory_trims_unused_registrations_oldest_first() {
    trims_unused_oldest_first(Stores::from_backend(Arc::new(MemoryStore::new()))).await;
}

#[cfg(all(feature = "sqlite", feature = "testkit"))]
#[tokio::test]
async fn sqlite_trims_unused_registrations_oldest_first() {
    let url = stores::sqlite_url("trim-unused");
    trims_unused_oldest_first(twisted_oauth2::storage::connect(&url).await.unwrap()).await;
}

#[cfg(all(feature = "postgres", feature = "testkit"))]
#[tokio::test]
async fn postgres_trims_unused_registrations_oldest_first() {
    if let Some(url) = stores::postgres_url_tagged("trim").await {
        trims_unused_oldest_first(twisted_oauth2::storage::connect(&url).await.unwrap()).await;
    }
}

#[cfg(all(feature = "redis", feature = "testkit"))]
#[tokio::test]
async fn redis_trims_unused_registrations_oldest_first() {
    if let Some(url) = stores::redis_url("trim-unused") {
        trims_unused_oldest_first(twisted_oauth2::storage::connect(&url).await.unwrap()).await;
    }
}

// --- secrets -----------------------------------------------------------------------------

#[tokio::test]
async fn no_accessor_serialization_or_debug_output_shows_a_plaintext_secret() {
    let cfg = with_app();
    assert!(!format!("{cfg:?}").contains(PLAIN));
    let before = serde_json::to_string(&cfg).unwrap();
    assert!(!before.contains(PLAIN), "{before}");
    let hex = SecretDigest::of(PLAIN).to_hex();
    assert!(before.contains(&hex), "serialized as its digest: {before}");

    let server = AuthorizationServer::builder(cfg).build().unwrap();
    let kept = &server.config().clients[0];
    assert_eq!(kept.secret, None, "the plaintext is dropped at build");
    assert_eq!(kept.secret_sha256.as_deref(), Some(hex.as_str()));
    let app = server.client("app").await.unwrap().unwrap();
    let record = ClientRecord::from_client(&app);
    for shown in [
        format!("{server:?}"),
        format!("{:?}", server.config()),
        format!("{kept:?}"),
        serde_json::to_string(server.config()).unwrap(),
        format!("{app:?}"),
        format!("{record:?}"),
        serde_json::to_string(&record).unwrap(),
    ] {
        assert!(!shown.contains(PLAIN), "{shown}");
    }
    assert!(app.verify_secret(PLAIN));
}

#[test]
fn a_serialized_configuration_authenticates_the_same_clients() {
    let json = serde_json::to_string(&with_app()).unwrap();
    let back: ServerConfig = serde_json::from_str(&json).unwrap();
    assert_eq!(back.clients[0].secret, None);
    let server = AuthorizationServer::builder(back).build().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let app = rt
        .block_on(server.client("app"))
        .unwrap()
        .expect("still configured");
    assert!(app.verify_secret(PLAIN));

    // `secret` and `secret_sha256` together stay refused, without showing the secret.
    let mut both = with_app();
    both.clients[0].secret_sha256 = Some(SecretDigest::of("x").to_hex());
    let json = serde_json::to_string(&both).unwrap();
    assert!(!json.contains(PLAIN), "{json}");
    let back: ServerConfig = serde_json::from_str(&json).unwrap();
    let e = AuthorizationServer::builder(back).build().unwrap_err();
    assert!(e.to_string().contains("not both"), "{e}");
}

// --- build and build_connected --------------------------------------------------------------

#[test]
fn build_refuses_a_storage_url_it_cannot_connect() {
    for url in [
        "sqlite://oauth2.db",
        "postgres://db/x",
        "redis://127.0.0.1:6379",
    ] {
        let mut cfg = base();
        cfg.storage = url.into();
        let e = AuthorizationServer::builder(cfg).build().unwrap_err();
        let msg = e.to_string();
        assert!(
            matches!(e, ConfigError::Setting { key: "storage", .. }),
            "{msg}"
        );
        assert!(
            msg.contains("oauth2.storage")
                && msg.contains("build_connected")
                && msg.contains("storage::connect"),
            "{msg}"
        );
    }
    // Stores given in code are used whatever the URL says.
    let mut cfg = base();
    cfg.storage = "sqlite://oauth2.db".into();
    AuthorizationServer::builder(cfg)
        .stores(Stores::from_backend(Arc::new(MemoryStore::new())))
        .build()
        .unwrap();
    for memory in ["memory", " memory "] {
        let mut cfg = base();
        cfg.storage = memory.into();
        AuthorizationServer::builder(cfg).build().unwrap();
    }
}

#[tokio::test]
async fn build_connected_opens_the_storage_url_or_says_why_not() {
    let server = AuthorizationServer::builder(base())
        .build_connected()
        .await
        .unwrap();
    assert!(server.client_registry().is_some());

    let mut cfg = base();
    cfg.storage = "mysql://db/x".into();
    let e = AuthorizationServer::builder(cfg)
        .build_connected()
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("oauth2.storage") && e.contains("unknown storage URL scheme"),
        "{e}"
    );

    // An invalid configuration is refused before anything is opened.
    let mut cfg = base();
    cfg.issuer = String::new();
    cfg.storage = "redis://:pw@127.0.0.1:1/0".into();
    let e = AuthorizationServer::builder(cfg)
        .build_connected()
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("oauth2.issuer"), "{e}");
}

#[cfg(feature = "redis")]
#[tokio::test]
async fn build_connected_names_an_unreachable_store_without_its_credentials() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut cfg = base();
    cfg.storage = format!("redis://:s3cretpw@127.0.0.1:{port}/0");
    let e = AuthorizationServer::builder(cfg)
        .build_connected()
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("oauth2.storage") && e.contains(&format!("redis (127.0.0.1:{port}/0)")),
        "{e}"
    );
    assert!(!e.contains("s3cretpw"), "{e}");
}

#[cfg(feature = "sqlite")]
#[tokio::test]
async fn build_connected_uses_a_sqlite_file() {
    let url = stores::sqlite_url("build-connected");
    let mut cfg = base();
    cfg.storage = url;
    let server = AuthorizationServer::builder(cfg)
        .build_connected()
        .await
        .unwrap();
    registry(&server)
        .create_client(&service("svc", "s"))
        .await
        .unwrap();
    assert!(server.client("svc").await.unwrap().is_some());
}
