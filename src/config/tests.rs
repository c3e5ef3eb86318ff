use super::*;

struct Fixture {
    dir: tempfile::TempDir,
    env: Environment,
}

fn fixture(aws_config: &str, credentials: &str) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join(".aws")).unwrap();
    std::fs::write(dir.path().join(".aws/config"), aws_config).unwrap();
    std::fs::write(dir.path().join(".aws/credentials"), credentials).unwrap();
    let env = Environment::new(dir.path(), &[]);
    Fixture { dir, env }
}

fn base() -> Fixture {
    fixture(
        "[profile sso-admin]\nregion = eu-west-1\n",
        "[base]\naws_access_key_id = AKIA\n",
    )
}

fn errors(f: &Fixture, text: &str) -> Vec<ConfigError> {
    match parse(&f.dir.path().join("c.toml"), text, &f.env) {
        Ok(c) => panic!("expected errors, got {c:?}"),
        Err(ConfigErrors(e)) => e,
    }
}

fn one_error(f: &Fixture, text: &str) -> ConfigError {
    let e = errors(f, text);
    assert_eq!(e.len(), 1, "{e:#?}");
    e.into_iter().next().unwrap()
}

#[test]
fn full_config_validates_with_defaults() {
    let f = base();
    let text = r#"
[daemon]
refresh_before = "10m"
log_format = "json"
credentials_file = "~/creds"

[[profile]]
name = "metaflow"
kind = "assume_role"
role_arn = "arn:aws:iam::123456789012:role/MetaflowUserRole"
source_profile = "mid"
duration = "30s"

[[profile]]
name = "mid"
kind = "assume_role"
role_arn = "arn:aws:iam::123456789012:role/Mid"
source_profile = "base"
external_id = "x-1"
region = "eu-west-1"

[[profile]]
name = "wrapped"
kind = "aws_profile"
aws_profile = "sso-admin"
"#;
    // `base` lives in the default credentials file, not in ~/creds.
    let e = errors(&f, text);
    assert!(e[0].message.contains("source_profile \"base\""), "{e:?}");

    let text = text.replace("credentials_file = \"~/creds\"\n", "");
    let c = parse(Path::new("c.toml"), &text, &f.env).unwrap();
    assert_eq!(c.daemon.refresh_before, Duration::from_secs(600));
    assert_eq!(c.daemon.log_format, LogFormat::Json);
    assert_eq!(
        c.daemon.credentials_file,
        f.dir.path().join(".aws/credentials")
    );
    let names: Vec<&str> = c.profiles.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["mid", "metaflow", "wrapped"], "sources come first");
    let ProfileSource::AssumeRole(ar) = &c.profiles[1].source else {
        panic!()
    };
    assert_eq!(ar.source, SourceRef::Managed("mid".into()));
    assert_eq!(ar.duration, Duration::from_secs(30));
    assert_eq!(ar.session_name, "credfresh-metaflow");
    let ProfileSource::AssumeRole(mid) = &c.profiles[0].source else {
        panic!()
    };
    assert_eq!(mid.source, SourceRef::Aws("base".into()));
    assert_eq!(mid.external_id.as_deref(), Some("x-1"));
    assert_eq!(c.profiles[1].line, 6, "the [[profile]] header line");
}

#[test]
fn syntax_error_names_file_and_line() {
    let f = base();
    let e = one_error(&f, "[daemon]\nrefresh_before = \n");
    assert_eq!(e.line, Some(2));
    assert!(e
        .to_string()
        .starts_with(&format!("{}:2: ", f.dir.path().join("c.toml").display())));
}

#[test]
fn unknown_key_is_located_and_explained() {
    let f = base();
    let e = one_error(
        &f,
        "[[profile]]\nname = \"a\"\nkind = \"assume_role\"\nrole_arn = \"arn:aws:iam::123456789012:role/R\"\nsource_profile = \"base\"\nduraton = \"1h\"\n",
    );
    assert_eq!(e.line, Some(6), "{e}");
    assert!(e.message.contains("duraton"), "{e}");
    assert!(e.message.contains("remove it"), "{e}");
}

#[test]
fn bad_values_each_name_line_and_profile() {
    let f = base();
    let text = r#"[[profile]]
name = "a"
kind = "assume_role"
role_arn = "arn:aws:iam::1234:role/R"
source_profile = "base"
duration = "forever"
session_name = "x"
region = "Mars"
"#;
    let e = errors(&f, text);
    let lines: Vec<Option<usize>> = e.iter().map(|e| e.line).collect();
    assert_eq!(lines, [Some(4), Some(6), Some(7), Some(8)], "{e:#?}");
    assert!(e.iter().all(|e| e.profile.as_deref() == Some("a")));
    assert!(e[1].message.contains("\"15m\""), "{}", e[1]);
}

#[test]
fn missing_and_misplaced_keys() {
    let f = base();
    let e = errors(
        &f,
        "[[profile]]\nname = \"a\"\nkind = \"assume_role\"\naws_profile = \"x\"\n",
    );
    let text: Vec<String> = e.iter().map(|e| e.to_string()).collect();
    assert!(
        text.iter().any(|m| m.contains("needs `role_arn`")),
        "{text:?}"
    );
    assert!(
        text.iter().any(|m| m.contains("needs `source_profile`")),
        "{text:?}"
    );
    assert!(
        text.iter()
            .any(|m| m.contains(":4: profile \"a\": `aws_profile` does not apply")),
        "{text:?}"
    );

    let e = one_error(&f, "[[profile]]\nname = \"a\"\n");
    assert!(e.message.contains("missing field `kind`"), "{e}");

    let e = one_error(&f, "[[profile]]\nname = \"a\"\nkind = \"magic\"\n");
    assert_eq!(e.line, Some(3));
    assert!(
        e.message
            .contains("assume_role, aws_profile, web_identity, instance"),
        "{e}"
    );
}

#[test]
fn duplicate_names_are_rejected() {
    let f = base();
    let p = "[[profile]]\nname = \"a\"\nkind = \"aws_profile\"\naws_profile = \"base\"\n";
    let e = one_error(&f, &format!("{p}{p}"));
    assert_eq!(e.line, Some(6));
    assert!(e.message.contains("first defined on line 2"), "{e}");
}

#[test]
fn cycles_are_rejected() {
    let f = base();
    let p = |n: &str, s: &str| {
        format!("[[profile]]\nname = \"{n}\"\nkind = \"assume_role\"\nrole_arn = \"arn:aws:iam::123456789012:role/R\"\nsource_profile = \"{s}\"\n")
    };
    let e = one_error(
        &f,
        &format!("{}{}{}", p("a", "b"), p("b", "c"), p("c", "a")),
    );
    assert!(e.message.contains("a -> b -> c -> a"), "{e}");
    let e = one_error(&f, &p("self", "self"));
    assert!(e.message.contains("self -> self"), "{e}");
}

#[test]
fn unknown_source_profile_is_rejected() {
    let f = base();
    let e = one_error(
        &f,
        "[[profile]]\nname = \"a\"\nkind = \"assume_role\"\nrole_arn = \"arn:aws:iam::123456789012:role/R\"\nsource_profile = \"nope\"\n",
    );
    assert_eq!(e.line, Some(5));
    assert!(e.message.contains("source_profile \"nope\""), "{e}");
}

#[test]
fn conflict_with_aws_config_is_rejected() {
    let f = fixture(
        "[default]\nregion = us-east-1\n\n[profile metaflow]\nregion = eu-west-1\nrole_arn = arn:aws:iam::123456789012:role/R\nsource_profile = base\n",
        "[base]\naws_access_key_id = AKIA\n",
    );
    let e = one_error(
        &f,
        "[[profile]]\nname = \"metaflow\"\nkind = \"aws_profile\"\naws_profile = \"base\"\n",
    );
    assert_eq!(e.line, Some(2));
    assert!(
        e.message
            .contains("config:6 defines [profile metaflow] with `role_arn`"),
        "{e}"
    );
}

#[test]
fn bad_daemon_settings() {
    let f = base();
    let e = errors(
        &f,
        "[daemon]\nlog_format = \"xml\"\nrefresh_before = \"0s\"\n",
    );
    assert_eq!(e.len(), 2, "{e:?}");
    let e = one_error(&f, "[daemon]\nsokcet = \"/tmp/x\"\n");
    assert!(e.message.contains("sokcet"));
}

#[test]
fn empty_config_is_valid_and_manages_nothing() {
    let f = base();
    let c = parse(Path::new("c.toml"), "", &f.env).unwrap();
    assert!(c.profiles.is_empty());
    assert_eq!(c.daemon.refresh_before, DEFAULT_REFRESH_BEFORE);
}

#[test]
fn missing_file_says_how_to_create_one() {
    let f = base();
    let e = load(&f.dir.path().join("nope.toml"), &f.env).unwrap_err();
    assert!(e.to_string().contains("credfresh init"), "{e}");
}

#[test]
fn default_session_name_is_sts_safe() {
    assert_eq!(
        default_session_name("my profile/x"),
        "credfresh-my-profile-x"
    );
    assert!(default_session_name(&"x".repeat(100)).len() <= 64);
}

#[test]
fn socket_is_found_even_in_a_broken_config() {
    let f = base();
    let path = f.dir.path().join("c.toml");
    let hint = |bytes: &[u8]| {
        std::fs::write(&path, bytes).unwrap();
        socket_hint(&path, &f.env)
    };
    let h = hint(b"[daemon]\nsocket = \"~/s.sock\"\n[[profile]]\nname = 3\n");
    assert_eq!(h.socket, Some(f.dir.path().join("s.sock")));
    assert!(h.broken.is_some_and(|b| b.contains("c.toml:4")));
    let h = hint(b"[daemon]\nsocket = \"/x/s.sock\"\ngarbage =\n");
    assert_eq!(h.socket, Some(PathBuf::from("/x/s.sock")));
    assert!(h.broken.is_some());
    let h = hint(b"[ daemon ] # the daemon\nsocket='/x/s.sock' # here\ngarbage =\n");
    assert_eq!(h.socket, Some(PathBuf::from("/x/s.sock")));
    // One Latin-1 byte (an editor in another encoding), in a comment or anywhere else.
    let h = hint(b"[daemon]\nsocket = \"/x/s.sock\"\n# caf\xe9\n");
    assert_eq!(h.socket, Some(PathBuf::from("/x/s.sock")));
    assert!(h
        .broken
        .is_some_and(|b| b.contains("c.toml:3") && b.contains("UTF-8")));
    let h = hint(b"[other]\nsocket = \"/x/s.sock\"\n");
    assert_eq!(h.socket, None);
    std::fs::remove_file(&path).unwrap();
    assert_eq!(socket_hint(&path, &f.env), SocketHint::default());
}

#[test]
fn container_endpoint_must_be_loopback() {
    let f = base();
    let c = parse(
        Path::new("c.toml"),
        "[daemon]\nsocket = \"/run/cf/s.sock\"\ncontainer_endpoint = \"127.0.0.1:9911\"\n",
        &f.env,
    )
    .unwrap();
    let ep = c.daemon.container.unwrap();
    assert_eq!(ep.addr.to_string(), "127.0.0.1:9911");
    assert_eq!(ep.token_file, PathBuf::from("/run/cf/container-token"));
    let e = one_error(&f, "[daemon]\ncontainer_endpoint = \"0.0.0.0:9911\"\n");
    assert!(e.message.contains("loopback"), "{e}");
    let e = one_error(&f, "[daemon]\ncontainer_endpoint = \"localhost\"\n");
    assert_eq!(e.line, Some(2));
    let e = one_error(&f, "[daemon]\ncontainer_token_file = \"/x\"\n");
    assert!(e.message.contains("needs `container_endpoint`"), "{e}");
}

fn with_env(f: &Fixture, vars: &[(&str, &str)]) -> Environment {
    let _ = &f.env;
    Environment::new(f.dir.path(), vars)
}

#[test]
fn web_identity_takes_keys_or_the_pod_environment() {
    let f = base();
    let text = r#"[[profile]]
name = "eks"
kind = "web_identity"
role_arn = "arn:aws:iam::123456789012:role/Eks"
token_file = "~/token"
duration = "20m"
session_name = "pod-a"
region = "eu-west-1"
"#;
    let c = parse(Path::new("c.toml"), text, &f.env).unwrap();
    let ProfileSource::WebIdentity(w) = &c.profiles[0].source else {
        panic!("{c:?}")
    };
    assert_eq!(w.role_arn, "arn:aws:iam::123456789012:role/Eks");
    assert_eq!(w.token_file, f.dir.path().join("token"));
    assert_eq!(w.duration, Duration::from_secs(1200));
    assert_eq!(w.session_name, "pod-a");
    assert_eq!(w.region.as_deref(), Some("eu-west-1"));
    assert_eq!(c.profiles[0].source.kind(), "web_identity");

    // Neither key: both come from what EKS sets in the pod; the defaults apply.
    let env = with_env(
        &f,
        &[
            ("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/FromEnv"),
            (
                "AWS_WEB_IDENTITY_TOKEN_FILE",
                "/var/run/secrets/eks.amazonaws.com/serviceaccount/token",
            ),
        ],
    );
    let text = "[[profile]]\nname = \"eks\"\nkind = \"web_identity\"\n";
    let c = parse(Path::new("c.toml"), text, &env).unwrap();
    let ProfileSource::WebIdentity(w) = &c.profiles[0].source else {
        panic!("{c:?}")
    };
    assert_eq!(w.role_arn, "arn:aws:iam::123456789012:role/FromEnv");
    assert_eq!(
        w.token_file,
        PathBuf::from("/var/run/secrets/eks.amazonaws.com/serviceaccount/token")
    );
    assert_eq!(w.duration, DEFAULT_DURATION);
    assert_eq!(w.session_name, "credfresh-eks");
    assert_eq!(w.region, None);

    // A key wins over the variable.
    let text = "[[profile]]\nname = \"eks\"\nkind = \"web_identity\"\nrole_arn = \"arn:aws:iam::123456789012:role/Key\"\ntoken_file = \"/t\"\n";
    let c = parse(Path::new("c.toml"), text, &env).unwrap();
    let ProfileSource::WebIdentity(w) = &c.profiles[0].source else {
        panic!("{c:?}")
    };
    assert_eq!(w.role_arn, "arn:aws:iam::123456789012:role/Key");
    assert_eq!(w.token_file, PathBuf::from("/t"));
}

#[test]
fn web_identity_without_keys_or_environment_names_line_and_fix() {
    let f = base();
    let text = "\n[[profile]]\nname = \"eks\"\nkind = \"web_identity\"\n";
    let e = errors(&f, text);
    assert_eq!(e.len(), 2, "{e:#?}");
    assert!(e.iter().all(|e| e.line == Some(2)), "{e:#?}");
    assert!(e.iter().all(|e| e.profile.as_deref() == Some("eks")));
    let text: Vec<String> = e.iter().map(|e| e.to_string()).collect();
    assert!(
        text[0].contains(":2: profile \"eks\": kind \"web_identity\" needs `role_arn`")
            && text[0].contains("AWS_ROLE_ARN is not set"),
        "{text:?}"
    );
    assert!(
        text[1].contains("needs `token_file`")
            && text[1].contains("AWS_WEB_IDENTITY_TOKEN_FILE is not set"),
        "{text:?}"
    );

    // A bad ARN from the environment is reported, saying where it came from.
    let env = with_env(
        &f,
        &[
            ("AWS_ROLE_ARN", "not-an-arn"),
            ("AWS_WEB_IDENTITY_TOKEN_FILE", "/t"),
        ],
    );
    let e = match parse(
        Path::new("c.toml"),
        "[[profile]]\nname = \"eks\"\nkind = \"web_identity\"\n",
        &env,
    ) {
        Err(ConfigErrors(e)) => e,
        Ok(c) => panic!("{c:?}"),
    };
    assert_eq!(e.len(), 1, "{e:#?}");
    assert!(e[0].message.contains("taken from AWS_ROLE_ARN"), "{}", e[0]);
}

#[test]
fn web_identity_bad_values_and_foreign_keys() {
    let f = base();
    let text = r#"[[profile]]
name = "eks"
kind = "web_identity"
role_arn = "arn:aws:iam::123456789012:role/Eks"
token_file = ""
duration = "13h"
source_profile = "base"
external_id = "x"
"#;
    let e = errors(&f, text);
    let lines: Vec<Option<usize>> = e.iter().map(|e| e.line).collect();
    assert_eq!(lines, [Some(7), Some(8), Some(5), Some(6)], "{e:#?}");
    assert!(e[0]
        .message
        .contains("`source_profile` does not apply to kind \"web_identity\""));
    assert!(e[0]
        .message
        .contains("role_arn, token_file, duration, session_name, region"));
    assert!(e[2].message.contains("`token_file` is empty"), "{}", e[2]);
    assert!(e[3].message.contains("longer than STS allows"), "{}", e[3]);
}

#[test]
fn instance_takes_no_keys() {
    let f = base();
    let c = parse(
        Path::new("c.toml"),
        "[[profile]]\nname = \"notebook\"\nkind = \"instance\"\n",
        &f.env,
    )
    .unwrap();
    assert_eq!(c.profiles[0].source, ProfileSource::Instance);
    assert_eq!(c.profiles[0].source.kind(), "instance");

    let e = one_error(
        &f,
        "[[profile]]\nname = \"notebook\"\nkind = \"instance\"\nrole_arn = \"arn:aws:iam::123456789012:role/R\"\n",
    );
    assert_eq!(e.line, Some(4));
    assert_eq!(e.profile.as_deref(), Some("notebook"));
    assert!(
        e.message
            .contains("`role_arn` does not apply to kind \"instance\"; remove it (that kind takes: no other keys)"),
        "{e}"
    );
}

#[test]
fn any_kind_can_be_the_managed_source_of_a_chain() {
    let f = base();
    let env = with_env(
        &f,
        &[
            ("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/Pod"),
            ("AWS_WEB_IDENTITY_TOKEN_FILE", "/t"),
        ],
    );
    let narrow = |n: &str, s: &str| {
        format!("[[profile]]\nname = \"{n}\"\nkind = \"assume_role\"\nrole_arn = \"arn:aws:iam::123456789012:role/Narrow\"\nsource_profile = \"{s}\"\n")
    };
    let text = format!(
        "{}{}{}[[profile]]\nname = \"box\"\nkind = \"instance\"\n[[profile]]\nname = \"pod\"\nkind = \"web_identity\"\n[[profile]]\nname = \"wrapped\"\nkind = \"aws_profile\"\naws_profile = \"sso-admin\"\n",
        narrow("from-box", "box"),
        narrow("from-pod", "pod"),
        narrow("from-wrapped", "wrapped"),
    );
    let c = parse(Path::new("c.toml"), &text, &env).unwrap();
    let names: Vec<&str> = c.profiles.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "box",
            "from-box",
            "pod",
            "from-pod",
            "wrapped",
            "from-wrapped"
        ],
        "every source comes before the profile assuming from it"
    );
    for (p, src) in [(1, "box"), (3, "pod"), (5, "wrapped")] {
        assert_eq!(c.profiles[p].source.managed_source(), Some(src));
    }
}

#[test]
fn example_config_is_valid_and_documents_every_key() {
    let f = fixture(
        "[default]\nregion = us-east-1\n",
        "[default]\naws_access_key_id = AKIA\n",
    );
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config.example.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let c = parse(&path, &text, &f.env).unwrap_or_else(|e| panic!("{e}"));
    assert!(!c.profiles.is_empty());
    let keys = [
        "credentials_file",
        "socket",
        "refresh_before",
        "log_format",
        "name",
        "kind",
        "role_arn",
        "source_profile",
        "duration",
        "session_name",
        "external_id",
        "region",
        "aws_profile",
        "token_file",
        "container_endpoint",
        "container_token_file",
        "warn_before",
        "sso_session",
        "sso_start_url",
        "sso_region",
        "sso_registration_scopes",
        "account_id",
        "role_name",
        "mfa_serial",
        "mfa_process",
    ];
    for key in keys {
        assert!(
            text.lines().any(|l| l
                .trim_start_matches(['#', ' '])
                .starts_with(&format!("{key} = "))),
            "config.example.toml does not show `{key}`"
        );
    }
    for kind in [
        "assume_role",
        "aws_profile",
        "web_identity",
        "instance",
        "sso",
        "session_token",
    ] {
        assert!(
            text.contains(&format!("kind = \"{kind}\"")),
            "config.example.toml does not show kind {kind}"
        );
    }

    // Copied as it is, the example leaves the credentials file to $AWS_SHARED_CREDENTIALS_FILE.
    let elsewhere = f.dir.path().join("elsewhere").join("credentials");
    std::fs::create_dir_all(elsewhere.parent().unwrap()).unwrap();
    std::fs::copy(f.dir.path().join(".aws/credentials"), &elsewhere).unwrap();
    let env = Environment::new(
        f.dir.path(),
        &[("AWS_SHARED_CREDENTIALS_FILE", elsewhere.to_str().unwrap())],
    );
    let c = parse(&path, &text, &env).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.daemon.credentials_file, elsewhere);
}

#[test]
fn sso_profiles_resolve_sessions_and_name_what_is_missing() {
    let f = fixture(
        "[default]\nregion = us-east-1\n\n[sso-session acme]\nsso_start_url = https://acme.awsapps.com/start\nsso_region = eu-west-1\nsso_registration_scopes = sso:account:access, extra:scope\n\n[sso-session half]\nsso_start_url = https://half.awsapps.com/start\n",
        "",
    );
    let c = parse(
        &f.dir.path().join("c.toml"),
        "[[profile]]\nname = \"a\"\nkind = \"sso\"\nsso_session = \"acme\"\naccount_id = \"123456789012\"\nrole_name = \"PowerUserAccess\"\n",
        &f.env,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let ProfileSource::Sso(s) = &c.profiles[0].source else {
        panic!("not sso: {:?}", c.profiles[0]);
    };
    assert_eq!(s.session.start_url, "https://acme.awsapps.com/start");
    assert_eq!(s.session.region, "eu-west-1");
    assert_eq!(s.session.scopes, ["sso:account:access", "extra:scope"]);
    assert_eq!(
        s.session.cache_key(),
        "293abb6b76d7791c0732cc517d38c4b5c734b87f"
    );

    let e = one_error(
        &f,
        "[[profile]]\nname = \"a\"\nkind = \"sso\"\nsso_session = \"nope\"\naccount_id = \"123456789012\"\nrole_name = \"R\"\n",
    );
    assert_eq!(e.line, Some(4));
    assert_eq!(e.profile.as_deref(), Some("a"));
    assert!(e.message.contains("[sso-session nope]"), "{e}");

    let e = one_error(
        &f,
        "[[profile]]\nname = \"a\"\nkind = \"sso\"\nsso_session = \"half\"\naccount_id = \"123456789012\"\nrole_name = \"R\"\n",
    );
    assert!(e.message.contains("has no `sso_region`"), "{e}");
    assert!(
        e.message.contains("config:9:"),
        "names the AWS config line: {e}"
    );

    let errs = errors(
        &f,
        "[[profile]]\nname = \"a\"\nkind = \"sso\"\nsso_start_url = \"https://x.awsapps.com/start\"\naccount_id = \"12\"\n",
    );
    let text: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
    assert!(
        text.iter().any(|t| t.contains("needs `sso_region`")),
        "{text:?}"
    );
    let errs = errors(
        &f,
        "[[profile]]\nname = \"a\"\nkind = \"sso\"\nsso_start_url = \"https://x.awsapps.com/start\"\nsso_region = \"us-east-1\"\naccount_id = \"12\"\n",
    );
    let text: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
    assert!(text.iter().any(|t| t.contains("12-digit")), "{text:?}");
    assert!(
        text.iter().any(|t| t.contains("needs `role_name`")),
        "{text:?}"
    );
}

/// Every name the config accepts can be written by the credentials file editor and read back
/// as the same section: one refused name would fail every write of the batch it is in.
#[test]
fn accepted_profile_names_are_writable_sections() {
    use crate::credentials_file::{apply_updates, read_section, SectionUpdate};
    use proptest::prelude::*;
    let write = |name: &str| {
        let update = SectionUpdate {
            name,
            access_key_id: "ASIAEXAMPLE",
            secret_access_key: "secret",
            session_token: "token",
            expiration: std::time::UNIX_EPOCH + Duration::from_secs(2_000_000_000),
        };
        apply_updates("[other section]\nk = v\n", &[update])
    };
    // What the readers treat specially or cannot read back (issue 15): configparser's
    // DEFAULT, the JavaScript SDK's __proto__, the prefixed kinds of section, whitespace
    // (the Rust and Java SDKs ignore the section), comment and bracket characters.
    for bad in [
        "DEFAULT",
        "__proto__",
        "profile x",
        "sso-session acme",
        "services dev",
        "default ",
        " default",
        "ml/team 1?",
        "a b",
        "a=b",
        "a,b",
        "a\"b",
        "caf\u{e9}",
        "a#b",
        "a;b",
        "#a",
        ";a",
        "a]b",
        "[a",
        "a\t",
        "a\u{7f}b",
    ] {
        let err = check_profile_name(bad).expect_err(bad);
        assert!(
            err.contains("cannot be a credentials file section"),
            "{err}"
        );
    }
    for good in [
        "default",
        "Default",
        "a:b",
        "x%2Fy",
        "ml/team_1",
        "dev.eu-west-1@acme+ops",
    ] {
        assert!(check_profile_name(good).is_ok(), "{good:?} refused");
    }
    let names = proptest::string::string_regex("[a-z #;\\[\\]/%?=: \t\u{1}.-]{0,8}").unwrap();
    proptest!(|(name in names)| {
        if check_profile_name(&name).is_ok() {
            let text = write(&name).map_err(|e| TestCaseError::fail(format!("{name:?}: {e}")))?;
            prop_assert!(read_section(&text, &name).is_some(), "{:?} not read back from {:?}", name, text);
        }
    });
}

const SERIAL: &str = "arn:aws:iam::123456789012:mfa/alice";

#[test]
fn session_token_profiles_take_a_user_and_a_device() {
    let f = base();
    let text = format!(
        "[[profile]]\nname = \"mfa\"\nkind = \"session_token\"\nsource_profile = \"base\"\nmfa_serial = \"{SERIAL}\"\nmfa_process = \"ykman oath accounts code --single 'AWS:alice'\"\n\n\
         [[profile]]\nname = \"admin\"\nkind = \"assume_role\"\nrole_arn = \"arn:aws:iam::123456789012:role/Admin\"\nsource_profile = \"mfa\"\nduration = \"4h\"\n"
    );
    let c = parse(&f.dir.path().join("c.toml"), &text, &f.env).unwrap();
    let ProfileSource::SessionToken(st) = &c.profiles[0].source else {
        panic!("{c:?}")
    };
    assert_eq!(st.duration, DEFAULT_SESSION_TOKEN_DURATION);
    assert_eq!(st.mfa.serial, SERIAL);
    let argv = st.mfa.process.as_ref().unwrap();
    assert_eq!(
        argv,
        &["ykman", "oath", "accounts", "code", "--single", "AWS:alice"]
    );
    // GetSessionToken credentials are no role's: no role-chaining cut.
    let ProfileSource::AssumeRole(ar) = &c.profiles[1].source else {
        panic!("{c:?}")
    };
    assert_eq!(ar.duration, Duration::from_secs(4 * 3600));
    assert!(
        c.notes.iter().all(|n| !n.contains("cut to 1h")),
        "{:?}",
        c.notes
    );
}

#[test]
fn session_token_mistakes_are_reported() {
    let f = base();
    let p = |extra: &str| format!("[[profile]]\nname = \"mfa\"\nkind = \"session_token\"\n{extra}");
    let e = one_error(&f, &p("source_profile = \"base\"\n"));
    assert!(e.message.contains("needs `mfa_serial`"), "{e}");
    let e = one_error(
        &f,
        &p(&format!(
            "source_profile = \"base\"\nmfa_serial = \"{SERIAL}\"\nduration = \"10m\"\n"
        )),
    );
    assert!(e.message.contains("15m to 36h"), "{e}");
    let e = one_error(
        &f,
        &p(&format!(
            "source_profile = \"nobody\"\nmfa_serial = \"{SERIAL}\"\n"
        )),
    );
    assert!(e.message.contains("long-term keys"), "{e}");
    let e = one_error(
        &f,
        &p(&format!(
            "source_profile = \"base\"\nmfa_serial = \"{SERIAL}\"\nmfa_process = \"ykman 'open\"\n"
        )),
    );
    assert!(e.message.contains("unclosed quote"), "{e}");
    let e = one_error(&f, &p(&format!("source_profile = \"base\"\nmfa_serial = \"{SERIAL}\"\nrole_arn = \"arn:aws:iam::123456789012:role/R\"\n")));
    assert!(e.message.contains("does not apply"), "{e}");
    // Two sessions of one device and user.
    let twice = format!("{}\n[[profile]]\nname = \"mfa2\"\nkind = \"session_token\"\nsource_profile = \"base\"\nmfa_serial = \"{SERIAL}\"\n", p(&format!("source_profile = \"base\"\nmfa_serial = \"{SERIAL}\"\n")));
    let e = one_error(&f, &twice);
    assert!(e.message.contains("already is the MFA session"), "{e}");
    // mfa_process without mfa_serial.
    let e = one_error(
        &f,
        "[[profile]]\nname = \"r\"\nkind = \"assume_role\"\nrole_arn = \"arn:aws:iam::123456789012:role/R\"\nsource_profile = \"base\"\nmfa_process = \"x\"\n",
    );
    assert!(e.message.contains("needs `mfa_serial`"), "{e}");
}

#[test]
fn roles_assumed_with_role_credentials_are_cut_to_an_hour() {
    let f = fixture(
        "[profile role]\nrole_arn = arn:aws:iam::123456789012:role/X\nsource_profile = base\n",
        "[base]\naws_access_key_id = AKIA\n",
    );
    let text = "[[profile]]\nname = \"a\"\nkind = \"assume_role\"\nrole_arn = \"arn:aws:iam::123456789012:role/A\"\nsource_profile = \"base\"\nduration = \"2h\"\n\n\
        [[profile]]\nname = \"b\"\nkind = \"assume_role\"\nrole_arn = \"arn:aws:iam::123456789012:role/B\"\nsource_profile = \"a\"\nduration = \"2h\"\n\n\
        [[profile]]\nname = \"c\"\nkind = \"assume_role\"\nrole_arn = \"arn:aws:iam::123456789012:role/C\"\nsource_profile = \"role\"\nduration = \"3h\"\n\n\
        [[profile]]\nname = \"d\"\nkind = \"assume_role\"\nrole_arn = \"arn:aws:iam::123456789012:role/D\"\nsource_profile = \"a\"\nduration = \"1h\"\n";
    let c = parse(&f.dir.path().join("c.toml"), text, &f.env).unwrap();
    let duration = |name: &str| match &c.profiles.iter().find(|p| p.name == name).unwrap().source {
        ProfileSource::AssumeRole(ar) => ar.duration,
        other => panic!("{other:?}"),
    };
    assert_eq!(duration("a"), Duration::from_secs(7200));
    assert_eq!(duration("b"), ROLE_CHAINING_MAX);
    assert_eq!(duration("c"), ROLE_CHAINING_MAX);
    assert_eq!(duration("d"), ROLE_CHAINING_MAX);
    assert_eq!(c.notes.len(), 2, "{:?}", c.notes);
    assert!(c.notes[0].contains("profile \"b\"") || c.notes[1].contains("profile \"b\""));
}

/// GetSessionToken needs an IAM user's long-term keys: a role, SSO or self-referencing
/// profile, or a credentials section with a session token, is refused, naming file:line.
#[test]
fn session_token_sources_must_be_iam_user_keys() {
    let f = fixture(
        "[profile role]\nrole_arn = arn:aws:iam::123456789012:role/X\nsource_profile = base\n\n\
         [profile sso]\nsso_start_url = https://x.awsapps.com/start\nsso_region = eu-west-1\nsso_account_id = 123456789012\nsso_role_name = R\n\n\
         [profile selfref]\nrole_arn = arn:aws:iam::123456789012:role/S\nsource_profile = selfref\n",
        "[base]\naws_access_key_id = AKIA\n\n[temp]\naws_access_key_id = ASIA\naws_secret_access_key = s\naws_session_token = t\n",
    );
    for (src, want) in [
        ("role", "config:2 defines [profile role] with `role_arn`"),
        ("sso", "config:6 defines [profile sso] with `sso_start_url`"),
        (
            "selfref",
            "config:12 defines [profile selfref] with `role_arn`",
        ),
        ("temp", "credentials:7 gives [temp] an `aws_session_token`"),
    ] {
        let e = one_error(
            &f,
            &format!("[[profile]]\nname = \"mfa\"\nkind = \"session_token\"\nsource_profile = \"{src}\"\nmfa_serial = \"{SERIAL}\"\n"),
        );
        assert!(e.message.contains(want), "{src}: {e}");
        assert!(e.message.contains("long-term keys"), "{e}");
    }
}

/// `validate` notes a session not longer than warn_before, and an `mfa_process` that cannot
/// run (missing, not executable, not on PATH).
#[test]
fn mfa_notes_name_short_sessions_and_unusable_helpers() {
    let f = base();
    let not_exec = f.dir.path().join("helper.sh");
    std::fs::write(&not_exec, "#!/bin/sh\necho 123456\n").unwrap();
    let missing = f.dir.path().join("nope.sh");
    let st = |name: &str, extra: &str| {
        format!("[[profile]]\nname = \"{name}\"\nkind = \"session_token\"\nsource_profile = \"base\"\nmfa_serial = \"{SERIAL}-{name}\"\n{extra}\n")
    };
    let text = [
        st("short", "duration = \"15m\"\n"),
        st("long", "duration = \"12h\"\n"),
        st(
            "gone",
            &format!("mfa_process = \"{}\"\n", missing.display()),
        ),
        st(
            "noexec",
            &format!("mfa_process = \"{}\"\n", not_exec.display()),
        ),
        st("nopath", "mfa_process = \"credfresh-no-such-helper --x\"\n"),
    ]
    .concat();
    let c = parse(&f.dir.path().join("c.toml"), &text, &f.env).unwrap();
    let note = |name: &str| {
        c.notes
            .iter()
            .find(|n| n.starts_with(&format!("profile \"{name}\"")))
            .cloned()
    };
    assert!(
        note("short").is_some_and(|n| n.contains("after two thirds of it, 5m before it ends")),
        "{:?}",
        c.notes
    );
    assert!(note("long").is_none(), "{:?}", c.notes);
    assert!(
        note("gone").is_some_and(|n| n.contains("does not exist")),
        "{:?}",
        c.notes
    );
    assert!(
        note("noexec").is_some_and(|n| n.contains("not an executable file")),
        "{:?}",
        c.notes
    );
    assert!(
        note("nopath").is_some_and(|n| n.contains("not found on PATH")),
        "{:?}",
        c.notes
    );
    assert_eq!(c.notes.len(), 4, "{:?}", c.notes);
}
