//! `#[oauth]` on a sync handler with a path parameter and `String` data, in a module, written
//! with the other route attribute spellings.
#![deny(warnings)]

use twisted_oauth2::oauth;

mod api {
    use rocket::{delete, put, route};
    use twisted_oauth2::oauth;

    /// Replaces an item.
    #[oauth(scope = "items:write")]
    #[put("/items/<id>", data = "<body>")]
    pub fn replace(id: &str, body: String) -> String {
        format!("{id}={body}")
    }

    #[oauth(scope = "items:write")]
    #[delete("/items/<id>")]
    pub(crate) fn remove(id: &str) -> &str {
        id
    }

    #[oauth(scope = "items:read")]
    #[route(GET, uri = "/items")]
    pub(super) fn list() -> &'static str {
        "[]"
    }
}

#[oauth(scope = "ping")]
#[rocket::get("/ping")]
fn ping() -> &'static str {
    "pong"
}

fn main() {
    let _rocket = rocket::build().mount(
        "/",
        rocket::routes![api::replace, api::remove, api::list, ping],
    );
}
