//! End to end over real TLS, without the plain-HTTP debug override: the demo served with a
//! self-signed certificate on a loopback port and the `oauth2` crate as the client, through
//! the code flow with PKCE, refresh, and RFC 7009 revocation (which the `oauth2` crate only
//! sends to `https` URLs).

mod common;

use common::*;
use oauth2::basic::BasicClient;
use oauth2::{
    AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, PkceCodeChallenge, RedirectUrl,
    RevocationUrl, Scope, StandardRevocableToken, TokenResponse, TokenUrl,
};
use rocket::config::TlsConfig;

const CALLBACK: &str = "http://127.0.0.1:9000/callback";

struct Tls {
    cert: String,
    key: String,
}

fn self_signed() -> Tls {
    let ck = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into(), "localhost".into()])
        .expect("certificate");
    Tls {
        cert: ck.cert.pem(),
        key: ck.signing_key.serialize_pem(),
    }
}

async fn serve_tls(tls: &Tls) -> Demo {
    let port = free_port();
    let figment = demo_figment(port)
        .merge((
            "tls",
            TlsConfig::from_bytes(tls.cert.as_bytes(), tls.key.as_bytes()),
        ))
        .merge(("oauth2.allow_insecure_request_debug", false))
        .merge(("oauth2.issuer", format!("https://127.0.0.1:{port}")));
    let mut demo = serve_demo(figment).await;
    demo.base = format!("https://127.0.0.1:{port}");
    demo
}

fn param(url: &str, name: &str) -> Option<String> {
    oauth2::url::Url::parse(url)
        .ok()?
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

#[rocket::async_test]
async fn code_flow_refresh_and_revocation_over_tls_via_oauth2_crate() {
    let tls = self_signed();
    let demo = serve_tls(&tls).await;
    let base = demo.base.clone();
    let http = https_client(&tls.cert);
    let client = BasicClient::new(ClientId::new("demo-app".into()))
        .set_client_secret(ClientSecret::new("app-secret".into()))
        .set_auth_uri(AuthUrl::new(format!("{base}/oauth2/authorize")).unwrap())
        .set_token_uri(TokenUrl::new(format!("{base}/oauth2/token")).unwrap())
        .set_revocation_url(RevocationUrl::new(format!("{base}/oauth2/revoke")).unwrap())
        .set_redirect_uri(RedirectUrl::new(CALLBACK.into()).unwrap());
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (auth_url, csrf) = client
        .authorize_url(CsrfToken::new_random)
        .add_scope(Scope::new("VIEW_CLOCK".into()))
        .add_scope(Scope::new("profile".into()))
        .set_pkce_challenge(challenge)
        .url();
    let mut browser = Browser::with_client(http.clone());
    let landing = login_and_consent(
        &mut browser,
        &base,
        auth_url.as_str(),
        ("alice", "wonderland"),
        "allow",
    )
    .await;
    assert_eq!(
        param(&landing, "state").as_deref(),
        Some(csrf.secret().as_str())
    );
    assert_eq!(param(&landing, "iss").as_deref(), Some(base.as_str()));
    let tokens = client
        .exchange_code(AuthorizationCode::new(param(&landing, "code").unwrap()))
        .set_pkce_verifier(verifier)
        .request_async(&http)
        .await
        .expect("code exchange over TLS");
    let r = http
        .get(format!("{base}/clock"))
        .bearer_auth(tokens.access_token().secret())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);

    let refreshed = client
        .exchange_refresh_token(tokens.refresh_token().unwrap())
        .request_async(&http)
        .await
        .expect("refresh");
    // Revoking the current refresh token ends the grant: its access tokens stop working.
    client
        .revoke_token(StandardRevocableToken::RefreshToken(
            refreshed.refresh_token().unwrap().clone(),
        ))
        .expect("https revocation URL")
        .request_async(&http)
        .await
        .expect("revocation");
    let r = http
        .get(format!("{base}/clock"))
        .bearer_auth(refreshed.access_token().secret())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let again = client
        .exchange_refresh_token(refreshed.refresh_token().unwrap())
        .request_async(&http)
        .await;
    assert!(again.is_err(), "revoked refresh token is refused");
}

#[rocket::async_test]
async fn secure_cookie_and_no_debug_override_over_tls() {
    let tls = self_signed();
    let demo = serve_tls(&tls).await;
    let http = https_client(&tls.cert);
    let client = BasicClient::new(ClientId::new("demo-svc".into()))
        .set_client_secret(ClientSecret::new("secret".into()))
        .set_token_uri(TokenUrl::new(format!("{}/oauth2/token", demo.base)).unwrap())
        .set_revocation_url(RevocationUrl::new(format!("{}/oauth2/revoke", demo.base)).unwrap());
    let t = client
        .exchange_client_credentials()
        .add_scope(Scope::new("VIEW_CLOCK".into()))
        .request_async(&http)
        .await
        .expect("token over TLS without the debug override");
    client
        .revoke_token(StandardRevocableToken::AccessToken(
            t.access_token().clone(),
        ))
        .unwrap()
        .request_async(&http)
        .await
        .expect("revocation");
    let r = http
        .get(format!("{}/clock", demo.base))
        .bearer_auth(t.access_token().secret())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let r = http
        .get(format!(
            "{}/oauth2/authorize?response_type=code&client_id=demo-web&scope=VIEW_CLOCK&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256",
            demo.base
        ))
        .send()
        .await
        .unwrap();
    let cookie = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|c| c.starts_with("__Host-twisted_oauth2_ua="))
        .expect("binding cookie");
    assert!(cookie.contains("Secure"), "{cookie}");
    assert!(cookie.contains("HttpOnly"), "{cookie}");
}
