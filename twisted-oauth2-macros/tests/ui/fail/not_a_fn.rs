use twisted_oauth2::oauth;

#[oauth(scope = "read")]
struct Handler;

fn main() {
    let _ = Handler;
}
