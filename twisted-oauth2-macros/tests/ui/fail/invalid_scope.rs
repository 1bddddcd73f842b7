use rocket::get;
use twisted_oauth2::oauth;

#[oauth(scope = "read a\"b")]
#[get("/quote")]
fn quote() {}

#[oauth(scope = "a\\b")]
#[get("/backslash")]
fn backslash() {}

#[oauth(scope = "read  write")]
#[get("/double-space")]
fn double_space() {}

#[oauth(scope = " read")]
#[get("/leading-space")]
fn leading_space() {}

#[oauth(scope = "read ")]
#[get("/trailing-space")]
fn trailing_space() {}

#[oauth(scope = "read\twrite")]
#[get("/tab")]
fn tab() {}

#[oauth(scope = "café")]
#[get("/non-ascii")]
fn non_ascii() {}

fn main() {}
