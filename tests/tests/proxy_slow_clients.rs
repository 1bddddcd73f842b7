//! Slow clients. Rocket 0.5.2 turns hyper's header-read timeout off and has no body-read
//! timeout or connection limit, so the repository's nginx configuration
//! (`docs/deploy/nginx.conf`) bounds them. These tests run that file (ports, paths,
//! certificate and, to stay quick, the timeouts and the connection limit replaced) with
//! nginx in front of the demo, and show what the directly connected demo does.
//!
//! Without nginx the proxy test prints a skip notice, unless
//! `TWISTED_OAUTH2_REQUIRE_NGINX=1`, then it fails.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use rocket::tokio::io::{AsyncReadExt, AsyncWriteExt};
use rocket::tokio::net::TcpStream;
use rocket::tokio::time::{sleep, timeout};

/// The test's value for the four nginx timeouts.
const TIMEOUT: Duration = Duration::from_secs(2);
/// The test's `limit_conn perip`.
const CONN_LIMIT: usize = 4;

fn nginx_binary() -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    dirs.extend(["/usr/sbin".into(), "/sbin".into()]);
    dirs.into_iter()
        .map(|d| d.join("nginx"))
        .find(|p| p.is_file())
}

/// nginx (`daemon off`) under a temporary prefix; stopped on drop.
struct Nginx {
    child: Child,
    binary: PathBuf,
    prefix: PathBuf,
    tls_port: u16,
    plain_port: u16,
    redirect_port: u16,
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // `nginx -s stop` (SIGTERM to the master, which stops its workers). Killing the
        // master outright would leave the worker processes running, still listening.
        let _ = Command::new(&self.binary)
            .arg("-p")
            .arg(&self.prefix)
            .arg("-e")
            .arg(self.prefix.join("startup-error.log"))
            .arg("-c")
            .arg(self.prefix.join("nginx.conf"))
            .args(["-s", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let asked = Instant::now();
        while !matches!(self.child.try_wait(), Ok(Some(_)) | Err(_)) {
            if asked.elapsed() > Duration::from_secs(5) {
                let _ = self.child.kill();
                let _ = self.child.wait();
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = std::fs::remove_dir_all(&self.prefix);
    }
}

/// Replaces the whole directive line starting with `directive` (after indentation); the
/// directive must be in the file, so the test and the documented file cannot drift apart.
fn replace_directive(conf: &str, directive: &str, with: &str) -> String {
    let mut found = false;
    let out: Vec<String> = conf
        .lines()
        .map(|line| {
            let trimmed = line.trim_start();
            if trimmed.starts_with(directive) {
                found = true;
                let indent = &line[..line.len() - trimmed.len()];
                format!("{indent}{with}")
            } else {
                line.to_owned()
            }
        })
        .collect();
    assert!(found, "docs/deploy/nginx.conf has `{directive}`");
    out.join("\n")
}

impl Nginx {
    fn start(binary: &Path, upstream_port: u16, cert_pem: &str, key_pem: &str) -> Nginx {
        let prefix = std::env::temp_dir().join(format!(
            "twisted-oauth2-nginx-{}-{upstream_port}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&prefix);
        std::fs::create_dir_all(prefix.join("tmp")).unwrap();
        std::fs::write(prefix.join("cert.pem"), cert_pem).unwrap();
        std::fs::write(prefix.join("key.pem"), key_pem).unwrap();
        let (tls_port, plain_port, redirect_port) = (free_port(), free_port(), free_port());
        let p = prefix.display();
        let t = TIMEOUT.as_secs();
        let conf = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/deploy/nginx.conf"),
        )
        .expect("docs/deploy/nginx.conf");
        let replacements = [
            ("worker_processes ", "worker_processes 1;".to_owned()),
            ("pid ", format!("pid {p}/nginx.pid;")),
            ("error_log ", format!("error_log {p}/error.log info;")),
            (
                "access_log ",
                format!(
                    "access_log {p}/access.log noquery;\n\
                     client_body_temp_path {p}/tmp/body; proxy_temp_path {p}/tmp/proxy;\n\
                     fastcgi_temp_path {p}/tmp/fastcgi; uwsgi_temp_path {p}/tmp/uwsgi;\n\
                     scgi_temp_path {p}/tmp/scgi;"
                ),
            ),
            (
                "client_header_timeout ",
                format!("client_header_timeout {t}s;"),
            ),
            ("client_body_timeout ", format!("client_body_timeout {t}s;")),
            ("send_timeout ", format!("send_timeout {t}s;")),
            ("keepalive_timeout ", format!("keepalive_timeout {t}s;")),
            (
                "limit_conn perip ",
                format!("limit_conn perip {CONN_LIMIT};"),
            ),
            (
                "server 127.0.0.1:8000;",
                format!("server 127.0.0.1:{upstream_port};"),
            ),
            ("listen 80;", format!("listen 127.0.0.1:{redirect_port};")),
            // The TLS server also gets a plain listener: same timeouts and proxying, with
            // `$scheme` = http (so X-Forwarded-Proto says http, whatever the client sends).
            (
                "listen 443 ssl;",
                format!("listen 127.0.0.1:{tls_port} ssl;\nlisten 127.0.0.1:{plain_port};"),
            ),
            ("ssl_certificate ", format!("ssl_certificate {p}/cert.pem;")),
            (
                "ssl_certificate_key ",
                format!("ssl_certificate_key {p}/key.pem;"),
            ),
        ];
        let mut conf = conf;
        for (directive, with) in &replacements {
            conf = replace_directive(&conf, directive, with);
        }
        let conf_path = prefix.join("nginx.conf");
        std::fs::write(&conf_path, conf).unwrap();
        let child = Command::new(binary)
            .arg("-p")
            .arg(&prefix)
            .arg("-e")
            .arg(prefix.join("startup-error.log"))
            .arg("-c")
            .arg(&conf_path)
            .args(["-g", "daemon off;"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start nginx");
        let mut nginx = Nginx {
            child,
            binary: binary.to_owned(),
            prefix,
            tls_port,
            plain_port,
            redirect_port,
        };
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", nginx.plain_port)).is_err() {
            if let Ok(Some(status)) = nginx.child.try_wait() {
                let log = std::fs::read_to_string(nginx.prefix.join("startup-error.log"))
                    .unwrap_or_default();
                panic!("nginx exited ({status}): {log}");
            }
            assert!(started.elapsed() < Duration::from_secs(10), "nginx listens");
            std::thread::sleep(Duration::from_millis(20));
        }
        nginx
    }
}

/// Sends `bytes`, then waits (at most `limit`) until the peer closes; returns how long the
/// socket stayed open after the write, or `None` if it was still open at `limit`.
async fn open_for(port: u16, bytes: &[u8], limit: Duration) -> Option<Duration> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    if !bytes.is_empty() {
        s.write_all(bytes).await.unwrap();
    }
    let sent = Instant::now();
    let mut buf = [0u8; 4096];
    let closed = timeout(limit, async {
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
    })
    .await;
    closed.ok().map(|_| sent.elapsed())
}

const HALF_HEADER: &[u8] =
    b"GET /.well-known/oauth-authorization-server HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Sl";
const PARTIAL_BODY: &[u8] = b"POST /login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\nusername=al";

fn assert_closed_by_timeout(what: &str, open: Option<Duration>) {
    let open = open.unwrap_or_else(|| panic!("nginx closes the {what} socket"));
    eprintln!("nginx closed the {what} socket after {open:?}");
    assert!(
        open >= TIMEOUT - Duration::from_millis(500) && open <= TIMEOUT + Duration::from_secs(3),
        "the {what} socket closed after {open:?}, expected about {TIMEOUT:?}"
    );
}

fn token_request(http: &oauth2::reqwest::Client, url: String) -> oauth2::reqwest::RequestBuilder {
    http.post(url)
        .basic_auth("demo-svc", Some("secret"))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("x-forwarded-proto", "https")
        .body("grant_type=client_credentials")
}

/// The demo as production would run it behind the proxy: no insecure-request switch, the
/// proxy's `X-Forwarded-Proto` trusted.
fn proxied_demo_figment(port: u16) -> rocket::figment::Figment {
    demo_figment(port)
        .merge(("oauth2.allow_insecure_request_debug", false))
        .merge(("oauth2.trusted_proxy_header", "X-Forwarded-Proto"))
}

#[rocket::async_test]
async fn nginx_bounds_slow_clients_and_keeps_serving() {
    let Some(binary) = nginx_binary() else {
        if std::env::var("TWISTED_OAUTH2_REQUIRE_NGINX").is_ok_and(|v| v == "1") {
            panic!("the nginx test is required (TWISTED_OAUTH2_REQUIRE_NGINX=1) but nginx is not installed");
        }
        // Written to the stderr handle, so the harness's capture does not hide it.
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "skipping the nginx slow-client test: nginx is not installed (apt-get install -y nginx)"
        );
        return;
    };
    let port = free_port();
    let demo = serve_demo(proxied_demo_figment(port)).await;
    let ck = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into(), "localhost".into()])
        .expect("certificate");
    let cert = ck.cert.pem();
    let nginx = Nginx::start(&binary, port, &cert, &ck.signing_key.serialize_pem());
    let https = https_client(&cert);
    let http = http_client();
    let tls = format!("https://127.0.0.1:{}", nginx.tls_port);
    let plain = format!("http://127.0.0.1:{}", nginx.plain_port);

    // Through TLS the proxy says https and the demo serves OAuth requests.
    let r = https
        .get(format!("{tls}/.well-known/oauth-authorization-server"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200, "metadata through the proxy");
    let r = token_request(&https, format!("{tls}/oauth2/token"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status().as_u16(),
        200,
        "X-Forwarded-Proto: https from nginx is honoured"
    );
    // Over plain HTTP nginx overwrites the client's X-Forwarded-Proto: https with http;
    // straight to the demo the header is believed, which is why only the proxy may reach it.
    let r = token_request(&http, format!("{plain}/oauth2/token"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status().as_u16(),
        400,
        "a spoofed X-Forwarded-Proto is overwritten"
    );
    let body = r.text().await.unwrap();
    assert!(body.contains("invalid_request"), "{body}");
    // The port-80 server only redirects.
    let r = http
        .get(format!(
            "http://127.0.0.1:{}/oauth2/authorize?x=1",
            nginx.redirect_port
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 301);
    assert!(r.headers()["location"]
        .to_str()
        .unwrap()
        .starts_with("https://127.0.0.1/oauth2/authorize?x=1"));

    // Slow sockets: nothing sent, half a header, a header with part of its body, and a
    // keep-alive connection left idle after a response.
    let limit = TIMEOUT + Duration::from_secs(5);
    let nothing = rocket::tokio::spawn(open_for(nginx.plain_port, b"", limit));
    let half = rocket::tokio::spawn(open_for(nginx.plain_port, HALF_HEADER, limit));
    let body = rocket::tokio::spawn(open_for(nginx.plain_port, PARTIAL_BODY, limit));
    let idle = rocket::tokio::spawn(idle_after_response(nginx.plain_port, limit));
    // Meanwhile a normal request is answered at once.
    sleep(Duration::from_millis(300)).await;
    let started = Instant::now();
    let r = https
        .get(format!("{tls}/.well-known/oauth-authorization-server"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "served while slow sockets are open"
    );
    assert_closed_by_timeout("silent", nothing.await.unwrap());
    assert_closed_by_timeout("half-header", half.await.unwrap());
    assert_closed_by_timeout("partial-body", body.await.unwrap());
    assert_closed_by_timeout("idle keep-alive", idle.await.unwrap());

    // limit_conn: requests in progress per address are bounded; the slots come back when
    // client_body_timeout closes the stalled ones.
    let mut stalled = Vec::new();
    for _ in 0..CONN_LIMIT {
        let mut s = TcpStream::connect(("127.0.0.1", nginx.plain_port))
            .await
            .unwrap();
        s.write_all(PARTIAL_BODY).await.unwrap();
        stalled.push(s);
    }
    sleep(Duration::from_millis(300)).await;
    let r = http
        .get(format!("{plain}/.well-known/oauth-authorization-server"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status().as_u16(),
        503,
        "limit_conn refuses the next request"
    );
    sleep(TIMEOUT + Duration::from_millis(700)).await;
    let r = http
        .get(format!("{plain}/.well-known/oauth-authorization-server"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200, "served again after the timeouts");
    drop(stalled);

    // client_max_body_size: refused before the body is read.
    let r = http
        .post(format!("{plain}/oauth2/token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(vec![b'a'; 100 * 1024])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 413);

    drop(nginx);
    drop(demo);
}

/// A complete keep-alive request, its response read, then nothing: how long until the
/// server closes the connection (`None`: still open at `limit`).
async fn idle_after_response(port: u16, limit: Duration) -> Option<Duration> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    s.write_all(
        b"GET /.well-known/oauth-authorization-server HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: keep-alive\r\n\r\n",
    )
    .await
    .unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    // Read the response (headers and its Content-Length body).
    let done = timeout(Duration::from_secs(5), async {
        loop {
            let n = s.read(&mut buf).await.unwrap_or(0);
            if n == 0 {
                return false;
            }
            got.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&got);
            if let Some(end) = text.find("\r\n\r\n") {
                let len = text[..end]
                    .lines()
                    .find_map(|l| {
                        let (k, v) = l.split_once(':')?;
                        k.eq_ignore_ascii_case("content-length")
                            .then(|| v.trim().parse::<usize>().ok())?
                    })
                    .unwrap_or(0);
                if got.len() >= end + 4 + len {
                    return true;
                }
            }
        }
    })
    .await;
    assert_eq!(done.ok(), Some(true), "a response, connection kept open");
    let idle = Instant::now();
    let closed = timeout(limit, async {
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
    })
    .await;
    closed.ok().map(|_| idle.elapsed())
}

/// The limitation nginx is there for: connected directly, Rocket keeps a socket with half a
/// header open indefinitely (well past `keep_alive`), and `keep_alive` (a number of seconds)
/// does not close an idle HTTP/1.1 connection either: it only switches keep-alive on or off.
/// `keep_alive = 0` closes each connection after its response.
#[rocket::async_test]
async fn rocket_alone_keeps_slow_sockets_open() {
    let port = free_port();
    let demo = serve_demo(demo_figment(port).merge(("keep_alive", 1))).await;
    let wait = Duration::from_secs(3);
    let half = rocket::tokio::spawn(open_for(port, HALF_HEADER, wait));
    let silent = rocket::tokio::spawn(open_for(port, b"", wait));
    let idle = idle_after_response(port, wait).await;
    assert_eq!(
        half.await.unwrap(),
        None,
        "half a header: still open after {wait:?}"
    );
    assert_eq!(
        silent.await.unwrap(),
        None,
        "nothing sent: still open after {wait:?}"
    );
    assert_eq!(
        idle, None,
        "idle keep-alive: still open after {wait:?} with keep_alive = 1"
    );
    drop(demo);

    let port = free_port();
    let demo = serve_demo(demo_figment(port).merge(("keep_alive", 0))).await;
    let closed = rocket::tokio::spawn(async move {
        let mut s = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        s.write_all(
            b"GET /.well-known/oauth-authorization-server HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
        )
        .await
        .unwrap();
        let mut all = Vec::new();
        timeout(Duration::from_secs(2), s.read_to_end(&mut all))
            .await
            .is_ok()
    });
    assert!(
        closed.await.unwrap(),
        "keep_alive = 0: closed after the response"
    );
    drop(demo);
}
