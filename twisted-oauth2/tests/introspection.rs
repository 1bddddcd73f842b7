//! Protocol tests of the introspection endpoint (RFC 7662), without a server.

mod common;

use common::*;
use twisted_oauth2::config::ServerConfig;
use twisted_oauth2::endpoint::introspect::{self, IntrospectRequest, Introspection};
use twisted_oauth2::endpoint::Transport;
use twisted_oauth2::error::Challenge;
use twisted_oauth2::{ErrorCode, OAuthError};

const ISS: &str = "https://as.example";

/// The common config plus `rs` (a resource server allowed to introspect), `rs-public`
/// (a public client marked `introspect`, which must still be refused) and `bearer-rs`
/// (gets tokens with the introspection scope by client credentials).
fn introspect_config() -> ServerConfig {
    let mut cfg = config();
    let mut rs = client("rs", Some("rs-secret"), &[], &[]);
    rs.introspect = true;
    let mut public = client("rs-public", None, &[], &[]);
    public.introspect = true;
    cfg.clients.push(rs);
    cfg.clients.push(public);
    cfg.clients.push(client(
        "bearer-rs",
        Some("bearer-secret"),
        &["client_credentials"],
        &["introspect", "a"],
    ));
    cfg.introspection_scope = Some("introspect".into());
    cfg
}

fn ifixture() -> Fixture {
    fixture_with(introspect_config())
}

async fn introspect_raw(
    f: &Fixture,
    body: &str,
    auth: Option<&str>,
) -> Result<Introspection, OAuthError> {
    introspect::handle(
        &f.server,
        IntrospectRequest {
            body: body.as_bytes(),
            content_type: Some(FORM),
            authorization: auth,
            query: None,
            transport: Transport { secure: true },
            ..Default::default()
        },
    )
    .await
}

/// Introspects as the resource server `rs` with HTTP Basic.
async fn introspect(f: &Fixture, body: &str) -> serde_json::Value {
    let r = introspect_raw(f, body, Some(&basic("rs", "rs-secret")))
        .await
        .expect("introspection succeeds");
    serde_json::from_str(&r.to_json()).unwrap()
}

fn inactive() -> serde_json::Value {
    serde_json::json!({"active": false})
}

async fn svc_token(f: &Fixture) -> String {
    f.token(
        "grant_type=client_credentials&scope=a+b",
        Some(("svc", "svc-secret")),
    )
    .await
    .unwrap()
    .access_token
}

async fn app_tokens(f: &Fixture) -> (String, String) {
    let code = f.code("app", "a", false).await;
    let t = f
        .token(
            &format!("grant_type=authorization_code&code={code}"),
            Some(("app", "app-secret")),
        )
        .await
        .unwrap();
    (t.access_token, t.refresh_token.unwrap())
}

async fn revoke(f: &Fixture, id: &str, secret: &str, token: &str) {
    twisted_oauth2::endpoint::revoke::handle(
        &f.server,
        twisted_oauth2::endpoint::revoke::RevokeRequest {
            body: format!("token={token}").as_bytes(),
            content_type: Some(FORM),
            authorization: Some(&basic(id, secret)),
            query: None,
            transport: SECURE,
            ..Default::default()
        },
    )
    .await
    .unwrap();
}

// --- answers --------------------------------------------------------------------------------

#[tokio::test]
async fn active_access_token_with_user_is_described_rfc7662_2_2() {
    let f = ifixture();
    let (at, _) = app_tokens(&f).await;
    let v = introspect(&f, &format!("token={at}")).await;
    assert_eq!(
        v,
        serde_json::json!({
            "active": true,
            "scope": "a",
            "client_id": "app",
            "username": "alice",
            "token_type": "Bearer",
            "exp": T0 + 3600,
            "iat": T0,
            "sub": "alice",
            "iss": ISS,
            "aud": ISS,
        })
    );
}

#[tokio::test]
async fn active_access_token_without_user_has_no_sub_rfc7662_2_2() {
    let f = ifixture();
    let at = svc_token(&f).await;
    let v = introspect(&f, &format!("token={at}")).await;
    assert_eq!(v["active"], true);
    assert_eq!(v["client_id"], "svc");
    assert_eq!(v["scope"], "a b");
    assert!(v.get("sub").is_none() && v.get("username").is_none(), "{v}");
}

#[tokio::test]
async fn active_refresh_token_is_described_rfc7662_2_2() {
    let f = ifixture();
    let (_, rt) = app_tokens(&f).await;
    let v = introspect(&f, &format!("token={rt}")).await;
    assert_eq!(v["active"], true);
    assert_eq!(v["token_type"], "refresh_token");
    assert_eq!(v["client_id"], "app");
    assert_eq!(v["sub"], "alice");
    assert_eq!(v["exp"], T0 + 30 * 24 * 3600);
    assert_eq!(v["iss"], ISS);
}

#[tokio::test]
async fn expired_tokens_are_inactive_rfc7662_2_2() {
    let f = ifixture();
    let (at, rt) = app_tokens(&f).await;
    f.clock.advance(3599);
    assert_eq!(introspect(&f, &format!("token={at}")).await["active"], true);
    f.clock.advance(1);
    assert_eq!(introspect(&f, &format!("token={at}")).await, inactive());
    assert_eq!(introspect(&f, &format!("token={rt}")).await["active"], true);
    f.clock.advance(30 * 24 * 3600);
    assert_eq!(introspect(&f, &format!("token={rt}")).await, inactive());
}

#[tokio::test]
async fn revoked_tokens_are_inactive_rfc7662_2_2() {
    let f = ifixture();
    let at = svc_token(&f).await;
    revoke(&f, "svc", "svc-secret", &at).await;
    assert_eq!(introspect(&f, &format!("token={at}")).await, inactive());
    let (at, rt) = app_tokens(&f).await;
    revoke(&f, "app", "app-secret", &rt).await;
    assert_eq!(introspect(&f, &format!("token={rt}")).await, inactive());
    assert_eq!(
        introspect(&f, &format!("token={at}")).await,
        inactive(),
        "cascaded"
    );
}

#[tokio::test]
async fn rotated_out_refresh_token_is_inactive_rfc7662_2_2() {
    let f = ifixture();
    let (_, rt) = app_tokens(&f).await;
    let t = f
        .token(
            &format!("grant_type=refresh_token&refresh_token={rt}"),
            Some(("app", "app-secret")),
        )
        .await
        .unwrap();
    assert_eq!(introspect(&f, &format!("token={rt}")).await, inactive());
    let new_rt = t.refresh_token.unwrap();
    assert_eq!(
        introspect(&f, &format!("token={new_rt}")).await["active"],
        true
    );
}

#[tokio::test]
async fn unknown_token_is_inactive_and_nothing_more_rfc7662_2_2() {
    let f = ifixture();
    let r = introspect_raw(&f, "token=never-issued", Some(&basic("rs", "rs-secret")))
        .await
        .unwrap();
    assert_eq!(r.to_json(), r#"{"active":false}"#);
}

#[tokio::test]
async fn token_type_hint_is_only_a_hint_rfc7662_2_1() {
    let f = ifixture();
    let (at, rt) = app_tokens(&f).await;
    for hint in ["refresh_token", "access_token", "unknown_type"] {
        let v = introspect(&f, &format!("token={at}&token_type_hint={hint}")).await;
        assert_eq!(v["token_type"], "Bearer", "{hint}");
        let v = introspect(&f, &format!("token={rt}&token_type_hint={hint}")).await;
        assert_eq!(v["token_type"], "refresh_token", "{hint}");
    }
}

#[tokio::test]
async fn missing_token_is_invalid_request_rfc7662_2_1() {
    let f = ifixture();
    let e = introspect_raw(
        &f,
        "token_type_hint=access_token",
        Some(&basic("rs", "rs-secret")),
    )
    .await
    .unwrap_err();
    assert_eq!(e.code(), ErrorCode::InvalidRequest);
}

// --- caller authorization -----------------------------------------------------------------------

#[tokio::test]
async fn client_allowed_to_introspect_authenticates_basic_or_post_rfc7662_2_1() {
    let f = ifixture();
    let at = svc_token(&f).await;
    let v = introspect(&f, &format!("token={at}")).await;
    assert_eq!(v["active"], true);
    let r = introspect_raw(
        &f,
        &format!("token={at}&client_id=rs&client_secret=rs-secret"),
        None,
    )
    .await
    .expect("client_secret_post");
    assert!(r.active);
}

#[tokio::test]
async fn client_not_allowed_to_introspect_is_401_rfc7662_2_1() {
    let f = ifixture();
    let at = svc_token(&f).await;
    let e = introspect_raw(
        &f,
        &format!("token={at}"),
        Some(&basic("svc", "svc-secret")),
    )
    .await
    .unwrap_err();
    assert_eq!((e.code(), e.status()), (ErrorCode::InvalidClient, 401));
    assert_eq!(e.challenge(), Some(&Challenge::Basic));
}

#[tokio::test]
async fn public_client_cannot_introspect_rfc7662_4() {
    let f = ifixture();
    let at = svc_token(&f).await;
    let e = introspect_raw(&f, &format!("token={at}&client_id=rs-public"), None)
        .await
        .unwrap_err();
    assert_eq!((e.code(), e.status()), (ErrorCode::InvalidClient, 401));
    assert_eq!(e.challenge(), Some(&Challenge::Basic));
}

#[tokio::test]
async fn unauthenticated_or_wrong_secret_is_401_rfc7662_2_3() {
    let f = ifixture();
    let at = svc_token(&f).await;
    let e = introspect_raw(&f, &format!("token={at}"), None)
        .await
        .unwrap_err();
    assert_eq!((e.code(), e.status()), (ErrorCode::InvalidClient, 401));
    assert_eq!(
        e.challenge(),
        Some(&Challenge::Basic),
        "RFC 7235: 401 has a challenge"
    );
    let e = introspect_raw(&f, &format!("token={at}"), Some(&basic("rs", "nope")))
        .await
        .unwrap_err();
    assert_eq!((e.code(), e.status()), (ErrorCode::InvalidClient, 401));
    let e = introspect_raw(
        &f,
        &format!("token={at}&client_id=rs&client_secret=nope"),
        None,
    )
    .await
    .unwrap_err();
    assert_eq!((e.code(), e.status()), (ErrorCode::InvalidClient, 401));
    assert_eq!(e.challenge(), Some(&Challenge::Basic));
}

async fn bearer_token(f: &Fixture, scope: &str) -> String {
    f.token(
        &format!("grant_type=client_credentials&scope={scope}"),
        Some(("bearer-rs", "bearer-secret")),
    )
    .await
    .unwrap()
    .access_token
}

#[tokio::test]
async fn bearer_with_introspection_scope_may_introspect_rfc7662_2_1() {
    let f = ifixture();
    let at = svc_token(&f).await;
    let caller = bearer_token(&f, "introspect").await;
    let r = introspect_raw(
        &f,
        &format!("token={at}"),
        Some(&format!("Bearer {caller}")),
    )
    .await
    .expect("bearer with the introspection scope");
    assert!(r.active);
    assert_eq!(r.client_id.as_deref(), Some("svc"));
}

#[tokio::test]
async fn bearer_without_introspection_scope_is_403_insufficient_scope_rfc6750_3_1() {
    let f = ifixture();
    let at = svc_token(&f).await;
    let caller = bearer_token(&f, "a").await;
    let e = introspect_raw(
        &f,
        &format!("token={at}"),
        Some(&format!("Bearer {caller}")),
    )
    .await
    .unwrap_err();
    assert_eq!((e.code(), e.status()), (ErrorCode::InsufficientScope, 403));
    assert_eq!(
        e.challenge(),
        Some(&Challenge::Bearer {
            scope: Some("introspect".into())
        })
    );
}

#[tokio::test]
async fn bearer_that_is_invalid_is_401_invalid_token_rfc6750_3_1() {
    let f = ifixture();
    let at = svc_token(&f).await;
    let caller = bearer_token(&f, "introspect").await;
    f.clock.advance(3600);
    for bad in [caller.as_str(), "never-issued"] {
        let e = introspect_raw(&f, &format!("token={at}"), Some(&format!("Bearer {bad}")))
            .await
            .unwrap_err();
        assert_eq!((e.code(), e.status()), (ErrorCode::InvalidToken, 401));
        assert!(matches!(e.challenge(), Some(Challenge::Bearer { .. })));
    }
}

#[tokio::test]
async fn bearer_is_refused_without_introspection_scope_configured_rfc7662_2_1() {
    let mut cfg = introspect_config();
    cfg.introspection_scope = None;
    let f = fixture_with(cfg);
    let at = svc_token(&f).await;
    let caller = bearer_token(&f, "introspect").await;
    let e = introspect_raw(
        &f,
        &format!("token={at}"),
        Some(&format!("Bearer {caller}")),
    )
    .await
    .unwrap_err();
    assert_eq!((e.code(), e.status()), (ErrorCode::InvalidClient, 401));
    assert_eq!(e.challenge(), Some(&Challenge::Basic));
}

#[tokio::test]
async fn bearer_and_client_credentials_together_are_invalid_request() {
    let f = ifixture();
    let caller = bearer_token(&f, "introspect").await;
    let e = introspect_raw(
        &f,
        "token=x&client_id=rs&client_secret=rs-secret",
        Some(&format!("Bearer {caller}")),
    )
    .await
    .unwrap_err();
    assert_eq!(e.code(), ErrorCode::InvalidRequest);
}

#[tokio::test]
async fn request_checks_match_the_token_endpoint_rfc6749_2_3_1() {
    let f = ifixture();
    let auth = basic("rs", "rs-secret");
    let run = |ct: Option<&'static str>, query: Option<&'static str>, secure: bool| {
        let server = f.server.clone();
        let auth = auth.clone();
        async move {
            introspect::handle(
                &server,
                IntrospectRequest {
                    body: b"token=x",
                    content_type: ct,
                    authorization: Some(&auth),
                    query,
                    transport: Transport { secure },
                    ..Default::default()
                },
            )
            .await
        }
    };
    for (ct, query, secure) in [
        (Some(FORM), None, false),
        (None, None, true),
        (Some("application/json"), None, true),
        (Some(FORM), Some("token=x"), true),
    ] {
        let e = run(ct, query, secure).await.unwrap_err();
        assert_eq!(
            e.code(),
            ErrorCode::InvalidRequest,
            "{ct:?} {query:?} {secure}"
        );
    }
    assert!(!run(Some(FORM), None, true).await.unwrap().active);
}
