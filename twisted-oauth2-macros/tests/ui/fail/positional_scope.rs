use rocket::get;
use twisted_oauth2::oauth;

#[oauth("read")]
#[get("/a")]
fn positional() {}

#[oauth(r"read write")]
#[get("/b")]
fn positional_raw() {}

fn main() {}
