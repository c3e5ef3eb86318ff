//! `credfresh exec PROFILE -- COMMAND…`: runs a command whose AWS SDK keeps getting the
//! profile's fresh credentials from a container credentials endpoint (the daemon's when it is
//! enabled, else a private one served for the command's lifetime), with the environment
//! variables that would win over that endpoint removed.
//!
//! Why each variable goes (the SDKs' default chains, checked in botocore
//! `create_credential_resolver`, aws-config `DefaultCredentialsChain`, aws-sdk-go-v2
//! `config.resolveCredentialChain` and aws-sdk-js-v3 `defaultProvider`): environment keys come
//! first everywhere; a named profile (`AWS_PROFILE`, `AWS_DEFAULT_PROFILE`) comes before the
//! container endpoint; web identity from the environment (`AWS_WEB_IDENTITY_TOKEN_FILE`,
//! `AWS_ROLE_ARN`) comes before it in every SDK; and `AWS_CONTAINER_CREDENTIALS_RELATIVE_URI`
//! wins over the `FULL_URI` in botocore and the Rust SDK. The `default` profile of the shared
//! files comes before the endpoint too: a credential source in the credentials file's
//! `[default]` hides that file from the command; one in the config file's stops `exec`
//! ([`SOURCE_KEYS`]).

use super::exec_endpoint::PrivateEndpoint;
use crate::client;
use crate::config::{self, Config, ProfileSource};
use crate::env::Environment;
use crate::output::{CliError, CliResult, EXIT_FAILURE};
use hyper::Method;
use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Variables removed from the command's environment: each would make an SDK use other
/// credentials than the endpoint's (see the module documentation for the order of the
/// chains that makes them win).
pub const CLEARED: &[&str] = &[
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    // Older names some SDKs and tools still read (boto 2, the Java SDK v1, aws-vault).
    "AWS_SECURITY_TOKEN",
    "AWS_ACCESS_KEY",
    "AWS_SECRET_KEY",
    "AWS_CREDENTIAL_EXPIRATION",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_ROLE_ARN",
    "AWS_ROLE_SESSION_NAME",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
];

/// The variables `exec` sets for the command (and `credfresh env` prints).
pub const FULL_URI: &str = "AWS_CONTAINER_CREDENTIALS_FULL_URI";
/// The token file, re-read by current SDKs on every fetch.
pub const TOKEN_FILE: &str = "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE";
/// The token itself, for SDK releases that read only this one (Debian's Go SDK v2).
pub const TOKEN: &str = "AWS_CONTAINER_AUTHORIZATION_TOKEN";
/// The profile `exec` runs the command with, for prompts and scripts (like `AWS_VAULT`).
pub const PROFILE_VAR: &str = "CREDFRESH_PROFILE";

/// The endpoint the command gets its credentials from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// `AWS_CONTAINER_CREDENTIALS_FULL_URI`.
    pub uri: String,
    /// `AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE`.
    pub token_file: PathBuf,
    /// `AWS_CONTAINER_AUTHORIZATION_TOKEN`.
    pub token: String,
}

/// What the command's environment gets beyond the endpoint.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Extras {
    /// The profile's `region`, set as `AWS_REGION` and `AWS_DEFAULT_REGION` when neither is set.
    pub region: Option<String>,
    /// Point `AWS_SHARED_CREDENTIALS_FILE` at an empty file (its `[default]` is a credential
    /// source).
    pub hide_credentials_file: bool,
}

/// The command's environment: `vars` without [`CLEARED`], with the endpoint's variables,
/// [`PROFILE_VAR`] and `extras`.
pub fn child_env(
    vars: impl IntoIterator<Item = (OsString, OsString)>,
    profile: &str,
    endpoint: &Endpoint,
    extras: &Extras,
) -> Vec<(OsString, OsString)> {
    let mut out: Vec<(OsString, OsString)> = vars
        .into_iter()
        .filter(|(k, _)| {
            let k = k.to_str().unwrap_or("");
            !CLEARED.contains(&k) && ![FULL_URI, TOKEN_FILE, TOKEN, PROFILE_VAR].contains(&k)
        })
        .collect();
    let has = |out: &[(OsString, OsString)], name: &str| {
        out.iter().any(|(k, v)| k == name && !v.is_empty())
    };
    if let Some(region) = &extras.region {
        if !has(&out, "AWS_REGION") && !has(&out, "AWS_DEFAULT_REGION") {
            out.retain(|(k, _)| k != "AWS_REGION" && k != "AWS_DEFAULT_REGION");
            out.push(("AWS_REGION".into(), region.into()));
            out.push(("AWS_DEFAULT_REGION".into(), region.into()));
        }
    }
    if extras.hide_credentials_file {
        out.retain(|(k, _)| k != "AWS_SHARED_CREDENTIALS_FILE");
        out.push(("AWS_SHARED_CREDENTIALS_FILE".into(), "/dev/null".into()));
    }
    out.push((FULL_URI.into(), endpoint.uri.clone().into()));
    out.push((TOKEN_FILE.into(), endpoint.token_file.clone().into()));
    out.push((TOKEN.into(), endpoint.token.clone().into()));
    out.push((PROFILE_VAR.into(), profile.into()));
    out
}

/// The exit code of a finished command, as a shell reports it: its status, or 128 + the
/// signal that killed it.
pub fn exit_code(status: ExitStatus) -> u8 {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(c), _) => (c & 0xff) as u8,
        (None, Some(s)) => (128 + s).clamp(0, 255) as u8,
        (None, None) => EXIT_FAILURE,
    }
}

/// The region of a managed profile, when its config sets one.
fn profile_region(config: &Config, profile: &str) -> Option<String> {
    let p = config.profiles.iter().find(|p| p.name == profile)?;
    match &p.source {
        ProfileSource::AssumeRole(a) => a.region.clone(),
        ProfileSource::WebIdentity(w) => w.region.clone(),
        ProfileSource::Sso(s) => s.region.clone(),
        ProfileSource::SessionToken(t) => t.region.clone(),
        ProfileSource::AwsProfile { .. } | ProfileSource::Instance => None,
    }
}

/// Keys that make a profile a credential source (or break the SDK when they are there
/// without the rest), in either shared file: botocore, aws-config (Rust), aws-sdk-js-v3 and
/// aws-sdk-go-v2 merge the credentials file's sections into the config file's profiles, so
/// each key counts in both. Keys, even partial (botocore raises `PartialCredentialsError`,
/// aws-config an error); `role_arn` (assume role, or web identity with
/// `web_identity_token_file`); `credential_source` (aws-config uses it even without
/// `role_arn`); `credential_process`; SSO: botocore takes a profile with `sso_role_name` or
/// `sso_account_id`, aws-config and the JS SDK one with any `sso_*` key and fail when the
/// others are missing; `login_session` (`aws login`).
const SOURCE_KEYS: &[&str] = &[
    "aws_access_key_id",
    "aws_secret_access_key",
    "aws_session_token",
    "role_arn",
    "credential_source",
    "credential_process",
    "web_identity_token_file",
    "sso_account_id",
    "sso_role_name",
    "sso_session",
    "sso_start_url",
    "sso_region",
    "login_session",
];

/// Where the `default` profile of a shared file gets credentials: (file, line, key).
pub(super) type DefaultSource = (PathBuf, usize, String);

/// The first key of [`SOURCE_KEYS`] in `file`'s `default` profile (`is_default` picks its
/// sections).
fn default_source(
    file: &Path,
    is_default: impl Fn(&crate::aws_files::Section) -> bool,
) -> Option<DefaultSource> {
    crate::aws_files::read(file)
        .unwrap_or_default()
        .into_iter()
        .filter(|s| is_default(s))
        .find_map(|s| {
            s.entries
                .iter()
                .find(|e| SOURCE_KEYS.contains(&e.key.as_str()) && !e.value.is_empty())
                .map(|e| (file.to_owned(), e.line, e.key.clone()))
        })
}

/// What the `default` profile of the command's shared files would do: a credential source
/// in the credentials file's `[default]` (then the file is hidden from the command) and in
/// the config file's (then `exec` stops: hiding that file would hide regions, endpoints,
/// `sso-session` sections and every named profile too).
pub(super) fn default_profile(
    credentials_file: &Path,
    config_file: &Path,
) -> (Option<DefaultSource>, Option<DefaultSource>) {
    (
        default_source(credentials_file, |s| s.header == "default"),
        default_source(config_file, |s| s.profile_name() == Some("default")),
    )
}

/// Runs `credfresh exec`.
pub(super) async fn exec(
    socket: &Path,
    config_path: &Path,
    env: &Environment,
    profile: &str,
    command: &[OsString],
    timeout: Duration,
) -> CliResult {
    let Some((program, args)) = command.split_first() else {
        return Err(CliError::Usage(
            "credfresh exec: name the command to run after `--`".into(),
        ));
    };
    let config = config::load(config_path, env).map_err(CliError::usage)?;
    if !config.profiles.iter().any(|p| p.name == profile) {
        return Err(CliError::Usage(format!(
            "credfresh: no managed profile named \"{profile}\" in {}",
            config.path.display()
        )));
    }
    wait_for_credentials(socket, profile, timeout).await?;
    let (hide, source) = default_profile(&env.default_credentials_file(), &env.aws_config_file());
    if let Some((file, line, key)) = source {
        return Err(CliError::Usage(format!(
            "credfresh exec: {}:{line}: the `default` profile sets `{key}`, and every AWS SDK \
             takes the default profile's credentials before the container endpoint, so the \
             command would not run as \"{profile}\"; move `{key}` to a named profile (and use \
             it with --profile / AWS_PROFILE where needed)",
            file.display()
        )));
    }
    if let Some((file, line, key)) = &hide {
        eprintln!(
            "credfresh exec: {}:{line}: the `default` profile sets `{key}`, which every AWS SDK \
             takes before the container endpoint: the command gets \
             AWS_SHARED_CREDENTIALS_FILE=/dev/null",
            file.display()
        );
    }
    let extras = Extras {
        region: profile_region(&config, profile),
        hide_credentials_file: hide.is_some(),
    };
    match &config.daemon.container {
        Some(ep) => {
            let token = std::fs::read_to_string(&ep.token_file).map_err(|e| {
                CliError::Failed(format!(
                    "credfresh exec: cannot read the container endpoint's token file {}: {e}",
                    ep.token_file.display()
                ))
            })?;
            crate::redact::register(&token);
            let endpoint = Endpoint {
                uri: format!(
                    "http://{}{}",
                    ep.addr,
                    client::url_path(&["v1", "container-credentials", profile])
                ),
                token_file: ep.token_file.clone(),
                token,
            };
            let vars = child_env(std::env::vars_os(), profile, &endpoint, &extras);
            Ok(replace_process(program, args, vars))
        }
        None => run_with_private_endpoint(socket, profile, program, args, &extras).await,
    }
}

/// Waits until the daemon holds valid credentials for `profile` (at most `timeout`), so the
/// command's first request finds them: a daemon just started is still fetching. The daemon
/// must run ([`CliError::Client`], exit 3) and know the profile (its config may differ from
/// the file's; a 404 is exit 2).
async fn wait_for_credentials(
    socket: &Path,
    profile: &str,
    timeout: Duration,
) -> Result<(), CliError> {
    let path = client::url_path(&["v1", "credentials", profile]);
    let deadline = tokio::time::Instant::now() + timeout;
    let mut said = false;
    loop {
        let (code, body) = client::request(socket, Method::GET, &path, None).await?;
        if code.is_success() {
            // The body holds the credentials: only its arrival matters here.
            drop(body);
            return Ok(());
        }
        if code != hyper::StatusCode::SERVICE_UNAVAILABLE {
            return Err(CliError::Refused(code, body));
        }
        let reason = serde_json::from_slice::<crate::api::ErrorReply>(&body)
            .map(|e| e.error)
            .unwrap_or_default();
        if tokio::time::Instant::now() >= deadline {
            return Err(CliError::Failed(format!(
                "credfresh exec: gave up after {}: {reason}; the command was not started",
                humantime::format_duration(timeout)
            )));
        }
        if !said {
            eprintln!(
                "credfresh exec: waiting up to {} for \"{profile}\" to hold valid credentials ({reason})",
                humantime::format_duration(timeout)
            );
            said = true;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Replaces this process with the command (the daemon's endpoint needs nothing of `exec`
/// afterwards, and signals and the exit status are the command's own); returns the shell's
/// exit code when it cannot be started.
fn replace_process(program: &OsStr, args: &[OsString], vars: Vec<(OsString, OsString)>) -> u8 {
    use std::os::unix::process::CommandExt;
    let err = std::process::Command::new(program)
        .args(args)
        .env_clear()
        .envs(vars)
        .exec();
    not_started(program, &err)
}

/// Says why the command could not start; 127 when it is not found, else 126, as shells do.
fn not_started(program: &OsStr, err: &std::io::Error) -> u8 {
    eprintln!(
        "credfresh exec: cannot run {}: {err}",
        Path::new(program).display()
    );
    if err.kind() == std::io::ErrorKind::NotFound {
        127
    } else {
        126
    }
}

/// The signals passed on to the command.
const FORWARDED: &[libc::c_int] = &[
    libc::SIGHUP,
    libc::SIGINT,
    libc::SIGQUIT,
    libc::SIGTERM,
    libc::SIGUSR1,
    libc::SIGUSR2,
    libc::SIGWINCH,
];

/// Serves a private endpoint for `profile` while the command runs, passing signals on; the
/// command's exit code.
async fn run_with_private_endpoint(
    socket: &Path,
    profile: &str,
    program: &OsStr,
    args: &[OsString],
    extras: &Extras,
) -> CliResult {
    let failed = |what: &str, e: std::io::Error| {
        CliError::Failed(format!("credfresh exec: cannot {what}: {e}"))
    };
    let token = crate::container::random_token().map_err(|e| failed("make a token", e))?;
    crate::redact::register(&token);
    let dir = crate::fsutil::parent_dir(socket);
    let token_file = crate::fsutil::write_private(dir, ".exec-token.", token.as_bytes())
        .map_err(|e| failed(&format!("write a token file in {}", dir.display()), e))?;
    let server = PrivateEndpoint::bind(socket.to_owned(), profile, &token)
        .await
        .map_err(|e| failed("listen on 127.0.0.1", e))?;
    let endpoint = Endpoint {
        uri: server
            .uri()
            .map_err(|e| failed("read the endpoint's port", e))?,
        token_file: token_file.path().to_owned(),
        token,
    };
    let mut signals = Vec::new();
    for &s in FORWARDED {
        let kind = tokio::signal::unix::SignalKind::from_raw(s);
        let stream =
            tokio::signal::unix::signal(kind).map_err(|e| failed("listen for signals", e))?;
        signals.push((s, stream));
    }
    let vars = child_env(std::env::vars_os(), profile, &endpoint, extras);
    let mut child = match tokio::process::Command::new(program)
        .args(args)
        .env_clear()
        .envs(vars)
        .spawn()
    {
        Ok(c) => c,
        Err(e) => return Ok(not_started(program, &e)),
    };
    let stop = CancellationToken::new();
    let serving = tokio::spawn(server.serve(stop.clone()));
    let pid = child.id().and_then(|p| i32::try_from(p).ok());
    let status = loop {
        let next_signal = futures_util::future::select_all(
            signals
                .iter_mut()
                .map(|(s, stream)| Box::pin(async move { stream.recv().await.map(|_| *s) })),
        );
        tokio::select! {
            status = child.wait() => break status,
            (Some(sig), _, _) = next_signal => {
                if let (Some(pid), Ok(sig)) = (pid, nix::sys::signal::Signal::try_from(sig)) {
                    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), sig);
                }
            }
        }
    };
    stop.cancel();
    let _ = serving.await;
    drop(token_file);
    match status {
        Ok(s) => Ok(exit_code(s)),
        Err(e) => Err(failed("wait for the command", e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(pairs: &[(&str, &str)]) -> Vec<(OsString, OsString)> {
        pairs.iter().map(|(k, v)| (k.into(), v.into())).collect()
    }

    fn endpoint() -> Endpoint {
        Endpoint {
            uri: "http://127.0.0.1:1234/v1/container-credentials/p".into(),
            token_file: "/run/t".into(),
            token: "tok".into(),
        }
    }

    fn get<'a>(env: &'a [(OsString, OsString)], k: &str) -> Vec<&'a OsStr> {
        env.iter()
            .filter(|(n, _)| n == k)
            .map(|(_, v)| v.as_os_str())
            .collect()
    }

    #[test]
    fn clears_what_wins_over_the_endpoint_and_sets_it() {
        let mut vars = vec![("PATH", "/bin"), ("HOME", "/h"), ("AWS_CONFIG_FILE", "/c")];
        for k in CLEARED {
            vars.push((k, "leak"));
        }
        vars.push((FULL_URI, "http://old"));
        vars.push((TOKEN, "old"));
        let env = child_env(os(&vars), "p", &endpoint(), &Extras::default());
        for k in CLEARED {
            assert!(get(&env, k).is_empty(), "{k} left in");
        }
        assert_eq!(get(&env, "PATH"), ["/bin"]);
        assert_eq!(get(&env, "AWS_CONFIG_FILE"), ["/c"]);
        assert_eq!(get(&env, FULL_URI), [endpoint().uri.as_str()]);
        assert_eq!(get(&env, TOKEN_FILE), ["/run/t"]);
        assert_eq!(get(&env, TOKEN), ["tok"]);
        assert_eq!(get(&env, PROFILE_VAR), ["p"]);
        assert!(get(&env, "AWS_REGION").is_empty());
        assert!(get(&env, "AWS_SHARED_CREDENTIALS_FILE").is_empty());
    }

    #[test]
    fn region_only_when_the_environment_has_none() {
        let extras = Extras {
            region: Some("eu-west-1".into()),
            hide_credentials_file: true,
        };
        let env = child_env(os(&[("AWS_REGION", "")]), "p", &endpoint(), &extras);
        assert_eq!(get(&env, "AWS_REGION"), ["eu-west-1"]);
        assert_eq!(get(&env, "AWS_DEFAULT_REGION"), ["eu-west-1"]);
        assert_eq!(get(&env, "AWS_SHARED_CREDENTIALS_FILE"), ["/dev/null"]);
        let env = child_env(
            os(&[("AWS_DEFAULT_REGION", "us-west-2")]),
            "p",
            &endpoint(),
            &extras,
        );
        assert!(get(&env, "AWS_REGION").is_empty());
        assert_eq!(get(&env, "AWS_DEFAULT_REGION"), ["us-west-2"]);
    }

    #[test]
    fn exit_codes_follow_the_shell() {
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(exit_code(ExitStatus::from_raw(0)), 0);
        assert_eq!(exit_code(ExitStatus::from_raw(7 << 8)), 7);
        assert_eq!(exit_code(ExitStatus::from_raw(libc::SIGTERM)), 143);
        assert_eq!(exit_code(ExitStatus::from_raw(libc::SIGKILL)), 137);
    }

    #[test]
    fn the_default_profile_is_found_in_both_files() {
        let dir = tempfile::tempdir().unwrap();
        let creds = dir.path().join("credentials");
        let conf = dir.path().join("config");
        let at = |f: &Path, line, key: &str| Some((f.to_owned(), line, key.to_owned()));
        std::fs::write(&creds, "[other]\naws_access_key_id = A\n").unwrap();
        std::fs::write(&conf, "[default]\nregion = us-east-1\nsource_profile = x\n").unwrap();
        assert_eq!(default_profile(&creds, &conf), (None, None));
        std::fs::write(&creds, "[default]\naws_access_key_id = A\n").unwrap();
        std::fs::write(
            &conf,
            "[default]\nregion = us-east-1\nrole_arn = arn:aws:iam::1:role/x\n",
        )
        .unwrap();
        assert_eq!(
            default_profile(&creds, &conf),
            (at(&creds, 2, "aws_access_key_id"), at(&conf, 3, "role_arn"))
        );
        std::fs::write(&conf, "[profile default]\ncredential_process = x\n").unwrap();
        assert_eq!(default_profile(&creds, &conf).1.map(|s| s.1), Some(2));
        assert_eq!(
            default_profile(&dir.path().join("none"), &dir.path().join("none")),
            (None, None)
        );
    }

    #[test]
    fn every_credential_source_counts_in_either_file() {
        let dir = tempfile::tempdir().unwrap();
        let creds = dir.path().join("credentials");
        let conf = dir.path().join("config");
        for key in SOURCE_KEYS {
            let text = format!("[default]\nregion = eu-west-1\n{key} = v\n");
            std::fs::write(&creds, &text).unwrap();
            std::fs::write(&conf, &text).unwrap();
            let (c, f) = default_profile(&creds, &conf);
            assert_eq!(c, Some((creds.clone(), 3, key.to_string())), "{key}");
            assert_eq!(f, Some((conf.clone(), 3, key.to_string())), "{key}");
        }
        // Only `[default]` counts in the credentials file (no `profile ` prefix there).
        std::fs::write(&creds, "[profile default]\ncredential_process = x\n").unwrap();
        assert_eq!(default_profile(&creds, &conf).0, None);
    }
}
