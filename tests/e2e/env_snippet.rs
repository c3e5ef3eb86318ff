//! What `credfresh env` prints works as printed whatever the paths hold: the
//! `credential_process` line (split by botocore's `shlex.split`, run by the other SDKs with
//! `sh -c`) and the `export` lines (for `eval` in sh) with a credfresh binary, a config file
//! and a token file in directories whose names hold a space, quotes and `$`.

use crate::support::{
    ensure_venv, free_port, show, AssumeRole, Daemon, Moto, TestEnv, BASE_PROFILE,
};
use serde_json::Value;
use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

/// Runs `bin` (a credfresh) with `env`'s environment and `args`.
fn run(env: &TestEnv, bin: &Path, args: &[&str]) -> std::process::Output {
    let out = Command::new(bin)
        .args(args)
        .env_clear()
        .envs(env.vars())
        .stdin(Stdio::null())
        .output()
        .expect("run the linked credfresh");
    env.note(&format!("{} {}", bin.display(), args.join(" ")), &out);
    out
}

#[test]
fn env_output_works_as_printed_with_odd_paths() {
    let moto = Moto::start();
    let env = TestEnv::new(&moto);
    let odd = env.root().join("bin dir's \"$HOME\" x");
    fs::create_dir_all(&odd).unwrap();
    // The binary under the odd name (a hard link: the path is what current_exe reports).
    let bin = odd.join("credfresh");
    if fs::hard_link(env!("CARGO_BIN_EXE_credfresh"), &bin).is_err() {
        fs::copy(env!("CARGO_BIN_EXE_credfresh"), &bin).expect("copy credfresh");
    }
    let toml_str = |p: &Path| serde_json::to_string(&p.display().to_string()).unwrap();
    let port = free_port();
    let mut text = env.daemon_table();
    text.push_str(&format!(
        "container_endpoint = \"127.0.0.1:{port}\"\ncontainer_token_file = {}\n",
        toml_str(&odd.join("token file"))
    ));
    AssumeRole::new("box", "BoxRole", BASE_PROFILE)
        .duration("1h")
        .render(&mut text);
    env.write_config_text(&text);
    let config = odd.join("alt config.toml");
    fs::write(&config, &text).unwrap();
    let daemon = Daemon::start(&env);
    daemon.wait_state("box", "fresh", Duration::from_secs(30));
    let served: Value = serde_json::from_str(&daemon.get("/v1/credentials/box").body).unwrap();
    env.record_secret(served["SecretAccessKey"].as_str().unwrap());
    env.record_secret(served["SessionToken"].as_str().unwrap());
    let config_arg = config.display().to_string();

    // botocore reads the printed `credential_process` and runs it.
    let out = run(
        &env,
        &bin,
        &["--config", &config_arg, "env", "--process", "box"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let snippet = String::from_utf8_lossy(&out.stdout).into_owned();
    let client_config = env.root().join("client-config");
    fs::write(
        &client_config,
        format!("[default]\nregion = us-east-1\n\n{snippet}"),
    )
    .unwrap();
    let empty = env.root().join("empty-credentials");
    fs::write(&empty, "").unwrap();
    let boto = Command::new(ensure_venv().join("bin/python"))
        .args([
            "-c",
            "import boto3; c = boto3.Session(profile_name='box-live').get_credentials(); \
             print(c.get_frozen_credentials().access_key)",
        ])
        .env_clear()
        .envs(env.vars())
        .env("AWS_CONFIG_FILE", &client_config)
        .env("AWS_SHARED_CREDENTIALS_FILE", &empty)
        .output()
        .expect("run boto3");
    env.note("boto3 credential_process", &boto);
    assert_eq!(
        String::from_utf8_lossy(&boto.stdout).trim(),
        served["AccessKeyId"].as_str().unwrap(),
        "boto3 with\n{snippet}\n{}",
        show(&boto)
    );
    // The other SDKs hand the line to `sh -c`.
    let line = snippet
        .lines()
        .find_map(|l| l.strip_prefix("credential_process = "))
        .unwrap_or_else(|| panic!("no credential_process in:\n{snippet}"));
    let sh = Command::new("sh")
        .args(["-c", line])
        .env_clear()
        .envs(env.vars())
        .output()
        .unwrap();
    let got: Value = serde_json::from_slice(&sh.stdout)
        .unwrap_or_else(|e| panic!("sh -c {line}: {e}\n{}", show(&sh)));
    assert_eq!(got["AccessKeyId"], served["AccessKeyId"]);

    // sh evaluates the export lines into the token file's path, the token and the URI.
    let out = run(&env, &bin, &["--config", &config_arg, "env", "box"]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let exports = String::from_utf8_lossy(&out.stdout).into_owned();
    let sh = Command::new("sh")
        .args([
            "-c",
            "eval \"$1\" && printf '%s\\n' \"$AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE\" \
             \"$AWS_CONTAINER_AUTHORIZATION_TOKEN\" \"$AWS_CONTAINER_CREDENTIALS_FULL_URI\"",
            "sh",
            &exports,
        ])
        .env_clear()
        .envs(env.vars())
        .output()
        .unwrap();
    assert!(sh.status.success(), "{exports}\n{}", show(&sh));
    let stdout = String::from_utf8_lossy(&sh.stdout).into_owned();
    let values: Vec<&str> = stdout.lines().collect();
    let token = fs::read_to_string(odd.join("token file")).expect("token file");
    env.record_secret(&token);
    assert_eq!(values.len(), 3, "{exports}\n{}", show(&sh));
    assert_eq!(values[0], odd.join("token file").display().to_string());
    assert_eq!(values[1], token.trim());
    assert_eq!(
        values[2],
        format!("http://127.0.0.1:{port}/v1/container-credentials/box")
    );
    env.assert_secrets_never_logged(&daemon);
}
