use rocket::get;
use twisted_oauth2::oauth;

#[oauth(scope = "")]
#[get("/")]
fn index() {}

fn main() {}
