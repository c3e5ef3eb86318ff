//! The Debian package holds the binary, the user unit, the example config, the man page and
//! the completions; the .rpm the same; the container build context leaves out build output;
//! the configs embedded in the Kubernetes and SageMaker examples validate.

use crate::support::{here_document, repo_root};
use std::collections::BTreeSet;
use std::process::Command;

#[test]
fn deb_package_has_everything_a_user_needs() {
    // Packages the debug binary this test run built; `scripts/build-deb.sh` builds releases.
    let out = Command::new(repo_root().join("scripts/build-deb.sh"))
        .args(["--profile", "dev", "--no-build"])
        .current_dir(repo_root())
        .output()
        .expect("run scripts/build-deb.sh");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "build-deb.sh failed:\n{stderr}");
    let deb = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let deb = repo_root().join(deb);
    let listing = Command::new("dpkg-deb")
        .arg("-c")
        .arg(&deb)
        .output()
        .expect("dpkg-deb -c");
    assert!(listing.status.success());
    let listing = String::from_utf8_lossy(&listing.stdout);
    for path in [
        "./usr/bin/credfresh",
        "./usr/bin/credfresh-check",
        "./usr/lib/systemd/user/credfresh.service",
        "./usr/share/doc/credfresh/examples/config.example.toml",
        "./usr/share/man/man1/credfresh.1.gz",
        "./usr/share/bash-completion/completions/credfresh",
        "./usr/share/zsh/vendor-completions/_credfresh",
        "./usr/share/fish/vendor_completions.d/credfresh.fish",
    ] {
        assert!(
            listing.lines().any(|l| l.ends_with(path)),
            "{path} missing from the .deb:\n{listing}"
        );
    }
    for bin in ["./usr/bin/credfresh", "./usr/bin/credfresh-check"] {
        assert!(
            listing
                .lines()
                .any(|l| l.starts_with("-rwxr-xr-x") && l.ends_with(bin)),
            "{bin} is not executable:\n{listing}"
        );
    }
    let info = Command::new("dpkg-deb")
        .arg("-f")
        .arg(&deb)
        .arg("Package")
        .output()
        .expect("dpkg-deb -f");
    assert_eq!(String::from_utf8_lossy(&info.stdout).trim(), "credfresh");

    // The unpacked binary runs.
    let dir = tempfile::tempdir().expect("tempdir");
    let x = Command::new("dpkg-deb")
        .arg("-x")
        .arg(&deb)
        .arg(dir.path())
        .status()
        .expect("dpkg-deb -x");
    assert!(x.success());
    let version = Command::new(dir.path().join("usr/bin/credfresh"))
        .arg("--version")
        .output()
        .expect("run packaged credfresh");
    assert_eq!(
        String::from_utf8_lossy(&version.stdout).trim(),
        format!("credfresh {}", env!("CARGO_PKG_VERSION"))
    );
    // `check` runs the packaged credfresh-check beside it (PATH holds no other).
    let config = dir.path().join("config.toml");
    std::fs::write(&config, "").expect("write config");
    let check = Command::new(dir.path().join("usr/bin/credfresh"))
        .arg("--config")
        .arg(&config)
        .args(["check", "nope"])
        .env_clear()
        .env("HOME", dir.path())
        .env("PATH", "/usr/bin:/bin")
        .output()
        .expect("run packaged credfresh check");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );
    assert_eq!(check.status.code(), Some(2), "{text}");
    assert!(text.contains("no managed profile named \"nope\""), "{text}");
}

/// The TOML of `config.toml: |` in the Kubernetes manifest's ConfigMap.
fn kubernetes_config() -> String {
    let text =
        std::fs::read_to_string(repo_root().join("packaging/kubernetes/credfresh-sidecar.yaml"))
            .expect("read the sidecar manifest");
    let mut lines = text
        .lines()
        .skip_while(|l| l.trim() != "config.toml: |")
        .skip(1);
    let mut toml = String::new();
    for l in lines.by_ref() {
        if !l.is_empty() && !l.starts_with("    ") {
            break;
        }
        toml.push_str(l.strip_prefix("    ").unwrap_or(l));
        toml.push('\n');
    }
    assert!(toml.contains("[daemon]"), "no config.toml in the ConfigMap");
    toml
}

/// The TOML the SageMaker lifecycle script writes (its here-document), with the script's
/// variables set to `home` and the script's default role ARN.
fn sagemaker_config(home: &std::path::Path) -> String {
    let script = std::fs::read_to_string(repo_root().join("packaging/sagemaker/on-start.sh"))
        .expect("read on-start.sh");
    let role = script
        .lines()
        .find_map(|l| l.strip_prefix("TEAM_ROLE_ARN=\"${TEAM_ROLE_ARN:-"))
        .and_then(|l| l.strip_suffix("}\""))
        .expect("the script's default TEAM_ROLE_ARN");
    here_document(&script, "cat >\"$CONFIG\" <<TOML", "TOML")
        .join("\n")
        .replace("$USER_HOME", &home.display().to_string())
        .replace("$TEAM_ROLE_ARN", role)
}

#[test]
fn the_sidecar_and_sagemaker_examples_validate() {
    use crate::support::{output_text, show, TestEnv};
    let env = TestEnv::with_sts("http://127.0.0.1:9");
    // What the EKS webhook sets in the sidecar.
    env.set_var(
        "AWS_ROLE_ARN",
        "arn:aws:iam::123456789012:role/FlyteTaskRole",
    );
    env.set_var(
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "/var/run/secrets/eks.amazonaws.com/serviceaccount/token",
    );
    let k8s = kubernetes_config();
    env.write_config_text(&k8s);
    let out = env.cli(&["validate"]);
    assert_eq!(out.status.code(), Some(0), "{k8s}\n{}", show(&out));
    assert!(output_text(&out).contains("[default]"), "{}", show(&out));
    // The commented-out narrower role, enabled as the manifest suggests.
    let at = k8s
        .find("# [[profile]]")
        .expect("the commented-out team-data profile");
    let enabled = format!("{}{}", &k8s[..at], k8s[at..].replace("# ", ""));
    env.write_config_text(&enabled);
    let out = env.cli(&["validate"]);
    assert_eq!(out.status.code(), Some(0), "{enabled}\n{}", show(&out));
    assert!(
        output_text(&out)
            .contains("[team-data] assumes arn:aws:iam::123456789012:role/TeamDataReadOnly"),
        "{}",
        show(&out)
    );

    let sagemaker = sagemaker_config(&env.home);
    env.write_config_text(&sagemaker);
    let out = env.cli(&["validate"]);
    assert_eq!(out.status.code(), Some(0), "{sagemaker}\n{}", show(&out));
    let text = output_text(&out);
    assert!(
        text.contains("[notebook]")
            && text.contains("[team-data] assumes arn:aws:iam::123456789012:role/TeamDataAccess"),
        "{text}"
    );
}

#[test]
fn rpm_carries_what_the_deb_carries() {
    let manifest: toml::Table =
        toml::from_str(&std::fs::read_to_string(repo_root().join("Cargo.toml")).expect("read"))
            .expect("Cargo.toml parses");
    let meta = &manifest["package"]["metadata"];
    let deb: BTreeSet<&str> = meta["deb"]["assets"]
        .as_array()
        .expect("deb assets")
        .iter()
        .map(|a| a[0].as_str().expect("deb asset source"))
        .collect();
    let rpm: BTreeSet<&str> = meta["generate-rpm"]["assets"]
        .as_array()
        .expect("rpm assets")
        .iter()
        .map(|a| a["source"].as_str().expect("rpm asset source"))
        .collect();
    assert!(deb.contains("README.md"), "{deb:?}");
    assert_eq!(rpm, deb, "the .rpm and the .deb differ");
}

#[test]
fn container_build_context_leaves_out_build_output() {
    // `podman build -f packaging/Containerfile .` and docker read the ignore file from the
    // context's root: the repository root.
    let containerfile =
        std::fs::read_to_string(repo_root().join("packaging/Containerfile")).expect("read");
    assert!(
        containerfile.contains("podman build -f packaging/Containerfile -t credfresh ."),
        "the Containerfile no longer says its context is the repository root"
    );
    let ignore = std::fs::read_to_string(repo_root().join(".dockerignore")).expect("read");
    let entries: Vec<&str> = ignore
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    for entry in ["target", ".venv", ".git"] {
        assert!(
            entries.contains(&entry),
            "{entry} is not ignored: {entries:?}"
        );
    }
}
