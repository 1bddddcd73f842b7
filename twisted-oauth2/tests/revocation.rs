//! Protocol tests of the revocation endpoint (RFC 7009), without a server.

mod common;

use common::*;
use twisted_oauth2::endpoint::revoke::{self, RevokeRequest};
use twisted_oauth2::endpoint::Transport;
use twisted_oauth2::error::Challenge;
use twisted_oauth2::{ErrorCode, OAuthError};

async fn revoke_raw(
    f: &Fixture,
    body: &str,
    ct: Option<&str>,
    auth: Option<&str>,
    query: Option<&str>,
    secure: bool,
) -> Result<(), OAuthError> {
    revoke::handle(
        &f.server,
        RevokeRequest {
            body: body.as_bytes(),
            content_type: ct,
            authorization: auth,
            query,
            transport: Transport { secure },
            ..Default::default()
        },
    )
    .await
}

/// Revokes with HTTP Basic credentials.
async fn revoke_as(f: &Fixture, id: &str, secret: &str, body: &str) -> Result<(), OAuthError> {
    revoke_raw(f, body, Some(FORM), Some(&basic(id, secret)), None, true).await
}

async fn cc_token(f: &Fixture) -> String {
    f.token(
        "grant_type=client_credentials&scope=a",
        Some(("svc", "svc-secret")),
    )
    .await
    .expect("client credentials token")
    .access_token
}

/// A code-flow token pair of the confidential client `app` (subject alice).
async fn app_tokens(f: &Fixture) -> (String, String) {
    let code = f.code("app", "a+b", false).await;
    let t = f
        .token(
            &format!("grant_type=authorization_code&code={code}&redirect_uri={REDIRECT}"),
            Some(("app", "app-secret")),
        )
        .await
        .expect("code redeems");
    (t.access_token, t.refresh_token.expect("refresh token"))
}

async fn refresh(f: &Fixture, rt: &str) -> Result<(String, String), OAuthError> {
    let t = f
        .token(
            &format!("grant_type=refresh_token&refresh_token={rt}"),
            Some(("app", "app-secret")),
        )
        .await?;
    Ok((
        t.access_token,
        t.refresh_token.expect("rotated refresh token"),
    ))
}

// --- revocation of each token type ------------------------------------------------------

#[tokio::test]
async fn access_token_is_revoked_rfc7009_2_1() {
    let f = fixture();
    let at = cc_token(&f).await;
    assert!(f.access_ok(&at).await);
    revoke_as(&f, "svc", "svc-secret", &format!("token={at}"))
        .await
        .expect("200");
    assert!(!f.access_ok(&at).await);
}

#[tokio::test]
async fn access_token_revocation_leaves_refresh_token_by_default_rfc7009_2_1() {
    let f = fixture();
    let (at, rt) = app_tokens(&f).await;
    revoke_as(
        &f,
        "app",
        "app-secret",
        &format!("token={at}&token_type_hint=access_token"),
    )
    .await
    .unwrap();
    assert!(!f.access_ok(&at).await);
    let (at2, _) = refresh(&f, &rt).await.expect("refresh token still usable");
    assert!(f.access_ok(&at2).await);
}

#[tokio::test]
async fn access_token_revocation_revokes_grant_when_configured_rfc7009_2_1() {
    let mut cfg = config();
    cfg.revoke_grant_on_access_token_revocation = true;
    let f = fixture_with(cfg);
    let (at, rt) = app_tokens(&f).await;
    revoke_as(&f, "app", "app-secret", &format!("token={at}"))
        .await
        .unwrap();
    assert!(!f.access_ok(&at).await);
    let e = refresh(&f, &rt).await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::InvalidGrant);
    // A grant without refresh tokens (client credentials) is revoked too.
    let at = cc_token(&f).await;
    revoke_as(&f, "svc", "svc-secret", &format!("token={at}"))
        .await
        .unwrap();
    assert!(!f.access_ok(&at).await);
}

#[tokio::test]
async fn refresh_token_revocation_cascades_to_access_tokens_of_its_grant_rfc7009_2_1() {
    let f = fixture();
    let (at1, rt1) = app_tokens(&f).await;
    let (at2, rt2) = refresh(&f, &rt1).await.unwrap();
    // Another grant of the same client must survive.
    let (other_at, other_rt) = app_tokens(&f).await;
    assert!(f.access_ok(&at1).await && f.access_ok(&at2).await);
    revoke_as(
        &f,
        "app",
        "app-secret",
        &format!("token={rt2}&token_type_hint=refresh_token"),
    )
    .await
    .unwrap();
    assert!(!f.access_ok(&at1).await, "access token of the same grant");
    assert!(!f.access_ok(&at2).await, "access token of the same grant");
    assert_eq!(
        refresh(&f, &rt2).await.unwrap_err().code(),
        ErrorCode::InvalidGrant
    );
    assert!(f.access_ok(&other_at).await, "other grant untouched");
    refresh(&f, &other_rt).await.expect("other grant untouched");
}

#[tokio::test]
async fn rotated_out_refresh_token_revocation_ends_its_family_rfc7009_2_1() {
    let f = fixture();
    let (_, rt1) = app_tokens(&f).await;
    let (at2, rt2) = refresh(&f, &rt1).await.unwrap();
    revoke_as(&f, "app", "app-secret", &format!("token={rt1}"))
        .await
        .unwrap();
    assert!(!f.access_ok(&at2).await);
    assert_eq!(
        refresh(&f, &rt2).await.unwrap_err().code(),
        ErrorCode::InvalidGrant
    );
}

#[tokio::test]
async fn public_client_revokes_its_own_tokens_with_client_id_rfc7009_5() {
    let f = fixture();
    let code = f.code("web", "a", true).await;
    let t = f.redeem_web(&code).await.unwrap();
    let rt = t.refresh_token.unwrap();
    revoke_raw(
        &f,
        &format!("token={rt}&client_id=web"),
        Some(FORM),
        None,
        None,
        true,
    )
    .await
    .expect("auth method none");
    assert!(!f.access_ok(&t.access_token).await);
}

// --- tokens of other clients, unknown tokens ------------------------------------------

#[tokio::test]
async fn other_clients_tokens_are_left_alone_silently_rfc7009_2_1() {
    let f = fixture();
    let at = cc_token(&f).await;
    let (app_at, app_rt) = app_tokens(&f).await;
    for token in [&at, &app_at, &app_rt] {
        for hint in [
            "",
            "&token_type_hint=access_token",
            "&token_type_hint=refresh_token",
        ] {
            revoke_as(&f, "other", "other-secret", &format!("token={token}{hint}"))
                .await
                .expect("200 even for another client's token");
        }
    }
    revoke_raw(
        &f,
        &format!("token={app_rt}&client_id=web"),
        Some(FORM),
        None,
        None,
        true,
    )
    .await
    .expect("200 for a public client too");
    assert!(f.access_ok(&at).await, "still works");
    assert!(f.access_ok(&app_at).await, "still works");
    refresh(&f, &app_rt).await.expect("still works");
}

#[tokio::test]
async fn unknown_and_already_revoked_tokens_answer_success_rfc7009_2_2() {
    let f = fixture();
    revoke_as(&f, "svc", "svc-secret", "token=never-issued")
        .await
        .expect("unknown token: 200");
    let at = cc_token(&f).await;
    revoke_as(&f, "svc", "svc-secret", &format!("token={at}"))
        .await
        .unwrap();
    revoke_as(&f, "svc", "svc-secret", &format!("token={at}"))
        .await
        .expect("already revoked: 200");
}

#[tokio::test]
async fn expired_access_token_revocation_answers_success_rfc7009_2_2() {
    let f = fixture();
    let at = cc_token(&f).await;
    f.clock.advance(3600);
    revoke_as(&f, "svc", "svc-secret", &format!("token={at}"))
        .await
        .expect("200");
}

// --- token_type_hint ----------------------------------------------------------------------

#[tokio::test]
async fn hint_mismatch_still_revokes_rfc7009_2_1() {
    let f = fixture();
    let (at, rt) = app_tokens(&f).await;
    revoke_as(
        &f,
        "app",
        "app-secret",
        &format!("token={at}&token_type_hint=refresh_token"),
    )
    .await
    .unwrap();
    assert!(
        !f.access_ok(&at).await,
        "access token found despite the hint"
    );
    refresh(&f, &rt).await.expect("policy: refresh token kept");

    let (_, rt) = app_tokens(&f).await;
    revoke_as(
        &f,
        "app",
        "app-secret",
        &format!("token={rt}&token_type_hint=access_token"),
    )
    .await
    .unwrap();
    assert_eq!(
        refresh(&f, &rt).await.unwrap_err().code(),
        ErrorCode::InvalidGrant,
        "refresh token found despite the hint"
    );
}

#[tokio::test]
async fn unknown_hint_is_ignored_and_the_search_extended_rfc7009_2_1() {
    let f = fixture();
    let at = cc_token(&f).await;
    revoke_as(
        &f,
        "svc",
        "svc-secret",
        &format!("token={at}&token_type_hint=id_token"),
    )
    .await
    .expect("an unknown hint is not an error");
    assert!(!f.access_ok(&at).await, "the token was found and revoked");
}

// --- client authentication and request checks ---------------------------------------------

#[tokio::test]
async fn client_authentication_is_required_rfc7009_2_1() {
    let f = fixture();
    let at = cc_token(&f).await;
    let e = revoke_raw(&f, &format!("token={at}"), Some(FORM), None, None, true)
        .await
        .unwrap_err();
    assert_eq!((e.code(), e.status()), (ErrorCode::InvalidClient, 401));
    let e = revoke_as(&f, "svc", "wrong", &format!("token={at}"))
        .await
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::InvalidClient);
    assert_eq!(e.challenge(), Some(&Challenge::Basic));
    let e = revoke_raw(
        &f,
        &format!("token={at}&client_id=svc"),
        Some(FORM),
        None,
        None,
        true,
    )
    .await
    .unwrap_err();
    assert_eq!(
        e.code(),
        ErrorCode::InvalidClient,
        "a confidential client must authenticate"
    );
    revoke_raw(
        &f,
        &format!("token={at}&client_id=svc&client_secret=svc-secret"),
        Some(FORM),
        None,
        None,
        true,
    )
    .await
    .expect("client_secret_post");
    assert!(!f.access_ok(&at).await);
}

#[tokio::test]
async fn missing_token_is_invalid_request_rfc7009_2_1() {
    let f = fixture();
    let e = revoke_as(&f, "svc", "svc-secret", "token_type_hint=access_token")
        .await
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::InvalidRequest);
}

#[tokio::test]
async fn request_checks_match_the_token_endpoint_rfc6749_2_3_1() {
    let f = fixture();
    let at = cc_token(&f).await;
    let body = format!("token={at}");
    let auth = basic("svc", "svc-secret");
    let e = revoke_raw(&f, &body, Some(FORM), Some(&auth), None, false)
        .await
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::InvalidRequest, "plain HTTP");
    for ct in [None, Some("application/json")] {
        let e = revoke_raw(&f, &body, ct, Some(&auth), None, true)
            .await
            .unwrap_err();
        assert_eq!(e.code(), ErrorCode::InvalidRequest, "{ct:?}");
    }
    let q = format!("token={at}");
    let e = revoke_raw(&f, "", Some(FORM), Some(&auth), Some(&q), true)
        .await
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::InvalidRequest, "token in the query");
    let e = revoke_raw(
        &f,
        &format!("token={at}&token=x"),
        Some(FORM),
        Some(&auth),
        None,
        true,
    )
    .await
    .unwrap_err();
    assert_eq!(e.code(), ErrorCode::InvalidRequest, "duplicate parameter");
    let e = revoke_raw(&f, "token=%zz", Some(FORM), Some(&auth), None, true)
        .await
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::InvalidRequest, "bad escape");
    assert!(f.access_ok(&at).await, "nothing was revoked");
}
