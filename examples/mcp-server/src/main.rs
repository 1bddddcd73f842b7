//! `mcp-server`: runs the server with `Rocket.toml` (from the working directory, or the
//! file `ROCKET_CONFIG` names), or `mcp-server hash-password` to hash a password read from
//! standard input for the `users` table.

use std::io::BufRead;

use argon2::password_hash::{rand_core::OsRng, PasswordHasher, SaltString};
use argon2::Argon2;

fn hash_password() {
    eprintln!("password (one line on standard input):");
    let mut line = String::new();
    if std::io::stdin().lock().read_line(&mut line).is_err() || line.trim_end().is_empty() {
        eprintln!("mcp-server: no password read");
        std::process::exit(2);
    }
    let salt = SaltString::generate(&mut OsRng);
    match Argon2::default().hash_password(line.trim_end_matches(['\r', '\n']).as_bytes(), &salt) {
        Ok(h) => println!("{h}"),
        Err(e) => {
            eprintln!("mcp-server: {e}");
            std::process::exit(1);
        }
    }
}

#[rocket::main]
async fn main() {
    if std::env::args().nth(1).as_deref() == Some("hash-password") {
        return hash_password();
    }
    let figment = rocket::Config::figment();
    // Before Rocket ignites, so Rocket keeps it: no passwords, codes, tokens or cookies in
    // the log, whatever log_level says.
    if let Err(e) = twisted_oauth2::rocket::RedactingLogger::from_figment(&figment).init() {
        eprintln!("mcp-server: the redacting logger is not installed: {e}");
    }
    if let Err(e) = twisted_oauth2_mcp_server::rocket(figment).launch().await {
        eprintln!("mcp-server: {e}");
        std::process::exit(1);
    }
}
