//! `credfresh login`: device authorization for an SSO session, then a refresh of its profiles.

use crate::client::{self, ClientError, Reply};
use crate::config::{self, Config, ProfileSource};
use crate::env::Environment;
use crate::output::{CliError, CliResult};
use std::path::Path;

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

pub(super) async fn login(
    socket: &Path,
    config_path: &Path,
    env: &Environment,
    wanted: Option<String>,
    no_browser: bool,
) -> CliResult {
    let config = match config::load(config_path, env) {
        Ok(c) => Some(c),
        // A named session can be signed in to even while the config is broken or missing.
        Err(_) if wanted.is_some() => None,
        Err(e) => return Err(CliError::usage(e)),
    };
    let sessions = config.as_ref().map(sso_sessions).unwrap_or_default();
    let session = match &wanted {
        Some(name) => match sessions
            .get(name)
            .cloned()
            .map(|s| Ok(Some(s)))
            .unwrap_or_else(|| config::aws_sso_session(&env.aws_config_file(), name))
        {
            Ok(Some(s)) => s,
            Err(e) => {
                return Err(CliError::Usage(format!(
                    "credfresh: the AWS config file {} {e}",
                    env.aws_config_file().display()
                )));
            }
            Ok(None) => {
                return Err(CliError::Usage(format!(
                    "credfresh: no SSO session \"{name}\": it is neither used by a profile of {} nor an [sso-session {name}] with sso_start_url and sso_region in {}",
                    config_path.display(),
                    env.aws_config_file().display()
                )));
            }
        },
        None => match sessions.values().next() {
            Some(s) if sessions.len() == 1 => s.clone(),
            None => {
                return Err(CliError::Usage(format!(
                    "credfresh: no profile of {} uses SSO; add a kind = \"sso\" profile or pass --sso-session NAME",
                    config_path.display()
                )));
            }
            Some(_) => {
                return Err(CliError::Usage(format!(
                    "credfresh: the config uses several SSO sessions; choose one with --sso-session:\n{}",
                    sessions
                        .keys()
                        .map(|k| format!("  credfresh login --sso-session {k}"))
                        .collect::<Vec<_>>()
                        .join("\n")
                )));
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
    let expires = crate::sso::login::login(&sdk, &session, &path, browser, &mut out)
        .await
        .map_err(|e| {
            CliError::Failed(format!(
                "credfresh: login to SSO session \"{}\" failed: {e}",
                session.label()
            ))
        })?;
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
        return Ok(0);
    }
    match client::refresh(socket, &names).await {
        Ok(Reply::Ok(reply)) => {
            println!("Refreshed {}:", names.join(", "));
            Ok(super::refresh::print_refreshed(&reply))
        }
        Ok(Reply::Refused(code, body)) => Err(CliError::Refused(code, body)),
        Err(ClientError::NotRunning(_)) => {
            println!(
                "No credfresh daemon is running; it will use this login for {} when it starts.",
                names.join(", ")
            );
            Ok(0)
        }
        Err(e) => Err(e.into()),
    }
}
