//! `twisted-oauth2-resource-server`: runs the API with `Rocket.toml` (from the working
//! directory, or the file `ROCKET_CONFIG` names) and the `ROCKET_*` environment.

#[rocket::main]
async fn main() {
    let figment = rocket::Config::figment();
    // Before Rocket ignites, so Rocket keeps it: no tokens or secrets in the log, whatever
    // log_level says.
    if let Err(e) = twisted_oauth2::rocket::RedactingLogger::from_figment(&figment).init() {
        eprintln!("twisted-oauth2-resource-server: the redacting logger is not installed: {e}");
    }
    if let Err(e) = twisted_oauth2_resource_server::rocket(figment)
        .launch()
        .await
    {
        eprintln!("twisted-oauth2-resource-server: {e}");
        std::process::exit(1);
    }
}
