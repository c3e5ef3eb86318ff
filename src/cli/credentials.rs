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

/// The text `credfresh env` prints for `profile`: every path and argument in it is quoted
/// for a POSIX shell ([`shell_word`]), so it works as printed whatever the paths hold.
pub fn env_text(config: &Config, profile: &str, process: bool) -> String {
    match &config.daemon.container {
        Some(ep) if !process => {
            let token_file = shell_word(&ep.token_file.display().to_string());
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
                shell_word(&format!(
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
            let exe = std::env::current_exe()
                .map(|p| p.display().to_string())
                .unwrap_or_else(|_| "credfresh".into());
            let mut cmd = vec![exe];
            if config.path != env_default_config(config) {
                let path =
                    std::path::absolute(&config.path).unwrap_or_else(|_| config.path.clone());
                cmd.extend(["--config".to_owned(), path.display().to_string()]);
            }
            cmd.extend(["credential-process".to_owned(), profile.to_owned()]);
            let words: Vec<String> = cmd.iter().map(|w| shell_word(w)).collect();
            format!(
                "# Add to ~/.aws/config, then use AWS_PROFILE={profile}-live; SDKs call credfresh\n\
                 # whenever the credentials are about to expire.\n\
                 [profile {profile}-live]\n\
                 credential_process = {}\n",
                words.join(" ")
            )
        }
    }
}

/// `word` as one word for a POSIX shell: as it is when it holds only characters no shell or
/// splitter treats specially, else in single quotes (a `'` inside as `'\''`). Both readers
/// of a `credential_process` line take that form: botocore (and the AWS CLI) split it with
/// Python's `shlex.split`, the JS, Go, Rust and Java SDKs hand it to `sh -c`. A line break,
/// which no config line can hold, becomes a space.
pub fn shell_word(word: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "@%+=:,./_-".contains(c);
    if !word.is_empty() && word.chars().all(plain) {
        return word.to_owned();
    }
    let word = word.replace(['\n', '\r'], " ");
    format!("'{}'", word.replace('\'', r"'\''"))
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

#[cfg(test)]
mod tests {
    use super::shell_word;

    #[test]
    fn words_are_quoted_only_when_needed_and_split_back_whole() {
        assert_eq!(shell_word("/usr/bin/credfresh"), "/usr/bin/credfresh");
        assert_eq!(shell_word("ml/team-1"), "ml/team-1");
        for word in [
            "/Users/a/Library/Application Support/credfresh",
            "it's $HOME \"x\" `y` \\z",
            "",
            "'",
        ] {
            let quoted = shell_word(word);
            assert_eq!(
                shlex::split(&quoted),
                Some(vec![word.to_owned()]),
                "{quoted}"
            );
        }
    }
}
