//! `credfresh validate`.

use crate::config::{self, Config, ProfileSource, SourceRef};
use crate::env::Environment;
use crate::output::{CliError, CliResult};
use std::path::Path;

pub(super) fn validate(path: &Path, env: &Environment) -> CliResult {
    let config = config::load(path, env).map_err(CliError::usage)?;
    print!("{}", describe(&config));
    if let Some(f) = crate::mounts::single_file_mount(&config.daemon.credentials_file) {
        println!("warning: {}", crate::mounts::advice(&f));
    }
    Ok(0)
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
                let mfa = match &ar.mfa {
                    Some(m) => format!(", a code from {} at every refresh{}", m.serial, code_source(m)),
                    None => String::new(),
                };
                format!(
                    "assumes {} for {} with credentials of {from}{mfa}",
                    ar.role_arn,
                    humantime::format_duration(ar.duration)
                )
            }
            ProfileSource::SessionToken(st) => format!(
                "MFA session (GetSessionToken) for {} with the keys of AWS profile \"{}\" and a code from {}{}",
                humantime::format_duration(st.duration),
                st.source_profile,
                st.mfa.serial,
                code_source(&st.mfa)
            ),
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
    for note in &c.notes {
        out.push_str(&format!("note: {note}\n"));
    }
    out
}

fn code_source(m: &config::Mfa) -> String {
    match &m.process {
        Some(argv) => format!(" (from mfa_process `{}`)", argv.join(" ")),
        None => " (given with `credfresh mfa NAME`)".to_owned(),
    }
}
