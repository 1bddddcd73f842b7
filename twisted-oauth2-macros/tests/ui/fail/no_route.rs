use twisted_oauth2::oauth;

#[oauth(scope = "read")]
fn index() -> &'static str {
    "hi"
}

fn main() {}
