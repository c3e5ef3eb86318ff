//! `credfresh daemon`: wires the scheduler, the writer and the control socket together,
//! handles signals and config changes, and talks to the service manager. One cancellation
//! token stops every task.

use crate::api::{rfc3339, ReloadReply};
use crate::clock::Clock;
use crate::config::{self, Config};
use crate::control::{self, ControlState, Meta};
use crate::env::Environment;
use crate::metrics::Metrics;
use crate::scheduler::{Command, Scheduler};
use crate::service;
use crate::sources::{AwsFetcher, Fetcher};
use anyhow::Context;
use futures_util::StreamExt;
use notify::Watcher;
use sd_notify::NotifyState;
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;

/// Quiet time after the last change to the config file before it is re-read, so an editor's
/// save (often several events) causes one reload.
pub const CONFIG_DEBOUNCE: Duration = Duration::from_millis(300);

/// Runs the daemon for `config` (read from `config.path`) until SIGTERM or SIGINT.
/// `socket` overrides the configured socket path.
pub async fn run(config: Config, socket: Option<PathBuf>, env: Environment) -> anyhow::Result<()> {
    let socket = socket.unwrap_or_else(|| config.daemon.socket.clone());
    let started = std::time::SystemTime::now();
    ignore_sigxfsz();
    let mut signals = signal_hook_tokio::Signals::new([SIGTERM, SIGINT, SIGHUP])
        .context("cannot install signal handlers")?;
    // One daemon per credentials file; one that cannot create the lock (a read-only
    // directory) still serves what it can, as a failed write does.
    let _daemon_lock = match crate::daemon_lock::acquire(&config.daemon.credentials_file, &socket) {
        Ok(lock) => Some(lock),
        Err(e @ crate::daemon_lock::LockError::Held { .. }) => return Err(e.into()),
        Err(e) => {
            tracing::warn!("{e}; a second daemon for the same file would not be refused");
            None
        }
    };
    let listener = control::bind(&socket)
        .await
        .with_context(|| format!("cannot listen on the control socket {}", socket.display()))?;

    // Expiry is judged and refreshes planned by the clock of the servers that issue credentials.
    let clock: Arc<dyn Clock> = Arc::new(crate::skew::ServerClock);
    let stale_file = config.daemon.credentials_file.clone();
    let stale_sso = crate::sso::cache::cache_dir(env.home());
    let stale = tokio::task::spawn_blocking(move || {
        let mut removed = crate::credentials_file::remove_stale_temp_files(&stale_file, started);
        removed.extend(crate::sso::cache::remove_stale_temp_files(
            &stale_sso, started,
        ));
        removed
    })
    .await
    .unwrap_or_default();
    for p in stale {
        tracing::info!(file = %p.display(), "removed a temporary file left by an interrupted write");
    }
    let aws = AwsFetcher::load(&env, &config.daemon).await;
    let tokens = aws.tokens();
    let mfa = aws.mfa();
    mfa.set_profiles(&config);
    for note in &config.notes {
        tracing::warn!("{note}");
    }
    let fetcher: Arc<dyn Fetcher> = Arc::new(aws);
    let shutdown = CancellationToken::new();
    let (deliveries_tx, deliveries_rx) = mpsc::unbounded_channel();
    let metrics = Arc::new(Metrics::new());
    let redeliveries = deliveries_tx.clone();
    let (reports_tx, reports_rx) = mpsc::unbounded_channel();
    let (scheduler, profiles) =
        Scheduler::new(&config, fetcher, clock.clone(), deliveries_tx, reports_rx);
    let scheduler = scheduler.with_metrics(metrics.clone());
    let credentials = scheduler.credentials();
    // Deleted, truncated or hand-edited: the managed sections are put back within seconds.
    let file_watch = crate::file_watch::watch_file(
        &config.daemon.credentials_file,
        credentials.clone(),
        redeliveries,
        shutdown.clone(),
    );
    let (commands_tx, commands_rx) = mpsc::channel(64);
    let (file_error_tx, file_error_rx) = watch::channel(None);
    let (config_error_tx, config_error_rx) = watch::channel(None);
    let (reloads_tx, mut reloads_rx) = mpsc::channel::<oneshot::Sender<ReloadReply>>(8);

    let credentials_file = config.daemon.credentials_file.clone();
    let (prunes_tx, prunes_rx) = mpsc::channel(8);
    let writer = tokio::spawn(crate::writer::run(
        credentials_file.clone(),
        deliveries_rx,
        prunes_rx,
        clock,
        crate::writer::Outcomes {
            errors: file_error_tx,
            reports: reports_tx,
        },
        metrics.clone(),
        shutdown.clone(),
    ));
    let scheduler = tokio::spawn(scheduler.run(commands_rx, shutdown.clone()));
    tokio::spawn(service::report_status(profiles.clone(), shutdown.clone()));
    tokio::spawn(service::watchdog(commands_tx.clone(), shutdown.clone()));
    tokio::spawn(service::keep_flushing(shutdown.clone()));
    let state = ControlState {
        meta: Meta {
            version: env!("CARGO_PKG_VERSION").to_owned(),
            pid: std::process::id(),
            started_at: rfc3339(std::time::SystemTime::now()),
            credentials_file: credentials_file.display().to_string(),
        },
        profiles,
        file_error: file_error_rx,
        config_error: config_error_rx,
        credentials,
        metrics,
        commands: refresh_retries_tokens(commands_tx.clone(), tokens.clone()),
        reloads: reloads_tx,
        prunes: prunes_tx,
        mfa: mfa.clone(),
        waits: Default::default(),
        refreshes: Default::default(),
    };
    if let Some(endpoint) = &config.daemon.container {
        let bound = crate::container::bind(
            endpoint,
            state.credentials.clone(),
            state.profiles.clone(),
            started,
        )
        .await;
        let (listener, container) = match bound {
            Ok(b) => b,
            Err(e) => {
                control::remove_socket(&socket);
                return Err(e).with_context(|| {
                    format!(
                        "cannot start the container credentials endpoint on {}",
                        endpoint.addr
                    )
                });
            }
        };
        tracing::info!(
            address = %endpoint.addr,
            token_file = %endpoint.token_file.display(),
            "container credentials endpoint listening"
        );
        tokio::spawn(crate::container::serve(
            listener,
            container,
            shutdown.clone(),
        ));
    }
    let mut server = Server::spawn(listener, &state, &shutdown);
    let (socket_gone_tx, mut socket_gone_rx) = mpsc::unbounded_channel();
    let mut socket_watch = watch_socket(&socket, socket_gone_tx.clone());
    let (changes_tx, mut changes_rx) = mpsc::unbounded_channel();
    let mut config_watch = ConfigWatch::new(&config.path, changes_tx);
    let sso_cache = crate::sso::cache::cache_dir(env.home());
    let mut sso_watcher = None;
    start_sso_watcher(
        &mut sso_watcher,
        &config,
        &sso_cache,
        &commands_tx,
        &shutdown,
    );
    tracing::info!(
        config = %config.path.display(),
        socket = %socket.display(),
        credentials_file = %credentials_file.display(),
        profiles = config.profiles.len(),
        "credfresh {} started",
        env!("CARGO_PKG_VERSION")
    );
    if let Some(f) = crate::mounts::single_file_mount(&credentials_file) {
        tracing::warn!("{}", crate::mounts::advice(&f));
    }
    service::notify(&[NotifyState::Ready]);

    let mut current = Current {
        text: read_text(config.path.clone()).await,
        config,
    };
    let mut debounce: Option<tokio::time::Instant> = None;
    loop {
        let settle = async {
            match debounce {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        // A signal or request re-reads the config even when its text is unchanged (`forced`)
        // and always logs the outcome; a change in the file is applied once it settles.
        let (forced, requester) = tokio::select! {
            signal = signals.next() => match signal {
                Some(SIGHUP) => (true, None),
                Some(sig) => {
                    tracing::info!(signal = sig, "stopping");
                    break;
                }
                None => break,
            },
            Some(reply) = reloads_rx.recv() => (true, Some(reply)),
            Some(()) = socket_gone_rx.recv() => {
                if server.rebind_if_gone(&socket, &state, &shutdown).await {
                    socket_watch = watch_socket(&socket, socket_gone_tx.clone());
                }
                continue;
            }
            Some(()) = changes_rx.recv() => {
                debounce = Some(tokio::time::Instant::now() + CONFIG_DEBOUNCE);
                continue;
            }
            _ = settle => {
                debounce = None;
                (false, None)
            }
        };
        if forced && server.rebind_if_gone(&socket, &state, &shutdown).await {
            socket_watch = watch_socket(&socket, socket_gone_tx.clone());
        }
        let outcome = reload(&mut current, &env, &commands_tx, &config_error_tx, forced).await;
        tokens.set_settings(crate::sources::token_settings(&env, &current.config.daemon));
        tokens.retain_sessions(&sso_sessions(&current.config));
        mfa.set_settings(crate::sources::mfa_settings(&env, &current.config.daemon));
        mfa.set_profiles(&current.config);
        start_sso_watcher(
            &mut sso_watcher,
            &current.config,
            &sso_cache,
            &commands_tx,
            &shutdown,
        );
        config_watch.follow();
        if forced || !outcome.message.is_empty() {
            log_reload(&outcome);
        }
        if let Some(requester) = requester {
            let _ = requester.send(outcome);
        }
    }

    service::notify(&[NotifyState::Stopping]);
    shutdown.cancel();
    drop(socket_watch);
    drop(file_watch);
    let _ = server.task.await;
    let _ = scheduler.await;
    // The writer finishes the write in flight and flushes what is pending before it returns.
    let _ = writer.await;
    control::remove_socket(&socket);
    tracing::info!("stopped");
    Ok(())
}

/// The control server, and the token that stops it alone when it is replaced.
struct Server {
    task: tokio::task::JoinHandle<()>,
    stop: CancellationToken,
}

impl Server {
    fn spawn(
        listener: tokio::net::UnixListener,
        state: &ControlState,
        shutdown: &CancellationToken,
    ) -> Server {
        let stop = shutdown.child_token();
        let task = tokio::spawn(control::serve(listener, state.clone(), stop.clone()));
        Server { task, stop }
    }

    /// Binds the socket again when its file was deleted (a tmp cleaner, a user's `rm`): the
    /// old listener is unreachable, so clients would find no daemon while this one holds the
    /// credentials file. Returns whether it rebound.
    async fn rebind_if_gone(
        &mut self,
        socket: &Path,
        state: &ControlState,
        shutdown: &CancellationToken,
    ) -> bool {
        if std::fs::symlink_metadata(socket).is_ok() || shutdown.is_cancelled() {
            return false;
        }
        match control::bind(socket).await {
            Ok(listener) => {
                self.stop.cancel();
                *self = Server::spawn(listener, state, shutdown);
                tracing::warn!(socket = %socket.display(), "the control socket was deleted; listening on it again");
                true
            }
            Err(e) => {
                tracing::error!(socket = %socket.display(), "the control socket was deleted and cannot be recreated ({e}); send SIGHUP to try again");
                false
            }
        }
    }
}

/// Watches the socket's directory and sends on `gone` when the socket file is removed (or
/// its directory is). Returns `None`, logged, when watching is unavailable: SIGHUP still
/// recreates a deleted socket.
fn watch_socket(
    socket: &Path,
    gone: mpsc::UnboundedSender<()>,
) -> Option<notify::RecommendedWatcher> {
    let dir = socket.parent()?.to_owned();
    let name = socket.file_name()?.to_owned();
    let watched = dir.clone();
    let watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        let Ok(event) = event else { return };
        // Only the socket itself or its directory; other files there are nobody's business.
        let ours = event
            .paths
            .iter()
            .any(|p| p.file_name() == Some(name.as_os_str()) || *p == watched);
        if ours && matches!(event.kind, notify::EventKind::Remove(_)) {
            let _ = gone.send(());
        }
    });
    let mut watcher = match watcher {
        Ok(w) => w,
        Err(e) => {
            tracing::warn!(
                "cannot watch the control socket ({e}); SIGHUP recreates it if it is deleted"
            );
            return None;
        }
    };
    if let Err(e) = watcher.watch(&dir, notify::RecursiveMode::NonRecursive) {
        tracing::warn!(dir = %dir.display(), "cannot watch the control socket's directory ({e}); SIGHUP recreates the socket if it is deleted");
        return None;
    }
    Some(watcher)
}

/// Makes a write beyond `RLIMIT_FSIZE` fail with `EFBIG` (reported and retried like a full
/// disk) instead of killing the daemon with SIGXFSZ.
fn ignore_sigxfsz() {
    use nix::sys::signal::{signal, SigHandler, Signal};
    // SAFETY: installing SIG_IGN runs no code in signal context and replaces no handler
    // this program relies on.
    if let Err(e) = unsafe { signal(Signal::SIGXFSZ, SigHandler::SigIgn) } {
        tracing::warn!("cannot ignore SIGXFSZ ({e}); a file size limit would kill the daemon");
    }
}

/// The running config and the text it was read from.
struct Current {
    config: Config,
    text: String,
}

/// The config watcher, and the file the config resolved to when it was set up.
struct ConfigWatch {
    path: PathBuf,
    target: Option<PathBuf>,
    changes: mpsc::UnboundedSender<()>,
    _watcher: Option<notify::RecommendedWatcher>,
}

impl ConfigWatch {
    fn new(path: &Path, changes: mpsc::UnboundedSender<()>) -> Self {
        let target = std::fs::canonicalize(path).ok();
        ConfigWatch {
            _watcher: watch_config(path, target.as_deref(), changes.clone()),
            path: path.to_owned(),
            target,
            changes,
        }
    }

    /// Watches the new target after a reload found the config's symlink pointing elsewhere.
    fn follow(&mut self) {
        if std::fs::canonicalize(&self.path).ok() != self.target {
            *self = ConfigWatch::new(&self.path, self.changes.clone());
        }
    }
}

/// Watches the config file's directory (editors and Kubernetes replace files by rename, so
/// the file itself cannot be watched) and, when the config is a symlink into another
/// directory (dotfiles), the directory of `target`, where it points. Returns `None`, logged,
/// when watching is unavailable: SIGHUP and `credfresh reload` still work.
fn watch_config(
    path: &Path,
    target: Option<&Path>,
    changes: mpsc::UnboundedSender<()>,
) -> Option<notify::RecommendedWatcher> {
    let dir = path.parent()?;
    let mut names = vec![path.file_name()?.to_owned()];
    let target_dir = target
        .and_then(|t| Some((t.parent()?, t.file_name()?)))
        .filter(|(d, _)| std::fs::canonicalize(dir).ok().as_deref() != Some(*d))
        .map(|(d, name)| {
            names.push(name.to_owned());
            d.to_owned()
        });
    let watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        let Ok(event) = event else { return };
        // The config itself or its target, or a Kubernetes ConfigMap's `..data` symlink swap.
        let relevant = event.paths.iter().any(|p| {
            p.file_name().is_some_and(|n| {
                names.iter().any(|name| name == n) || n.to_string_lossy().starts_with("..")
            })
        });
        if relevant && !event.kind.is_access() {
            let _ = changes.send(());
        }
    });
    let mut watcher = match watcher {
        Ok(w) => w,
        Err(e) => {
            tracing::warn!(
                "cannot watch the config for changes ({e}); use SIGHUP or `credfresh reload`"
            );
            return None;
        }
    };
    for dir in std::iter::once(dir).chain(target_dir.as_deref()) {
        if let Err(e) = watcher.watch(dir, notify::RecursiveMode::NonRecursive) {
            tracing::warn!(dir = %dir.display(), "cannot watch the config directory ({e}); use SIGHUP or `credfresh reload`");
            return None;
        }
    }
    Some(watcher)
}

/// The control server's command channel: a `refresh` asked for by a user first lets every SSO
/// session retry a token refresh that failed a moment ago, then goes to the scheduler.
fn refresh_retries_tokens(
    scheduler: mpsc::Sender<Command>,
    tokens: std::sync::Arc<crate::sso::TokenManager>,
) -> mpsc::Sender<Command> {
    let (tx, mut rx) = mpsc::channel(64);
    tokio::spawn(async move {
        while let Some(cmd) = rx.recv().await {
            if matches!(cmd, Command::Refresh { .. }) {
                tokens.retry_now();
            }
            if scheduler.send(cmd).await.is_err() {
                return;
            }
        }
    });
    tx
}

/// The SSO sessions `config`'s profiles use.
fn sso_sessions(config: &Config) -> Vec<&crate::config::SsoSession> {
    config
        .profiles
        .iter()
        .filter_map(|p| match &p.source {
            crate::config::ProfileSource::Sso(s) => Some(&s.session),
            _ => None,
        })
        .collect()
}

/// Starts watching the SSO token cache once the config has an `sso` profile; a daemon with
/// none (a sidecar) neither creates nor watches `~/.aws/sso/cache`.
fn start_sso_watcher(
    watcher: &mut Option<notify::RecommendedWatcher>,
    config: &Config,
    dir: &Path,
    commands: &mpsc::Sender<Command>,
    shutdown: &CancellationToken,
) {
    let has_sso = config
        .profiles
        .iter()
        .any(|p| matches!(p.source, crate::config::ProfileSource::Sso(_)));
    if watcher.is_none() && has_sso {
        *watcher = watch_sso_cache(dir, commands.clone(), shutdown.clone());
    }
}

/// Quiet time after the last change in the SSO token cache before the profiles of the changed
/// sessions are refreshed (an `aws sso login` writes the file in several steps).
pub const SSO_CACHE_DEBOUNCE: Duration = Duration::from_millis(200);

/// Watches `~/.aws/sso/cache` (created 0700 when missing, as the AWS CLI creates it) so an
/// `aws sso login` or `credfresh login` elsewhere moves `login_required` profiles on at once.
/// Returns `None`, logged, when watching is unavailable: `credfresh refresh` still works.
fn watch_sso_cache(
    dir: &Path,
    commands: mpsc::Sender<Command>,
    shutdown: CancellationToken,
) -> Option<notify::RecommendedWatcher> {
    use std::os::unix::fs::DirBuilderExt;
    if let Err(e) = std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
    {
        tracing::warn!(dir = %dir.display(), "cannot create the SSO token cache directory ({e}); new SSO logins are noticed on the next refresh only");
        return None;
    }
    let (tx, mut rx) = mpsc::unbounded_channel::<String>();
    let watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        let Ok(event) = event else { return };
        if event.kind.is_access() {
            return;
        }
        for p in &event.paths {
            let Some(name) = p.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            if let Some(key) = name.strip_suffix(".json").filter(|k| !k.starts_with('.')) {
                let _ = tx.send(key.to_owned());
            }
        }
    });
    let mut watcher = match watcher {
        Ok(w) => w,
        Err(e) => {
            tracing::warn!("cannot watch the SSO token cache ({e}); new SSO logins are noticed on the next refresh only");
            return None;
        }
    };
    if let Err(e) = watcher.watch(dir, notify::RecursiveMode::NonRecursive) {
        tracing::warn!(dir = %dir.display(), "cannot watch the SSO token cache ({e}); new SSO logins are noticed on the next refresh only");
        return None;
    }
    let dir = dir.to_owned();
    tokio::spawn(async move {
        loop {
            let first = tokio::select! {
                _ = shutdown.cancelled() => return,
                k = rx.recv() => match k { Some(k) => k, None => return },
            };
            let mut keys = vec![first];
            let settle = tokio::time::sleep(SSO_CACHE_DEBOUNCE);
            tokio::pin!(settle);
            loop {
                tokio::select! {
                    _ = &mut settle => break,
                    k = rx.recv() => match k {
                        Some(k) => {
                            if !keys.contains(&k) {
                                keys.push(k);
                            }
                            settle.as_mut().reset(tokio::time::Instant::now() + SSO_CACHE_DEBOUNCE);
                        }
                        None => return,
                    },
                }
            }
            // The daemon's own writes (a refreshed token) are no news: reacting to them
            // would retry a failing profile at once instead of after its backoff.
            keys.retain(|k| !crate::sso::cache::is_own_write(&dir.join(format!("{k}.json"))));
            if keys.is_empty() {
                continue;
            }
            tracing::debug!(files = keys.len(), "SSO token cache changed");
            if commands.send(Command::SsoCacheChanged(keys)).await.is_err() {
                return;
            }
        }
    });
    Some(watcher)
}

/// Re-reads the config file; applies it when valid, keeps the running config otherwise.
/// Unless `forced`, an unchanged file is left alone and the reply's message is empty.
async fn reload(
    current: &mut Current,
    env: &Environment,
    commands: &mpsc::Sender<Command>,
    config_error: &watch::Sender<Option<String>>,
    forced: bool,
) -> ReloadReply {
    let path = current.config.path.clone();
    let text = read_text(path).await;
    if !forced && text == current.text {
        return ReloadReply {
            ok: true,
            message: String::new(),
        };
    }
    current.text = text;
    service::reloading();
    let reply = apply(current, env, commands).await;
    config_error.send_replace((!reply.ok).then(|| reply.message.clone()));
    service::notify(&[NotifyState::Ready]);
    reply
}

async fn apply(
    current: &mut Current,
    env: &Environment,
    commands: &mpsc::Sender<Command>,
) -> ReloadReply {
    let (path, env) = (current.config.path.clone(), env.clone());
    // Reading the config (and ~/.aws/config) is file I/O: off the runtime thread.
    let loaded = tokio::task::spawn_blocking(move || config::load(&path, &env)).await;
    let new = match loaded {
        Ok(Ok(c)) => c,
        Err(e) => {
            return ReloadReply {
                ok: false,
                message: format!("new config not read, still running the previous one: {e}"),
            }
        }
        Ok(Err(e)) => {
            return ReloadReply {
                ok: false,
                message: format!("new config rejected, still running the previous one: {e}"),
            }
        }
    };
    let old = &current.config.daemon;
    let mut notes = Vec::new();
    if new.daemon.credentials_file != old.credentials_file {
        notes.push("a changed credentials_file takes effect after a restart");
    }
    if new.daemon.socket != old.socket {
        notes.push("a changed socket takes effect after a restart");
    }
    if new.daemon.container != old.container {
        notes.push("a changed container_endpoint takes effect after a restart");
    }
    if new.daemon.log_format != old.log_format {
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
    let mut message = rx.await.unwrap_or_else(|_| "config reloaded".into());
    for note in new
        .notes
        .iter()
        .filter(|n| !current.config.notes.contains(n))
    {
        tracing::warn!("{note}");
    }
    current.config = new;
    for n in notes {
        message.push_str("; ");
        message.push_str(n);
    }
    ReloadReply { ok: true, message }
}

/// The text of the file at `path` ("" when unreadable), read off the runtime thread.
async fn read_text(path: PathBuf) -> String {
    tokio::task::spawn_blocking(move || std::fs::read_to_string(path).unwrap_or_default())
        .await
        .unwrap_or_default()
}

fn log_reload(reply: &ReloadReply) {
    if reply.ok {
        tracing::info!("{}", reply.message);
    } else {
        tracing::error!("{}", reply.message);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sso::tests::{hold_session, manager, session};

    #[tokio::test]
    async fn a_refresh_is_passed_on_while_a_token_refresh_is_in_flight() {
        let dir = tempfile::tempdir().unwrap();
        let tokens = Arc::new(manager(dir.path(), 600, 60));
        // A CreateToken in flight holds its session's lock for up to 30 s.
        let _in_flight = hold_session(&tokens, &session()).await;
        let (scheduler, mut commands) = mpsc::channel(4);
        let forward = refresh_retries_tokens(scheduler, tokens);
        let (reply, _) = oneshot::channel();
        forward
            .send(Command::Refresh {
                names: vec![],
                reply,
            })
            .await
            .unwrap();
        let got = tokio::time::timeout(Duration::from_secs(5), commands.recv()).await;
        assert!(
            matches!(got, Ok(Some(Command::Refresh { .. }))),
            "the refresh waited for the token refresh"
        );
    }
}
