use rocket::get;
use twisted_oauth2::oauth;

#[get("/")]
#[oauth(scope = "read")]
fn index() -> &'static str {
    "hi"
}

fn main() {}
