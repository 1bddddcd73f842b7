//! Runs the demo server: `cargo run -p twisted-oauth2-demo` from the repository root.

#[rocket::launch]
fn launch() -> _ {
    let figment = twisted_oauth2_demo::with_ephemeral_secret_key(rocket::Config::figment());
    // Before Rocket ignites, so Rocket keeps this logger: no passwords, codes, tokens or
    // cookies in the log, whatever `log_level` says (docs/security.md, "Logging").
    if let Err(e) = twisted_oauth2::rocket::RedactingLogger::from_figment(&figment).init() {
        eprintln!("twisted-oauth2-demo: the redacting logger is not installed: {e}");
    }
    twisted_oauth2_demo::rocket(figment)
}
