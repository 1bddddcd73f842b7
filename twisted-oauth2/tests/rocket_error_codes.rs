//! Adapter tests of extension error codes through Rocket: an app route answers RFC codes that
//! are not variants of `ErrorCode` (RFC 9449 `use_dpop_nonce`, RFC 8628 `slow_down`, its own)
//! with their statuses, the JSON body, `no-store` and extra headers.

mod common;

use rocket::http::Status;
use rocket::local::asynchronous::{Client, LocalResponse};
use rocket::{get, routes};
use twisted_oauth2::error::{Challenge, ExtensionCode};
use twisted_oauth2::rocket::OAuth2;
use twisted_oauth2::{ErrorCode, OAuthError};

const MFA_REQUIRED: ErrorCode = ErrorCode::Extension(ExtensionCode::new("mfa_required", 403));

/// What a DPoP-checking token endpoint answers when the proof lacks the server's nonce
/// (RFC 9449 §8).
#[get("/dpop-token")]
fn dpop_token() -> Result<&'static str, OAuthError> {
    Err(
        OAuthError::with_description(ErrorCode::USE_DPOP_NONCE, "the DPoP proof needs a nonce")
            .with_header("DPoP-Nonce", "eyJ7S_zG.eyJH0-Z.HX4w-7v"),
    )
}

/// What a DPoP-checking resource server answers (RFC 9449 §9): 401, a `DPoP` challenge
/// beside the error's `Bearer` one, and the nonce.
#[get("/dpop-resource")]
fn dpop_resource() -> Result<&'static str, OAuthError> {
    Err(OAuthError::new(ErrorCode::USE_DPOP_NONCE)
        .with_status(401)
        .with_challenge(Challenge::Bearer { scope: None })
        .with_header(
            "WWW-Authenticate",
            "DPoP error=\"use_dpop_nonce\", error_description=\"Resource server requires nonce in DPoP proof\"",
        )
        .with_header("DPoP-Nonce", "nonce-2"))
}

/// A device grant polled too fast (RFC 8628 §3.5), with a header the responder owns, which
/// is dropped.
#[get("/slow-down")]
fn slow_down() -> Result<&'static str, OAuthError> {
    Err(OAuthError::new(ErrorCode::SLOW_DOWN)
        .with_header("Retry-After", "10")
        .with_header("Cache-Control", "public, max-age=3600"))
}

#[get("/mfa")]
fn mfa() -> Result<&'static str, OAuthError> {
    Err(OAuthError::with_description(
        MFA_REQUIRED,
        "a second factor is required",
    ))
}

async fn client() -> Client {
    let figment = rocket::Config::figment()
        .merge(("log_level", "off"))
        .merge(("oauth2", common::config()));
    let rocket = rocket::custom(figment)
        .attach(OAuth2::fairing().on_authenticate(common::NoConsent))
        .mount("/", routes![dpop_token, dpop_resource, slow_down, mfa]);
    Client::untracked(rocket).await.expect("valid rocket")
}

async fn json(r: LocalResponse<'_>) -> serde_json::Value {
    serde_json::from_str(&r.into_string().await.unwrap_or_default()).expect("JSON body")
}

fn assert_no_store(r: &LocalResponse<'_>) {
    assert_eq!(r.headers().get_one("Cache-Control"), Some("no-store"));
    assert_eq!(r.headers().get_one("Pragma"), Some("no-cache"));
}

#[rocket::async_test]
async fn use_dpop_nonce_at_the_token_endpoint_is_400_with_the_nonce_rfc9449_8() {
    let c = client().await;
    let r = c.get("/dpop-token").dispatch().await;
    assert_eq!(r.status(), Status::BadRequest);
    assert_no_store(&r);
    assert_eq!(
        r.headers().get_one("DPoP-Nonce"),
        Some("eyJ7S_zG.eyJH0-Z.HX4w-7v")
    );
    assert_eq!(r.headers().get_one("WWW-Authenticate"), None);
    let body = json(r).await;
    assert_eq!(body["error"], "use_dpop_nonce");
    assert_eq!(body["error_description"], "the DPoP proof needs a nonce");
}

#[rocket::async_test]
async fn use_dpop_nonce_at_a_resource_is_401_with_both_challenges_rfc9449_9() {
    let c = client().await;
    let r = c.get("/dpop-resource").dispatch().await;
    assert_eq!(r.status(), Status::Unauthorized);
    assert_eq!(r.headers().get_one("DPoP-Nonce"), Some("nonce-2"));
    let challenges: Vec<&str> = r.headers().get("WWW-Authenticate").collect();
    assert_eq!(challenges.len(), 2, "{challenges:?}");
    assert!(
        challenges[0].starts_with("Bearer realm=")
            && challenges[0].contains("error=\"use_dpop_nonce\""),
        "{challenges:?}"
    );
    assert!(
        challenges[1].starts_with("DPoP error=\"use_dpop_nonce\""),
        "{challenges:?}"
    );
    assert_eq!(json(r).await["error"], "use_dpop_nonce");
}

#[rocket::async_test]
async fn slow_down_is_400_and_cannot_override_no_store_rfc8628_3_5() {
    let c = client().await;
    let r = c.get("/slow-down").dispatch().await;
    assert_eq!(r.status(), Status::BadRequest);
    assert_no_store(&r);
    assert_eq!(r.headers().get("Cache-Control").count(), 1);
    assert_eq!(r.headers().get_one("Retry-After"), Some("10"));
    assert_eq!(json(r).await, serde_json::json!({"error": "slow_down"}));
}

#[rocket::async_test]
async fn an_apps_own_extension_code_has_its_status() {
    let c = client().await;
    let r = c.get("/mfa").dispatch().await;
    assert_eq!(r.status(), Status::Forbidden);
    assert_no_store(&r);
    assert_eq!(
        json(r).await,
        serde_json::json!({"error": "mfa_required", "error_description": "a second factor is required"})
    );
}
