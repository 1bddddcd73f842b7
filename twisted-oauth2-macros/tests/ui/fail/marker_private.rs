//! The hidden marker of a `pub` handler is not part of its module's interface.
use twisted_oauth2::rocket::RequiredScope;

pub mod api {
    use rocket::get;
    use twisted_oauth2::oauth;

    #[oauth(scope = "notes:read")]
    #[get("/notes")]
    pub fn list() -> &'static str {
        "notes"
    }
}

fn main() {
    let _ = <api::__TwistedOAuth2Scope_list as RequiredScope>::SCOPE;
    let _ = api::__twisted_oauth2_scope_list::__TwistedOAuth2Scope_list;
}
