//! `credfresh login`: device authorization for an SSO session, then a refresh of its profiles.

use crate::client::{self, ClientError, Reply};
use crate::config::{self, Config, ProfileSource};
use crate::env::Environment;
use crate::output::{fail, reply_error, EXIT_FAILURE, EXIT_USAGE};
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
    match client::refresh(socket, &names).await {
        Ok(Reply::Ok(reply)) => {
            println!("Refreshed {}:", names.join(", "));
            super::refresh::print_refreshed(&reply)
        }
        Ok(Reply::Refused(code, body)) => reply_error(code, &body),
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
