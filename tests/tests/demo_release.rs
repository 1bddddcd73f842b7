//! The demo under Rocket's `release` profile with no `secret_key` configured: it launches
//! (with a random key and a warning) and answers over HTTP, as `cargo run --release -p
//! twisted-oauth2-demo` does.

mod common;

use oauth2::reqwest;

#[rocket::async_test]
async fn release_profile_without_secret_key_launches_and_answers() {
    let port = common::free_port();
    let figment = common::demo_figment(port).select(rocket::Config::RELEASE_PROFILE);
    // Rocket's default provider holds the zero key, so `secret_key` is "present".
    assert!(figment.contains("secret_key"));
    let figment = twisted_oauth2_demo::with_ephemeral_secret_key(figment);
    let demo = common::serve_demo(figment).await;
    let http = reqwest::Client::new();
    let r = http
        .get(format!(
            "{}/.well-known/oauth-authorization-server",
            demo.base
        ))
        .send()
        .await
        .expect("the release demo answers");
    assert_eq!(r.status(), 200);
    let r = http
        .post(format!("{}/oauth2/token", demo.base))
        .basic_auth("demo-svc", Some("secret"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "a token from the release demo");
}

#[test]
fn a_configured_secret_key_is_kept() {
    let key = "hPRYyVRiMyxpw5sBB1XeCMN1kFsDCqKvBi2QJxBVHQk=";
    let figment = rocket::Config::figment()
        .select(rocket::Config::RELEASE_PROFILE)
        .merge(("secret_key", key));
    let kept = twisted_oauth2_demo::with_ephemeral_secret_key(figment);
    let got: String = kept.extract_inner("secret_key").unwrap();
    assert_eq!(got, key);
}

#[rocket::async_test]
async fn release_profile_with_the_zero_key_is_what_rocket_refuses() {
    // The check the fix answers: without a key Rocket refuses the release profile.
    let figment = common::demo_figment(common::free_port()).select(rocket::Config::RELEASE_PROFILE);
    let e = twisted_oauth2_demo::rocket(figment)
        .ignite()
        .await
        .expect_err("the zero key is refused outside debug");
    assert!(
        matches!(e.kind(), rocket::error::ErrorKind::InsecureSecretKey(_)),
        "{e:?}"
    );
}
