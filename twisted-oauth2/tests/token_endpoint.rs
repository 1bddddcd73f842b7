//! Protocol tests of the token endpoint (RFC 6749 §3.2, §4, §5, §6; RFC 7636; RFC 9700),
//! without a server.

mod common;

use std::sync::Arc;

use common::*;
use twisted_oauth2::endpoint::token::{self, TokenRequest};
use twisted_oauth2::endpoint::Transport;
use twisted_oauth2::error::Challenge;
use twisted_oauth2::ErrorCode;

async fn raw(
    f: &Fixture,
    body: &[u8],
    ct: Option<&str>,
    auth: Option<&str>,
    query: Option<&str>,
    secure: bool,
) -> Result<twisted_oauth2::token::TokenResponse, twisted_oauth2::OAuthError> {
    token::handle(
        &f.server,
        TokenRequest {
            body,
            content_type: ct,
            authorization: auth,
            query,
            transport: Transport { secure },
            ..Default::default()
        },
    )
    .await
}

// --- request-level checks -------------------------------------------------------------

#[tokio::test]
async fn plain_http_is_refused_without_debug_override() {
    let f = fixture();
    let e = raw(
        &f,
        b"grant_type=client_credentials",
        Some(FORM),
        Some(&basic("svc", "svc-secret")),
        None,
        false,
    )
    .await
    .unwrap_err();
    assert_eq!(e.code(), ErrorCode::InvalidRequest);
    assert_eq!(
        e.description(),
        Some("OAuth 2.0 requires requests over HTTPS")
    );

    let mut cfg = config();
    cfg.allow_insecure_request_debug = true;
    let f = fixture_with(cfg);
    raw(
        &f,
        b"grant_type=client_credentials&scope=a",
        Some(FORM),
        Some(&basic("svc", "svc-secret")),
        None,
        false,
    )
    .await
    .expect("debug override accepts plain HTTP");
}

#[tokio::test]
async fn wrong_or_missing_content_type_is_invalid_request() {
    let f = fixture();
    for ct in [
        None,
        Some("application/json"),
        Some("text/plain"),
        Some("multipart/form-data"),
    ] {
        let e = raw(
            &f,
            b"grant_type=client_credentials",
            ct,
            Some(&basic("svc", "svc-secret")),
            None,
            true,
        )
        .await
        .unwrap_err();
        assert_eq!(e.code(), ErrorCode::InvalidRequest, "{ct:?}");
    }
    raw(
        &f,
        b"grant_type=client_credentials&scope=a",
        Some("application/x-www-form-urlencoded; charset=UTF-8"),
        Some(&basic("svc", "svc-secret")),
        None,
        true,
    )
    .await
    .expect("charset parameter is fine");
}

#[tokio::test]
async fn duplicate_parameters_are_invalid_request_rfc6749_3_2() {
    let f = fixture();
    for body in [
        "grant_type=client_credentials&grant_type=client_credentials",
        "grant_type=client_credentials&scope=a&scope=b",
    ] {
        let e = f
            .token(body, Some(("svc", "svc-secret")))
            .await
            .unwrap_err();
        assert_eq!(e.code(), ErrorCode::InvalidRequest);
        assert!(
            e.description().unwrap().starts_with("duplicate parameter"),
            "{e}"
        );
    }
}

#[tokio::test]
async fn bad_encoding_is_invalid_request() {
    let f = fixture();
    for body in [
        &b"grant_type=client_credentials&scope=%ZZ"[..],
        b"grant_type=client_credentials&scope=%FF",
        b"grant_type=\xff",
    ] {
        let e = raw(
            &f,
            body,
            Some(FORM),
            Some(&basic("svc", "svc-secret")),
            None,
            true,
        )
        .await
        .unwrap_err();
        assert_eq!(e.code(), ErrorCode::InvalidRequest);
    }
}

#[tokio::test]
async fn missing_grant_type_is_invalid_request() {
    let f = fixture();
    let e = f
        .token("scope=a", Some(("svc", "svc-secret")))
        .await
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::InvalidRequest);
    assert_eq!(e.description(), Some("missing parameter: grant_type"));
}

#[tokio::test]
async fn unknown_or_disabled_grant_type_is_unsupported_grant_type() {
    let f = fixture();
    for g in ["foo", "password", "implicit", "urn:x:custom"] {
        let e = f
            .token(&format!("grant_type={g}"), Some(("svc", "svc-secret")))
            .await
            .unwrap_err();
        assert_eq!(e.code(), ErrorCode::UnsupportedGrantType, "{g}");
    }
    let mut cfg = config();
    cfg.grant_types = vec!["authorization_code".into()];
    let f = fixture_with(cfg);
    let e = f
        .token("grant_type=client_credentials", Some(("svc", "svc-secret")))
        .await
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::UnsupportedGrantType);
}

#[tokio::test]
async fn credentials_in_url_query_are_refused_rfc6749_2_3_1() {
    let f = fixture();
    let e = raw(
        &f,
        b"grant_type=client_credentials",
        Some(FORM),
        None,
        Some("client_id=svc&client_secret=svc-secret"),
        true,
    )
    .await
    .unwrap_err();
    assert_eq!(e.code(), ErrorCode::InvalidRequest);
}

// --- client authentication ------------------------------------------------------------

#[tokio::test]
async fn client_secret_post_authenticates() {
    let f = fixture();
    let t = f
        .token(
            "grant_type=client_credentials&scope=a&client_id=svc&client_secret=svc-secret",
            None,
        )
        .await
        .unwrap();
    assert_eq!(t.scope, "a");
}

#[tokio::test]
async fn basic_and_body_secret_together_are_invalid_request() {
    let f = fixture();
    let e = f
        .token(
            "grant_type=client_credentials&client_secret=svc-secret",
            Some(("svc", "svc-secret")),
        )
        .await
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::InvalidRequest);
    let e = f
        .token(
            "grant_type=client_credentials&client_id=app",
            Some(("svc", "svc-secret")),
        )
        .await
        .unwrap_err();
    assert_eq!(
        e.code(),
        ErrorCode::InvalidRequest,
        "differing client_id in body"
    );
}

#[tokio::test]
async fn failed_basic_auth_is_401_invalid_client_with_basic_challenge_rfc6749_5_2() {
    let f = fixture();
    for (id, secret) in [("svc", "wrong"), ("nobody", "x"), ("svc", "")] {
        let e = f
            .token("grant_type=client_credentials", Some((id, secret)))
            .await
            .unwrap_err();
        assert_eq!(e.code(), ErrorCode::InvalidClient);
        assert_eq!(e.status(), 401);
        assert_eq!(e.challenge(), Some(&Challenge::Basic));
        assert_eq!(e.www_authenticate("r", None).unwrap(), "Basic realm=\"r\"");
    }
}

#[tokio::test]
async fn every_invalid_client_401_carries_a_basic_challenge_rfc9110_15_5_2() {
    let f = fixture();
    let e = f
        .token(
            "grant_type=client_credentials&client_id=svc&client_secret=nope",
            None,
        )
        .await
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::InvalidClient);
    assert_eq!(e.status(), 401);
    assert_eq!(e.challenge(), Some(&Challenge::Basic));
    let e = f
        .token("grant_type=client_credentials", None)
        .await
        .unwrap_err();
    assert_eq!(
        e.code(),
        ErrorCode::InvalidClient,
        "no authentication at all"
    );
    assert_eq!(
        e.www_authenticate("r", None).as_deref(),
        Some("Basic realm=\"r\""),
        "no credentials sent: still a challenge"
    );
    let e = f
        .token("grant_type=client_credentials&client_id=svc", None)
        .await
        .unwrap_err();
    assert_eq!(
        e.code(),
        ErrorCode::InvalidClient,
        "confidential client without secret"
    );
}

#[tokio::test]
async fn basic_credentials_are_form_urlencoded_rfc6749_2_3_1() {
    let mut cfg = config();
    cfg.clients.push(client(
        "a:b c",
        Some("p@ss:w rd%"),
        &["client_credentials"],
        &["a"],
    ));
    let f = fixture_with(cfg);
    let t = f
        .token(
            "grant_type=client_credentials&scope=a",
            Some(("a%3Ab+c", "p%40ss%3Aw+rd%25")),
        )
        .await
        .unwrap();
    assert_eq!(t.scope, "a");
}

#[tokio::test]
async fn public_client_with_a_secret_fails_authentication() {
    let f = fixture();
    let e = f
        .token(
            "grant_type=authorization_code&code=x&client_id=web&client_secret=guess",
            None,
        )
        .await
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::InvalidClient);
}

#[tokio::test]
async fn client_not_allowed_the_grant_is_unauthorized_client() {
    let f = fixture();
    let e = f
        .token("grant_type=client_credentials", Some(("app", "app-secret")))
        .await
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::UnauthorizedClient);
    let e = f
        .token("grant_type=client_credentials&client_id=web", None)
        .await
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::UnauthorizedClient, "public client");
}

// --- client_credentials ---------------------------------------------------------------

#[tokio::test]
async fn client_credentials_issues_bearer_without_refresh_rfc6749_4_4_3() {
    let f = fixture();
    let t = f
        .token(
            "grant_type=client_credentials&scope=b+a",
            Some(("svc", "svc-secret")),
        )
        .await
        .unwrap();
    assert_eq!(t.token_type, "Bearer");
    assert_eq!(t.expires_in, Some(3600));
    assert_eq!(t.scope, "a b");
    assert!(t.refresh_token.is_none());
    assert!(f.access_ok(&t.access_token).await);
}

#[tokio::test]
async fn scope_outside_client_allowance_is_invalid_scope() {
    let f = fixture();
    let e = f
        .token(
            "grant_type=client_credentials&scope=a+z",
            Some(("svc", "svc-secret")),
        )
        .await
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::InvalidScope);
    let e = f
        .token(
            "grant_type=client_credentials&scope=a%22b",
            Some(("svc", "svc-secret")),
        )
        .await
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::InvalidScope, "RFC 6749 3.3 grammar");
}

#[tokio::test]
async fn omitted_scope_uses_default_or_fails_rfc6749_3_3() {
    let f = fixture();
    let e = f
        .token("grant_type=client_credentials", Some(("svc", "svc-secret")))
        .await
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::InvalidScope);
    let mut cfg = config();
    cfg.default_scope = Some("a".into());
    let f = fixture_with(cfg);
    let t = f
        .token("grant_type=client_credentials", Some(("svc", "svc-secret")))
        .await
        .unwrap();
    assert_eq!(t.scope, "a");
}

#[tokio::test]
async fn access_token_lifetime_is_configurable_and_enforced() {
    let mut cfg = config();
    cfg.access_token_lifetime = 120;
    let f = fixture_with(cfg);
    let t = f
        .token(
            "grant_type=client_credentials&scope=a",
            Some(("svc", "svc-secret")),
        )
        .await
        .unwrap();
    assert_eq!(t.expires_in, Some(120));
    f.clock.advance(119);
    assert!(f.access_ok(&t.access_token).await);
    f.clock.advance(1);
    assert!(!f.access_ok(&t.access_token).await);
}

// --- authorization_code ---------------------------------------------------------------

#[tokio::test]
async fn code_with_pkce_s256_gives_access_and_refresh_tokens() {
    let f = fixture();
    let code = f.code("web", "a+b", true).await;
    let t = f.redeem_web(&code).await.unwrap();
    assert_eq!(t.scope, "a b");
    assert!(t.refresh_token.is_some());
    let info = twisted_oauth2::endpoint::resource::lookup(&f.server, &t.access_token, "")
        .await
        .unwrap();
    assert_eq!(&*info.client_id, "web");
    assert_eq!(info.subject.as_deref(), Some("alice"));
    assert_eq!(
        info.extra.as_deref(),
        Some(&serde_json::json!({"role": "admin"}))
    );
}

#[tokio::test]
async fn code_replay_fails_and_revokes_tokens_issued_from_it_rfc6749_4_1_2() {
    let f = fixture();
    let code = f.code("web", "a", true).await;
    let t = f.redeem_web(&code).await.unwrap();
    let rt = t.refresh_token.clone().unwrap();
    assert!(f.access_ok(&t.access_token).await);
    let e = f.redeem_web(&code).await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::InvalidGrant);
    assert!(
        !f.access_ok(&t.access_token).await,
        "access token revoked on replay"
    );
    let e = f
        .token(
            &format!("grant_type=refresh_token&refresh_token={rt}&client_id=web"),
            None,
        )
        .await
        .unwrap_err();
    assert_eq!(
        e.code(),
        ErrorCode::InvalidGrant,
        "refresh token revoked on replay"
    );
}

#[tokio::test]
async fn concurrent_redemption_of_one_code_gives_exactly_one_success() {
    let f = fixture();
    let code = f.code("web", "a", true).await;
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let server = f.server.clone();
        let code = code.clone();
        tasks.push(tokio::spawn(async move {
            let body = format!(
                "grant_type=authorization_code&code={code}&client_id=web&code_verifier={VERIFIER}"
            );
            token::handle(
                &server,
                TokenRequest {
                    body: body.as_bytes(),
                    content_type: Some(FORM),
                    authorization: None,
                    query: None,
                    transport: SECURE,
                    ..Default::default()
                },
            )
            .await
        }));
    }
    let mut ok = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => ok += 1,
            Err(e) => assert_eq!(e.code(), ErrorCode::InvalidGrant),
        }
    }
    assert_eq!(ok, 1);
}

#[tokio::test]
async fn code_presented_by_another_client_is_handed_to_no_one() {
    let f = fixture();
    let code = f.code("app", "a", true).await;
    let e = f
        .token(
            &format!("grant_type=authorization_code&code={code}&code_verifier={VERIFIER}"),
            Some(("other", "other-secret")),
        )
        .await
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::InvalidGrant);
    let e = f
        .token(
            &format!("grant_type=authorization_code&code={code}&code_verifier={VERIFIER}"),
            Some(("app", "app-secret")),
        )
        .await
        .unwrap_err();
    assert_eq!(
        e.code(),
        ErrorCode::InvalidGrant,
        "the code was burned by the wrong client's attempt"
    );
}

#[tokio::test]
async fn pkce_verifier_is_checked_rfc7636_4_6() {
    let f = fixture();
    let code = f.code("web", "a", true).await;
    let wrong = "x".repeat(43);
    let e = f
        .token(
            &format!(
                "grant_type=authorization_code&code={code}&client_id=web&code_verifier={wrong}"
            ),
            None,
        )
        .await
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::InvalidGrant);

    let code = f.code("web", "a", true).await;
    let e = f
        .token(
            &format!("grant_type=authorization_code&code={code}&client_id=web"),
            None,
        )
        .await
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::InvalidGrant, "missing verifier");

    let code = f.code("app", "a", false).await;
    let e = f
        .token(
            &format!("grant_type=authorization_code&code={code}&code_verifier={VERIFIER}"),
            Some(("app", "app-secret")),
        )
        .await
        .unwrap_err();
    assert_eq!(
        e.code(),
        ErrorCode::InvalidGrant,
        "verifier without challenge (OAuth 2.1)"
    );
}

#[tokio::test]
async fn malformed_code_verifier_says_it_is_malformed_rfc7636_4_1() {
    let f = fixture();
    for bad in [
        "x".repeat(42),
        "x".repeat(129),
        format!("{}%2B", "x".repeat(43)),
        format!("{}%20", "x".repeat(43)),
    ] {
        let code = f.code("web", "a", true).await;
        let e = f
            .token(
                &format!(
                    "grant_type=authorization_code&code={code}&client_id=web&code_verifier={bad}"
                ),
                None,
            )
            .await
            .unwrap_err();
        assert_eq!(e.code(), ErrorCode::InvalidRequest, "{bad}");
        let d = e.description().unwrap();
        assert!(
            d.contains("malformed") && !d.contains("does not match"),
            "{d}"
        );
    }
    // A well-formed wrong verifier still "does not match".
    let code = f.code("web", "a", true).await;
    let e = f
        .token(
            &format!(
                "grant_type=authorization_code&code={code}&client_id=web&code_verifier={}",
                "y".repeat(43)
            ),
            None,
        )
        .await
        .unwrap_err();
    assert_eq!(e.description(), Some("code_verifier does not match"));
}

#[tokio::test]
async fn confidential_client_without_pkce_redeems_with_its_secret() {
    let f = fixture();
    let code = f.code("app", "a", false).await;
    let t = f
        .token(
            &format!("grant_type=authorization_code&code={code}"),
            Some(("app", "app-secret")),
        )
        .await
        .unwrap();
    assert!(t.refresh_token.is_some());
}

#[tokio::test]
async fn redirect_uri_required_iff_sent_and_must_match_rfc6749_4_1_3() {
    let f = fixture();
    // Authorization request without redirect_uri: token request may omit it.
    let code = f.code("app", "a", false).await;
    f.token(
        &format!("grant_type=authorization_code&code={code}"),
        Some(("app", "app-secret")),
    )
    .await
    .unwrap();

    // With redirect_uri: required and must be identical.
    let q = format!(
        "response_type=code&client_id=app&scope=a&redirect_uri={}",
        urlenc(REDIRECT)
    );
    let code = f.code_for_query(&q).await;
    let e = f
        .token(
            &format!("grant_type=authorization_code&code={code}"),
            Some(("app", "app-secret")),
        )
        .await
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::InvalidRequest);

    let code = f.code_for_query(&q).await;
    let e = f
        .token(&format!("grant_type=authorization_code&code={code}&redirect_uri=https%3A%2F%2Fevil.example%2Fcb"), Some(("app", "app-secret")))
        .await
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::InvalidGrant);

    let code = f.code_for_query(&q).await;
    f.token(
        &format!(
            "grant_type=authorization_code&code={code}&redirect_uri={}",
            urlenc(REDIRECT)
        ),
        Some(("app", "app-secret")),
    )
    .await
    .unwrap();
}

fn urlenc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[tokio::test]
async fn expired_code_is_invalid_grant() {
    let f = fixture();
    let code = f.code("web", "a", true).await;
    f.clock.advance(60);
    let e = f.redeem_web(&code).await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::InvalidGrant);
}

#[tokio::test]
async fn unknown_or_missing_code_is_rejected() {
    let f = fixture();
    let e = f.redeem_web("nope").await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::InvalidGrant);
    let e = f
        .token("grant_type=authorization_code&client_id=web", None)
        .await
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::InvalidRequest);
}

// --- refresh_token --------------------------------------------------------------------

async fn web_tokens(f: &Fixture, scope: &str) -> twisted_oauth2::token::TokenResponse {
    let code = f.code("web", scope, true).await;
    f.redeem_web(&code).await.unwrap()
}

async fn refresh(
    f: &Fixture,
    rt: &str,
    extra: &str,
) -> Result<twisted_oauth2::token::TokenResponse, twisted_oauth2::OAuthError> {
    f.token(
        &format!("grant_type=refresh_token&refresh_token={rt}&client_id=web{extra}"),
        None,
    )
    .await
}

#[tokio::test]
async fn refresh_rotates_on_every_use_rfc9700_4_14_2() {
    let f = fixture();
    let t = web_tokens(&f, "a+b").await;
    let rt1 = t.refresh_token.unwrap();
    let t2 = refresh(&f, &rt1, "").await.unwrap();
    let rt2 = t2.refresh_token.clone().unwrap();
    assert_ne!(rt1, rt2);
    assert_eq!(t2.scope, "a b");
    assert!(f.access_ok(&t2.access_token).await);
    let t3 = refresh(&f, &rt2, "").await.unwrap();
    assert!(t3.refresh_token.is_some());
}

#[tokio::test]
async fn rotated_out_refresh_token_reuse_revokes_the_family() {
    let f = fixture();
    let t = web_tokens(&f, "a").await;
    let rt1 = t.refresh_token.unwrap();
    let t2 = refresh(&f, &rt1, "").await.unwrap();
    let rt2 = t2.refresh_token.clone().unwrap();
    let e = refresh(&f, &rt1, "").await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::InvalidGrant);
    assert!(
        !f.access_ok(&t2.access_token).await,
        "family access tokens revoked"
    );
    assert!(!f.access_ok(&t.access_token).await);
    let e = refresh(&f, &rt2, "").await.unwrap_err();
    assert_eq!(
        e.code(),
        ErrorCode::InvalidGrant,
        "current refresh token revoked too"
    );
}

#[tokio::test]
async fn refresh_scope_may_narrow_never_widen_rfc6749_6() {
    let f = fixture();
    let t = web_tokens(&f, "a+b").await;
    let t2 = refresh(&f, &t.refresh_token.unwrap(), "&scope=a")
        .await
        .unwrap();
    assert_eq!(t2.scope, "a");
    // The rotated refresh token keeps the original grant.
    let t3 = refresh(&f, &t2.refresh_token.unwrap(), "&scope=a+b")
        .await
        .unwrap();
    assert_eq!(t3.scope, "a b");
    let e = refresh(&f, &t3.refresh_token.unwrap(), "&scope=a+c")
        .await
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::InvalidScope);
}

#[tokio::test]
async fn refresh_token_lifetime_is_enforced() {
    let mut cfg = config();
    cfg.refresh_token_lifetime = 1000;
    let f = fixture_with(cfg);
    let t = web_tokens(&f, "a").await;
    f.clock.advance(1000);
    let e = refresh(&f, &t.refresh_token.unwrap(), "")
        .await
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::InvalidGrant);
}

#[tokio::test]
async fn refresh_token_of_another_client_is_invalid_grant() {
    let f = fixture();
    let code = f.code("app", "a", false).await;
    let t = f
        .token(
            &format!("grant_type=authorization_code&code={code}"),
            Some(("app", "app-secret")),
        )
        .await
        .unwrap();
    let rt = t.refresh_token.unwrap();
    let e = f
        .token(
            &format!("grant_type=refresh_token&refresh_token={rt}"),
            Some(("other", "other-secret")),
        )
        .await
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::InvalidGrant);
    f.token(
        &format!("grant_type=refresh_token&refresh_token={rt}"),
        Some(("app", "app-secret")),
    )
    .await
    .expect("still valid for its client");
}

#[tokio::test]
async fn refresh_token_is_not_an_access_token_and_vice_versa() {
    let f = fixture();
    let t = web_tokens(&f, "a").await;
    let rt = t.refresh_token.clone().unwrap();
    assert!(
        !f.access_ok(&rt).await,
        "refresh token refused as access token"
    );
    let e = refresh(&f, &t.access_token, "").await.unwrap_err();
    assert_eq!(
        e.code(),
        ErrorCode::InvalidGrant,
        "access token refused as refresh token"
    );
}

// --- extension grants, generator, storage failure ------------------------------------

struct DeviceGrant;

#[async_trait::async_trait]
impl twisted_oauth2::grant::Grant for DeviceGrant {
    fn grant_type(&self) -> &str {
        "urn:example:grant:magic"
    }
    async fn handle(
        &self,
        _ctx: &twisted_oauth2::context::GrantContext<'_>,
        req: &twisted_oauth2::grant::GrantRequest<'_>,
    ) -> Result<twisted_oauth2::grant::Issue, twisted_oauth2::OAuthError> {
        let client = req.client()?;
        match req.params.get("magic_word") {
            Some("please") => Ok(twisted_oauth2::grant::Issue::new(
                twisted_oauth2::Scope::parse("a").unwrap(),
            )
            .subject(format!("device-of-{}", client.id()))),
            _ => Err(twisted_oauth2::OAuthError::invalid_grant("say please")),
        }
    }
}

#[tokio::test]
async fn extension_grant_is_dispatched_after_client_authentication_rfc6749_4_5() {
    let mut cfg = config();
    cfg.clients.push(client(
        "dev",
        Some("dev-secret"),
        &["urn:example:grant:magic"],
        &["a"],
    ));
    let server = twisted_oauth2::AuthorizationServer::builder(cfg)
        .extension_grant(Arc::new(DeviceGrant))
        .build()
        .unwrap();
    let f = Fixture {
        server: Arc::new(server),
        clock: Arc::new(twisted_oauth2::clock::FixedClock::at(T0)),
    };
    let t = f
        .token(
            "grant_type=urn%3Aexample%3Agrant%3Amagic&magic_word=please",
            Some(("dev", "dev-secret")),
        )
        .await
        .unwrap();
    assert_eq!(t.scope, "a");
    let e = f
        .token(
            "grant_type=urn%3Aexample%3Agrant%3Amagic&magic_word=now",
            Some(("dev", "dev-secret")),
        )
        .await
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::InvalidGrant);
    let e = f
        .token(
            "grant_type=urn%3Aexample%3Agrant%3Amagic&magic_word=please",
            Some(("dev", "bad")),
        )
        .await
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::InvalidClient);
    let e = f
        .token(
            "grant_type=urn%3Aexample%3Agrant%3Amagic&magic_word=please",
            Some(("svc", "svc-secret")),
        )
        .await
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::UnauthorizedClient);
}

struct BadGenerator;
impl twisted_oauth2::token::TokenGenerator for BadGenerator {
    fn generate(
        &self,
        _: twisted_oauth2::token::TokenKind,
    ) -> Result<String, twisted_oauth2::error::StorageError> {
        Ok("not a b64token!".into())
    }
}

#[tokio::test]
async fn generated_token_outside_b64token_is_server_error_rfc6750_2_1() {
    let server = twisted_oauth2::AuthorizationServer::builder(config())
        .generator(Arc::new(BadGenerator))
        .build()
        .unwrap();
    let f = Fixture {
        server: Arc::new(server),
        clock: Arc::new(twisted_oauth2::clock::FixedClock::at(T0)),
    };
    let e = f
        .token(
            "grant_type=client_credentials&scope=a",
            Some(("svc", "svc-secret")),
        )
        .await
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::ServerError);
    assert_eq!(e.status(), 500);
}
