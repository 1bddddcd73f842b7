use rocket::get;
use twisted_oauth2::oauth;

#[oauth]
#[get("/a")]
fn bare() {}

#[oauth()]
#[get("/b")]
fn empty_parens() {}

#[oauth(scope)]
#[get("/c")]
fn key_only() {}

fn main() {}
