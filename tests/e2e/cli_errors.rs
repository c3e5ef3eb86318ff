//! Test 9: the CLI's exit codes and messages without a daemon and with broken configs.

use crate::support::{free_port, output_text, show, AssumeRole, TestEnv, BASE_PROFILE};

fn no_daemon_env() -> TestEnv {
    let env = TestEnv::with_sts(&format!("http://127.0.0.1:{}", free_port()));
    env.write_config(&[AssumeRole::new("solo", "SoloRole", BASE_PROFILE).duration("1h")]);
    env
}

#[test]
fn commands_without_a_daemon_exit_3_and_say_how_to_start_it() {
    let env = no_daemon_env();
    let out = env.cli(&["status"]);
    assert_eq!(out.status.code(), Some(3), "{}", show(&out));
    let text = output_text(&out).to_ascii_lowercase();
    assert!(
        text.contains("credfresh daemon") || (text.contains("start") && text.contains("daemon")),
        "status without a daemon does not say how to start it:\n{}",
        show(&out)
    );
    for args in [&["status", "--json"][..], &["refresh"], &["reload"]] {
        let out = env.cli(args);
        assert_eq!(out.status.code(), Some(3), "{args:?}:\n{}", show(&out));
    }
    assert!(!env.socket.exists());

    let out = env.cli(&["no-such-command"]);
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
}

/// Writes `text` as the config and checks that `validate` exits 2 naming the line of
/// the last line holding `needle` in the config file.
fn assert_rejected_at(env: &TestEnv, what: &str, text: &str, needle: &str) {
    env.write_config_text(text);
    let line = text
        .lines()
        .collect::<Vec<_>>()
        .iter()
        .rposition(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("{needle:?} not in the config"))
        + 1;
    let out = env.cli(&["validate"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{what}:\n{text}\n{}",
        show(&out)
    );
    let location = format!("{}:{line}", env.config.display());
    assert!(
        output_text(&out).contains(&location),
        "{what}: the message does not name {location}:\n{}",
        show(&out)
    );
}

#[test]
fn validate_names_file_and_line_of_config_errors() {
    let env = no_daemon_env();

    // A good config validates and names what would be managed.
    let out = env.cli(&["validate"]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert!(output_text(&out).contains("solo"), "{}", show(&out));

    let head = env.daemon_table();
    let profile = |extra: &str| {
        format!(
            "{head}\n[[profile]]\nname = \"solo\"\nkind = \"assume_role\"\nrole_arn = \"arn:aws:iam::123456789012:role/SoloRole\"\nsource_profile = \"base\"\n{extra}"
        )
    };
    assert_rejected_at(
        &env,
        "bad duration",
        &profile("duration = \"soonish\"\n"),
        "soonish",
    );
    assert_rejected_at(
        &env,
        "unknown key",
        &profile("rolle_arn = \"typo\"\n"),
        "rolle_arn",
    );
    assert_rejected_at(
        &env,
        "TOML syntax",
        &profile("duration = \"1h\n"),
        "duration = \"1h",
    );
    assert_rejected_at(
        &env,
        "unknown source profile",
        &profile("").replace("source_profile = \"base\"", "source_profile = \"nowhere\""),
        "nowhere",
    );
    assert_rejected_at(
        &env,
        "duplicate name",
        &format!(
            "{}\n[[profile]]\nname = \"solo\"\nkind = \"assume_role\"\nrole_arn = \"arn:aws:iam::123456789012:role/Other\"\nsource_profile = \"base\"\n",
            profile("")
        ),
        "name = \"solo\"",
    );
}

/// An AWS config or credentials file that botocore and the SDKs cannot read (a byte that is
/// not UTF-8, or a UTF-8 byte-order mark, which botocore refuses with `ConfigParseError`) is
/// reported naming the file and the problem's line and column, never its contents, by
/// `validate` and by the daemon at start (exit 2); not as a `source_profile` that does not
/// exist. A Latin-1 byte in config.toml is placed by line and column too.
#[test]
fn unreadable_aws_files_and_config_are_named_by_line_and_column() {
    let env = no_daemon_env();
    let credentials = std::fs::read(&env.credentials).expect("the credentials file");
    let aws_config = std::fs::read(&env.aws_config).expect("the AWS config file");
    let lines = |b: &[u8]| b.iter().filter(|c| **c == b'\n').count() + 1;
    let cases: [(&std::path::Path, Vec<u8>, String); 4] = [
        (&env.aws_config, [&aws_config[..], b"# caf\xe9\n"].concat(), format!("{}: this AWS config file is not UTF-8 text: invalid byte at line {0}, column 6", lines(&aws_config))),
        (&env.credentials, [&credentials[..], b"# caf\xe9\n"].concat(), format!("{}: this AWS credentials file is not UTF-8 text: invalid byte at line {0}, column 6", lines(&credentials))),
        (&env.aws_config, [&b"\xef\xbb\xbf"[..], &aws_config[..]].concat(), "1: this AWS config file starts with a UTF-8 byte-order mark (BOM) at line 1, column 1".to_owned()),
        (&env.credentials, [&b"\xef\xbb\xbf"[..], &credentials[..]].concat(), "1: this AWS credentials file starts with a UTF-8 byte-order mark (BOM) at line 1, column 1".to_owned()),
    ];
    for (path, bytes, expected) in cases {
        std::fs::write(path, &bytes).expect("write the AWS file");
        let expected = format!("{}:{expected}", path.display());
        for args in [&["validate"][..], &["daemon"]] {
            let out = env.cli(args);
            assert_eq!(out.status.code(), Some(2), "{args:?}: {}", show(&out));
            let text = output_text(&out);
            assert!(
                text.contains(&expected),
                "{args:?}: {expected:?} not in:\n{}",
                show(&out)
            );
            assert!(
                !text.contains("neither a [[profile]]"),
                "{args:?}:\n{}",
                show(&out)
            );
            assert!(
                !text.contains("aws_secret_access_key"),
                "{args:?}:\n{}",
                show(&out)
            );
        }
        std::fs::write(&env.aws_config, &aws_config).expect("restore");
        std::fs::write(&env.credentials, &credentials).expect("restore");
    }
    let out = env.cli(&["validate"]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));

    let config = std::fs::read_to_string(&env.config).expect("the config");
    let line = config.lines().count() + 1;
    std::fs::write(&env.config, [config.as_bytes(), b"# caf\xe9\n"].concat()).expect("write");
    let out = env.cli(&["validate"]);
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    let expected = format!(
        "{}:{line}: the file is not UTF-8 text (saved in another encoding?): invalid byte at line {line}, column 6",
        env.config.display()
    );
    assert!(
        output_text(&out).contains(&expected),
        "{expected:?} not in:\n{}",
        show(&out)
    );
}

/// `check --bucket` takes only `s3://BUCKET[/PREFIX]`: anything else is a usage error (exit 2)
/// that shows the expected form, before any request is made.
#[test]
fn check_refuses_a_bucket_that_is_not_an_s3_url() {
    let env = no_daemon_env();
    for bad in [
        "notaurl",
        "my-bucket",
        "https://my-bucket",
        "s3://UPPER",
        "s3://-x-",
    ] {
        let out = env.cli(&["check", "solo", "--bucket", bad]);
        assert_eq!(out.status.code(), Some(2), "{bad}: {}", show(&out));
        let text = output_text(&out);
        assert!(
            text.contains(&format!("\"{bad}\" is not an S3 bucket URL"))
                && text.contains("s3://my-bucket"),
            "{bad}: {}",
            show(&out)
        );
    }
}

/// `init` refuses an AWS config or credentials file the SDKs cannot read (exit 2), naming
/// the file and the problem's place, and writes no config.
#[test]
fn init_names_an_unreadable_aws_file() {
    let env = no_daemon_env();
    std::fs::remove_file(&env.config).expect("no config yet");
    let aws_config = std::fs::read(&env.aws_config).expect("the AWS config file");
    let credentials = std::fs::read(&env.credentials).expect("the credentials file");
    let cases: [(&std::path::Path, Vec<u8>, &str); 2] = [
        (
            &env.aws_config,
            [&aws_config[..], b"# caf\xe9\n"].concat(),
            "is not UTF-8 text: invalid byte at line",
        ),
        (
            &env.credentials,
            [&b"\xef\xbb\xbf"[..], &credentials[..]].concat(),
            "starts with a UTF-8 byte-order mark (BOM)",
        ),
    ];
    for (path, bytes, needle) in cases {
        std::fs::write(path, &bytes).expect("write the AWS file");
        let out = env.cli(&["init"]);
        assert_eq!(out.status.code(), Some(2), "{}", show(&out));
        let expected = format!("{} {needle}", path.display());
        assert!(
            output_text(&out).contains(&expected),
            "{expected:?} not in:\n{}",
            show(&out)
        );
        assert!(!env.config.exists(), "init wrote a config");
        std::fs::write(&env.aws_config, &aws_config).expect("restore");
        std::fs::write(&env.credentials, &credentials).expect("restore");
    }
}

/// `login --sso-session NAME` with an `[sso-session NAME]` in an AWS config file the SDKs
/// cannot read says why (exit 2), not that the session does not exist.
#[test]
fn login_names_an_unreadable_aws_config() {
    let env = no_daemon_env();
    let aws_config = std::fs::read(&env.aws_config).expect("the AWS config file");
    let session = b"[sso-session acme]\nsso_start_url = https://acme.awsapps.com/start\nsso_region = us-east-1\n";
    std::fs::write(
        &env.aws_config,
        [&b"\xef\xbb\xbf"[..], &aws_config[..], &session[..]].concat(),
    )
    .expect("write the AWS config");
    let out = env.cli(&["login", "--sso-session", "acme", "--no-browser"]);
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    let expected = format!(
        "{} starts with a UTF-8 byte-order mark (BOM)",
        env.aws_config.display()
    );
    assert!(
        output_text(&out).contains(&expected),
        "{expected:?} not in:\n{}",
        show(&out)
    );
    assert!(
        !output_text(&out).contains("no SSO session"),
        "{}",
        show(&out)
    );
}
