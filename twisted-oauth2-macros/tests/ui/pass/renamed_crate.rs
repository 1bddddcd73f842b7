//! `crate = "..."` names the runtime crate when it is not reachable as `::twisted_oauth2`:
//! re-exported by another crate or module, or a renamed dependency.
#![deny(warnings)]

/// What an application crate re-exporting twisted-oauth2 to its users would offer.
pub mod platform {
    pub use twisted_oauth2 as oauth_lib;
}

use twisted_oauth2 as renamed;

#[renamed::oauth(scope = "read", crate = "renamed")]
#[rocket::get("/root")]
fn root() -> &'static str {
    "root"
}

mod handlers {
    use crate::platform::oauth_lib::oauth;

    #[oauth(crate = "crate::platform::oauth_lib", scope = "write")]
    #[rocket::get("/nested")]
    pub fn nested() -> &'static str {
        "nested"
    }
}

fn main() {
    use renamed::rocket::RequiredScope;
    assert_eq!(<__TwistedOAuth2Scope_root as RequiredScope>::SCOPE, "read");
    let _rocket = rocket::build().mount("/", rocket::routes![root, handlers::nested]);
}
