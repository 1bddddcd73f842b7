//! End to end over real HTTP: the demo on a loopback port, driven by the third-party
//! `oauth2` crate (unmodified) as the client.

mod common;

use common::*;
use oauth2::basic::BasicClient;
use oauth2::{
    AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, PkceCodeChallenge, RedirectUrl,
    Scope, TokenResponse, TokenUrl,
};

const CALLBACK: &str = "http://127.0.0.1:9000/callback";

fn query_param(url: &str, name: &str) -> Option<String> {
    oauth2::url::Url::parse(url)
        .ok()?
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

#[rocket::async_test]
async fn authorization_code_with_pkce_refresh_and_clock_via_oauth2_crate() {
    let demo = serve_demo(demo_figment(free_port())).await;
    let base = demo.base.clone();
    let client = BasicClient::new(ClientId::new("demo-web".into()))
        .set_auth_uri(AuthUrl::new(format!("{base}/oauth2/authorize")).unwrap())
        .set_token_uri(TokenUrl::new(format!("{base}/oauth2/token")).unwrap())
        .set_redirect_uri(RedirectUrl::new(CALLBACK.into()).unwrap());
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (auth_url, csrf) = client
        .authorize_url(CsrfToken::new_random)
        .add_scope(Scope::new("VIEW_CLOCK".into()))
        .set_pkce_challenge(challenge)
        .url();

    let mut browser = Browser::new();
    let landing = login_and_consent(
        &mut browser,
        &base,
        auth_url.as_str(),
        ("alice", "wonderland"),
        "allow",
    )
    .await;
    assert!(landing.starts_with(CALLBACK), "{landing}");
    assert_eq!(
        query_param(&landing, "state").as_deref(),
        Some(csrf.secret().as_str())
    );
    assert_eq!(query_param(&landing, "iss").as_deref(), Some(base.as_str()));
    let code = query_param(&landing, "code").expect("code");

    let http = http_client();
    let tokens = client
        .exchange_code(AuthorizationCode::new(code))
        .set_pkce_verifier(verifier)
        .request_async(&http)
        .await
        .expect("code exchange");
    assert_eq!(
        tokens.scopes().map(|s| s[0].as_str().to_owned()).as_deref(),
        Some("VIEW_CLOCK")
    );
    let access = tokens.access_token().secret().clone();

    let clock = http
        .get(format!("{base}/clock"))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    assert_eq!(clock.status().as_u16(), 200);
    assert!(clock.text().await.unwrap().starts_with("<html><body>"));
    let me: serde_json::Value = serde_json::from_str(
        &http
            .get(format!("{base}/me"))
            .bearer_auth(&access)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(me["sub"], "alice");
    assert_eq!(me["client_id"], "demo-web");

    let refreshed = client
        .exchange_refresh_token(tokens.refresh_token().expect("refresh token"))
        .request_async(&http)
        .await
        .expect("refresh");
    assert_ne!(refreshed.access_token().secret(), &access);
    assert!(
        refreshed.refresh_token().is_some(),
        "rotation issues a new refresh token"
    );
    // Again at once: inside the demo's `refresh_token_reuse_interval` (60 s in its
    // Rocket.toml, for clients that refresh in parallel), fresh tokens of the family.
    let again = client
        .exchange_refresh_token(tokens.refresh_token().unwrap())
        .request_async(&http)
        .await
        .expect("a second use inside the reuse interval");
    assert_ne!(
        again.access_token().secret(),
        refreshed.access_token().secret()
    );
}

/// With the library's default interval (0) a rotated-out refresh token is refused at once.
#[rocket::async_test]
async fn a_rotated_out_refresh_token_is_refused_without_a_reuse_interval() {
    let demo =
        serve_demo(demo_figment(free_port()).merge(("oauth2.refresh_token_reuse_interval", 0)))
            .await;
    let base = demo.base.clone();
    let client = BasicClient::new(ClientId::new("demo-web".into()))
        .set_auth_uri(AuthUrl::new(format!("{base}/oauth2/authorize")).unwrap())
        .set_token_uri(TokenUrl::new(format!("{base}/oauth2/token")).unwrap())
        .set_redirect_uri(RedirectUrl::new(CALLBACK.into()).unwrap());
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (auth_url, _) = client
        .authorize_url(CsrfToken::new_random)
        .add_scope(Scope::new("VIEW_CLOCK".into()))
        .set_pkce_challenge(challenge)
        .url();
    let mut browser = Browser::new();
    let landing = login_and_consent(
        &mut browser,
        &base,
        auth_url.as_str(),
        ("alice", "wonderland"),
        "allow",
    )
    .await;
    let code = query_param(&landing, "code").expect("code");
    let http = http_client();
    let tokens = client
        .exchange_code(AuthorizationCode::new(code))
        .set_pkce_verifier(verifier)
        .request_async(&http)
        .await
        .expect("code exchange");
    client
        .exchange_refresh_token(tokens.refresh_token().expect("refresh token"))
        .request_async(&http)
        .await
        .expect("refresh");
    let again = client
        .exchange_refresh_token(tokens.refresh_token().unwrap())
        .request_async(&http)
        .await;
    assert!(again.is_err(), "the rotated-out refresh token is refused");
}

#[rocket::async_test]
async fn denial_lands_on_the_client_with_access_denied() {
    let demo = serve_demo(demo_figment(free_port())).await;
    let client = BasicClient::new(ClientId::new("demo-web".into()))
        .set_auth_uri(AuthUrl::new(format!("{}/oauth2/authorize", demo.base)).unwrap())
        .set_redirect_uri(RedirectUrl::new(CALLBACK.into()).unwrap());
    let (challenge, _verifier) = PkceCodeChallenge::new_random_sha256();
    let (auth_url, csrf) = client
        .authorize_url(CsrfToken::new_random)
        .add_scope(Scope::new("VIEW_CLOCK".into()))
        .set_pkce_challenge(challenge)
        .url();
    let mut browser = Browser::new();
    let landing = login_and_consent(
        &mut browser,
        &demo.base,
        auth_url.as_str(),
        ("bob", "builder"),
        "deny",
    )
    .await;
    assert_eq!(
        query_param(&landing, "error").as_deref(),
        Some("access_denied")
    );
    assert_eq!(
        query_param(&landing, "state").as_deref(),
        Some(csrf.secret().as_str())
    );
    assert!(query_param(&landing, "code").is_none());
}

#[rocket::async_test]
async fn client_credentials_revocation_and_clock_via_oauth2_crate() {
    let demo = serve_demo(demo_figment(free_port())).await;
    let base = demo.base.clone();
    let client = BasicClient::new(ClientId::new("demo-svc".into()))
        .set_client_secret(ClientSecret::new("secret".into()))
        .set_token_uri(TokenUrl::new(format!("{base}/oauth2/token")).unwrap());
    let http = http_client();
    let tokens = client
        .exchange_client_credentials()
        .add_scope(Scope::new("VIEW_CLOCK".into()))
        .request_async(&http)
        .await
        .expect("client credentials");
    assert!(tokens.refresh_token().is_none());
    let access = tokens.access_token().clone();
    let r = http
        .get(format!("{base}/clock"))
        .bearer_auth(access.secret())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);

    // RFC 7009 revocation. The oauth2 crate sends revocation requests only to https URLs
    // (`ConfigurationError::InsecureUrl`), so over the loopback demo the request is made
    // with the same HTTP client directly.
    let r = http
        .post(format!("{base}/oauth2/revoke"))
        .basic_auth("demo-svc", Some("secret"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!(
            "token={}&token_type_hint=access_token",
            access.secret()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let r = http
        .get(format!("{base}/clock"))
        .bearer_auth(access.secret())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    assert!(r.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .contains("invalid_token"));
}

#[rocket::async_test]
async fn wrong_client_secret_is_refused_via_oauth2_crate() {
    let demo = serve_demo(demo_figment(free_port())).await;
    let client = BasicClient::new(ClientId::new("demo-svc".into()))
        .set_client_secret(ClientSecret::new("not-the-secret".into()))
        .set_token_uri(TokenUrl::new(format!("{}/oauth2/token", demo.base)).unwrap());
    let r = client
        .exchange_client_credentials()
        .request_async(&http_client())
        .await;
    match r {
        Err(oauth2::RequestTokenError::ServerResponse(e)) => {
            assert_eq!(e.error().as_ref(), "invalid_client");
        }
        other => panic!("expected invalid_client, got {other:?}"),
    }
}
