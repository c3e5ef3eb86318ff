//! The commands that ask the daemon to act: `refresh`, `reload`, `prune`.

use crate::api::ReloadReply;
use crate::client;
use crate::control::{RefreshReply, RefreshRequest};
use crate::output::{bad_reply, colour_stdout, fail, reply_error, table, EXIT_FAILURE, EXIT_USAGE};
use hyper::Method;
use std::path::Path;
use std::time::SystemTime;

pub(super) async fn refresh(socket: &Path, profiles: Vec<String>) -> u8 {
    let body = match serde_json::to_vec(&RefreshRequest { profiles }) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("credfresh: {e}");
            return EXIT_FAILURE;
        }
    };
    let (code, body) = match client::request(socket, Method::POST, "/v1/refresh", Some(body)).await
    {
        Ok(r) => r,
        Err(e) => return fail(e),
    };
    if !code.is_success() {
        return reply_error(code, &body);
    }
    let reply: RefreshReply = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return bad_reply(e),
    };
    print!(
        "{}",
        table(&reply.profiles, SystemTime::now(), colour_stdout())
    );
    if reply.delivered() {
        0
    } else {
        EXIT_FAILURE
    }
}

pub(super) async fn reload(socket: &Path) -> u8 {
    let (code, body) = match client::request(socket, Method::POST, "/v1/reload", None).await {
        Ok(r) => r,
        Err(e) => return fail(e),
    };
    match serde_json::from_slice::<ReloadReply>(&body) {
        Ok(r) if r.ok => {
            println!("{}", r.message);
            0
        }
        Ok(r) => {
            eprintln!("credfresh: {}", r.message);
            EXIT_USAGE
        }
        Err(_) => reply_error(code, &body),
    }
}

pub(super) async fn prune(socket: &Path, dry_run: bool) -> u8 {
    let body = serde_json::json!({ "dry_run": dry_run })
        .to_string()
        .into_bytes();
    let (code, body) = match client::request(socket, Method::POST, "/v1/prune", Some(body)).await {
        Ok(r) => r,
        Err(e) => return fail(e),
    };
    match serde_json::from_slice::<crate::control::PruneReply>(&body) {
        Ok(r) if code.is_success() => {
            let verb = if r.dry_run { "would remove" } else { "removed" };
            if r.removed.is_empty() {
                println!("nothing to prune: every section credfresh wrote belongs to a configured profile");
            }
            for name in &r.removed {
                println!("{verb} [{name}]");
            }
            0
        }
        _ => reply_error(code, &body),
    }
}
