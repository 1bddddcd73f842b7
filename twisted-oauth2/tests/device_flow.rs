//! Protocol tests of the device authorization grant (RFC 8628), without a server: the
//! device authorization endpoint (§3.1–3.2), polling (§3.4–3.5) and the user's decision.

mod common;

use std::sync::Arc;

use common::*;
use twisted_oauth2::device::{self, GRANT_TYPE};
use twisted_oauth2::endpoint::device_authorization::{self, DeviceAuthorization};
use twisted_oauth2::endpoint::FormRequest;
use twisted_oauth2::{ErrorCode, Scope};

fn device_config() -> twisted_oauth2::config::ServerConfig {
    let mut cfg = config();
    cfg.device.enabled = true;
    cfg.clients.push(client(
        "cli",
        None,
        &[GRANT_TYPE, "refresh_token"],
        &["a", "b"],
    ));
    cfg.clients
        .push(client("tv", Some("tv-secret"), &[GRANT_TYPE], &["a", "b"]));
    cfg
}

async fn authorize(
    f: &Fixture,
    body: &str,
    auth: Option<(&str, &str)>,
) -> Result<DeviceAuthorization, twisted_oauth2::OAuthError> {
    let header = auth.map(|(i, s)| basic(i, s));
    device_authorization::handle(
        &f.server,
        FormRequest {
            body: body.as_bytes(),
            content_type: Some(FORM),
            authorization: header.as_deref(),
            query: None,
            transport: SECURE,
            ..Default::default()
        },
    )
    .await
}

async fn poll(
    f: &Fixture,
    client_id: &str,
    device_code: &str,
) -> Result<twisted_oauth2::token::TokenResponse, twisted_oauth2::OAuthError> {
    f.token(
        &format!("grant_type={GRANT_TYPE}&client_id={client_id}&device_code={device_code}"),
        None,
    )
    .await
}

fn code_of(a: &DeviceAuthorization) -> String {
    a.user_code.replace('-', "")
}

#[tokio::test]
async fn device_authorization_answers_codes_uris_expiry_and_interval_rfc8628_3_2() {
    let f = fixture_with(device_config());
    let a = authorize(&f, "client_id=cli&scope=a", None).await.unwrap();
    assert!(!a.device_code.is_empty());
    assert_eq!(a.user_code.len(), 9);
    assert_eq!(&a.user_code[4..5], "-");
    assert!(code_of(&a)
        .bytes()
        .all(|b| device::USER_CODE_ALPHABET.contains(&b)));
    assert_eq!(a.verification_uri, "https://as.example/device");
    assert_eq!(
        a.verification_uri_complete.as_deref(),
        Some(format!("https://as.example/device?user_code={}", a.user_code).as_str())
    );
    assert_eq!((a.expires_in, a.interval), (600, 5));
    let json: serde_json::Value = serde_json::from_str(&a.to_json()).unwrap();
    assert_eq!(json["interval"], 5);
}

#[tokio::test]
async fn device_authorization_authenticates_clients_as_the_token_endpoint_does() {
    let f = fixture_with(device_config());
    let e = authorize(&f, "client_id=tv", Some(("tv", "wrong")))
        .await
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::InvalidClient);
    authorize(&f, "scope=a", Some(("tv", "tv-secret")))
        .await
        .unwrap();
    let e = authorize(&f, "client_id=web&scope=a", None)
        .await
        .unwrap_err();
    assert_eq!(
        e.code(),
        ErrorCode::UnauthorizedClient,
        "not allowed the grant"
    );
    let e = authorize(&f, "client_id=cli&scope=zzz", None)
        .await
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::InvalidScope);
}

#[tokio::test]
async fn every_polling_answer_in_order_pending_slow_down_denied_rfc8628_3_5() {
    let f = fixture_with(device_config());
    let a = authorize(&f, "client_id=cli&scope=a", None).await.unwrap();
    let e = poll(&f, "cli", &a.device_code).await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::AUTHORIZATION_PENDING);
    // Polling again at once: slow_down, and the interval of this code grows by 5 s.
    let e = poll(&f, "cli", &a.device_code).await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::SLOW_DOWN);
    assert_eq!(e.status(), 400);
    f.clock.advance(5);
    let e = poll(&f, "cli", &a.device_code).await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::SLOW_DOWN, "the interval is 10 s now");
    // Each too-early poll counts as a poll and grows the interval again (15 s).
    f.clock.advance(15);
    let e = poll(&f, "cli", &a.device_code).await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::AUTHORIZATION_PENDING);
    assert!(device::deny(&f.server, &code_of(&a)).await.unwrap());
    assert!(
        !device::deny(&f.server, &code_of(&a)).await.unwrap(),
        "decided once"
    );
    f.clock.advance(20);
    let e = poll(&f, "cli", &a.device_code).await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::AccessDenied);
    assert_eq!(
        e.status(),
        400,
        "a token endpoint error (RFC 6749 section 5.2)"
    );
    f.clock.advance(20);
    let e = poll(&f, "cli", &a.device_code).await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::InvalidGrant, "a denied code is gone");
}

#[tokio::test]
async fn an_approved_code_gets_tokens_once_and_is_bound_to_its_client() {
    let f = fixture_with(device_config());
    let a = authorize(&f, "client_id=cli&scope=a%20b", None)
        .await
        .unwrap();
    let (code, record) = device::pending(&f.server, &a.user_code.to_lowercase())
        .await
        .unwrap()
        .expect("found case-insensitively");
    assert_eq!(&*record.client_id, "cli");
    let scope = Scope::parse_param("a").unwrap();
    assert!(device::approve(&f.server, &code, "alice", scope)
        .await
        .unwrap());
    let e = poll(&f, "tv", &a.device_code).await;
    assert!(e.is_err(), "another client cannot poll it");
    let t = poll(&f, "cli", &a.device_code).await.unwrap();
    assert!(t.refresh_token.is_some());
    let json: serde_json::Value = serde_json::from_str(&t.to_json()).unwrap();
    assert_eq!(json["scope"], "a", "the scope the user approved");
    f.clock.advance(10);
    let e = poll(&f, "cli", &a.device_code).await.unwrap_err();
    assert_eq!(
        e.code(),
        ErrorCode::InvalidGrant,
        "the device code is single use"
    );
}

#[tokio::test]
async fn an_expired_device_code_is_expired_token_rfc8628_3_5() {
    let f = fixture_with(device_config());
    let a = authorize(&f, "client_id=cli&scope=a", None).await.unwrap();
    f.clock.advance(601);
    let e = poll(&f, "cli", &a.device_code).await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::EXPIRED_TOKEN);
    assert!(device::pending(&f.server, &a.user_code)
        .await
        .unwrap()
        .is_none());
    let e = poll(&f, "cli", "not-a-code").await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::InvalidGrant);
}

#[tokio::test]
async fn two_pollers_after_approval_exactly_one_gets_tokens() {
    let f = fixture_with(device_config());
    let a = authorize(&f, "client_id=cli&scope=a", None).await.unwrap();
    let scope = Scope::parse_param("a").unwrap();
    assert!(device::approve(&f.server, &code_of(&a), "alice", scope)
        .await
        .unwrap());
    let f = Arc::new(f);
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let f = f.clone();
            let c = a.device_code.clone();
            tokio::spawn(async move { poll(&f, "cli", &c).await.is_ok() })
        })
        .collect();
    let mut wins = 0;
    for t in tasks {
        wins += usize::from(t.await.unwrap());
    }
    assert_eq!(wins, 1);
}

#[tokio::test]
async fn the_metadata_advertises_the_device_authorization_endpoint_and_grant() {
    let f = fixture_with(device_config());
    let doc = twisted_oauth2::endpoint::metadata::authorization_server_metadata(&f.server, false);
    let v: serde_json::Value = serde_json::from_str(&doc.to_json()).unwrap();
    assert_eq!(
        v["device_authorization_endpoint"],
        "https://as.example/oauth2/device_authorization"
    );
    assert!(v["grant_types_supported"]
        .as_array()
        .unwrap()
        .iter()
        .any(|g| g == GRANT_TYPE));
}

#[tokio::test]
async fn failed_client_authentications_are_limited_per_client_id_with_retry_after() {
    let mut cfg = device_config();
    cfg.limits.client_auth_failures = 3;
    let f = fixture_with(cfg);
    for _ in 0..3 {
        let e = authorize(&f, "scope=a", Some(("tv", "wrong")))
            .await
            .unwrap_err();
        assert_eq!(e.code(), ErrorCode::InvalidClient);
        assert_eq!(e.status(), 401);
    }
    // The guessing loop is stopped, at every endpoint that authenticates clients.
    let e = authorize(&f, "scope=a", Some(("tv", "wrong")))
        .await
        .unwrap_err();
    assert_eq!(e.status(), 429);
    assert!(e
        .headers()
        .any(|(k, v)| k == "Retry-After" && v.parse::<u64>().unwrap() >= 1));
    let e = f
        .token("grant_type=client_credentials", Some(("tv", "tv-secret")))
        .await
        .unwrap_err();
    assert_eq!(
        e.status(),
        429,
        "the limited client id waits, even with its secret"
    );
    // Another client is unaffected.
    f.token(
        "grant_type=client_credentials&scope=a",
        Some(("svc", "svc-secret")),
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn a_registered_public_client_with_the_device_grant_completes_a_device_flow_rfc7591_2() {
    let mut cfg = device_config();
    cfg.registration.enabled = true;
    cfg.registration.rate_limit_per_minute = 0;
    let f = fixture_with(cfg);
    let body = serde_json::json!({
        "grant_types": [GRANT_TYPE],
        "token_endpoint_auth_method": "none",
        "client_name": "A CLI",
    })
    .to_string();
    let info = twisted_oauth2::endpoint::register::register(
        &f.server,
        twisted_oauth2::endpoint::register::RegistrationRequest {
            body: body.as_bytes(),
            content_type: Some("application/json"),
            transport: SECURE,
            ..Default::default()
        },
    )
    .await
    .expect("the device grant type is registrable");
    let v: serde_json::Value = serde_json::from_str(&info.to_json()).unwrap();
    assert_eq!(v["grant_types"], serde_json::json!([GRANT_TYPE]));
    let id = v["client_id"].as_str().unwrap().to_owned();
    let a = authorize(&f, &format!("client_id={id}&scope=a"), None)
        .await
        .unwrap();
    let (code, _) = device::pending(&f.server, &a.user_code)
        .await
        .unwrap()
        .expect("pending");
    assert!(
        device::approve(&f.server, &code, "alice", Scope::parse_param("a").unwrap())
            .await
            .unwrap()
    );
    let t = poll(&f, &id, &a.device_code).await.expect("tokens");
    assert!(f.access_ok(&t.access_token).await);
}

#[tokio::test]
async fn a_client_id_metadata_document_client_with_the_device_grant_completes_a_device_flow() {
    use twisted_oauth2::client_metadata::{ClientMetadataConfig, StaticDocuments};
    const ID: &str = "https://cli.example/oauth/client.json";
    let mut cfg = device_config();
    cfg.client_metadata = ClientMetadataConfig {
        enabled: true,
        ..Default::default()
    };
    let doc = serde_json::json!({
        "client_id": ID,
        "client_name": "A CLI",
        "redirect_uris": ["http://127.0.0.1:7777/callback"],
        "grant_types": [GRANT_TYPE, "refresh_token"],
        "token_endpoint_auth_method": "none",
    });
    let clock = Arc::new(twisted_oauth2::clock::FixedClock::at(T0));
    let server = twisted_oauth2::AuthorizationServer::builder(cfg)
        .clock(clock.clone())
        .client_metadata_fetcher(Arc::new(StaticDocuments::new().with(ID, &doc)))
        .build()
        .expect("valid config");
    let f = Fixture {
        server: Arc::new(server),
        clock,
    };
    let id: String = url::form_urlencoded::byte_serialize(ID.as_bytes()).collect();
    let a = authorize(&f, &format!("client_id={id}&scope=a"), None)
        .await
        .expect("the document's device grant is accepted");
    let (code, record) = device::pending(&f.server, &a.user_code)
        .await
        .unwrap()
        .expect("pending");
    assert_eq!(&*record.client_id, ID);
    assert!(
        device::approve(&f.server, &code, "alice", Scope::parse_param("a").unwrap())
            .await
            .unwrap()
    );
    let t = poll(&f, &id, &a.device_code).await.expect("tokens");
    assert!(t.refresh_token.is_some());
}
