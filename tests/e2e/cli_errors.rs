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
