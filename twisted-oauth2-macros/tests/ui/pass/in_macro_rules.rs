//! `#[oauth]` on a handler that a `macro_rules!` macro defines (hygiene of the generated names).
#![deny(warnings)]

use rocket::{get, routes};
use twisted_oauth2::oauth;

macro_rules! protected_route {
    ($name:ident, $path:literal, $scope:literal) => {
        #[oauth(scope = $scope)]
        #[get($path)]
        fn $name() -> &'static str {
            stringify!($name)
        }
    };
}

protected_route!(first, "/first", "read");
protected_route!(second, "/second", "read write");

fn main() {
    let _rocket = rocket::build().mount("/", routes![first, second]);
}
