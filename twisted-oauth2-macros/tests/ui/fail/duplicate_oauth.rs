use rocket::get;
use twisted_oauth2::oauth;

#[oauth(scope = "read")]
#[oauth(scope = "write")]
#[get("/")]
fn index() {}

fn main() {}
