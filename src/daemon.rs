//! `credfresh daemon`: wires the scheduler, the writer and the control socket together and
//! handles signals. One cancellation token stops every task.

use crate::api::{rfc3339, ReloadReply};
use crate::config::{self, Config};
use crate::control::{self, ControlState, Meta};
use crate::env::Environment;
use crate::scheduler::{Clock, Command, Scheduler, SystemClock};
use crate::sources::{AwsFetcher, Fetcher};
use anyhow::Context;
use futures_util::StreamExt;
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use std::path::PathBuf;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;

/// Runs the daemon for `config` (read from `config.path`) until SIGTERM or SIGINT.
/// `socket` overrides the configured socket path.
pub async fn run(config: Config, socket: Option<PathBuf>, env: Environment) -> anyhow::Result<()> {
    let socket = socket.unwrap_or_else(|| config.daemon.socket.clone());
    let mut signals = signal_hook_tokio::Signals::new([SIGTERM, SIGINT, SIGHUP])
        .context("cannot install signal handlers")?;
    let listener = control::bind(&socket)
        .await
        .with_context(|| format!("cannot listen on the control socket {}", socket.display()))?;

    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let fetcher: Arc<dyn Fetcher> = Arc::new(AwsFetcher::load().await);
    let shutdown = CancellationToken::new();
    let (deliveries_tx, deliveries_rx) = mpsc::unbounded_channel();
    let (scheduler, profiles) = Scheduler::new(&config, fetcher, clock.clone(), deliveries_tx);
    let (commands_tx, commands_rx) = mpsc::channel(64);
    let (file_error_tx, file_error_rx) = watch::channel(None);
    let (reloads_tx, mut reloads_rx) = mpsc::channel::<oneshot::Sender<ReloadReply>>(8);

    let credentials_file = config.daemon.credentials_file.clone();
    let writer = tokio::spawn(crate::writer::run(
        credentials_file.clone(),
        deliveries_rx,
        clock,
        file_error_tx,
        shutdown.clone(),
    ));
    let scheduler = tokio::spawn(scheduler.run(commands_rx, shutdown.clone()));
    let state = ControlState {
        meta: Meta {
            version: env!("CARGO_PKG_VERSION").to_owned(),
            pid: std::process::id(),
            started_at: rfc3339(std::time::SystemTime::now()),
            credentials_file: credentials_file.display().to_string(),
        },
        profiles,
        file_error: file_error_rx,
        commands: commands_tx.clone(),
        reloads: reloads_tx,
    };
    let server = tokio::spawn(control::serve(listener, state, shutdown.clone()));
    tracing::info!(
        config = %config.path.display(),
        socket = %socket.display(),
        credentials_file = %credentials_file.display(),
        profiles = config.profiles.len(),
        "credfresh {} started",
        env!("CARGO_PKG_VERSION")
    );

    let mut current = config;
    loop {
        tokio::select! {
            signal = signals.next() => match signal {
                Some(SIGHUP) => {
                    let reply = reload(&mut current, &env, &commands_tx).await;
                    log_reload(&reply);
                }
                Some(sig) => {
                    tracing::info!(signal = sig, "stopping");
                    break;
                }
                None => break,
            },
            Some(reply) = reloads_rx.recv() => {
                let outcome = reload(&mut current, &env, &commands_tx).await;
                log_reload(&outcome);
                let _ = reply.send(outcome);
            }
        }
    }

    shutdown.cancel();
    let _ = server.await;
    let _ = scheduler.await;
    // The writer finishes the write in flight and flushes what is pending before it returns.
    let _ = writer.await;
    control::remove_socket(&socket);
    tracing::info!("stopped");
    Ok(())
}

/// Re-reads the config file; applies it when valid, keeps the running config otherwise.
async fn reload(
    current: &mut Config,
    env: &Environment,
    commands: &mpsc::Sender<Command>,
) -> ReloadReply {
    let new = match config::load(&current.path, env) {
        Ok(c) => c,
        Err(e) => {
            return ReloadReply {
                ok: false,
                message: format!("new config rejected, still running the previous one: {e}"),
            }
        }
    };
    let mut notes = Vec::new();
    if new.daemon.credentials_file != current.daemon.credentials_file {
        notes.push("a changed credentials_file takes effect after a restart");
    }
    if new.daemon.socket != current.daemon.socket {
        notes.push("a changed socket takes effect after a restart");
    }
    if new.daemon.log_format != current.daemon.log_format {
        notes.push("a changed log_format takes effect after a restart");
    }
    let (reply, rx) = oneshot::channel();
    if commands
        .send(Command::Reload {
            config: new.clone(),
            reply,
        })
        .await
        .is_err()
    {
        return ReloadReply {
            ok: false,
            message: "the daemon is shutting down".into(),
        };
    }
    let summary = rx.await.unwrap_or_else(|_| "config reloaded".into());
    *current = new;
    let mut message = summary;
    for n in notes {
        message.push_str("; ");
        message.push_str(n);
    }
    ReloadReply { ok: true, message }
}

fn log_reload(reply: &ReloadReply) {
    if reply.ok {
        tracing::info!("{}", reply.message);
    } else {
        tracing::error!("{}", reply.message);
    }
}
