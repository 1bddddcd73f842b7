use rocket::get;
use twisted_oauth2::oauth;

#[oauth(scpe = "read")]
#[get("/")]
fn index() {}

fn main() {}
