//! Runs the demo server: `cargo run -p twisted-oauth2-demo` from the repository root.

#[rocket::launch]
fn launch() -> _ {
    twisted_oauth2_demo::rocket(rocket::Config::figment())
}
