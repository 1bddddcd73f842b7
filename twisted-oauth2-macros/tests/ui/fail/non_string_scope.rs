use rocket::get;
use twisted_oauth2::oauth;

const READ: &str = "read";

#[oauth(scope = 1)]
#[get("/a")]
fn number() {}

#[oauth(scope = READ)]
#[get("/b")]
fn constant() {}

fn main() {
    let _ = READ;
}
