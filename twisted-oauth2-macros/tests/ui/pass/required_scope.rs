//! `required_scope!` accepts every valid scope, braces included (its check message is not a
//! format string), at module level and inside a `fn` body.
#![deny(warnings)]

use twisted_oauth2::rocket::RequiredScope;

twisted_oauth2::required_scope!(Braces = "a{b} {} c}");
twisted_oauth2::required_scope!(pub Many = "read write https://api.example/x");

fn main() {
    twisted_oauth2::required_scope!(Local = "local");
    assert_eq!(Braces::SCOPE, "a{b} {} c}");
    assert_eq!(Many::SCOPE, "read write https://api.example/x");
    assert_eq!(Local::SCOPE, "local");
}
