//! A three-node Redis Cluster started by a test: `redis-server` and `redis-cli` from `PATH`,
//! loopback ports the OS reports free (with their bus ports, port + 10000), a temporary
//! directory; dropping the [`Cluster`] kills the servers and removes the directory. Only
//! when `TWISTED_OAUTH2_TEST_REDIS_CLUSTER=1`; then a missing `redis-server` fails.

use std::collections::BTreeMap;
use std::io::Write;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const ENV: &str = "TWISTED_OAUTH2_TEST_REDIS_CLUSTER";

/// A running three-node cluster; dropping it kills the servers and removes their files.
pub struct Cluster {
    servers: Vec<Child>,
    ports: Vec<u16>,
    dir: PathBuf,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for s in &mut self.servers {
            let _ = s.kill();
            let _ = s.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A loopback port that is free, and whose cluster bus port (port + 10000) is free too.
fn free_port(taken: &[u16]) -> u16 {
    for _ in 0..200 {
        let Ok(l) = TcpListener::bind("127.0.0.1:0") else {
            continue;
        };
        let Ok(addr) = l.local_addr() else { continue };
        let p = addr.port();
        if p > 55_000 || taken.contains(&p) {
            continue;
        }
        if TcpListener::bind(("127.0.0.1", p + 10_000)).is_ok() {
            return p;
        }
    }
    panic!("no free loopback port pair for a Redis Cluster node");
}

fn cli(port: u16, args: &[&str]) -> String {
    let out = Command::new("redis-cli")
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(args)
        .stdin(Stdio::null())
        .output();
    match out {
        Ok(o) => String::from_utf8_lossy(&o.stdout).into_owned(),
        Err(e) => panic!("cannot run redis-cli: {e}"),
    }
}

fn wait_for(what: &str, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !ready() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

impl Cluster {
    /// Starts the cluster, or returns `None` (with a notice) when the variable is not `1`.
    pub fn start() -> Option<Cluster> {
        if std::env::var(ENV).as_deref() != Ok("1") {
            let _ = writeln!(
                std::io::stderr(),
                "skipping: {ENV} is not 1, so the Redis Cluster test does not run"
            );
            return None;
        }
        let dir = std::env::temp_dir().join(format!(
            "twisted-oauth2-redis-cluster-{}-{:08x}",
            std::process::id(),
            rand::random::<u32>()
        ));
        if let Err(e) = std::fs::create_dir_all(&dir) {
            panic!("cannot create {}: {e}", dir.display());
        }
        let mut cluster = Cluster {
            servers: Vec::new(),
            ports: Vec::new(),
            dir,
        };
        for _ in 0..3 {
            let port = free_port(&cluster.ports);
            let d = &cluster.dir;
            let server = Command::new("redis-server")
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                .args(["--cluster-enabled", "yes", "--cluster-config-file"])
                .arg(d.join(format!("nodes-{port}.conf")))
                .arg("--dir")
                .arg(d)
                .arg("--logfile")
                .arg(d.join(format!("redis-{port}.log")))
                .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn();
            match server {
                Ok(c) => cluster.servers.push(c),
                Err(e) => panic!("{ENV}=1 but redis-server cannot be started: {e}"),
            }
            cluster.ports.push(port);
        }
        for &p in &cluster.ports {
            wait_for("a Redis node to answer", || {
                cli(p, &["ping"]).trim() == "PONG"
            });
        }
        let nodes: Vec<String> = cluster
            .ports
            .iter()
            .map(|p| format!("127.0.0.1:{p}"))
            .collect();
        let created = Command::new("redis-cli")
            .arg("--cluster")
            .arg("create")
            .args(&nodes)
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .stdin(Stdio::null())
            .output();
        match created {
            Ok(o) if o.status.success() => {}
            Ok(o) => panic!(
                "redis-cli --cluster create failed: {}",
                String::from_utf8_lossy(&o.stdout)
            ),
            Err(e) => panic!("cannot run redis-cli: {e}"),
        }
        for &p in &cluster.ports {
            wait_for("cluster_state:ok", || {
                cli(p, &["cluster", "info"]).contains("cluster_state:ok")
            });
        }
        Some(cluster)
    }

    pub fn url(&self, prefix: &str) -> String {
        let nodes: Vec<String> = self
            .ports
            .iter()
            .map(|p| format!("127.0.0.1:{p}"))
            .collect();
        format!("redis+cluster://{}?key_prefix={prefix}", nodes.join(","))
    }

    /// Every key under `prefix` on each node, with its slot.
    pub fn keys(&self, prefix: &str) -> BTreeMap<u16, Vec<(String, u16)>> {
        let mut all = BTreeMap::new();
        for &p in &self.ports {
            let listed = cli(p, &["--scan", "--pattern", &format!("{prefix}*")]);
            let keys = listed
                .lines()
                .filter(|k| !k.is_empty())
                .map(|k| {
                    let slot = cli(p, &["cluster", "keyslot", k]);
                    match slot.trim().parse() {
                        Ok(s) => (k.to_owned(), s),
                        Err(_) => panic!("CLUSTER KEYSLOT {k}: {slot}"),
                    }
                })
                .collect();
            all.insert(p, keys);
        }
        all
    }
}
