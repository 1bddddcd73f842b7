use rocket::get;
use twisted_oauth2::oauth;

#[oauth(scope = "read", scope = "write")]
#[get("/")]
fn index() {}

fn main() {}
