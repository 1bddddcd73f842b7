//! A handler that also takes its own token guards: `TokenInfo` and a hand-written
//! `Authorized<S>` next to the one `#[oauth]` inserts. The scope reaches the runtime normalised.
#![deny(warnings)]

use rocket::http::CookieJar;
use rocket::{get, routes};
use twisted_oauth2::rocket::{Authorized, RequiredScope};
use twisted_oauth2::{oauth, TokenInfo};

twisted_oauth2::required_scope!(Profile = "profile");

#[oauth(scope = "VIEW_CLOCK profile VIEW_CLOCK")]
#[get("/clock")]
async fn clock(info: TokenInfo, profile: Authorized<Profile>) -> String {
    format!("{} {}", info.client_id, profile.client_id)
}

#[oauth(scope = "a")]
#[get("/generic/<name>")]
fn with_lifetimes<'r>(name: &'r str, _cookies: &'r CookieJar<'r>) -> &'r str {
    name
}

fn main() {
    assert_eq!(
        <__TwistedOAuth2Scope_clock as RequiredScope>::SCOPE,
        "VIEW_CLOCK profile"
    );
    let _rocket = rocket::build().mount("/", routes![clock, with_lifetimes]);
}
