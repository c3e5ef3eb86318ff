//! The commands that hand credentials to SDKs: `credential-process` and `env`.

use crate::client::{self, ClientError};
use crate::config::{self, Config};
use crate::env::Environment;
use crate::output::{CliError, CliResult};
use hyper::Method;
use std::path::{Path, PathBuf};

pub(super) async fn credential_process(
    socket: &Path,
    config_path: &Path,
    env: &Environment,
    profile: &str,
) -> CliResult {
    let path = client::url_path(&["v1", "credentials", profile]);
    match client::request(socket, Method::GET, &path, None).await {
        Ok((code, body)) if code.is_success() => {
            println!("{}", String::from_utf8_lossy(&body).trim_end());
            Ok(0)
        }
        Ok((code, body)) => Err(CliError::Refused(code, body)),
        Err(ClientError::NotRunning(_)) => {
            let config = config::load(config_path, env).map_err(CliError::usage)?;
            eprintln!("credfresh: the daemon is not running; fetching \"{profile}\" directly");
            let fetcher = crate::sources::AwsFetcher::load(env, &config.daemon).await;
            let creds = match crate::sources::fetch_chain(&fetcher, &config, profile).await {
                Ok(c) => c,
                Err(e) if e.reason == "unknown_profile" => {
                    return Err(CliError::Usage(format!("credfresh: {e}")))
                }
                Err(e) => return Err(CliError::Failed(format!("credfresh: {e}"))),
            };
            let json = serde_json::to_string(&crate::api::ProcessCredentials::from_creds(&creds))
                .map_err(|e| CliError::Failed(format!("credfresh: {e}")))?;
            println!("{json}");
            Ok(0)
        }
        Err(e) => Err(e.into()),
    }
}

pub(super) fn env_lines(
    config_path: &Path,
    env: &Environment,
    profile: &str,
    process: bool,
) -> CliResult {
    let config = config::load(config_path, env).map_err(CliError::usage)?;
    if !config.profiles.iter().any(|p| p.name == profile) {
        return Err(CliError::Usage(format!(
            "credfresh: no managed profile named \"{profile}\" in {}",
            config.path.display()
        )));
    }
    print!("{}", env_text(&config, profile, process));
    if config.daemon.container.is_some() && !process {
        print!("{}", default_profile_lines(env));
    }
    Ok(0)
}

/// The text `credfresh env` prints for `profile`.
pub fn env_text(config: &Config, profile: &str, process: bool) -> String {
    let exe = std::env::current_exe()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| "credfresh".into());
    let quote = |s: &str| format!("'{}'", s.replace('\'', "'\\''"));
    match &config.daemon.container {
        Some(ep) if !process => {
            let token_file = quote(&ep.token_file.display().to_string());
            format!(
                "# SDKs started from this shell fetch \"{profile}\" from credfresh's container endpoint and refresh by themselves.\n\
                 # The endpoint:\n\
                 export {}={}\n\
                 # Its token as a file, re-read by current SDKs on every fetch:\n\
                 export {}={token_file}\n\
                 # The token itself, for SDK releases that read only this variable (Debian's Go SDK v2);\n\
                 # read from the file now: eval this again after the daemon restarts.\n\
                 export {}=\"$(cat {token_file})\"\n\
                 # Variables the SDKs would take before the endpoint:\n\
                 unset {}\n",
                super::exec::FULL_URI,
                quote(&format!(
                    "http://{}{}",
                    ep.addr,
                    client::url_path(&["v1", "container-credentials", profile])
                )),
                super::exec::TOKEN_FILE,
                super::exec::TOKEN,
                super::exec::CLEARED.join(" "),
            )
        }
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

/// The lines that keep the shared files' `default` profile from winning over the endpoint
/// (as `credfresh exec` does): a credential source in the credentials file hides that file;
/// one in the config file can only be pointed out.
fn default_profile_lines(env: &Environment) -> String {
    let credentials = env.default_credentials_file();
    let (hide, source) = super::exec::default_profile(&credentials, &env.aws_config_file());
    let mut out = String::new();
    if let Some((file, line, key)) = hide {
        out.push_str(&format!(
            "# {}:{line}: the default profile sets `{key}`, which the SDKs would take before the \
             endpoint:\nexport AWS_SHARED_CREDENTIALS_FILE=/dev/null\n",
            file.display()
        ));
    }
    if let Some((file, line, key)) = source {
        out.push_str(&format!(
            "# warning: {}:{line}: the default profile sets `{key}`, which the SDKs take before \
             the endpoint; move it to a named profile\n",
            file.display()
        ));
    }
    out
}

/// The config path the daemon would use by default, to omit `--config` when it is that one.
fn env_default_config(config: &Config) -> PathBuf {
    let env = Environment::from_process();
    std::path::absolute(env.default_config_file()).unwrap_or_else(|_| config.path.clone())
}
