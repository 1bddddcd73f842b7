//! Helpers for end-to-end tests: the demo served on a loopback port, and a browser-like
//! HTTP client that keeps cookies and does not follow redirects.
#![allow(dead_code, unreachable_pub)]

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::time::Duration;

use oauth2::reqwest;
use rocket::figment::Figment;
use rocket::Shutdown;

/// A running demo server.
pub struct Demo {
    pub base: String,
    pub shutdown: Shutdown,
}

impl Drop for Demo {
    fn drop(&mut self) {
        self.shutdown.clone().notify();
    }
}

/// A free loopback port.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// The repository's Rocket.toml on loopback `port`, quiet, with an immediate shutdown.
pub fn loopback_figment(port: u16) -> Figment {
    rocket::Config::figment()
        .merge(("port", port))
        .merge(("address", "127.0.0.1"))
        .merge(("log_level", "off"))
        .merge(("shutdown.grace", 0))
        .merge(("shutdown.mercy", 0))
        .merge(("shutdown.ctrlc", false))
}

/// The demo's own configuration (the repository's Rocket.toml) on a fresh port.
pub fn demo_figment(port: u16) -> Figment {
    loopback_figment(port)
        .merge(("oauth2.issuer", format!("http://127.0.0.1:{port}")))
        .merge(("oauth2.storage", "memory"))
}

/// Serves the demo on a loopback port until the returned value is dropped.
pub async fn serve_demo(figment: Figment) -> Demo {
    let port: u16 = figment.extract_inner("port").expect("port");
    let ignited = twisted_oauth2_demo::rocket(figment)
        .ignite()
        .await
        .expect("demo ignites");
    launch(ignited, port).await
}

/// Launches an ignited Rocket on its loopback `port` and waits until it accepts
/// connections; it stops when the returned value is dropped.
pub async fn launch(ignited: rocket::Rocket<rocket::Ignite>, port: u16) -> Demo {
    let shutdown = ignited.shutdown();
    rocket::tokio::spawn(ignited.launch());
    for _ in 0..200 {
        if rocket::tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            break;
        }
        rocket::tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Demo {
        base: format!("http://127.0.0.1:{port}"),
        shutdown,
    }
}

/// A browser stand-in: keeps cookies, never follows redirects.
pub struct Browser {
    pub http: reqwest::Client,
    pub cookies: BTreeMap<String, String>,
}

impl Browser {
    pub fn new() -> Self {
        Browser::with_client(http_client())
    }

    pub fn with_client(http: reqwest::Client) -> Self {
        Browser {
            http,
            cookies: BTreeMap::new(),
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn keep(&mut self, r: &reqwest::Response) {
        for v in r.headers().get_all("set-cookie") {
            if let Some((kv, _)) = v
                .to_str()
                .unwrap_or("")
                .split_once(';')
                .or(Some((v.to_str().unwrap_or(""), "")))
            {
                if let Some((k, val)) = kv.split_once('=') {
                    self.cookies
                        .insert(k.trim().to_owned(), val.trim().to_owned());
                }
            }
        }
    }

    pub async fn get(&mut self, url: &str) -> reqwest::Response {
        let r = self
            .http
            .get(url)
            .header("cookie", self.cookie_header())
            .send()
            .await
            .expect("GET");
        self.keep(&r);
        r
    }

    pub async fn post_form(&mut self, url: &str, form: &[(&str, &str)]) -> reqwest::Response {
        let body: String = oauth2::url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        let r = self
            .http
            .post(url)
            .header("cookie", self.cookie_header())
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .expect("POST");
        self.keep(&r);
        r
    }
}

/// An HTTPS client trusting `cert_pem`, not following redirects.
pub fn https_client(cert_pem: &str) -> reqwest::Client {
    let cert = reqwest::Certificate::from_pem(cert_pem.as_bytes()).expect("PEM certificate");
    reqwest::ClientBuilder::new()
        .redirect(reqwest::redirect::Policy::none())
        .add_root_certificate(cert)
        .build()
        .expect("reqwest client")
}

/// An HTTP client that does not follow redirects (as the oauth2 crate recommends).
pub fn http_client() -> reqwest::Client {
    reqwest::ClientBuilder::new()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("reqwest client")
}

/// The `value` of `<input ... name="NAME" value="...">` in an HTML page.
pub fn hidden_input(html: &str, name: &str) -> Option<String> {
    let at = html.find(&format!("name=\"{name}\""))?;
    let rest = &html[at..];
    let v = rest.find("value=\"")? + 7;
    let end = rest[v..].find('"')?;
    Some(
        rest[v..v + end]
            .replace("&amp;", "&")
            .replace("&quot;", "\"")
            .replace("&#39;", "'")
            .replace("&lt;", "<")
            .replace("&gt;", ">"),
    )
}

/// Resolves a `Location` header against the server base.
pub fn absolute(base: &str, location: &str) -> String {
    if location.starts_with("http") {
        location.to_owned()
    } else {
        format!("{base}{location}")
    }
}

/// Walks the demo's login and consent forms for `user` from an authorization URL and
/// returns the final redirect to the client.
pub async fn login_and_consent(
    b: &mut Browser,
    base: &str,
    auth_url: &str,
    user: (&str, &str),
    decision: &str,
) -> String {
    let r = b.get(auth_url).await;
    assert!(
        r.status().is_redirection(),
        "authorize redirects to login: {}",
        r.status()
    );
    let login_url = absolute(base, r.headers()["location"].to_str().unwrap());
    let page = b.get(&login_url).await.text().await.unwrap();
    assert!(page.contains("<form method=\"post\""), "login form");
    assert!(page.contains("name=\"username\"") && page.contains("name=\"password\""));
    let next = hidden_input(&page, "next").unwrap();
    let r = b
        .post_form(
            &format!("{base}/login"),
            &[("username", user.0), ("password", user.1), ("next", &next)],
        )
        .await;
    assert!(
        r.status().is_redirection(),
        "login redirects back: {}",
        r.status()
    );
    let consent_url = absolute(base, r.headers()["location"].to_str().unwrap());
    let r = b.get(&consent_url).await;
    assert_eq!(
        r.headers()
            .get("x-frame-options")
            .map(|v| v.to_str().unwrap()),
        Some("DENY")
    );
    let page = r.text().await.unwrap();
    assert!(
        page.contains("name=\"decision\" value=\"allow\"")
            && page.contains("name=\"decision\" value=\"deny\"")
    );
    let rid = hidden_input(&page, "request_id").unwrap();
    let csrf = hidden_input(&page, "csrf_token").unwrap();
    let r = b
        .post_form(
            &format!("{base}/consent"),
            &[
                ("request_id", &rid),
                ("csrf_token", &csrf),
                ("decision", decision),
            ],
        )
        .await;
    assert_eq!(
        r.status().as_u16(),
        303,
        "decision redirects (303) to the client"
    );
    r.headers()["location"].to_str().unwrap().to_owned()
}

/// Why the headless-browser tests cannot run here (Chromium at `$CHROMIUM` or
/// `/usr/bin/chromium`, `node`, and each npm `package` installed under `dir`), or `None`.
pub fn missing_browser_tools(dir: &std::path::Path, packages: &[&str]) -> Option<String> {
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    if !std::path::Path::new(&chromium).exists() {
        return Some(format!("{chromium} not found"));
    }
    if std::process::Command::new("node")
        .arg("--version")
        .output()
        .is_err()
    {
        return Some("node not found".into());
    }
    packages
        .iter()
        .find(|p| !dir.join("node_modules").join(p).exists())
        .map(|p| format!("{p} not installed (cd tests/browser && npm ci)"))
}
