//! `credfresh init`: a starter config from the profiles in `~/.aws/config`.
//!
//! Role, SSO and web identity profiles become managed profiles under a new name
//! (`<name>-fresh`): the AWS SDKs ignore keys written to a section whose `[profile X]` holds
//! `role_arn` or `sso_*` settings, so credfresh cannot refresh such a profile in place. The
//! generated text is validated like `credfresh validate` does before it is written; a
//! profile that would not pass is written commented out, with the reason.

use crate::aws_files::{self, Section};
use crate::config;
use crate::env::Environment;
use crate::output::{EXIT_FAILURE, EXIT_USAGE};
use std::collections::HashSet;
use std::path::Path;
use std::time::Duration;

/// The suffix of generated managed names.
pub const SUFFIX: &str = "-fresh";

/// One generated `[[profile]]`.
#[derive(Clone, Debug)]
struct Block {
    /// The managed name.
    name: String,
    /// The `~/.aws/config` profile it comes from.
    from: String,
    kind: &'static str,
    /// Comment lines above the table (without `# `).
    comment: Vec<String>,
    /// Keys after `name` and `kind`; `source_profile` is filled in at render time.
    keys: Vec<(&'static str, String)>,
    /// For `assume_role`: the AWS source profile, replaced by its managed name when that
    /// profile is managed too (a chain refreshed in order).
    source: Option<String>,
    /// Why the block is written commented out.
    disabled: Option<String>,
    /// `mfa_serial`: a role that needs codes is chained from a `session_token` block.
    mfa_serial: Option<String>,
    /// The managed source set by `generate` (the MFA session), overriding `source`.
    via: Option<String>,
}

/// What `init` generated: the config text and a summary for the terminal.
#[derive(Clone, Debug)]
pub struct Generated {
    /// The config file's text.
    pub text: String,
    /// `name  kind  from [profile x]` for each enabled profile.
    pub managed: Vec<String>,
    /// `name: why` for each profile written commented out.
    pub disabled: Vec<String>,
}

/// Builds the starter config for `config_path` from the AWS config text (`None` when there
/// is no `~/.aws/config`). The result passes `credfresh validate` in `env`.
pub fn generate(
    config_path: &Path,
    env: &Environment,
    aws_config: Option<&str>,
) -> Result<Generated, config::ConfigErrors> {
    let sections = aws_config.map(aws_files::parse).unwrap_or_default();
    // `run` refuses a credentials file the SDKs cannot read; here it adds no names.
    let credentials = aws_files::read(&env.default_credentials_file()).unwrap_or_default();
    // Names already used by someone else: every config profile, and every credentials file
    // section that credfresh did not write (it would overwrite those keys).
    let mut taken: HashSet<String> = sections
        .iter()
        .filter_map(|s| s.profile_name().map(str::to_owned))
        .chain(
            credentials
                .iter()
                .filter(|s| s.get("x_credfresh_expiration").is_none())
                .map(|s| s.header.clone()),
        )
        .collect();
    let mut blocks = Vec::new();
    let mut unmanaged = Vec::new();
    for s in &sections {
        let Some(from) = s.profile_name() else {
            continue;
        };
        let mut name = format!("{from}{SUFFIX}");
        let mut n = 2;
        while taken.contains(&name) {
            name = format!("{from}{SUFFIX}-{n}");
            n += 1;
        }
        match block(s, from, &name) {
            Some(b) => {
                taken.insert(name);
                blocks.push(b);
            }
            None => unmanaged.push(from.to_owned()),
        }
    }
    // Profiles whose credentials are not an IAM user's long-term keys: GetSessionToken
    // refuses role (SSO, web identity, credential_source/_process) and temporary credentials.
    let not_user_keys: HashSet<String> = sections
        .iter()
        .filter(|s| {
            NOT_USER_KEYS
                .iter()
                .any(|k| s.entries.iter().any(|e| e.key == *k))
        })
        .filter_map(|s| s.profile_name().map(str::to_owned))
        .chain(
            credentials
                .iter()
                .filter(|s| s.get("aws_session_token").is_some())
                .map(|s| s.header.clone()),
        )
        .collect();
    add_mfa_sessions(&mut blocks, &mut taken, &not_user_keys);
    let absolute = std::path::absolute(config_path).unwrap_or_else(|_| config_path.to_owned());
    // Validate as `credfresh validate` would; comment out what it rejects, until it passes.
    loop {
        let text = render(&blocks, &unmanaged, env, aws_config.is_some());
        let errors = match config::parse(&absolute, &text, env) {
            Ok(_) => {
                return Ok(Generated {
                    text,
                    managed: blocks
                        .iter()
                        .filter(|b| b.disabled.is_none())
                        .map(|b| format!("[{}] {} from [profile {}]", b.name, b.kind, b.from))
                        .collect(),
                    disabled: blocks
                        .iter()
                        .filter_map(|b| b.disabled.as_ref().map(|d| format!("{}: {d}", b.name)))
                        .collect(),
                })
            }
            Err(e) => e,
        };
        let mut progress = false;
        for e in &errors.0 {
            let Some(p) = &e.profile else { continue };
            if let Some(b) = blocks
                .iter_mut()
                .find(|b| &b.name == p && b.disabled.is_none())
            {
                b.disabled = Some(format!("`credfresh validate` rejects it: {}", e.message));
                progress = true;
            }
        }
        if !progress {
            return Err(errors);
        }
    }
}

/// The managed profile for one `~/.aws/config` profile, or `None` for one with nothing to
/// refresh (static keys, plain settings).
fn block(s: &Section, from: &str, name: &str) -> Option<Block> {
    let role_arn = s.get("role_arn");
    let mut b = Block {
        name: name.to_owned(),
        from: from.to_owned(),
        kind: "aws_profile",
        comment: Vec::new(),
        keys: Vec::new(),
        source: None,
        disabled: None,
        mfa_serial: None,
        via: None,
    };
    let sts_keys = |b: &mut Block, with_external_id: bool| {
        if let Some(d) = s
            .get("duration_seconds")
            .and_then(|d| d.parse::<u64>().ok())
        {
            b.keys.push((
                "duration",
                humantime::format_duration(Duration::from_secs(d)).to_string(),
            ));
        }
        if let Some(n) = s.get("role_session_name") {
            b.keys.push(("session_name", n.to_owned()));
        }
        if with_external_id {
            if let Some(x) = s.get("external_id") {
                b.keys.push(("external_id", x.to_owned()));
            }
        }
        if let Some(r) = s.get("region") {
            b.keys.push(("region", r.to_owned()));
        }
    };
    if let (Some(arn), Some(token)) = (role_arn, s.get("web_identity_token_file")) {
        b.kind = "web_identity";
        b.comment = vec![
            format!("From [profile {from}]: role_arn + web_identity_token_file."),
            "credfresh calls sts:AssumeRoleWithWebIdentity itself and re-reads the token file"
                .into(),
            "on every refresh, because the platform (EKS IRSA, Kubernetes) rotates it.".into(),
        ];
        b.keys.push(("role_arn", arn.to_owned()));
        b.keys.push(("token_file", token.to_owned()));
        sts_keys(&mut b, false);
    } else if let (Some(arn), Some(source)) = (role_arn, s.get("source_profile")) {
        b.kind = "assume_role";
        b.comment = vec![
            format!("From [profile {from}]: role_arn + source_profile."),
            "kind \"assume_role\" rather than wrapping the profile: credfresh calls sts:AssumeRole"
                .into(),
            "itself, so `duration` is honoured (the SDK's profile chain ignores duration_seconds),"
                .into(),
            "and when the source profile is managed below too, it is refreshed first.".into(),
        ];
        b.keys.push(("role_arn", arn.to_owned()));
        b.source = Some(source.to_owned());
        sts_keys(&mut b, true);
        if let Some(serial) = s.get("mfa_serial") {
            b.mfa_serial = Some(serial.to_owned());
            b.comment.push(
                "mfa_serial: assumed from the MFA session below, so one code a day keeps it fresh."
                    .into(),
            );
        }
    } else if let (Some(_), Some(cs)) = (role_arn, s.get("credential_source")) {
        b.comment = vec![
            format!("From [profile {from}]: role_arn + credential_source = {cs}."),
            "Wrapped: the AWS SDK's profile chain assumes the role with the base credentials from"
                .into(),
            "the environment or the platform, exactly as it would for AWS_PROFILE={from}.".into(),
        ];
        b.keys.push(("aws_profile", from.to_owned()));
    } else if s.get("sso_session").is_some() || s.get("sso_start_url").is_some() {
        b.kind = "sso";
        let login = match s.get("sso_session") {
            Some(x) => {
                b.keys.push(("sso_session", x.to_owned()));
                format!("credfresh login --sso-session {x}")
            }
            None => {
                let url = s.get("sso_start_url").unwrap_or_default();
                b.keys.push(("sso_start_url", url.to_owned()));
                if let Some(r) = s.get("sso_region") {
                    b.keys.push(("sso_region", r.to_owned()));
                }
                format!("credfresh login --sso-session {url}")
            }
        };
        let session = match s.get("sso_session") {
            Some(x) => format!("sso_session {x}"),
            None => "legacy inline sso_start_url".into(),
        };
        b.comment = vec![
            format!("From [profile {from}]: SSO ({session})."),
            "credfresh reads the SSO token that `aws sso login` or `credfresh login` cached, refreshes"
                .into(),
            "it with its refresh token ahead of expiry (one refresh per session) and shows".into(),
            format!("login_required when only a new login helps: run `{login}`."),
        ];
        let account = s.get("sso_account_id");
        let role = s.get("sso_role_name");
        if let Some(a) = account {
            b.keys.push(("account_id", a.to_owned()));
        }
        if let Some(r) = role {
            b.keys.push(("role_name", r.to_owned()));
        }
        if let Some(r) = s.get("region") {
            b.keys.push(("region", r.to_owned()));
        }
        let missing: Vec<&str> = [("sso_account_id", account), ("sso_role_name", role)]
            .iter()
            .filter(|(_, v)| v.is_none())
            .map(|(k, _)| *k)
            .collect();
        if !missing.is_empty() {
            b.disabled = Some(format!(
                "[profile {from}] has no {}, so it names no role to get credentials for (it can only log in); add {} to it, or set account_id and role_name here",
                missing.join(" and "),
                if missing.len() > 1 { "them" } else { "it" }
            ));
        }
    } else if let (Some(serial), None) = (s.get("mfa_serial"), s.get("credential_process")) {
        // An IAM user whose policies demand MFA: its keys open an MFA session.
        b.kind = "session_token";
        b.comment = session_comment(from, name);
        b.keys.push(("source_profile", from.to_owned()));
        b.keys.push(("mfa_serial", serial.to_owned()));
    } else if s.get("credential_process").is_some() {
        b.comment = vec![
            format!("From [profile {from}]: credential_process."),
            "SDKs already run the helper themselves. Enable this only if a tool needs the keys"
                .into(),
            "in the credentials file and the helper returns temporary ones (with an Expiration)."
                .into(),
        ];
        b.keys.push(("aws_profile", from.to_owned()));
        b.disabled = Some("optional: SDKs call credential_process helpers themselves".into());
    } else {
        return None;
    }
    Some(b)
}

fn session_comment(from: &str, name: &str) -> Vec<String> {
    vec![
        format!("MFA session (sts:GetSessionToken) with the long-term keys of [{from}]."),
        format!(
            "Give it a code with `credfresh mfa {name}` (or set mfa_process); the roles chained"
        ),
        "from it stay fresh until it ends (12h by default; set duration, up to 36h).".into(),
    ]
}

/// Keys of a `~/.aws/config` profile that make its credentials something other than an IAM
/// user's long-term keys.
const NOT_USER_KEYS: &[&str] = &[
    "role_arn",
    "sso_session",
    "sso_start_url",
    "sso_account_id",
    "sso_role_name",
    "web_identity_token_file",
    "credential_source",
    "credential_process",
];

/// Chains each role with `mfa_serial` from a `session_token` profile of its source profile
/// and device, adding that profile where there is none yet. Only a source with an IAM user's
/// long-term keys can open an MFA session: a role whose source is a role, SSO or
/// self-referencing profile (`not_user_keys`, or itself) stays an `assume_role` that spends a
/// code on each AssumeRole, or is written commented out.
fn add_mfa_sessions(
    blocks: &mut Vec<Block>,
    taken: &mut HashSet<String>,
    not_user_keys: &HashSet<String>,
) {
    let key = |b: &Block, k: &str| {
        b.keys
            .iter()
            .find(|(key, _)| *key == k)
            .map(|(_, v)| v.clone())
    };
    let mut i = 0;
    while i < blocks.len() {
        let (Some(serial), Some(source)) = (blocks[i].mfa_serial.clone(), blocks[i].source.clone())
        else {
            i += 1;
            continue;
        };
        if source == blocks[i].from {
            blocks[i].disabled = Some(format!(
                "[profile {source}] names itself as its source_profile, a loop the AWS CLI refuses too; set source_profile to the profile with the keys that assume the role"
            ));
            i += 1;
            continue;
        }
        if not_user_keys.contains(&source) {
            let b = &mut blocks[i];
            b.comment.pop();
            b.comment.push(format!(
                "mfa_serial: [profile {source}] holds role or temporary credentials, which cannot open an"
            ));
            b.comment.push(format!(
                "MFA session (GetSessionToken), so each AssumeRole takes a code: `credfresh mfa {}`.",
                b.name
            ));
            b.keys.push(("mfa_serial", serial));
            i += 1;
            continue;
        }
        let existing = blocks.iter().find(|o| {
            o.kind == "session_token"
                && key(o, "source_profile").as_deref() == Some(source.as_str())
                && key(o, "mfa_serial").as_deref() == Some(serial.as_str())
        });
        let name = match existing {
            Some(o) => o.name.clone(),
            None => {
                let mut name = format!("{source}-mfa{SUFFIX}");
                let mut n = 2;
                while taken.contains(&name) {
                    name = format!("{source}-mfa{SUFFIX}-{n}");
                    n += 1;
                }
                taken.insert(name.clone());
                let base = Block {
                    name: name.clone(),
                    from: source.clone(),
                    kind: "session_token",
                    comment: session_comment(&source, &name),
                    keys: vec![("source_profile", source.clone()), ("mfa_serial", serial)],
                    source: None,
                    disabled: None,
                    mfa_serial: None,
                    via: None,
                };
                blocks.insert(i, base);
                i += 1;
                name
            }
        };
        blocks[i].via = Some(name);
        i += 1;
    }
}

fn quote(s: &str) -> String {
    toml::Value::String(s.to_owned()).to_string()
}

fn render(blocks: &[Block], unmanaged: &[String], env: &Environment, found: bool) -> String {
    let aws_config = env.aws_config_file();
    let mut out = String::new();
    out.push_str(&format!(
        "# credfresh configuration, written by `credfresh init` from {}.\n",
        aws_config.display()
    ));
    out.push_str(
        "# Check it with `credfresh validate`; config.example.toml documents every key.\n\
         #\n\
         # Each [[profile]] below is a section credfresh keeps fresh in the credentials file.\n\
         # The names end in \"-fresh\": a profile that ~/.aws/config defines with role_arn or sso_*\n\
         # settings cannot be refreshed under its own name, because the AWS SDKs would use those\n\
         # settings and ignore the keys written for it. Use the new name, e.g. AWS_PROFILE=x-fresh.\n",
    );
    if !found {
        out.push_str(&format!(
            "#\n# {} does not exist, so no profiles were found; add [[profile]] tables.\n",
            aws_config.display()
        ));
    }
    if !unmanaged.is_empty() {
        out.push_str(&format!(
            "#\n# Not managed (static keys or plain settings, nothing to refresh): {}.\n\
             # Such a profile can be the source_profile of an assume_role profile.\n",
            unmanaged.join(", ")
        ));
    }
    out.push_str(&format!(
        "\n[daemon]\n\
         # Every key is optional; the defaults are shown.\n\
         # The shared credentials file ($AWS_SHARED_CREDENTIALS_FILE, else ~/.aws/credentials):\n\
         # credentials_file = {}\n\
         # The control socket ($XDG_RUNTIME_DIR/credfresh/credfresh.sock, else under ~/.cache):\n\
         # socket = {}\n\
         # Refresh this long before expiry (after 2/3 of lifetimes shorter than three times this):\n\
         # refresh_before = \"15m\"\n\
         # Log lines on stderr: \"text\" or \"json\":\n\
         # log_format = \"text\"\n",
        quote(&env.default_credentials_file().display().to_string()),
        quote(&env.default_socket().display().to_string()),
    ));
    if blocks.is_empty() {
        out.push_str(
            "\n# Example: assume a role with the credentials of an AWS profile.\n\
             # [[profile]]\n\
             # name = \"metaflow\"\n\
             # kind = \"assume_role\"\n\
             # role_arn = \"arn:aws:iam::123456789012:role/MetaflowUserRole\"\n\
             # source_profile = \"default\"\n\
             # duration = \"1h\"\n",
        );
    }
    for b in blocks {
        let source = b.via.clone().or_else(|| {
            b.source.as_ref().map(|src| {
                blocks
                    .iter()
                    // Not the MFA session of `src`: only a role with `mfa_serial` uses it.
                    .find(|o| &o.from == src && o.disabled.is_none() && o.kind != "session_token")
                    .map(|o| o.name.clone())
                    .unwrap_or_else(|| src.clone())
            })
        });
        let mut lines = vec![
            format!("name = {}", quote(&b.name)),
            format!("kind = {}", quote(b.kind)),
        ];
        let mut keys = b.keys.iter();
        // `role_arn` first, then `source_profile`, then the rest, as config.example.toml.
        if let Some((k, v)) = b.keys.first().filter(|(k, _)| *k == "role_arn") {
            lines.push(format!("{k} = {}", quote(v)));
            keys.next();
        }
        if let Some(src) = &source {
            let note = if b.via.is_some() {
                format!(
                    "   # the MFA session of [profile {}]",
                    b.source.as_deref().unwrap_or("")
                )
            } else if Some(src) != b.source.as_ref() {
                format!(
                    "   # managed below, from [profile {}]",
                    b.source.as_deref().unwrap_or("")
                )
            } else {
                String::new()
            };
            lines.push(format!("source_profile = {}{note}", quote(src)));
        }
        lines.extend(keys.map(|(k, v)| format!("{k} = {}", quote(v))));
        out.push('\n');
        for c in &b.comment {
            out.push_str(&format!("# {c}\n"));
        }
        match &b.disabled {
            None => {
                out.push_str("[[profile]]\n");
                for l in lines {
                    out.push_str(&format!("{l}\n"));
                }
            }
            Some(why) => {
                out.push_str(&format!(
                    "# Not enabled: {}\n# [[profile]]\n",
                    one_line(why)
                ));
                for l in lines {
                    out.push_str(&format!("# {l}\n"));
                }
            }
        }
    }
    out
}

fn one_line(s: &str) -> String {
    s.lines().collect::<Vec<_>>().join(" ")
}

/// Runs `credfresh init`; returns the exit code.
pub fn run(config_path: &Path, env: &Environment, force: bool) -> u8 {
    if !force && std::fs::symlink_metadata(config_path).is_ok() {
        eprintln!(
            "credfresh: {} already exists; it was left unchanged. Pass --force to overwrite it, or --config PATH to write another file",
            config_path.display()
        );
        return EXIT_USAGE;
    }
    let aws_config_path = env.aws_config_file();
    let aws_config = match std::fs::read(&aws_config_path) {
        Ok(bytes) => match aws_files::decode(&bytes) {
            Ok(text) => Some(text.to_owned()),
            Err(e) => {
                eprintln!(
                    "credfresh: the AWS config file {} {e}",
                    aws_config_path.display()
                );
                return EXIT_USAGE;
            }
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => {
            eprintln!("credfresh: cannot read {}: {e}", aws_config_path.display());
            return EXIT_FAILURE;
        }
    };
    let credentials_path = env.default_credentials_file();
    if let Err(e) = aws_files::read(&credentials_path) {
        eprintln!(
            "credfresh: the AWS credentials file {} {e}",
            credentials_path.display()
        );
        return EXIT_USAGE;
    }
    let generated = match generate(config_path, env, aws_config.as_deref()) {
        Ok(g) => g,
        Err(e) => {
            eprintln!(
                "credfresh: the generated config does not validate (please report this):\n{e}"
            );
            return EXIT_FAILURE;
        }
    };
    if let Err(e) = write(config_path, &generated.text, force) {
        eprintln!("credfresh: cannot write {}: {e}", config_path.display());
        return if e.kind() == std::io::ErrorKind::AlreadyExists {
            EXIT_USAGE
        } else {
            EXIT_FAILURE
        };
    }
    println!("wrote {}", config_path.display());
    if aws_config.is_none() {
        println!(
            "{} does not exist: no profiles found; add [[profile]] tables (see the example in the file)",
            aws_config_path.display()
        );
    } else if generated.managed.is_empty() {
        println!(
            "no role, SSO or web identity profiles in {}; add [[profile]] tables",
            aws_config_path.display()
        );
    } else {
        println!("managed profiles (from {}):", aws_config_path.display());
        for m in &generated.managed {
            println!("  {m}");
        }
    }
    if !generated.disabled.is_empty() {
        println!("written commented out:");
        for d in &generated.disabled {
            println!("  {d}");
        }
    }
    println!(
        "next:\n  credfresh validate                       show what will be managed\n  credfresh daemon                         run it in the foreground, or as a service:\n  systemctl --user enable --now credfresh  (Linux; see the README for macOS and containers)\n  credfresh check                          prove the credentials work"
    );
    0
}

/// Writes `text` to `path` atomically ([`fsutil`](crate::fsutil): a private temp file in the same directory,
/// then rename), creating parent directories; without `force`, never replaces an existing file.
fn write(path: &Path, text: &str, force: bool) -> std::io::Result<()> {
    let dir = crate::fsutil::parent_dir(path);
    std::fs::create_dir_all(dir)?;
    let tmp = crate::fsutil::write_private(dir, TEMP_PREFIX, text.as_bytes())?;
    if force {
        crate::fsutil::persist(tmp, path)
    } else {
        crate::fsutil::persist_new(tmp, path)
    }
}

/// The start of the temporary file's name while the config is written, `.credfresh-init-XXXXXX.tmp`.
const TEMP_PREFIX: &str = ".credfresh-init-";

#[cfg(test)]
mod tests {
    use super::*;

    const AWS_CONFIG: &str = "\
[default]
region = us-east-1

[profile base]
region = us-east-1

[profile admin]
role_arn = arn:aws:iam::123456789012:role/Admin
source_profile = base
duration_seconds = 7200
external_id = ext-1

[profile chained]
role_arn = arn:aws:iam::123456789012:role/Chained
source_profile = admin

[profile mfa]
role_arn = arn:aws:iam::123456789012:role/Mfa
source_profile = base
mfa_serial = arn:aws:iam::123456789012:mfa/me

[sso-session acme]
sso_start_url = https://acme.awsapps.com/start
sso_region = eu-west-1

[profile dev]
sso_session = acme
sso_account_id = 123456789012
sso_role_name = PowerUserAccess
region = eu-west-1

[profile metaflow]
role_arn = arn:aws:iam::123456789012:role/MetaflowUserRole
source_profile = dev

[profile legacy]
sso_start_url = https://old.awsapps.com/start
sso_region = us-east-2
sso_account_id = 210987654321
sso_role_name = ReadOnly

[profile login-only]
sso_session = acme

[profile eks]
role_arn = arn:aws:iam::123456789012:role/Eks
web_identity_token_file = /var/run/secrets/token

[profile bad]
role_arn = not-an-arn
source_profile = base
";

    #[test]
    fn generates_a_valid_config_with_every_kind() {
        let dir = tempfile::tempdir().unwrap();
        let aws = dir.path().join("aws-config");
        std::fs::write(&aws, AWS_CONFIG).unwrap();
        let creds = dir.path().join("credentials");
        std::fs::write(&creds, "[admin-fresh]\naws_access_key_id = A\n").unwrap();
        let env = Environment::new(
            dir.path(),
            &[
                ("AWS_CONFIG_FILE", aws.to_str().unwrap()),
                ("AWS_SHARED_CREDENTIALS_FILE", creds.to_str().unwrap()),
            ],
        );
        let path = dir.path().join("c").join("config.toml");
        let g = generate(&path, &env, Some(AWS_CONFIG)).unwrap();
        let c = config::parse(&path, &g.text, &env).unwrap_or_else(|e| panic!("{e}\n{}", g.text));
        let kinds: Vec<(&str, &str)> = c
            .profiles
            .iter()
            .map(|p| (p.name.as_str(), p.source.kind()))
            .collect();
        // `admin-fresh` is a foreign section of the credentials file: not reused.
        for want in [
            ("admin-fresh-2", "assume_role"),
            ("chained-fresh", "assume_role"),
            ("dev-fresh", "sso"),
            ("metaflow-fresh", "assume_role"),
            ("legacy-fresh", "sso"),
            ("eks-fresh", "web_identity"),
        ] {
            assert!(
                kinds.contains(&want),
                "{want:?} not in {kinds:?}\n{}",
                g.text
            );
        }
        assert_eq!(kinds.len(), 8, "{kinds:?}");
        let find = |name: &str| c.profiles.iter().find(|p| p.name == name).unwrap();
        assert_eq!(
            find("chained-fresh").source.managed_source(),
            Some("admin-fresh-2")
        );
        // The role assumed from an SSO profile uses the managed sso profile: refreshed in order.
        assert_eq!(
            find("metaflow-fresh").source.managed_source(),
            Some("dev-fresh")
        );
        let crate::config::ProfileSource::Sso(dev) = &find("dev-fresh").source else {
            panic!("dev-fresh is not sso");
        };
        assert_eq!(dev.session.name.as_deref(), Some("acme"));
        assert_eq!(dev.session.start_url, "https://acme.awsapps.com/start");
        assert_eq!(dev.session.region, "eu-west-1");
        assert_eq!(dev.account_id, "123456789012");
        assert_eq!(dev.role_name, "PowerUserAccess");
        assert_eq!(dev.region.as_deref(), Some("eu-west-1"));
        let crate::config::ProfileSource::Sso(legacy) = &find("legacy-fresh").source else {
            panic!("legacy-fresh is not sso");
        };
        assert_eq!(legacy.session.name, None);
        assert_eq!(legacy.session.start_url, "https://old.awsapps.com/start");
        assert_eq!(legacy.session.region, "us-east-2");
        assert_eq!(legacy.account_id, "210987654321");
        assert_eq!(legacy.role_name, "ReadOnly");
        // An SSO profile that names no role stays commented out, saying why.
        assert!(
            g.text.contains("# name = \"login-only-fresh\""),
            "{}",
            g.text
        );
        assert!(
            g.disabled.iter().any(|d| d.starts_with("login-only-fresh:")
                && d.contains("no sso_account_id and sso_role_name")),
            "{:?}",
            g.disabled
        );
        assert!(g.text.contains("duration = \"2h\""), "{}", g.text);
        // A role with mfa_serial is chained from an MFA session of its source profile.
        let c = config::parse(&path, &g.text, &env).unwrap();
        let mfa = c.profiles.iter().find(|p| p.name == "mfa-fresh").unwrap();
        assert_eq!(mfa.source.managed_source(), Some("base-mfa-fresh"));
        let base = c
            .profiles
            .iter()
            .find(|p| p.name == "base-mfa-fresh")
            .unwrap();
        match &base.source {
            config::ProfileSource::SessionToken(st) => {
                assert_eq!(st.source_profile, "base");
                assert_eq!(st.mfa.serial, "arn:aws:iam::123456789012:mfa/me");
            }
            other => panic!("{other:?}"),
        }
        assert!(g.text.contains("# name = \"bad-fresh\""), "{}", g.text);
        assert!(
            g.text.contains(
                "Not managed (static keys or plain settings, nothing to refresh): default, base"
            ),
            "{}",
            g.text
        );
    }

    /// Only roles with `mfa_serial` move to the MFA session, and only a source with an IAM
    /// user's long-term keys gets one (not a role, SSO or self-referencing profile).
    #[test]
    fn mfa_sessions_only_for_mfa_roles_of_iam_user_keys() {
        const AWS: &str = "\
[profile iam-user]
region = us-east-1

[profile nomfa]
role_arn = arn:aws:iam::123456789012:role/NoMfa
source_profile = iam-user

[profile admin]
role_arn = arn:aws:iam::123456789012:role/Admin
source_profile = iam-user
mfa_serial = arn:aws:iam::123456789012:mfa/alice

[profile chain2]
role_arn = arn:aws:iam::123456789012:role/Chain2
source_profile = admin
mfa_serial = arn:aws:iam::123456789012:mfa/alice

[profile sso-ish]
sso_start_url = https://acme.awsapps.com/start
sso_region = eu-west-1
sso_account_id = 123456789012
sso_role_name = Power

[profile fromsso]
role_arn = arn:aws:iam::123456789012:role/FromSso
source_profile = sso-ish
mfa_serial = arn:aws:iam::123456789012:mfa/alice

[profile selfref]
role_arn = arn:aws:iam::123456789012:role/Self
source_profile = selfref
mfa_serial = arn:aws:iam::123456789012:mfa/alice
";
        let dir = tempfile::tempdir().unwrap();
        let aws = dir.path().join("aws-config");
        std::fs::write(&aws, AWS).unwrap();
        let creds = dir.path().join("credentials");
        std::fs::write(
            &creds,
            "[iam-user]\naws_access_key_id = A\naws_secret_access_key = B\n",
        )
        .unwrap();
        let env = Environment::new(
            dir.path(),
            &[
                ("AWS_CONFIG_FILE", aws.to_str().unwrap()),
                ("AWS_SHARED_CREDENTIALS_FILE", creds.to_str().unwrap()),
            ],
        );
        let path = dir.path().join("config.toml");
        let g = generate(&path, &env, Some(AWS)).unwrap();
        let c = config::parse(&path, &g.text, &env).unwrap_or_else(|e| panic!("{e}\n{}", g.text));
        let find = |name: &str| {
            c.profiles
                .iter()
                .find(|p| p.name == name)
                .unwrap_or_else(|| panic!("no {name}\n{}", g.text))
        };
        let sessions: Vec<(&str, &str)> = c
            .profiles
            .iter()
            .filter_map(|p| match &p.source {
                config::ProfileSource::SessionToken(st) => {
                    Some((p.name.as_str(), st.source_profile.as_str()))
                }
                _ => None,
            })
            .collect();
        assert_eq!(sessions, [("iam-user-mfa-fresh", "iam-user")], "{}", g.text);
        assert_eq!(
            find("nomfa-fresh").source.managed_source(),
            None,
            "{}",
            g.text
        );
        assert!(
            g.text.contains("source_profile = \"iam-user\"\n"),
            "{}",
            g.text
        );
        assert_eq!(
            find("admin-fresh").source.managed_source(),
            Some("iam-user-mfa-fresh")
        );
        for (role, src) in [
            ("chain2-fresh", "admin-fresh"),
            ("fromsso-fresh", "sso-ish-fresh"),
        ] {
            let p = find(role);
            assert_eq!(p.source.managed_source(), Some(src), "{}", g.text);
            let config::ProfileSource::AssumeRole(ar) = &p.source else {
                panic!("{role} is not assume_role");
            };
            assert_eq!(
                ar.mfa.as_ref().map(|m| m.serial.as_str()),
                Some("arn:aws:iam::123456789012:mfa/alice")
            );
        }
        assert!(
            g.disabled
                .iter()
                .any(|d| d.starts_with("selfref-fresh:") && d.contains("names itself")),
            "{:?}",
            g.disabled
        );
    }

    #[test]
    fn without_an_aws_config_the_starter_still_validates() {
        let dir = tempfile::tempdir().unwrap();
        let env = Environment::new(dir.path(), &[]);
        let path = dir.path().join("config.toml");
        let g = generate(&path, &env, None).unwrap();
        let c = config::parse(&path, &g.text, &env).unwrap();
        assert!(c.profiles.is_empty());
        assert!(g.text.contains("[daemon]"));
    }
}
