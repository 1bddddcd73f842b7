//! The log of a test binary, captured by a logger installed before any Rocket (Rocket
//! keeps an installed logger), for tests of launch messages.

use std::sync::{Mutex, OnceLock};

/// Every line logged, as `LEVEL: message`.
pub struct Capture(pub Mutex<Vec<String>>);

impl log::Log for Capture {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }
    fn log(&self, record: &log::Record<'_>) {
        if let Ok(mut v) = self.0.lock() {
            v.push(format!("{}: {}", record.level(), record.args()));
        }
    }
    fn flush(&self) {}
}

/// The capture, installed on first use.
pub fn capture() -> &'static Capture {
    static LOG: OnceLock<&'static Capture> = OnceLock::new();
    LOG.get_or_init(|| {
        let c: &'static Capture = Box::leak(Box::new(Capture(Mutex::new(Vec::new()))));
        let _ = log::set_logger(c);
        log::set_max_level(log::LevelFilter::Info);
        c
    })
}

/// Whether some captured line contains every one of `parts`.
pub fn logged(parts: &[&str]) -> bool {
    capture()
        .0
        .lock()
        .map(|v| v.iter().any(|l| parts.iter().all(|p| l.contains(p))))
        .unwrap_or(false)
}
