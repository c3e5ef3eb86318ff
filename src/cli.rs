//! The command line: parses arguments, runs the command, maps errors to exit codes
//! (0 ok, 1 runtime failure, 2 usage or config error, 3 daemon not running).

use crate::api::{parse_rfc3339, ProfileState, ProfileStatus, ReloadReply, Status};
use crate::client::{self, ClientError};
use crate::config::{self, Config, ProfileSource, SourceRef};
use crate::control::{RefreshReply, RefreshRequest};
use crate::env::Environment;
use clap::{Parser, Subcommand};
use futures_util::future::LocalBoxFuture;
use hyper::{Method, StatusCode};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

/// Exit code for a runtime failure.
pub const EXIT_FAILURE: u8 = 1;
/// Exit code for a usage or config error.
pub const EXIT_USAGE: u8 = 2;
/// Exit code when the daemon is not running.
pub const EXIT_NOT_RUNNING: u8 = 3;

/// Keeps temporary AWS credentials fresh in ~/.aws/credentials and serves them over a local socket.
#[derive(Debug, Parser)]
#[command(
    name = "credfresh",
    version,
    about,
    after_help = "\
Examples:
  credfresh validate                 check the config and show what would be managed
  credfresh daemon                   run in the foreground (what the service units start)
  credfresh status                   show every profile's state
  credfresh refresh metaflow         refresh one profile now and wait for the result
  credfresh check metaflow --bucket s3://my-bucket
                                     prove the credentials work: identity and an S3 round trip
  credfresh init                     write a starter config from ~/.aws/config

Exit codes: 0 ok, 1 runtime failure, 2 usage or config error, 3 daemon not running."
)]
pub struct Cli {
    /// Config file [default: $CREDFRESH_CONFIG, else $XDG_CONFIG_HOME/credfresh/config.toml]
    #[arg(long, global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// Control socket [default: from the config, else $XDG_RUNTIME_DIR/credfresh/credfresh.sock]
    #[arg(long, global = true, value_name = "PATH")]
    pub socket: Option<PathBuf>,
    /// Log level of the daemon: error, warn, info, debug or trace [default: $RUST_LOG, else info]
    #[arg(long, global = true, value_name = "LEVEL", value_parser = ["error", "warn", "info", "debug", "trace"])]
    pub log_level: Option<String>,
    /// What to do.
    #[command(subcommand)]
    pub command: Cmd,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Run the daemon in the foreground; logs go to stderr.
    #[command(
        after_help = "Examples:\n  credfresh daemon\n  RUST_LOG=credfresh=debug credfresh --config ./config.toml daemon"
    )]
    Daemon,
    /// Show the state of every managed profile (or one) from the running daemon.
    #[command(
        after_help = "Examples:\n  credfresh status\n  credfresh status metaflow\n  credfresh status --json | jq '.profiles[].state'"
    )]
    Status {
        /// Print the daemon's JSON instead of a table.
        #[arg(long)]
        json: bool,
        /// Redraw every 2 seconds until interrupted.
        #[arg(long)]
        watch: bool,
        /// Only this profile.
        profile: Option<String>,
    },
    /// Refresh profiles now (all when none is named) and wait for the result.
    #[command(
        after_help = "Examples:\n  credfresh refresh\n  credfresh refresh metaflow sso-admin"
    )]
    Refresh {
        /// Profiles to refresh.
        profiles: Vec<String>,
    },
    /// Print a profile's credentials as AWS `credential_process` JSON (from the daemon's
    /// memory; fetched directly when no daemon runs).
    #[command(
        name = "credential-process",
        after_help = "Use it from ~/.aws/config, so SDKs refresh by themselves:\n  [profile metaflow-live]\n  credential_process = /usr/bin/credfresh credential-process metaflow\n\nExamples:\n  credfresh credential-process metaflow"
    )]
    CredentialProcess {
        /// The managed profile.
        profile: String,
    },
    /// Print shell lines that make SDKs in this shell get a profile's credentials from the
    /// daemon (container endpoint, or a `credential_process` profile), refreshing by themselves.
    #[command(
        after_help = "Examples:\n  eval \"$(credfresh env metaflow)\"     # then start python / jupyter from this shell\n  credfresh env --process metaflow >> ~/.aws/config"
    )]
    Env {
        /// The managed profile.
        profile: String,
        /// Print the ~/.aws/config snippet for `credential_process` even when the container
        /// endpoint is enabled.
        #[arg(long)]
        process: bool,
    },
    /// Check that profiles' credentials work: who they are (STS GetCallerIdentity) and, with
    /// --bucket, an S3 round trip (put, list, head, get, delete a small object).
    #[command(
        after_help = "Credentials come from the running daemon; without one they are fetched directly.\n\
Each step prints one line (ok / FAILED with the reason: AccessDenied naming the IAM action,\n\
ExpiredToken, NoSuchBucket, an unreachable endpoint). Exit code 1 when any step fails.\n\n\
Examples:\n  credfresh check                              every managed profile\n  credfresh check metaflow --bucket s3://my-metaflow-bucket\n  credfresh check ml --bucket s3://data-lake/team-a/    probe under a prefix the role may write\n  AWS_ENDPOINT_URL_S3=http://localhost:9000 credfresh check dev --bucket s3://test"
    )]
    Check {
        /// Only this managed profile (all when omitted).
        profile: Option<String>,
        /// Also probe this bucket: s3://BUCKET or s3://BUCKET/PREFIX. The probe object is
        /// PREFIX/credfresh-check/<unique>.txt and is deleted at the end.
        #[arg(long, value_name = "s3://BUCKET[/PREFIX]", value_parser = crate::check::parse_bucket)]
        bucket: Option<crate::check::BucketArg>,
    },
    /// Write a starter config from the role, SSO and web identity profiles in ~/.aws/config.
    #[command(
        after_help = "The config goes where the daemon looks for it: --config, else $CREDFRESH_CONFIG, else\n\
~/.config/credfresh/config.toml. An existing file is kept unless --force is given.\n\n\
Examples:\n  credfresh init && credfresh validate\n  credfresh --config ./config.toml init --force\n  AWS_CONFIG_FILE=./aws-config credfresh init"
    )]
    Init {
        /// Overwrite an existing config file.
        #[arg(long)]
        force: bool,
    },
    /// Sign in to an IAM Identity Center (SSO) session with the device authorization flow,
    /// write the token cache the AWS CLI uses, and have the daemon refresh that session's
    /// profiles.
    #[command(
        after_help = "Examples:\n  credfresh login\n  credfresh login --sso-session acme\n  credfresh login --sso-session acme --no-browser     # on a remote machine: open the URL elsewhere\n\nOne login serves every profile of the session. `aws sso login` works as well: the daemon notices the new token."
    )]
    Login {
        /// The [sso-session NAME] of ~/.aws/config (or the start URL of a legacy inline
        /// profile); needed when the config uses several sessions.
        #[arg(long, value_name = "NAME")]
        sso_session: Option<String>,
        /// Do not open a browser; only print the URL and the code.
        #[arg(long)]
        no_browser: bool,
    },
    /// Make the daemon re-read its config (same as SIGHUP).
    #[command(after_help = "Examples:\n  credfresh reload")]
    Reload,
    /// Remove the credentials file sections credfresh wrote for profiles that are no longer
    /// in the config (sections holding `x_credfresh_expiration`); prints what it removed.
    /// Nothing else is touched, and nothing is ever removed without this command.
    #[command(
        after_help = "Examples:\n  credfresh prune --dry-run   # list what would go\n  credfresh prune"
    )]
    Prune {
        /// Only list the sections that would be removed.
        #[arg(long)]
        dry_run: bool,
    },
    /// Check the config and print what would be managed.
    #[command(
        after_help = "Examples:\n  credfresh validate\n  credfresh --config ./config.toml validate"
    )]
    Validate,
    /// Print a shell completion script.
    #[command(
        after_help = "Examples:\n  credfresh completions bash > ~/.local/share/bash-completion/completions/credfresh\n  credfresh completions zsh > ~/.zfunc/_credfresh"
    )]
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff) on stdout.
    #[command(
        after_help = "Examples:\n  credfresh man | gzip > credfresh.1.gz\n  credfresh man | man -l -"
    )]
    Man,
}

/// The program that runs `credfresh check`, installed beside `credfresh`.
pub const CHECK_PROGRAM: &str = "credfresh-check";
/// Set for [`CHECK_PROGRAM`] to the version of the `credfresh` that runs it: one found on
/// `PATH` may come from another release, and refuses to run then.
pub const CHECK_VERSION_VAR: &str = "CREDFRESH_CHECK_FOR";

/// What `credfresh check` was asked to do. The socket is worked out (which may read the
/// config) by the program that runs the check, not by the one that hands over to it.
pub struct CheckArgs {
    /// `--socket`, if given.
    pub socket: Option<PathBuf>,
    pub config_path: PathBuf,
    pub env: Environment,
    pub profile: Option<String>,
    pub bucket: Option<crate::check::BucketArg>,
}

impl CheckArgs {
    /// The daemon's socket: `--socket`, else the config's, else the default.
    pub fn socket(&self) -> PathBuf {
        client_socket(self.socket.clone(), &self.config_path, &self.env)
    }
}

/// Runs `credfresh check`. The S3 probe lives in a program of its own ([`CHECK_PROGRAM`]) so
/// the daemon does not carry the S3 client: `credfresh` hands the command line over to it
/// ([`exec_check`]); `credfresh-check` runs [`crate::check::command`].
pub type CheckCommand = fn(CheckArgs) -> LocalBoxFuture<'static, u8>;

/// Parses the process arguments and runs the command (`credfresh`).
pub fn main() -> ExitCode {
    main_with(exec_check)
}

/// Replaces this process with [`CHECK_PROGRAM`] (beside this executable, else on `PATH`),
/// passing the same arguments; returns only when it cannot be started.
fn exec_check(_: CheckArgs) -> LocalBoxFuture<'static, u8> {
    use std::os::unix::process::CommandExt;
    let beside = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|dir| dir.join(CHECK_PROGRAM)))
        .filter(|p| p.is_file());
    let program = beside.unwrap_or_else(|| PathBuf::from(CHECK_PROGRAM));
    let err = std::process::Command::new(&program)
        .arg0("credfresh")
        .env(CHECK_VERSION_VAR, env!("CARGO_PKG_VERSION"))
        .args(std::env::args_os().skip(1))
        .exec();
    eprintln!(
        "credfresh: `check` runs {CHECK_PROGRAM}, which is installed beside credfresh; \
         cannot start {}: {err}",
        program.display()
    );
    Box::pin(std::future::ready(EXIT_FAILURE))
}

/// Parses the process arguments and runs the command, `check` with `check`.
pub fn main_with(check: CheckCommand) -> ExitCode {
    let cli = Cli::parse();
    let env = Environment::from_process();
    let config_path = cli
        .config
        .clone()
        .unwrap_or_else(|| env.default_config_file());
    // One thread is plenty for a daemon that mostly sleeps, and keeps its memory small; file
    // writes run on the blocking pool.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build();
    let runtime = match runtime {
        Ok(r) => r,
        Err(e) => {
            eprintln!("credfresh: cannot start the async runtime: {e}");
            return ExitCode::from(EXIT_FAILURE);
        }
    };
    let code = runtime.block_on(run(cli, config_path.clone(), env.clone(), check));
    if code == EXIT_NOT_RUNNING {
        explain_missing_socket(&config_path, &env);
    }
    ExitCode::from(code)
}

/// After "no daemon": says so when a daemon does hold the credentials file but its socket
/// is gone (deleted), and how to get it back.
fn explain_missing_socket(config_path: &Path, env: &Environment) {
    let Ok(config) = config::load(config_path, env) else {
        return;
    };
    if let Some(holder) = crate::daemon_lock::holder(&config.daemon.credentials_file) {
        let hup = holder
            .pid
            .map_or_else(String::new, |pid| format!(" (`kill -HUP {pid}`)"));
        eprintln!(
            "credfresh: but a daemon ({}) holds {}: if its socket is gone, send it SIGHUP{hup} to recreate it",
            holder.describe(),
            config.daemon.credentials_file.display()
        );
    }
}

async fn run(cli: Cli, config_path: PathBuf, env: Environment, check: CheckCommand) -> u8 {
    match cli.command {
        Cmd::Daemon => {
            let config = match config::load(&config_path, &env) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("credfresh: invalid config:\n{e}");
                    return EXIT_USAGE;
                }
            };
            crate::logging::init(config.daemon.log_format, cli.log_level.as_deref());
            match crate::daemon::run(config, cli.socket, env).await {
                Ok(()) => 0,
                Err(e) => {
                    tracing::error!("{e:#}");
                    EXIT_FAILURE
                }
            }
        }
        Cmd::Validate => validate(&config_path, &env),
        Cmd::Completions { shell } => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(shell, &mut cmd, "credfresh", &mut std::io::stdout());
            0
        }
        Cmd::Man => {
            let cmd = <Cli as clap::CommandFactory>::command();
            match clap_mangen::Man::new(cmd).render(&mut std::io::stdout()) {
                Ok(()) => 0,
                Err(e) => {
                    eprintln!("credfresh: cannot write the man page: {e}");
                    EXIT_FAILURE
                }
            }
        }
        Cmd::Status {
            json,
            watch,
            profile,
        } => {
            let socket = client_socket(cli.socket, &config_path, &env);
            status(&socket, json, profile, watch).await
        }
        Cmd::Refresh { profiles } => {
            let socket = client_socket(cli.socket, &config_path, &env);
            refresh(&socket, profiles).await
        }
        Cmd::CredentialProcess { profile } => {
            let socket = client_socket(cli.socket, &config_path, &env);
            credential_process(&socket, &config_path, &env, &profile).await
        }
        Cmd::Check { profile, bucket } => {
            check(CheckArgs {
                socket: cli.socket,
                config_path,
                env,
                profile,
                bucket,
            })
            .await
        }
        Cmd::Init { force } => crate::init::run(&config_path, &env, force),
        Cmd::Login {
            sso_session,
            no_browser,
        } => {
            let socket = client_socket(cli.socket, &config_path, &env);
            login(&socket, &config_path, &env, sso_session, no_browser).await
        }
        Cmd::Env { profile, process } => env_lines(&config_path, &env, &profile, process),
        Cmd::Reload => {
            let socket = client_socket(cli.socket, &config_path, &env);
            reload(&socket).await
        }
        Cmd::Prune { dry_run } => {
            let socket = client_socket(cli.socket, &config_path, &env);
            prune(&socket, dry_run).await
        }
    }
}

/// The socket a client command talks to: `--socket`, else the config's, else the default.
/// A broken config on disk still yields its socket (read leniently), with a warning on stderr,
/// so the running daemon is found and can say why it refuses the file.
fn client_socket(flag: Option<PathBuf>, config_path: &Path, env: &Environment) -> PathBuf {
    let hint = config::socket_hint(config_path, env);
    if let Some(broken) = &hint.broken {
        eprintln!("credfresh: warning: the config on disk is broken (the running daemon keeps the one it loaded):\n{broken}");
    }
    flag.or(hint.socket).unwrap_or_else(|| env.default_socket())
}

fn validate(path: &Path, env: &Environment) -> u8 {
    match config::load(path, env) {
        Ok(c) => {
            print!("{}", describe(&c));
            0
        }
        Err(e) => {
            eprintln!("{e}");
            EXIT_USAGE
        }
    }
}

/// What `validate` prints: where things go and each profile's source.
pub fn describe(c: &Config) -> String {
    let mut out = format!(
        "config ok: {}\ncredentials file: {}\nsocket: {}\nrefresh before expiry: {}\n",
        c.path.display(),
        c.daemon.credentials_file.display(),
        c.daemon.socket.display(),
        humantime::format_duration(c.daemon.refresh_before),
    );
    if c.profiles.is_empty() {
        out.push_str("no profiles are managed; add [[profile]] tables\n");
    }
    for p in &c.profiles {
        let detail = match &p.source {
            ProfileSource::AssumeRole(ar) => {
                let from = match &ar.source {
                    SourceRef::Managed(s) => format!("managed profile \"{s}\""),
                    SourceRef::Aws(s) => format!("AWS profile \"{s}\""),
                };
                format!(
                    "assumes {} for {} with credentials of {from}",
                    ar.role_arn,
                    humantime::format_duration(ar.duration)
                )
            }
            ProfileSource::AwsProfile { aws_profile } => {
                format!("resolves AWS profile \"{aws_profile}\" through the SDK")
            }
            ProfileSource::WebIdentity(w) => format!(
                "assumes {} for {} with the web identity token in {}",
                w.role_arn,
                humantime::format_duration(w.duration),
                w.token_file.display()
            ),
            ProfileSource::Sso(s) => format!(
                "gets {} in account {} from SSO session \"{}\" ({}, {})",
                s.role_name,
                s.account_id,
                s.session.label(),
                s.session.start_url,
                s.session.region
            ),
            ProfileSource::Instance => {
                "takes the instance's or container's role credentials (container endpoint, else IMDSv2)".to_owned()
            }
        };
        out.push_str(&format!("  [{}] {detail}\n", p.name));
    }
    out
}

pub(crate) fn fail(e: ClientError) -> u8 {
    eprintln!("credfresh: {e}");
    match e {
        ClientError::NotRunning(_) => EXIT_NOT_RUNNING,
        ClientError::Failed { .. } | ClientError::Busy(_) => EXIT_FAILURE,
    }
}

/// Prints a non-success reply's error and picks the exit code for it.
pub(crate) fn reply_error(code: StatusCode, body: &[u8]) -> u8 {
    let msg = serde_json::from_slice::<crate::api::ErrorReply>(body)
        .map(|e| e.error)
        .unwrap_or_else(|_| String::from_utf8_lossy(body).into_owned());
    eprintln!("credfresh: {msg}");
    if code == StatusCode::NOT_FOUND {
        EXIT_USAGE
    } else {
        EXIT_FAILURE
    }
}

async fn status(socket: &Path, json: bool, profile: Option<String>, watch: bool) -> u8 {
    let path = match &profile {
        Some(p) => client::url_path(&["v1", "profiles", p]),
        None => "/v1/status".to_owned(),
    };
    let colour = colour_stdout();
    loop {
        let (code, body) = match client::request(socket, Method::GET, &path, None).await {
            Ok(r) => r,
            Err(e) => return fail(e),
        };
        if !code.is_success() {
            return reply_error(code, &body);
        }
        let text = if json {
            format!("{}\n", String::from_utf8_lossy(&body).trim_end())
        } else {
            match render_status(&body, profile.is_some(), colour) {
                Ok(t) => t,
                Err(e) => return bad_reply(e),
            }
        };
        if !watch {
            print!("{text}");
            return 0;
        }
        // Clear the screen on a terminal; separate snapshots with a blank line otherwise.
        if colour {
            print!("\x1b[2J\x1b[H{text}");
        } else {
            println!("{text}");
        }
        use std::io::Write;
        let _ = std::io::stdout().flush();
        tokio::time::sleep(WATCH_INTERVAL).await;
    }
}

/// How often `status --watch` redraws.
pub const WATCH_INTERVAL: Duration = Duration::from_secs(2);

fn render_status(body: &[u8], single: bool, colour: bool) -> Result<String, serde_json::Error> {
    let now = SystemTime::now();
    if single {
        let p: ProfileStatus = serde_json::from_slice(body)?;
        return Ok(table(&[p], now, colour));
    }
    let s: Status = serde_json::from_slice(body)?;
    let mut out = format!(
        "credfresh {} (pid {}) writing {}\n",
        s.version, s.pid, s.credentials_file
    );
    // The daemon's times are on AWS's clock: "expires in" counts from AWS's now.
    let offset = Duration::from_secs(s.clock_offset_seconds.unsigned_abs());
    let now = if s.clock_offset_seconds >= 0 {
        now.checked_add(offset)
    } else {
        now.checked_sub(offset)
    }
    .unwrap_or(now);
    if offset > crate::skew::WARN_ABOVE {
        out.push_str(&format!(
            "clock: the local clock is {} AWS's by {} (times below are AWS's)\n",
            if s.clock_offset_seconds > 0 {
                "behind"
            } else {
                "ahead of"
            },
            humantime::format_duration(offset)
        ));
    }
    if let Some(e) = &s.file_error {
        out.push_str(&format!("credentials file error: {e}\n"));
    }
    if let Some(e) = &s.config_error {
        out.push_str(&format!("config error: {e}\n"));
    }
    if s.profiles.is_empty() {
        out.push_str("no profiles are managed\n");
    } else {
        out.push_str(&table(&s.profiles, now, colour));
    }
    Ok(out)
}

fn bad_reply(e: serde_json::Error) -> u8 {
    eprintln!("credfresh: the daemon's reply could not be read: {e}");
    EXIT_FAILURE
}

/// The `status` table: one row per profile, times relative to `now`; states coloured when
/// `colour` (a terminal without `NO_COLOR`).
pub fn table(profiles: &[ProfileStatus], now: SystemTime, colour: bool) -> String {
    let header = [
        "PROFILE",
        "KIND",
        "STATE",
        "EXPIRES",
        "NEXT REFRESH",
        "LAST ERROR",
    ]
    .map(String::from);
    let rows: Vec<[String; 6]> = profiles
        .iter()
        .map(|p| {
            [
                p.name.clone(),
                p.kind.clone(),
                p.state.to_string(),
                rel(p.expires_at.as_deref(), now),
                rel(p.next_refresh_at.as_deref(), now),
                p.last_error.clone().unwrap_or_else(|| "-".into()),
            ]
        })
        .collect();
    let mut widths = [0usize; 6];
    for r in std::iter::once(&header).chain(&rows) {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: &[String; 6], state: Option<ProfileState>| {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                s.push_str(c);
                continue;
            }
            let pad = " ".repeat(widths[i] - c.chars().count() + 2);
            match (i, state) {
                (2, Some(st)) if colour => {
                    s.push_str(&format!("\x1b[{}m{c}\x1b[0m{pad}", state_colour(st)))
                }
                _ => s.push_str(&format!("{c}{pad}")),
            }
        }
        s.trim_end().to_owned() + "\n"
    };
    let mut out = line(&header, None);
    for (r, p) in rows.iter().zip(profiles) {
        out.push_str(&line(r, Some(p.state)));
    }
    out
}

/// ANSI colour of a state: green when fine, yellow while working on it, red when not.
fn state_colour(state: ProfileState) -> &'static str {
    match state {
        ProfileState::Fresh => "32",
        ProfileState::Pending | ProfileState::Refreshing | ProfileState::Retrying => "33",
        ProfileState::Expired | ProfileState::LoginRequired | ProfileState::Error => "31",
    }
}

/// Whether stdout should get colours: a terminal, and `NO_COLOR` unset.
pub(crate) fn colour_stdout() -> bool {
    use std::io::IsTerminal;
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none()
}

fn rel(t: Option<&str>, now: SystemTime) -> String {
    let Some(t) = t.and_then(parse_rfc3339) else {
        return "-".into();
    };
    match t.duration_since(now) {
        Ok(d) => format!("in {}", short(d)),
        Err(e) if e.duration() < Duration::from_secs(1) => "now".into(),
        Err(e) => format!("{} ago", short(e.duration())),
    }
}

/// A duration as people say it: 42s, 17m, 3h5m, 2d.
pub fn short(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m", s / 60),
        3600..172800 => match (s % 3600) / 60 {
            0 => format!("{}h", s / 3600),
            m => format!("{}h{m}m", s / 3600),
        },
        _ => format!("{}d", s / 86400),
    }
}

async fn refresh(socket: &Path, profiles: Vec<String>) -> u8 {
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

/// The SSO sessions the config's profiles use, by label.
fn sso_sessions(config: &Config) -> std::collections::BTreeMap<String, config::SsoSession> {
    config
        .profiles
        .iter()
        .filter_map(|p| match &p.source {
            ProfileSource::Sso(s) => Some((s.session.label().to_owned(), s.session.clone())),
            _ => None,
        })
        .collect()
}

async fn login(
    socket: &Path,
    config_path: &Path,
    env: &Environment,
    wanted: Option<String>,
    no_browser: bool,
) -> u8 {
    let config = match config::load(config_path, env) {
        Ok(c) => Some(c),
        // A named session can be signed in to even while the config is broken or missing.
        Err(_) if wanted.is_some() => None,
        Err(e) => {
            eprintln!("{e}");
            return EXIT_USAGE;
        }
    };
    let sessions = config.as_ref().map(sso_sessions).unwrap_or_default();
    let session = match &wanted {
        Some(name) => match sessions
            .get(name)
            .cloned()
            .or_else(|| config::aws_sso_session(&env.aws_config_file(), name))
        {
            Some(s) => s,
            None => {
                eprintln!(
                    "credfresh: no SSO session \"{name}\": it is neither used by a profile of {} nor an [sso-session {name}] with sso_start_url and sso_region in {}",
                    config_path.display(),
                    env.aws_config_file().display()
                );
                return EXIT_USAGE;
            }
        },
        None => match sessions.len() {
            0 => {
                eprintln!(
                    "credfresh: no profile of {} uses SSO; add a kind = \"sso\" profile or pass --sso-session NAME",
                    config_path.display()
                );
                return EXIT_USAGE;
            }
            1 => match sessions.values().next() {
                Some(s) => s.clone(),
                None => return EXIT_USAGE,
            },
            _ => {
                eprintln!(
                    "credfresh: the config uses several SSO sessions; choose one with --sso-session:\n{}",
                    sessions
                        .keys()
                        .map(|k| format!("  credfresh login --sso-session {k}"))
                        .collect::<Vec<_>>()
                        .join("\n")
                );
                return EXIT_USAGE;
            }
        },
    };
    let sdk = crate::sources::sdk_config().await;
    let path =
        crate::sso::cache::cache_dir(env.home()).join(format!("{}.json", session.cache_key()));
    let browser = crate::sso::login::Browser {
        open: !no_browser && crate::sso::has_display(env),
    };
    let mut out = std::io::stdout();
    let expires = match crate::sso::login::login(&sdk, &session, &path, browser, &mut out).await {
        Ok(t) => t,
        Err(e) => {
            eprintln!(
                "credfresh: login to SSO session \"{}\" failed: {e}",
                session.label()
            );
            return EXIT_FAILURE;
        }
    };
    println!(
        "Signed in to SSO session \"{}\"; the token is cached in {} (access token valid until {}).",
        session.label(),
        path.display(),
        crate::api::rfc3339(expires)
    );
    let names: Vec<String> = config
        .iter()
        .flat_map(|c| c.profiles.iter())
        .filter(|p| matches!(&p.source, ProfileSource::Sso(s) if s.session.cache_key() == session.cache_key()))
        .map(|p| p.name.clone())
        .collect();
    if names.is_empty() {
        return 0;
    }
    let body = match serde_json::to_vec(&RefreshRequest {
        profiles: names.clone(),
    }) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("credfresh: {e}");
            return EXIT_FAILURE;
        }
    };
    match client::request(socket, Method::POST, "/v1/refresh", Some(body)).await {
        Ok((code, body)) if code.is_success() => {
            let reply: RefreshReply = match serde_json::from_slice(&body) {
                Ok(r) => r,
                Err(e) => return bad_reply(e),
            };
            println!("Refreshed {}:", names.join(", "));
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
        Ok((code, body)) => reply_error(code, &body),
        Err(ClientError::NotRunning(_)) => {
            println!(
                "No credfresh daemon is running; it will use this login for {} when it starts.",
                names.join(", ")
            );
            0
        }
        Err(e) => fail(e),
    }
}

async fn credential_process(
    socket: &Path,
    config_path: &Path,
    env: &Environment,
    profile: &str,
) -> u8 {
    let path = client::url_path(&["v1", "credentials", profile]);
    match client::request(socket, Method::GET, &path, None).await {
        Ok((code, body)) if code.is_success() => {
            println!("{}", String::from_utf8_lossy(&body).trim_end());
            0
        }
        Ok((code, body)) => reply_error(code, &body),
        Err(ClientError::NotRunning(_)) => {
            let config = match config::load(config_path, env) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("{e}");
                    return EXIT_USAGE;
                }
            };
            eprintln!("credfresh: the daemon is not running; fetching \"{profile}\" directly");
            let fetcher = crate::sources::AwsFetcher::load(env, &config.daemon).await;
            match crate::sources::fetch_chain(&fetcher, &config, profile).await {
                Ok(c) => {
                    match serde_json::to_string(&crate::api::ProcessCredentials::from_creds(&c)) {
                        Ok(json) => {
                            println!("{json}");
                            0
                        }
                        Err(e) => {
                            eprintln!("credfresh: {e}");
                            EXIT_FAILURE
                        }
                    }
                }
                Err(e) if e.reason == "unknown_profile" => {
                    eprintln!("credfresh: {e}");
                    EXIT_USAGE
                }
                Err(e) => {
                    eprintln!("credfresh: {e}");
                    EXIT_FAILURE
                }
            }
        }
        Err(e) => fail(e),
    }
}

fn env_lines(config_path: &Path, env: &Environment, profile: &str, process: bool) -> u8 {
    let config = match config::load(config_path, env) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return EXIT_USAGE;
        }
    };
    if !config.profiles.iter().any(|p| p.name == profile) {
        eprintln!(
            "credfresh: no managed profile named \"{profile}\" in {}",
            config.path.display()
        );
        return EXIT_USAGE;
    }
    print!("{}", env_text(&config, profile, process));
    0
}

/// The text `credfresh env` prints for `profile`.
pub fn env_text(config: &Config, profile: &str, process: bool) -> String {
    let exe = std::env::current_exe()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| "credfresh".into());
    let quote = |s: &str| format!("'{}'", s.replace('\'', "'\\''"));
    match &config.daemon.container {
        Some(ep) if !process => format!(
            "# SDKs started from this shell fetch \"{profile}\" from credfresh and refresh by themselves.\n\
             export AWS_CONTAINER_CREDENTIALS_FULL_URI={}\n\
             export AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE={}\n\
             # A profile or static keys would win over the endpoint:\n\
             unset AWS_PROFILE AWS_DEFAULT_PROFILE AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_SESSION_TOKEN\n",
            quote(&format!(
                "http://{}{}",
                ep.addr,
                client::url_path(&["v1", "container-credentials", profile])
            )),
            quote(&ep.token_file.display().to_string()),
        ),
        _ => {
            let mut cmd = vec![exe, "credential-process".to_owned(), profile.to_owned()];
            if config.path != env_default_config(config) {
                cmd.insert(1, format!("--config {}", config.path.display()));
            }
            format!(
                "# Add to ~/.aws/config, then use AWS_PROFILE={profile}-live; SDKs call credfresh\n\
                 # whenever the credentials are about to expire.\n\
                 [profile {profile}-live]\n\
                 credential_process = {}\n",
                cmd.join(" ")
            )
        }
    }
}

/// The config path the daemon would use by default, to omit `--config` when it is that one.
fn env_default_config(config: &Config) -> PathBuf {
    let env = Environment::from_process();
    std::path::absolute(env.default_config_file()).unwrap_or_else(|_| config.path.clone())
}

async fn reload(socket: &Path) -> u8 {
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

async fn prune(socket: &Path, dry_run: bool) -> u8 {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::rfc3339;

    #[test]
    fn short_durations_read_naturally() {
        let s = |secs| short(Duration::from_secs(secs));
        assert_eq!(
            [
                s(0),
                s(59),
                s(60),
                s(2520),
                s(3600),
                s(3900),
                s(90000),
                s(200000)
            ],
            ["0s", "59s", "1m", "42m", "1h", "1h5m", "25h", "2d"]
        );
    }

    #[test]
    fn status_counts_from_aws_clock_and_names_a_large_offset() {
        let aws_now = SystemTime::now() - Duration::from_secs(1200);
        let body = serde_json::json!({
            "version": "0.1.0", "pid": 1, "started_at": rfc3339(aws_now),
            "credentials_file": "/c", "clock_offset_seconds": -1200,
            "profiles": [{
                "name": "p", "kind": "assume_role", "state": "fresh",
                "expires_at": rfc3339(aws_now + Duration::from_secs(600)),
                "next_refresh_at": null, "last_refresh_at": null, "last_error": null,
                "account_id": null
            }]
        });
        let text = render_status(body.to_string().as_bytes(), false, false).unwrap();
        assert!(
            text.contains("clock: the local clock is ahead of AWS's by 20m"),
            "{text}"
        );
        assert!(text.contains("in 9m") || text.contains("in 10m"), "{text}");
        let small = body.to_string().replace("-1200", "-30");
        let text = render_status(small.as_bytes(), false, false).unwrap();
        assert!(!text.contains("clock:"), "{text}");
    }

    #[test]
    fn table_has_header_and_one_row_per_profile() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let p = ProfileStatus {
            name: "metaflow".into(),
            kind: "assume_role".into(),
            state: ProfileState::Retrying,
            expires_at: Some(rfc3339(now + Duration::from_secs(2520))),
            next_refresh_at: Some(rfc3339(now + Duration::from_secs(4))),
            last_refresh_at: None,
            last_error: Some("cannot reach STS".into()),
            account_id: None,
        };
        let t = table(std::slice::from_ref(&p), now, false);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 2);
        assert!(
            lines[0].starts_with("PROFILE   KIND         STATE     EXPIRES"),
            "{t}"
        );
        assert!(
            lines[1].contains("retrying")
                && lines[1].contains("in 42m")
                && lines[1].contains("in 4s"),
            "{t}"
        );
        assert!(lines[1].ends_with("cannot reach STS"), "{t}");
        let coloured = table(&[p], now, true);
        assert!(coloured.contains("\x1b[33mretrying\x1b[0m  "), "{coloured}");
        assert_eq!(strip(&coloured), t, "colour changes no column");
    }

    fn strip(s: &str) -> String {
        let mut out = String::new();
        let mut esc = false;
        for c in s.chars() {
            match (esc, c) {
                (false, '\x1b') => esc = true,
                (true, 'm') => esc = false,
                (true, _) => {}
                (false, c) => out.push(c),
            }
        }
        out
    }
}
