//! Credentials file write latency and batching. Run: `cargo bench --bench file_write`.
//!
//! Prints p50/p99 of one atomic rewrite (lock, read, edit, temp + fsync, compare, rename,
//! directory fsync) for a 1 KiB and a 200-profile file, and how many rewrites the writer
//! task makes when 1,000 profiles' credentials arrive together.

use credfresh::clock::{Clock, SystemClock};
use credfresh::credentials_file::{apply_updates, write_atomic, SectionUpdate};
use credfresh::creds::TempCredentials;
use credfresh::metrics::Metrics;
use credfresh::writer::Delivery;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

fn update(name: &str, n: u64) -> (String, String, String) {
    let _ = name;
    (
        format!("ASIA{n:016}"),
        format!("secret{n:034}"),
        format!("token{:0300}", n),
    )
}

fn percentiles(mut samples: Vec<Duration>) -> (Duration, Duration) {
    samples.sort();
    let at = |q: f64| samples[((samples.len() as f64 - 1.0) * q).round() as usize];
    (at(0.50), at(0.99))
}

fn latency(label: &str, profiles: usize, iterations: u64) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("credentials");
    let mut initial =
        String::from("[default]\naws_access_key_id = AKIAEXAMPLE\naws_secret_access_key = x\n");
    for p in 0..profiles {
        initial.push_str(&format!(
            "\n[other{p}]\nregion = eu-west-1\naws_access_key_id = AKIA{p:016}\n"
        ));
    }
    std::fs::write(&path, &initial).expect("write");
    let expiration = SystemTime::now() + Duration::from_secs(3600);
    let mut samples = Vec::new();
    for i in 0..iterations {
        let (id, secret, token) = update("managed", i);
        let u = SectionUpdate {
            name: "managed",
            access_key_id: &id,
            secret_access_key: &secret,
            session_token: &token,
            expiration,
        };
        let start = Instant::now();
        write_atomic(&path, |old| apply_updates(old, &[u])).expect("write");
        samples.push(start.elapsed());
    }
    let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    let (p50, p99) = percentiles(samples);
    println!("{label}: {size} bytes, {iterations} rewrites: p50 {p50:?}, p99 {p99:?}");
}

fn batching(profiles: usize, spread: Duration) {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("credentials");
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let (_prune_tx, prune_rx) = tokio::sync::mpsc::channel(1);
        let (errors, _) = tokio::sync::watch::channel(None);
        let metrics = Arc::new(Metrics::new());
        let shutdown = tokio_util::sync::CancellationToken::new();
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let writer = tokio::spawn(credfresh::writer::run(
            path.clone(),
            rx,
            prune_rx,
            clock,
            credfresh::writer::Outcomes {
                errors,
                reports: tokio::sync::mpsc::unbounded_channel().0,
            },
            metrics.clone(),
            shutdown.clone(),
        ));
        let start = Instant::now();
        // Fetches finish spread over `spread`, as 1,000 STS calls due together would.
        for p in 0..profiles {
            let at = spread.mul_f64(p as f64 / profiles as f64);
            tokio::time::sleep_until(tokio::time::Instant::from_std(start + at)).await;
            let (id, secret, token) = update("p", p as u64);
            let creds = TempCredentials {
                access_key_id: id,
                secret_access_key: secret.into(),
                session_token: Some(token.into()),
                expiration: SystemTime::now() + Duration::from_secs(3600),
                account_id: None,
                arn: None,
                check_again_at: None,
            };
            let _ = tx.send(Delivery { name: format!("profile{p}"), creds });
        }
        // The writer's last batch closes at most `writer::BATCH_MAX` after its first update.
        tokio::time::sleep(credfresh::writer::BATCH_MAX + Duration::from_millis(500)).await;
        let rendered = metrics.render(&[], SystemTime::now());
        let writes = rendered
            .lines()
            .find(|l| l.starts_with("credfresh_file_writes_total "))
            .and_then(|l| l.split_whitespace().nth(1))
            .unwrap_or("?")
            .to_owned();
        shutdown.cancel();
        let _ = writer.await;
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        let sections = text.matches("x_credfresh_expiration").count();
        println!("batching: {profiles} profiles due together, fetches finishing over {spread:?}: {writes} file rewrites, {sections} sections written");
    });
}

fn main() {
    latency("1 KiB file", 8, 500);
    latency("200-profile file", 200, 300);
    batching(1000, Duration::from_millis(0));
    batching(1000, Duration::from_secs(1));
    batching(1000, Duration::from_secs(10));
}
