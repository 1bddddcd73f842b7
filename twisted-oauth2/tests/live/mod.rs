//! Real servers on loopback for the tests that go over TCP (races, instances sharing a
//! store): a free port, a Rocket launched on it until dropped, and one raw HTTP/1.1 exchange
//! per call (a fresh connection each time, as concurrent clients make them).
#![allow(dead_code, unreachable_pub)]

use std::time::Duration;

use rocket::figment::Figment;
use rocket::{Build, Rocket, Shutdown};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A Rocket server on a loopback port, shut down when dropped.
pub struct Served {
    pub port: u16,
    shutdown: Shutdown,
}

impl Drop for Served {
    fn drop(&mut self) {
        self.shutdown.clone().notify();
    }
}

/// A free loopback port.
pub fn free_port() -> u16 {
    match std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()) {
        Ok(a) => a.port(),
        Err(e) => panic!("no free port: {e}"),
    }
}

/// Rocket's configuration on loopback `port`: quiet, shutting down at once.
pub fn loopback_figment(port: u16) -> Figment {
    rocket::Config::figment()
        .merge(("port", port))
        .merge(("address", "127.0.0.1"))
        .merge(("log_level", "off"))
        .merge(("shutdown.grace", 0))
        .merge(("shutdown.mercy", 0))
        .merge(("shutdown.ctrlc", false))
}

/// Ignites `rocket` (configured for `port`), launches it and waits until it accepts
/// connections. `what` names it in a failure.
pub async fn launch(rocket: Rocket<Build>, port: u16, what: &str) -> Served {
    let ignited = match rocket.ignite().await {
        Ok(r) => r,
        Err(e) => panic!("server {what} did not ignite: {e}"),
    };
    let shutdown = ignited.shutdown();
    tokio::spawn(ignited.launch());
    for _ in 0..500 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Served { port, shutdown }
}

/// One HTTP/1.1 exchange on a fresh connection (as if behind a TLS proxy): the status and
/// the body, de-chunked.
pub async fn http(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, String) {
    let mut s = match tokio::net::TcpStream::connect(("127.0.0.1", port)).await {
        Ok(s) => s,
        Err(e) => panic!("connect: {e}"),
    };
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\
         X-Forwarded-Proto: https\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    if let Err(e) = s.write_all(req.as_bytes()).await {
        panic!("write: {e}");
    }
    let mut raw = Vec::new();
    if let Err(e) = s.read_to_end(&mut raw).await {
        panic!("read: {e}");
    }
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, rest) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let chunked = head.lines().any(|l| {
        l.to_ascii_lowercase()
            .starts_with("transfer-encoding: chunked")
    });
    (
        status,
        if chunked {
            dechunk(rest)
        } else {
            rest.to_owned()
        },
    )
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}
