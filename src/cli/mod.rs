//! The command line: parses arguments and runs the command, one file per command group;
//! exit codes and printing are [`crate::output`]'s.

mod credentials;
mod exec;
mod exec_endpoint;
mod login;
mod mfa;
mod refresh;
mod status;
mod validate;
mod wait;

pub use credentials::env_text;
pub use status::WATCH_INTERVAL;
pub use validate::describe;

use crate::check::CheckArgs;
use crate::client;
use crate::config;
use crate::env::Environment;
use crate::output::{CliError, CliResult, EXIT_FAILURE, EXIT_NOT_RUNNING};
use clap::{Parser, Subcommand};
use futures_util::future::LocalBoxFuture;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

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
  credfresh exec metaflow -- python train.py
                                     run a command whose SDK keeps getting fresh credentials
  credfresh wait --timeout 2m        wait until every profile's credentials are in the file
  credfresh check metaflow --bucket s3://my-bucket
                                     prove the credentials work: identity and an S3 round trip
  credfresh init                     write a starter config from ~/.aws/config
  credfresh mfa mfa-base             type an MFA code once; its roles stay fresh all day

Exit codes: 0 ok, 1 runtime failure, 2 usage or config error, 3 daemon not running."
)]
pub struct Cli {
    /// Config file [default: $CREDFRESH_CONFIG, else $XDG_CONFIG_HOME/credfresh/config.toml]
    #[arg(long, global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// Control socket [default: from the config, else $XDG_RUNTIME_DIR/credfresh/credfresh.sock]
    #[arg(long, global = true, value_name = "PATH")]
    pub socket: Option<PathBuf>,
    /// Log level of `credfresh daemon` (other commands keep no log): error, warn, info, debug or
    /// trace [default: $RUST_LOG, else info]
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
    /// Wait until the profiles' current credentials are in the credentials file (all
    /// profiles when none is named): exit 0 then; on timeout exit 1 naming each profile that
    /// is not there with its state and last error; exit 3 when no daemon runs (a daemon that
    /// stops after answering, as in a restart, is asked again until the timeout).
    #[command(
        after_help = "For whatever must not start before the credentials are there: a systemd
ExecStartPre=, a SageMaker on-start script, a Kubernetes startup probe, a CI step.
A profile counts when the credentials the daemon holds for it are in the file and valid
(`fresh` in `credfresh status` always means that).

Examples:
  credfresh wait                         every profile, at most 60 s
  credfresh wait metaflow --timeout 5m
  credfresh wait --timeout 3s            a startup probe"
    )]
    Wait {
        /// Profiles to wait for.
        profiles: Vec<String>,
        /// How long to wait at most, e.g. 30s, 5m.
        #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = humantime::parse_duration)]
        timeout: std::time::Duration,
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
        after_help = "With [daemon] container_endpoint set, each line is for:\n  \
AWS_CONTAINER_CREDENTIALS_FULL_URI      the endpoint's URL for this profile\n  \
AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE  its token's file, re-read by current SDKs on every fetch\n  \
AWS_CONTAINER_AUTHORIZATION_TOKEN       the token itself, for SDK releases that read only this one\n                                          \
(Debian's Go SDK v2); eval again after a daemon restart\n  \
unset AWS_PROFILE AWS_ACCESS_KEY_ID …   variables the SDKs would take before the endpoint\n  \
AWS_SHARED_CREDENTIALS_FILE=/dev/null   only when the file's [default] holds keys (they would win too)\n\
Without it (or with --process): a ~/.aws/config profile running `credfresh credential-process`.\n\
`credfresh exec PROFILE -- COMMAND` wires one command the same way, leaving this shell alone.\n\n\
Examples:\n  eval \"$(credfresh env metaflow)\"     # then start python / jupyter from this shell\n  credfresh env --process metaflow >> ~/.aws/config"
    )]
    Env {
        /// The managed profile.
        profile: String,
        /// Print the ~/.aws/config snippet for `credential_process` even when the container
        /// endpoint is enabled.
        #[arg(long)]
        process: bool,
    },
    /// Run a command whose AWS SDK keeps getting a profile's fresh credentials from a
    /// container credentials endpoint (the daemon's when enabled, else a private one that
    /// lives as long as the command); exits with the command's status.
    #[command(
        after_help = "The command gets AWS_CONTAINER_CREDENTIALS_FULL_URI and the endpoint's token as\n\
AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE and AWS_CONTAINER_AUTHORIZATION_TOKEN (for SDK releases\n\
that read only the token itself), CREDFRESH_PROFILE, and AWS_REGION / AWS_DEFAULT_REGION from\n\
the profile's `region` when neither is set. Removed, because the SDKs would take them before\n\
the endpoint: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_PROFILE,\n\
AWS_DEFAULT_PROFILE, AWS_WEB_IDENTITY_TOKEN_FILE, AWS_ROLE_ARN,\n\
AWS_CONTAINER_CREDENTIALS_RELATIVE_URI and older names (AWS_SECURITY_TOKEN, …).\n\
SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2 and SIGWINCH reach the command. The exit\n\
code is the command's (128 + N when signal N killed it); 3 when the daemon is not running,\n\
2 for an unknown profile, 1 when the profile holds no valid credentials within --timeout,\n\
127 when the command is not found.\n\n\
Examples:\n  credfresh exec metaflow -- python train.py\n  credfresh exec ml -- jupyter lab\n  credfresh exec ml -- aws sts get-caller-identity"
    )]
    Exec {
        /// The managed profile.
        profile: String,
        /// How long to wait for the daemon to hold valid credentials for the profile before
        /// starting the command (a daemon just started is still fetching them).
        #[arg(long, value_name = "DUR", default_value = "60s", value_parser = humantime::parse_duration)]
        timeout: std::time::Duration,
        /// The command and its arguments (after `--`).
        #[arg(
            required = true,
            num_args = 1..,
            trailing_var_arg = true,
            allow_hyphen_values = true,
            value_name = "COMMAND"
        )]
        command: Vec<std::ffi::OsString>,
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
    /// Hand an MFA code to the daemon for a profile with `mfa_serial` (or a role chained
    /// from one); it is used at once, and the result reported.
    #[command(
        after_help = "Without --code the code is asked for on the terminal, or read as one line of stdin.\n\
Exit 0 once the profile is fresh; 1 with STS's reason when the code is refused.\n\n\
Examples:\n  credfresh mfa mfa-base\n  credfresh mfa mfa-base --code 123456\n  ykman oath accounts code --single 'AWS:alice' | credfresh mfa mfa-base"
    )]
    Mfa {
        /// The profile (a `session_token` profile, an `assume_role` with `mfa_serial`, or a
        /// role chained from one).
        profile: String,
        /// The 6-digit code (better typed at the prompt: a command line shows in `ps`).
        #[arg(long, value_name = "CODE")]
        code: Option<String>,
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

/// Runs the command; its exit code, an error reported on stderr.
async fn run(cli: Cli, config_path: PathBuf, env: Environment, check: CheckCommand) -> u8 {
    dispatch(cli, config_path, env, check)
        .await
        .unwrap_or_else(CliError::report)
}

async fn dispatch(
    cli: Cli,
    config_path: PathBuf,
    env: Environment,
    check: CheckCommand,
) -> CliResult {
    match cli.command {
        Cmd::Daemon => {
            let config = config::load(&config_path, &env)
                .map_err(|e| CliError::Usage(format!("credfresh: invalid config:\n{e}")))?;
            crate::logging::init(config.daemon.log_format, cli.log_level.as_deref());
            match crate::daemon::run(config, cli.socket, env).await {
                Ok(()) => Ok(0),
                Err(e) => {
                    tracing::error!("{e:#}");
                    Ok(EXIT_FAILURE)
                }
            }
        }
        Cmd::Validate => validate::validate(&config_path, &env),
        Cmd::Completions { shell } => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(shell, &mut cmd, "credfresh", &mut std::io::stdout());
            Ok(0)
        }
        Cmd::Man => {
            let cmd = <Cli as clap::CommandFactory>::command();
            clap_mangen::Man::new(cmd)
                .render(&mut std::io::stdout())
                .map_err(|e| {
                    CliError::Failed(format!("credfresh: cannot write the man page: {e}"))
                })?;
            Ok(0)
        }
        Cmd::Status {
            json,
            watch,
            profile,
        } => {
            let socket = client::socket_path(cli.socket, &config_path, &env);
            status::status(&socket, json, profile, watch).await
        }
        Cmd::Refresh { profiles } => {
            let socket = client::socket_path(cli.socket, &config_path, &env);
            refresh::refresh(&socket, profiles).await
        }
        Cmd::Wait { profiles, timeout } => {
            let socket = client::socket_path(cli.socket, &config_path, &env);
            wait::wait(&socket, &profiles, timeout).await
        }
        Cmd::CredentialProcess { profile } => {
            let socket = client::socket_path(cli.socket, &config_path, &env);
            credentials::credential_process(&socket, &config_path, &env, &profile).await
        }
        // `check` and `init` report their errors themselves.
        Cmd::Check { profile, bucket } => Ok(check(CheckArgs {
            socket: cli.socket,
            config_path,
            env,
            profile,
            bucket,
        })
        .await),
        Cmd::Init { force } => Ok(crate::init::run(&config_path, &env, force)),
        Cmd::Login {
            sso_session,
            no_browser,
        } => {
            let socket = client::socket_path(cli.socket, &config_path, &env);
            login::login(&socket, &config_path, &env, sso_session, no_browser).await
        }
        Cmd::Env { profile, process } => {
            credentials::env_lines(&config_path, &env, &profile, process)
        }
        Cmd::Exec {
            profile,
            timeout,
            command,
        } => {
            let socket = client::socket_path(cli.socket, &config_path, &env);
            exec::exec(&socket, &config_path, &env, &profile, &command, timeout).await
        }
        Cmd::Mfa { profile, code } => {
            let socket = client::socket_path(cli.socket, &config_path, &env);
            mfa::mfa(&socket, &profile, code).await
        }
        Cmd::Reload => {
            let socket = client::socket_path(cli.socket, &config_path, &env);
            refresh::reload(&socket).await
        }
        Cmd::Prune { dry_run } => {
            let socket = client::socket_path(cli.socket, &config_path, &env);
            refresh::prune(&socket, dry_run).await
        }
    }
}
