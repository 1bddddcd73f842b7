//! Deleting a client ends its tokens, over HTTP, on every backend (memory, SQLite, and
//! PostgreSQL / Redis when `TWISTED_OAUTH2_TEST_POSTGRES` / `TWISTED_OAUTH2_TEST_REDIS` are
//! set): a client registered at `/oauth2/register` gets an access and a refresh token, its
//! registration is deleted (RFC 7592 §2.3), and then the access token is refused at a
//! protected route (401 `invalid_token`) and inactive at introspection, the refresh token is
//! refused at the token endpoint and inactive at introspection, and the store holds neither.
//!
//! And a client removed from the configuration: a SQLite-backed server restarted without a
//! configured client refuses the tokens that client held.
//!
//! `cargo test -p twisted-oauth2 --features sqlite,postgres,redis --test client_deletion`

#![cfg_attr(
    not(all(feature = "sqlite", feature = "postgres", feature = "redis")),
    allow(dead_code, unused_imports)
)]

mod common;

mod stores;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use rocket::http::{ContentType, Header, Status};
use rocket::local::asynchronous::{Client, LocalResponse};
use rocket::{get, routes};
use serde_json::{json, Value};
use twisted_oauth2::config::{ClientConfig, RegistrationConfig, ServerConfig};
use twisted_oauth2::pkce::{s256_challenge, ChallengeMethod, CodeChallenge};
use twisted_oauth2::rocket::{OAuth2, OAuth2State};
use twisted_oauth2::storage::{CodeRecord, GrantId, RefreshState, Stores};
use twisted_oauth2::token::TokenDigest;
use twisted_oauth2::TokenInfo;

const CALLBACK: &str = "http://127.0.0.1/cb";

#[get("/me")]
fn me(info: TokenInfo) -> String {
    info.client_id.to_string()
}

/// A confidential client allowed to introspect (the resource server's credentials).
fn resource_server() -> ClientConfig {
    ClientConfig {
        id: "rs".into(),
        secret: Some("rs-secret".into()),
        grant_types: vec!["client_credentials".into()],
        scopes: Some(vec!["a".into()]),
        introspect: true,
        ..Default::default()
    }
}

/// A configured public client with a code flow, for the configuration-removal test.
fn cli() -> ClientConfig {
    ClientConfig {
        id: "cli".into(),
        redirect_uris: vec![CALLBACK.into()],
        grant_types: vec!["authorization_code".into(), "refresh_token".into()],
        ..Default::default()
    }
}

fn config(storage: &str, clients: Vec<ClientConfig>) -> ServerConfig {
    let mut cfg = ServerConfig {
        issuer: "https://as.example".into(),
        trusted_proxy_header: Some("X-Forwarded-Proto".into()),
        storage: storage.into(),
        grant_types: vec![
            "authorization_code".into(),
            "refresh_token".into(),
            "client_credentials".into(),
        ],
        registration: RegistrationConfig {
            enabled: true,
            ..Default::default()
        },
        ..Default::default()
    };
    // Test keys in a shared Redis expire within the hour.
    cfg.refresh_token_lifetime = 3600;
    cfg.clients = clients;
    cfg
}

async fn server(cfg: ServerConfig) -> Client {
    let figment = rocket::Config::figment()
        .merge(("log_level", "off"))
        .merge(("oauth2", cfg));
    let rocket = rocket::custom(figment)
        .attach(OAuth2::fairing().on_authenticate(common::NoConsent))
        .mount("/", routes![me]);
    match Client::untracked(rocket).await {
        Ok(c) => c,
        Err(e) => panic!("server did not launch: {e}"),
    }
}

fn stores_of(c: &Client) -> Stores {
    match c.rocket().state::<OAuth2State>() {
        Some(s) => s
            .server()
            .expect("an authorization server")
            .stores()
            .clone(),
        None => panic!("no OAuth2 state"),
    }
}

const HTTPS: (&str, &str) = ("X-Forwarded-Proto", "https");

async fn json(r: LocalResponse<'_>) -> (Status, Value) {
    let status = r.status();
    let body = r.into_string().await.unwrap_or_default();
    match serde_json::from_str(&body) {
        Ok(v) => (status, v),
        Err(_) => panic!("expected a JSON body, got {status}: {body:?}"),
    }
}

async fn token_req(c: &Client, body: &str) -> (Status, Value) {
    json(
        c.post("/oauth2/token")
            .header(ContentType::Form)
            .header(Header::new(HTTPS.0, HTTPS.1))
            .body(body)
            .dispatch()
            .await,
    )
    .await
}

/// A code for the public client `client_id` (PKCE with [`common::VERIFIER`]) put straight
/// into the store, redeemed at the token endpoint: (access token, refresh token).
async fn code_flow(c: &Client, client_id: &str) -> (String, String) {
    let code = format!("code-{:032x}", rand::random::<u128>());
    let record = CodeRecord::new(
        client_id,
        CALLBACK,
        twisted_oauth2::Scope::from_tokens(["a"]).unwrap_or_default(),
        GrantId::random(),
        common::unix() + 60,
    )
    .with_redirect_uri_sent(false)
    .with_subject("alice")
    .with_challenge(CodeChallenge {
        challenge: s256_challenge(common::VERIFIER),
        method: ChallengeMethod::S256,
    });
    if let Err(e) = stores_of(c)
        .codes
        .put_code(&TokenDigest::of(&code), &record)
        .await
    {
        panic!("put_code: {e}");
    }
    let (st, v) = token_req(
        c,
        &format!(
            "grant_type=authorization_code&code={code}&client_id={client_id}&code_verifier={}",
            common::VERIFIER
        ),
    )
    .await;
    assert_eq!(st, Status::Ok, "code redemption: {v}");
    let get = |k: &str| v[k].as_str().unwrap_or_default().to_owned();
    (get("access_token"), get("refresh_token"))
}

/// Registers a public client for the code flow: (client id, registration access token,
/// registration client URI path).
async fn register(c: &Client) -> (String, String, String) {
    let (st, v) = json(
        c.post("/oauth2/register")
            .header(ContentType::JSON)
            .header(Header::new(HTTPS.0, HTTPS.1))
            .body(
                json!({
                    "redirect_uris": [CALLBACK],
                    "grant_types": ["authorization_code", "refresh_token"],
                })
                .to_string(),
            )
            .dispatch()
            .await,
    )
    .await;
    assert_eq!(st, Status::Created, "registration: {v}");
    let uri = v["registration_client_uri"].as_str().unwrap_or_default();
    let path = match url::Url::parse(uri) {
        Ok(u) => u.path().to_owned(),
        Err(e) => panic!("registration_client_uri {uri:?}: {e}"),
    };
    let get = |k: &str| v[k].as_str().unwrap_or_default().to_owned();
    (get("client_id"), get("registration_access_token"), path)
}

/// `(status, WWW-Authenticate)` of the protected route with `token`.
async fn me_answer(c: &Client, token: &str) -> (Status, String) {
    let r = c
        .get("/me")
        .header(Header::new(HTTPS.0, HTTPS.1))
        .header(Header::new("Authorization", format!("Bearer {token}")))
        .dispatch()
        .await;
    let challenge = r
        .headers()
        .get_one("WWW-Authenticate")
        .unwrap_or_default()
        .to_owned();
    (r.status(), challenge)
}

async fn introspect(c: &Client, token: &str) -> Value {
    let basic = format!("Basic {}", STANDARD.encode("rs:rs-secret"));
    let (st, v) = json(
        c.post("/oauth2/introspect")
            .header(ContentType::Form)
            .header(Header::new(HTTPS.0, HTTPS.1))
            .header(Header::new("Authorization", basic))
            .body(format!("token={token}"))
            .dispatch()
            .await,
    )
    .await;
    assert_eq!(st, Status::Ok, "introspection: {v}");
    v
}

async fn refresh(c: &Client, client_id: &str, refresh_token: &str) -> (Status, Value) {
    token_req(
        c,
        &format!("grant_type=refresh_token&refresh_token={refresh_token}&client_id={client_id}"),
    )
    .await
}

/// The RFC 7592 §2.3 deletion ends the client's tokens (see the module docs).
async fn delete_ends_tokens(storage: &str) {
    let c = server(config(storage, vec![resource_server()])).await;
    let (id, reg_token, path) = register(&c).await;
    let (access, refresh_token) = code_flow(&c, &id).await;
    // A second grant of the client, and a token of another client that must survive.
    let (access2, _) = code_flow(&c, &id).await;
    let (other_id, _, _) = register(&c).await;
    let (other_access, _) = code_flow(&c, &other_id).await;

    assert_eq!(me_answer(&c, &access).await.0, Status::Ok);
    assert_eq!(introspect(&c, &access).await["active"], true);
    assert_eq!(introspect(&c, &refresh_token).await["active"], true);

    let r = c
        .delete(path)
        .header(Header::new(HTTPS.0, HTTPS.1))
        .header(Header::new("Authorization", format!("Bearer {reg_token}")))
        .dispatch()
        .await;
    assert_eq!(r.status(), Status::NoContent, "{storage}: DELETE");

    for t in [&access, &access2] {
        let (st, challenge) = me_answer(&c, t).await;
        assert_eq!(st, Status::Unauthorized, "{storage}: access token refused");
        assert!(
            challenge.contains("error=\"invalid_token\""),
            "{storage}: {challenge}"
        );
        assert_eq!(
            introspect(&c, t).await,
            json!({"active": false}),
            "{storage}: access token inactive"
        );
    }
    assert_eq!(
        introspect(&c, &refresh_token).await,
        json!({"active": false}),
        "{storage}: refresh token inactive"
    );
    let (st, v) = refresh(&c, &id, &refresh_token).await;
    assert!(
        matches!(
            v["error"].as_str(),
            Some("invalid_grant" | "invalid_client")
        ) && st.code >= 400
            && st.code < 500,
        "{storage}: refresh refused: {st} {v}"
    );
    // Revoked in the store, not only refused: nothing of the client is left.
    let s = stores_of(&c);
    for t in [&access, &access2] {
        match s.access.access(&TokenDigest::of(t)).await {
            Ok(None) => {}
            other => panic!("{storage}: the store still holds the access token: {other:?}"),
        }
    }
    match s.refresh.refresh(&TokenDigest::of(&refresh_token)).await {
        Ok(RefreshState::Unknown) => {}
        other => panic!("{storage}: the store still holds the refresh token: {other:?}"),
    }
    assert_eq!(
        me_answer(&c, &other_access).await.0,
        Status::Ok,
        "{storage}: another client's token is untouched"
    );
}

#[rocket::async_test]
async fn memory_deleting_a_registered_client_ends_its_tokens_rfc7592_2_3() {
    delete_ends_tokens("memory").await;
}

#[cfg(feature = "sqlite")]
#[rocket::async_test]
async fn sqlite_deleting_a_registered_client_ends_its_tokens_rfc7592_2_3() {
    delete_ends_tokens(&stores::sqlite_url("delete")).await;
}

#[cfg(feature = "postgres")]
#[rocket::async_test]
async fn postgres_deleting_a_registered_client_ends_its_tokens_rfc7592_2_3() {
    let Some(url) = stores::postgres_url().await else {
        return;
    };
    delete_ends_tokens(&url).await;
}

#[cfg(feature = "redis")]
#[rocket::async_test]
async fn redis_deleting_a_registered_client_ends_its_tokens_rfc7592_2_3() {
    let Some(url) = stores::redis_url("delete") else {
        return;
    };
    delete_ends_tokens(&url).await;
}

/// A SQLite-backed server restarted with a configured client removed from its
/// configuration refuses the tokens that client held (and the remaining client's still
/// work): 401 `invalid_token` at the protected route, inactive at introspection, and the
/// refresh token is refused.
#[cfg(feature = "sqlite")]
#[rocket::async_test]
async fn a_client_removed_from_the_configuration_can_no_longer_use_its_tokens() {
    let url = stores::sqlite_url("removed");
    let (access, refresh_token, rs_token) = {
        let first = server(config(&url, vec![resource_server(), cli()])).await;
        let (access, refresh_token) = code_flow(&first, "cli").await;
        assert_eq!(me_answer(&first, &access).await.0, Status::Ok);
        let basic = format!("Basic {}", STANDARD.encode("rs:rs-secret"));
        let (st, v) = json(
            first
                .post("/oauth2/token")
                .header(ContentType::Form)
                .header(Header::new(HTTPS.0, HTTPS.1))
                .header(Header::new("Authorization", basic))
                .body("grant_type=client_credentials&scope=a")
                .dispatch()
                .await,
        )
        .await;
        assert_eq!(st, Status::Ok, "{v}");
        let rs_token = v["access_token"].as_str().unwrap_or_default().to_owned();
        first.terminate().await;
        (access, refresh_token, rs_token)
    };
    let second = server(config(&url, vec![resource_server()])).await;
    let (st, challenge) = me_answer(&second, &access).await;
    assert_eq!(st, Status::Unauthorized, "a removed client's access token");
    assert!(challenge.contains("error=\"invalid_token\""), "{challenge}");
    assert_eq!(introspect(&second, &access).await, json!({"active": false}));
    assert_eq!(
        introspect(&second, &refresh_token).await,
        json!({"active": false})
    );
    let (st, v) = refresh(&second, "cli", &refresh_token).await;
    assert!(
        matches!(
            v["error"].as_str(),
            Some("invalid_grant" | "invalid_client")
        ) && st.code >= 400
            && st.code < 500,
        "refresh refused: {st} {v}"
    );
    assert_eq!(
        me_answer(&second, &rs_token).await.0,
        Status::Ok,
        "the configured client's token still works"
    );
}
