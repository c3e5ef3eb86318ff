//! Throughput and latency of `GET /v1/status` on a running daemon's control socket.
//!
//!   cargo bench --bench status_socket -- SOCKET [CONNECTIONS] [SECONDS]
//!
//! Opens CONNECTIONS keep-alive HTTP/1.1 connections (default 8) and sends requests back to
//! back on each for SECONDS (default 5); prints requests/s and latency percentiles.
//! `scripts/bench-daemon.sh` starts a daemon with 10 profiles against a local STS and runs it.

use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper::Request;
use hyper_util::rt::TokioIo;
use std::time::{Duration, Instant};
use tokio::net::UnixStream;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let socket = args
        .first()
        .ok_or("usage: status_socket SOCKET [CONNECTIONS] [SECONDS]")?
        .clone();
    let connections: usize = args.get(1).map(|s| s.parse()).transpose()?.unwrap_or(8);
    let seconds: u64 = args.get(2).map(|s| s.parse()).transpose()?.unwrap_or(5);
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let socket = socket.clone();
        tasks.push(tokio::spawn(async move {
            let stream = UnixStream::connect(&socket).await?;
            let (mut sender, conn) =
                hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
            tokio::spawn(conn);
            let mut latencies = Vec::new();
            while Instant::now() < deadline {
                let req = Request::get("/v1/status")
                    .header(hyper::header::HOST, "credfresh")
                    .body(Empty::<Bytes>::new())?;
                let t = Instant::now();
                let resp = sender.send_request(req).await?;
                let status = resp.status();
                resp.into_body().collect().await?;
                latencies.push(t.elapsed());
                if !status.is_success() {
                    return Err(format!("status {status}").into());
                }
            }
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>(latencies)
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await?.map_err(|e| e.to_string())?);
    }
    let elapsed = start.elapsed();
    all.sort();
    let pct = |p: f64| all[((all.len() as f64 * p) as usize).min(all.len() - 1)];
    println!(
        "GET /v1/status: {} requests over {connections} connections in {:.1} s = {:.0} req/s; p50 {:?}, p99 {:?}, max {:?}",
        all.len(),
        elapsed.as_secs_f64(),
        all.len() as f64 / elapsed.as_secs_f64(),
        pct(0.50),
        pct(0.99),
        all[all.len() - 1],
    );
    Ok(())
}
