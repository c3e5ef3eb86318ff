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

/// The Kubernetes manifests, parsed (every document of every `packaging/kubernetes/*.yaml`)
/// with the PyYAML of the kubernetes-validate venv, as JSON.
fn kubernetes_documents() -> Vec<(String, serde_json::Value)> {
    let program = crate::support::ensure_kubernetes_validate();
    let python = program.with_file_name("python");
    let mut docs = Vec::new();
    for manifest in kubernetes_manifests() {
        let out = Command::new(&python)
            .args([
                "-c",
                "import json, sys, yaml; print(json.dumps([d for d in yaml.safe_load_all(open(sys.argv[1])) if d]))",
            ])
            .arg(&manifest)
            .output()
            .expect("run python");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let parsed: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).expect("JSON");
        let name = manifest.display().to_string();
        docs.extend(parsed.into_iter().map(|d| (name.clone(), d)));
    }
    docs
}

fn kubernetes_manifests() -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(repo_root().join("packaging/kubernetes"))
        .expect("read packaging/kubernetes")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no manifests in packaging/kubernetes");
    files
}

#[test]
fn kubernetes_manifests_validate_strictly_against_the_schemas() {
    let program = crate::support::ensure_kubernetes_validate();
    // 1.29: the first release with native sidecars (restartPolicy: Always init containers);
    // and the newest release the package knows.
    for version in [&["-k", "1.29.0"][..], &[]] {
        let out = Command::new(program)
            .arg("--strict")
            .args(version)
            .args(kubernetes_manifests())
            .output()
            .expect("run kubernetes-validate");
        let text = crate::support::output_text(&out);
        assert!(out.status.success(), "{version:?}:\n{text}");
        assert!(text.contains("passed for resource pod/"), "{text}");
    }
    // Strict means strict: a misspelt key fails.
    let dir = tempfile::tempdir().expect("tempdir");
    let bad = dir.path().join("bad.yaml");
    let text = std::fs::read_to_string(&kubernetes_manifests()[0]).expect("read");
    std::fs::write(&bad, text.replace("failureThreshold:", "failureTreshold:")).expect("write");
    let out = Command::new(program)
        .args(["--strict", "-k", "1.29.0"])
        .arg(&bad)
        .output()
        .expect("run kubernetes-validate");
    assert!(!out.status.success(), "a misspelt key passed");
}

/// The files the container image holds: what the final stage of the Containerfile copies in
/// (its base, distroless, has no shell and no other programs), and its ENTRYPOINT.
fn image_contents() -> (BTreeSet<String>, Vec<String>) {
    let text = std::fs::read_to_string(repo_root().join("packaging/Containerfile")).expect("read");
    let lines: Vec<&str> = text.lines().collect();
    let last = lines
        .iter()
        .rposition(|l| l.starts_with("FROM "))
        .expect("a FROM line");
    let stage = &lines[last..];
    assert!(
        stage[0].contains("distroless"),
        "the final stage is not distroless: {}",
        stage[0]
    );
    let mut files = BTreeSet::new();
    for line in stage.iter().filter(|l| l.starts_with("COPY ")) {
        let words: Vec<&str> = line
            .split_whitespace()
            .skip(1)
            .filter(|w| !w.starts_with("--"))
            .collect();
        let (dest, sources) = words.split_last().expect("COPY has a destination");
        for src in sources {
            let name = src.rsplit('/').next().expect("a file name");
            files.insert(if dest.ends_with('/') {
                format!("{dest}{name}")
            } else {
                dest.to_string()
            });
        }
    }
    let entrypoint = stage
        .iter()
        .find_map(|l| l.strip_prefix("ENTRYPOINT "))
        .expect("an ENTRYPOINT");
    let entrypoint: Vec<String> =
        serde_json::from_str(entrypoint).expect("ENTRYPOINT in exec form");
    (files, entrypoint)
}

/// Runs `credfresh ARGS --help` with the debug binary: exit 0 shows that the command line a
/// manifest or unit gives credfresh parses (global options, command, its options).
fn assert_credfresh_args_parse(args: &[String], what: &str) {
    let out = Command::new(env!("CARGO_BIN_EXE_credfresh"))
        .args(args)
        .arg("--help")
        .env_clear()
        .env("HOME", "/nonexistent")
        .output()
        .expect("run credfresh");
    assert!(
        out.status.success(),
        "{what}: `credfresh {}` does not parse:\n{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Whether `program` is a standard tool on a Debian host: installed here by a package that
/// every Debian/Ubuntu system has (essential, or priority required/important).
fn standard_host_tool(program: &str) -> bool {
    let Ok(out) = Command::new("dpkg").args(["-S", program]).output() else {
        return false;
    };
    let owner = String::from_utf8_lossy(&out.stdout);
    let Some(package) = owner.split(':').next().filter(|_| out.status.success()) else {
        return false;
    };
    let fields = Command::new("dpkg-query")
        .args(["-W", "-f=${Essential} ${Priority}", package.trim()])
        .output()
        .expect("dpkg-query");
    let fields = String::from_utf8_lossy(&fields.stdout);
    fields.starts_with("yes") || fields.ends_with("required") || fields.ends_with("important")
}

/// The programs of a systemd unit's `Exec*=` lines (prefixes such as `+`, `-`, `@` dropped),
/// with their arguments.
fn unit_commands(unit: &str) -> Vec<(String, Vec<String>)> {
    unit.lines()
        .filter(|l| l.starts_with("Exec") && l.contains('='))
        .map(|l| {
            let (_, cmd) = l.split_once('=').expect("key=value");
            let cmd = cmd.trim_start_matches(['+', '-', '@', '!', ':']);
            let mut words = cmd.split_whitespace().map(str::to_owned);
            (words.next().expect("a program"), words.collect())
        })
        .collect()
}

#[test]
fn every_command_a_manifest_or_unit_runs_exists_where_it_runs() {
    // Kubernetes: containers of our image run what the image holds; probes too.
    let (image, entrypoint) = image_contents();
    assert!(image.contains("/usr/bin/credfresh"), "{image:?}");
    assert!(
        image.contains(&entrypoint[0]),
        "ENTRYPOINT {entrypoint:?} not in {image:?}"
    );
    // Images that are not ours, and the programs the manifests run in them.
    let other_images = [("python:", "python")];
    let mut checked = 0;
    for (file, doc) in kubernetes_documents() {
        if doc["kind"] != "Pod" {
            continue;
        }
        let spec = &doc["spec"];
        let containers = [&spec["initContainers"], &spec["containers"]];
        for c in containers.iter().filter_map(|c| c.as_array()).flatten() {
            let name = format!("{file}: container {}", c["name"]);
            let image_name = c["image"].as_str().expect("an image");
            let strings = |v: &serde_json::Value| -> Vec<String> {
                v.as_array()
                    .map(|a| {
                        a.iter()
                            .map(|s| s.as_str().expect("a string").to_owned())
                            .collect()
                    })
                    .unwrap_or_default()
            };
            let command = strings(&c["command"]);
            let args = strings(&c["args"]);
            let probes: Vec<Vec<String>> = ["startupProbe", "livenessProbe", "readinessProbe"]
                .iter()
                .filter_map(|p| {
                    c[p]["exec"]["command"]
                        .as_array()
                        .map(|_| strings(&c[p]["exec"]["command"]))
                })
                .collect();
            if !image_name.contains("credfresh") {
                let (_, program) = other_images
                    .iter()
                    .find(|(prefix, _)| image_name.starts_with(prefix))
                    .unwrap_or_else(|| {
                        panic!("{name}: image {image_name} is unknown to this test")
                    });
                assert_eq!(
                    command.first().map(String::as_str),
                    Some(*program),
                    "{name}"
                );
                assert!(
                    probes.is_empty(),
                    "{name}: add its probes' programs to this test"
                );
                continue;
            }
            // The process: `command` replaces the ENTRYPOINT, `args` follow it.
            let process = if command.is_empty() {
                entrypoint.clone()
            } else {
                command
            };
            let runs = [[process, args].concat()].into_iter().chain(probes);
            for argv in runs {
                assert!(
                    image.contains(&argv[0]),
                    "{name} runs {argv:?}, but the image holds only {image:?}"
                );
                if argv[0].ends_with("/credfresh") {
                    assert_credfresh_args_parse(&argv[1..], &name);
                }
                checked += 1;
            }
        }
    }
    assert!(checked >= 2, "no credfresh command found in the manifests");

    // The user unit: credfresh as the .deb installs it, the rest standard host tools.
    let manifest: toml::Table =
        toml::from_str(&std::fs::read_to_string(repo_root().join("Cargo.toml")).expect("read"))
            .expect("Cargo.toml parses");
    let installed: BTreeSet<String> = manifest["package"]["metadata"]["deb"]["assets"]
        .as_array()
        .expect("deb assets")
        .iter()
        .filter(|a| a[2].as_str() == Some("755"))
        .map(|a| {
            let src = a[0].as_str().expect("source");
            let dest = a[1].as_str().expect("dest");
            let name = src.rsplit('/').next().expect("name");
            format!("/{dest}{name}")
        })
        .collect();
    let unit =
        std::fs::read_to_string(repo_root().join("systemd/credfresh.service")).expect("read");
    let commands = unit_commands(&unit);
    assert!(
        commands.iter().any(|(p, _)| p == "/usr/bin/credfresh"),
        "{commands:?}"
    );
    for (program, args) in &commands {
        if installed.contains(program) {
            assert_credfresh_args_parse(args, "systemd/credfresh.service");
        } else {
            assert!(
                standard_host_tool(program),
                "systemd/credfresh.service runs {program}, which neither the .deb ({installed:?}) nor a standard Debian package installs"
            );
        }
    }

    // SageMaker: the unit it writes runs the binary it installs, and the script waits for
    // the credentials with `credfresh wait` before it returns.
    let script = std::fs::read_to_string(repo_root().join("packaging/sagemaker/on-start.sh"))
        .expect("read on-start.sh");
    let unit = here_document(
        &script,
        "cat >/etc/systemd/system/credfresh.service <<UNIT",
        "UNIT",
    )
    .join("\n");
    let binary = "/usr/local/bin/credfresh";
    assert!(script.contains(&format!("ln -sf \"$INSTALL_DIR/credfresh\" {binary}")));
    for (program, args) in unit_commands(&unit) {
        if program == binary {
            let args: Vec<String> = args
                .iter()
                .map(|a| a.replace("$CONFIG", "/c.toml"))
                .collect();
            assert_credfresh_args_parse(&args, "the SageMaker unit");
        } else {
            assert!(
                standard_host_tool(&program),
                "the SageMaker unit runs {program}"
            );
        }
    }
    let lines: Vec<&str> = script.lines().collect();
    let restart = lines
        .iter()
        .position(|l| l.trim() == "systemctl restart credfresh")
        .expect("the script starts the service");
    let wait = lines
        .iter()
        .rposition(|l| l.contains(&format!("{binary} --config \"$CONFIG\" wait")))
        .expect("the script runs credfresh wait");
    assert!(
        wait > restart,
        "credfresh wait runs before the service starts"
    );
    let wait_line = lines[wait];
    // The words from --config to the end of the command (`;` or the line's end).
    let command = wait_line[wait_line.find("--config").unwrap()..]
        .split(';')
        .next()
        .unwrap_or_default();
    let argv: Vec<String> = command
        .split_whitespace()
        .map(|w| w.replace("\"$CONFIG\"", "/c.toml"))
        .collect();
    assert_credfresh_args_parse(&argv, "on-start.sh's wait");
}

/// The SageMaker script's region: looked up before anything is installed, never inside a
/// here-document (where a failing `$(…)` goes unnoticed under `set -e`), and the script stops
/// with a reason when there is none instead of writing `AWS_REGION=` into the unit.
#[test]
fn the_sagemaker_script_stops_without_a_region() {
    let script = std::fs::read_to_string(repo_root().join("packaging/sagemaker/on-start.sh"))
        .expect("read on-start.sh");
    // No command substitution in any here-document of the script.
    let lines: Vec<&str> = script.lines().collect();
    for (i, l) in lines.iter().enumerate() {
        if let Some(end) = l.split("<<").nth(1).map(str::trim) {
            for body in lines[i + 1..].iter().take_while(|b| b.trim() != end) {
                assert!(
                    !body.contains("$(") && !body.contains('`'),
                    "on-start.sh:{}: a command substitution in a here-document: {body}",
                    i + 1
                );
            }
        }
    }
    let region = here_document(&script, "# --- region ---", "# --- end region ---").join("\n");
    let dir = tempfile::tempdir().unwrap();
    let shim = |body: &str| {
        let curl = dir.path().join("curl");
        std::fs::write(&curl, format!("#!/bin/sh\n{body}\n")).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&curl, std::fs::Permissions::from_mode(0o755)).unwrap();
    };
    let run = |aws_region: &str| {
        let path = format!(
            "{}:{}",
            dir.path().display(),
            std::env::var("PATH").unwrap()
        );
        Command::new("bash")
            .arg("-c")
            .arg(format!(
                "set -euo pipefail\nAWS_REGION=\"${{AWS_REGION:-}}\"\n{region}\necho \"region=$REGION\""
            ))
            .env("PATH", path)
            .env("AWS_REGION", aws_region)
            .output()
            .expect("bash")
    };
    // The metadata service answers: its region.
    shim("case \"$*\" in *PUT*) echo tok ;; *tok*placement/region*) echo eu-central-1 ;; *) exit 22 ;; esac");
    let out = run("");
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "region=eu-central-1"
    );
    // AWS_REGION set: the metadata service is not asked.
    shim("exit 7");
    let out = run("ap-south-1");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "region=ap-south-1",
        "{out:?}"
    );
    // No token, no region, or an answer that is no region: the script stops, saying why.
    for body in [
        "exit 7",
        "case \"$*\" in *PUT*) echo tok ;; *) exit 22 ;; esac",
        "case \"$*\" in *PUT*) echo tok ;; *) printf '<html>\\nExecStart=/bin/x\\n' ;; esac",
    ] {
        shim(body);
        let out = run("");
        assert_eq!(out.status.code(), Some(1), "{body}: {out:?}");
        assert!(out.stdout.is_empty(), "{body}: {out:?}");
        assert!(
            String::from_utf8_lossy(&out.stderr)
                .contains("set AWS_REGION at the top of this script"),
            "{body}: {out:?}"
        );
    }
}
