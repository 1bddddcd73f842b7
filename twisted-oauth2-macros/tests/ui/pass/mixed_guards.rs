//! `#[oauth]` next to another request guard, a path parameter, a query parameter and a form
//! data guard, on an async handler.
#![deny(warnings)]

use rocket::form::Form;
use rocket::http::CookieJar;
use rocket::{post, routes, uri, FromForm, State};
use twisted_oauth2::oauth;

struct Greeting(&'static str);

#[derive(FromForm)]
struct Note<'r> {
    text: &'r str,
}

#[oauth(scope = "notes:write profile")]
#[post("/notes/<id>?<draft>", data = "<note>")]
async fn save_note(
    greeting: &State<Greeting>,
    cookies: &CookieJar<'_>,
    id: u32,
    draft: Option<bool>,
    note: Form<Note<'_>>,
) -> String {
    rocket::tokio::task::yield_now().await;
    let visits = cookies.iter().count();
    format!("{} {id} {draft:?} {} {visits}", greeting.0, note.text)
}

fn main() {
    // The guard is a request guard, not a URI parameter: `uri!` takes only `id` and `draft`.
    assert_eq!(
        uri!(save_note(7, Some(true))).to_string(),
        "/notes/7?draft=true"
    );
    let _rocket = rocket::build()
        .manage(Greeting("hi"))
        .mount("/", routes![save_note]);
}
