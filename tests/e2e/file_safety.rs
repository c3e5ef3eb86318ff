//! Issue 6: the credentials file is never torn, never loses anyone's edits, survives crashes
//! and full disks. Readers are the real ones (botocore, the AWS CLI v1); failures are real
//! (a small tmpfs, a read-only remount, `RLIMIT_FSIZE`).
//!
//! The long versions are `#[ignore]`d; `scripts/soak-file.sh` runs them.

use crate::support::{
    ensure_venv, http, ini, initial_credentials, output_text, repo_root, show, wait_for,
    wait_until, write_file, AssumeRole, Daemon, Moto, TestEnv, BASE_PROFILE,
};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const MANAGED: [&str; 2] = ["m1", "m2"];
const T: Duration = Duration::from_secs(30);

fn profiles() -> Vec<AssumeRole> {
    MANAGED
        .iter()
        .map(|m| AssumeRole::new(m, &format!("Role-{m}"), BASE_PROFILE).duration("1h"))
        .collect()
}

/// `POST /v1/refresh` in a loop until `stop`; returns (successes, failures).
fn refresh_loop(socket: PathBuf, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<(u32, u32)> {
    std::thread::spawn(move || {
        let (mut ok, mut failed) = (0, 0);
        while !stop.load(Ordering::Relaxed) {
            match http::request(&socket, "POST", "/v1/refresh") {
                Ok(r) if r.status == 200 => ok += 1,
                _ => failed += 1,
            }
        }
        (ok, failed)
    })
}

/// The file's managed sections are complete (4 keys, temporary credentials).
fn assert_complete(text: &str, what: &str) {
    for m in MANAGED {
        let s = ini::section(text, m).unwrap_or_else(|| panic!("{what}: no [{m}]:\n{text}"));
        for k in [
            "aws_access_key_id",
            "aws_secret_access_key",
            "aws_session_token",
            "x_credfresh_expiration",
        ] {
            assert!(
                s.get(k).is_some_and(|v| !v.is_empty()),
                "{what}: [{m}] lacks {k}"
            );
        }
        assert!(s["aws_access_key_id"].starts_with("ASIA"), "{what}: [{m}]");
        assert_eq!(ini::count(text, m), 1, "{what}: [{m}] not exactly once");
    }
}

fn file_error(daemon: &Daemon) -> Option<String> {
    daemon.status()["file_error"].as_str().map(str::to_owned)
}

fn temp_files(dir: &Path) -> Vec<String> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".credfresh-") && n.ends_with(".tmp"))
        .collect()
}

// ---------------------------------------------------------------------------------------
// Files readers reject
// ---------------------------------------------------------------------------------------

#[test]
fn refused_file_is_left_alone_reported_retried_and_recovers() {
    let moto = Moto::start();
    let env = TestEnv::new(&moto);
    let file = env.root().join("shared-creds");
    // The base profile must be in the configured file too (config validation looks there).
    let good = format!(
        "{}\n[m1]\nregion = x\nx_credfresh_expiration = 2026-01-01T00:00:00Z\n\n[other]\nk = v\n",
        initial_credentials()
    );
    let bad = format!("{good}[m1]\nk = again\n");
    let line_of = |n: usize| {
        bad.lines()
            .enumerate()
            .filter(|(_, l)| *l == "[m1]")
            .nth(n)
            .map(|(i, _)| i + 1)
            .unwrap()
    };
    let (first, second) = (line_of(0), line_of(1));
    write_file(&file, &bad, 0o600);
    env.write_config_with_file(&file, &profiles());
    let daemon = Daemon::start(&env);
    let err = wait_for(T, "file_error in status", || file_error(&daemon));
    assert!(
        err.contains(&file.display().to_string())
            && err.contains(&format!("line {second}: section [m1] appears again"))
            && err.contains(&format!("first on line {first}")),
        "{err}"
    );
    let status = env.status_json();
    assert!(status["file_error"].as_str().is_some(), "{status}");
    let out = env.cli(&["status"]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(&format!("line {second}")),
        "{}",
        show(&out)
    );
    // Retried with backoff (1 s, 2 s, …), file untouched meanwhile.
    wait_until(T, "a second attempt in the log", || {
        daemon
            .log()
            .matches("cannot write the credentials file")
            .count()
            >= 2
    });
    assert_eq!(fs::read_to_string(&file).unwrap(), bad);
    // The user fixes the file: the next attempt succeeds.
    let fixed = Instant::now();
    write_file(&file, &good, 0o600);
    wait_until(T, "file_error to clear", || file_error(&daemon).is_none());
    eprintln!(
        "refused file: `{err}`, left untouched, written {:.1} s after the fix",
        fixed.elapsed().as_secs_f64()
    );
    let text = fs::read_to_string(&file).unwrap();
    assert_complete(&text, "after the fix");
    assert_eq!(ini::section(&text, "m1").unwrap()["region"], "x");
    env.record_secrets(&text);
    env.assert_secrets_never_logged(&daemon);
}

/// Every corpus file, edited by credfresh's editor, read by botocore before and after.
#[test]
fn corpus_edits_read_the_same_in_botocore() {
    use credfresh::credentials_file::{apply_updates, SectionUpdate};
    let dir = tempfile::tempdir().unwrap();
    let update = SectionUpdate {
        name: "managed",
        access_key_id: "ASIANEW",
        secret_access_key: "newsecret/+=",
        session_token: "newtoken==",
        expiration: humantime::parse_rfc3339("2026-11-23T10:00:00Z").unwrap(),
    };
    let corpus = repo_root().join("tests/corpus/credentials");
    for entry in fs::read_dir(&corpus).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        let text = fs::read_to_string(&path).unwrap();
        fs::write(dir.path().join(format!("{name}.before")), &text).unwrap();
        if let Ok(out) = apply_updates(&text, &[update]) {
            fs::write(dir.path().join(format!("{name}.after")), out).unwrap();
        }
    }
    let out = Command::new(ensure_venv().join("bin/python"))
        .arg(repo_root().join("tests/py/corpus_check.py"))
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", show(&out));
}

// ---------------------------------------------------------------------------------------
// Symlinks, modes, prune, stale temp files
// ---------------------------------------------------------------------------------------

#[test]
fn symlink_target_updated_mode_tightened_prune_and_stale_temps() {
    let moto = Moto::start();
    let env = TestEnv::new(&moto);
    let real_dir = env.root().join("real");
    fs::create_dir(&real_dir).unwrap();
    let real = real_dir.join("creds");
    let stale = format!("{}\n[gone]\naws_access_key_id = ASIAOLD\nx_credfresh_expiration = 2020-01-01T00:00:00Z\n\n# keep me\n[foreign2]\nk = v\n", initial_credentials());
    write_file(&real, &stale, 0o644);
    let link = env.root().join("creds-link");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    // A crash's leftover, and foreign files that only look similar.
    let leftover = real_dir.join(".credfresh-AbC123.tmp");
    write_file(
        &leftover,
        "[m1]\naws_secret_access_key = e2eLeftoverSecret0000000\n",
        0o600,
    );
    let lookalikes = [".credfresh-notours.tmp.bak", "credfresh-AbC123.tmp"];
    for f in lookalikes {
        write_file(&real_dir.join(f), "theirs", 0o600);
    }
    env.write_config_with_file(&link, &profiles());
    let daemon = Daemon::start(&env);
    wait_until(T, "both profiles in the file", || {
        let text = fs::read_to_string(&real).unwrap_or_default();
        MANAGED.iter().all(|m| ini::section(&text, m).is_some())
    });
    assert!(fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
    let mode = fs::metadata(&real).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    assert!(daemon.log().contains("had mode 644"), "{}", daemon.log());
    assert!(!leftover.exists(), "stale temp file not removed");
    for f in lookalikes {
        assert!(real_dir.join(f).exists(), "{f} removed");
    }
    assert!(daemon
        .log()
        .contains("removed a temporary file left by an interrupted write"));

    // prune: dry run lists and keeps, then removes only [gone].
    let out = env.cli(&["prune", "--dry-run"]);
    assert!(out.status.success(), "{}", show(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "would remove [gone]\n"
    );
    assert!(ini::section(&fs::read_to_string(&real).unwrap(), "gone").is_some());
    let out = env.cli(&["prune"]);
    assert!(out.status.success(), "{}", show(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "removed [gone]\n");
    let text = fs::read_to_string(&real).unwrap();
    assert!(ini::section(&text, "gone").is_none());
    assert!(text.contains("# keep me\n[foreign2]\nk = v\n"), "{text}");
    assert_complete(&text, "after prune");
    let out = env.cli(&["prune"]);
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("nothing to prune"));
    env.record_secrets(&text);
    env.assert_secrets_never_logged(&daemon);
}

// ---------------------------------------------------------------------------------------
// Torn reads
// ---------------------------------------------------------------------------------------

fn torn_reads(min_reads_per_reader: u32, min_rewrites: u32) {
    let moto = Moto::start();
    let env = TestEnv::new(&moto);
    env.write_config(&profiles());
    let daemon = Daemon::start(&env);
    for m in MANAGED {
        daemon.wait_state(m, "fresh", T);
    }
    wait_until(T, "both sections written", || {
        MANAGED.iter().all(|m| env.section(m).is_some())
    });
    let stop_file = env.root().join("stop-readers");
    let readers: Vec<_> = (0..4)
        .map(|_| {
            Command::new(ensure_venv().join("bin/python"))
                .arg(repo_root().join("tests/py/torn_reader.py"))
                .arg(&env.credentials)
                .arg(&stop_file)
                .arg(min_reads_per_reader.to_string())
                .args(MANAGED)
                .env_clear()
                .envs(env.vars())
                .stdout(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let started = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let writer = refresh_loop(daemon.socket().to_owned(), stop.clone());
    let writes_before = file_writes(&daemon);
    wait_until(Duration::from_secs(900), "enough rewrites", || {
        file_writes(&daemon) - writes_before >= min_rewrites
    });
    fs::write(&stop_file, "").unwrap();
    let mut reads = 0;
    for r in readers {
        let out = r.wait_with_output().unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["errors"], 0, "botocore failed to parse: {v}");
        assert_eq!(v["missing"], 0, "a read missed a managed profile: {v}");
        reads += v["reads"].as_u64().unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    let (ok, _) = writer.join().unwrap();
    let rewrites = file_writes(&daemon) - writes_before;
    eprintln!(
        "torn reads: {reads} botocore reads, {rewrites} rewrites ({ok} refreshes), 0 errors, 0 missing, {:.1}s",
        started.elapsed().as_secs_f64()
    );
    assert_complete(&env.read_credentials(), "at the end");
    env.assert_secrets_never_logged(&daemon);
}

/// `credfresh_file_writes_total` from /metrics.
fn file_writes(daemon: &Daemon) -> u32 {
    let body = daemon.get("/metrics").body;
    body.lines()
        .find(|l| l.starts_with("credfresh_file_writes_total "))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or_else(|| panic!("no credfresh_file_writes_total in /metrics:\n{body}")) as u32
}

#[test]
fn botocore_never_sees_a_torn_file() {
    torn_reads(2_500, 150);
}

#[test]
#[ignore = "long: scripts/soak-file.sh"]
fn botocore_never_sees_a_torn_file_long() {
    torn_reads(25_000, 1_000);
}

// ---------------------------------------------------------------------------------------
// Lost updates
// ---------------------------------------------------------------------------------------

fn lost_updates(calls: u32, min_rewrites: u32) {
    let moto = Moto::start();
    let env = TestEnv::new(&moto);
    env.write_config(&profiles());
    let daemon = Daemon::start(&env);
    for m in MANAGED {
        daemon.wait_state(m, "fresh", T);
    }
    let stop = Arc::new(AtomicBool::new(false));
    let writes_before = file_writes(&daemon);
    let writer = refresh_loop(daemon.socket().to_owned(), stop.clone());
    for i in 0..calls {
        let value = format!("AKIALOSTUPDATE{i:06}");
        let out = env.aws(&[
            "configure",
            "set",
            "aws_access_key_id",
            &value,
            "--profile",
            &format!("lost{i}"),
        ]);
        assert!(out.status.success(), "{}", show(&out));
    }
    // Keep rewriting until the minimum is reached, then stop.
    wait_until(Duration::from_secs(900), "enough rewrites", || {
        file_writes(&daemon) - writes_before >= min_rewrites
    });
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();
    let rewrites = file_writes(&daemon) - writes_before;
    // Give the writer's post-write check time to restore its own keys if aws wrote over them.
    std::thread::sleep(Duration::from_millis(1500));
    let text = env.read_credentials();
    let lost: Vec<u32> = (0..calls)
        .filter(|i| {
            ini::section(&text, &format!("lost{i}"))
                .and_then(|s| s.get("aws_access_key_id").cloned())
                != Some(format!("AKIALOSTUPDATE{i:06}"))
        })
        .collect();
    eprintln!(
        "lost updates: {calls} aws configure set calls raced {rewrites} rewrites; lost: {lost:?}"
    );
    assert!(lost.is_empty(), "lost foreign edits {lost:?}");
    assert_complete(&text, "at the end");
    let status = daemon.status();
    for m in MANAGED {
        let p = daemon.profile(m).unwrap();
        assert_eq!(
            ini::section(&text, m).unwrap()["x_credfresh_expiration"],
            p["expires_at"].as_str().unwrap(),
            "[{m}] does not hold the daemon's current credentials: {status}"
        );
    }
    env.assert_secrets_never_logged(&daemon);
}

#[test]
fn aws_configure_set_edits_survive_rewrites() {
    lost_updates(20, 100);
}

#[test]
#[ignore = "long: scripts/soak-file.sh"]
fn aws_configure_set_edits_survive_rewrites_long() {
    lost_updates(200, 1_000);
}

// ---------------------------------------------------------------------------------------
// kill -9
// ---------------------------------------------------------------------------------------

fn crashes(min_writes: u32) {
    let moto = Moto::start();
    let env = TestEnv::new(&moto);
    env.write_config(&profiles());
    let foreign_before = ini::without_sections(&initial_credentials(), &MANAGED);
    let writes = Arc::new(AtomicU32::new(0));
    let mut kills = 0;
    // The file as each kill left it, for botocore, and how many kills hit a write in flight
    // (its temp file was left behind).
    let snapshots = env.root().join("after-kills");
    fs::create_dir_all(&snapshots).unwrap();
    let mut mid_write = 0;
    let dir = env.credentials.parent().unwrap().to_owned();
    while writes.load(Ordering::Relaxed) < min_writes {
        let daemon = Daemon::start(&env);
        let stop = Arc::new(AtomicBool::new(false));
        let writer = refresh_loop(daemon.socket().to_owned(), stop.clone());
        let life = Duration::from_millis(200 + fastrand::u64(0..800));
        std::thread::sleep(life);
        let done = file_writes(&daemon);
        daemon.signal(nix::sys::signal::Signal::SIGKILL);
        stop.store(true, Ordering::Relaxed);
        writer.join().unwrap();
        drop(daemon);
        kills += 1;
        writes.fetch_add(done, Ordering::Relaxed);
        if !temp_files(&dir).is_empty() {
            mid_write += 1;
        }
        let text = env.read_credentials();
        // Until a write has completed the file holds no managed section yet (on a loaded
        // machine the first kills may all come before the first write).
        let written = writes.load(Ordering::Relaxed) > 0;
        let name = if written {
            format!("kill-{kills:04}")
        } else {
            format!("kill-{kills:04}-before-first-write")
        };
        fs::write(snapshots.join(name), &text).unwrap();
        if written {
            assert_complete(&text, &format!("after kill #{kills}"));
        }
        assert_eq!(
            ini::without_sections(&text, &MANAGED),
            foreign_before,
            "foreign bytes changed after kill #{kills}"
        );
    }
    // botocore parses the file as every kill left it, with both managed profiles complete
    // once the first write has completed.
    let check = r#"
import glob, json, sys
import botocore.configloader
keys = ("aws_access_key_id", "aws_secret_access_key", "aws_session_token", "x_credfresh_expiration")
paths = sorted(glob.glob(sys.argv[1] + "/kill-*"))
bad = []
for path in paths:
    try:
        config = botocore.configloader.raw_config_parse(path)
    except Exception as e:
        bad.append(f"{path}: {type(e).__name__}")
        continue
    if not path.endswith("-before-first-write"):
        for p in sys.argv[2:]:
            if not all((config.get(p) or {}).get(k) for k in keys):
                bad.append(f"{path}: [{p}] incomplete")
print(json.dumps({"parsed": len(paths), "bad": bad}))
"#;
    let out = Command::new(ensure_venv().join("bin/python"))
        .args(["-c", check])
        .arg(&snapshots)
        .args(MANAGED)
        .output()
        .expect("run python");
    let parsed: serde_json::Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", show(&out)));
    assert_eq!(parsed["parsed"], kills, "{parsed}");
    assert_eq!(parsed["bad"], serde_json::json!([]), "{parsed}");

    // The next start removes what the crashes left behind.
    let daemon = Daemon::start(&env);
    wait_until(T, "no temp files", || temp_files(&dir).is_empty());
    let out = env.python(
        "torn_reader.py",
        &[
            &env.credentials.display().to_string(),
            "/",
            "1",
            MANAGED[0],
            MANAGED[1],
        ],
        &[],
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("\"errors\": 0, \"missing\": 0"),
        "{}",
        show(&out)
    );
    eprintln!(
        "crashes: {kills} kill -9 across {} writes, {mid_write} of them during a write (temp file left); botocore parsed the file after every kill, always complete",
        writes.load(Ordering::Relaxed)
    );
    env.assert_secrets_never_logged(&daemon);
}

#[test]
fn kill_9_leaves_old_or_new_file() {
    crashes(60);
}

#[test]
#[ignore = "long: scripts/soak-file.sh"]
fn kill_9_leaves_old_or_new_file_long() {
    crashes(500);
}

// ---------------------------------------------------------------------------------------
// Disk full, read-only, RLIMIT_FSIZE
// ---------------------------------------------------------------------------------------

/// A small tmpfs mounted for one test, unmounted on drop.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: PathBuf, size: &str) -> Option<Tmpfs> {
        fs::create_dir_all(&at).unwrap();
        let ok = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(&at)
            .status()
            .is_ok_and(|s| s.success());
        ok.then_some(Tmpfs(at))
    }

    fn remount(&self, opts: &str) {
        let s = Command::new("mount")
            .args(["-o", &format!("remount,{opts}")])
            .arg(&self.0)
            .status()
            .unwrap();
        assert!(s.success(), "remount {opts}");
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

fn prlimit_fsize(pid: u32, soft: &str) {
    let s = Command::new("prlimit")
        .args([
            "--pid",
            &pid.to_string(),
            &format!("--fsize={soft}:unlimited"),
        ])
        .status()
        .unwrap();
    assert!(s.success(), "prlimit");
}

#[test]
fn full_disk_read_only_and_file_size_limit_keep_the_old_file_and_recover() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: mounting a tmpfs needs root (the CI container runs as root)");
        return;
    }
    let moto = Moto::start();
    let env = TestEnv::new(&moto);
    let Some(vol) = Tmpfs::mount(env.root().join("vol"), "256k") else {
        panic!("cannot mount a tmpfs here; see RELIABILITY notes in README");
    };
    let file = vol.0.join("credentials");
    write_file(&file, &initial_credentials(), 0o600);
    env.write_config_with_file(&file, &profiles());
    let daemon = Daemon::start_piped(&env);
    wait_until(T, "first write", || {
        let t = fs::read_to_string(&file).unwrap();
        MANAGED.iter().all(|m| ini::section(&t, m).is_some())
    });

    let scenario = |name: &str, expect: &str, break_it: &dyn Fn(), fix: &dyn Fn()| {
        let before = fs::read_to_string(&file).unwrap();
        break_it();
        let out = env.cli(&["refresh"]);
        assert!(
            output_text(&out).contains("the credentials file was not updated"),
            "{name}: {}",
            show(&out)
        );
        let err = wait_for(T, "file_error", || file_error(&daemon));
        assert!(err.contains(expect), "{name}: {err}");
        assert_eq!(
            fs::read_to_string(&file).unwrap(),
            before,
            "{name}: file changed"
        );
        assert!(temp_files(&vol.0).is_empty(), "{name}: temp file left");
        wait_until(T, "the error in the log", || {
            daemon.log().contains(expect) && daemon.log().contains("retry_in_ms")
        });
        let fixed = Instant::now();
        fix();
        wait_until(T, "recovery", || {
            file_error(&daemon).is_none() && fs::read_to_string(&file).unwrap() != before
        });
        let text = fs::read_to_string(&file).unwrap();
        assert_complete(&text, name);
        assert!(text.starts_with(&initial_credentials()), "{name}: {text}");
        env.record_secrets(&text);
        eprintln!(
            "{name}: refused with `{err}`, recovered {:.1} s after the fix",
            fixed.elapsed().as_secs_f64()
        );
    };

    let filler = vol.0.join("filler");
    scenario(
        "disk full",
        "No space left on device",
        &|| {
            let mut f = fs::File::create(&filler).unwrap();
            let chunk = vec![0u8; 4096];
            while std::io::Write::write_all(&mut f, &chunk).is_ok() {}
        },
        &|| fs::remove_file(&filler).unwrap(),
    );
    scenario(
        "read-only filesystem",
        "Read-only file system",
        &|| vol.remount("ro"),
        &|| vol.remount("rw"),
    );
    let pid = daemon.pid();
    scenario(
        "RLIMIT_FSIZE",
        "File too large",
        &|| prlimit_fsize(pid, "64"),
        &|| prlimit_fsize(pid, "unlimited"),
    );
    env.assert_secrets_never_logged(&daemon);
}

// ---------------------------------------------------------------------------------------
// Permission denied (a daemon that is not root)
// ---------------------------------------------------------------------------------------

const NOBODY: &str = "65534";

/// `credfresh ARGS…` as uid 65534 (the daemon's uid: the socket refuses everyone else).
fn cli_as_nobody(env: &TestEnv, args: &[&str]) -> std::process::Output {
    let out = Command::new("setpriv")
        .args(["--reuid", NOBODY, "--regid", NOBODY, "--clear-groups"])
        .arg(env!("CARGO_BIN_EXE_credfresh"))
        .arg("--config")
        .arg(&env.config)
        .args(args)
        .env_clear()
        .envs(env.vars())
        .stdin(Stdio::null())
        .output()
        .expect("run setpriv credfresh");
    env.note(
        &format!("credfresh {} (uid {NOBODY})", args.join(" ")),
        &out,
    );
    out
}

#[test]
fn permission_denied_keeps_the_old_file_and_recovers() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: switching to uid {NOBODY} needs root (the CI container runs as root)");
        return;
    }
    let moto = Moto::start();
    let env = TestEnv::new(&moto);
    let vol = env.root().join("vol");
    fs::create_dir_all(&vol).unwrap();
    let file = vol.join("credentials");
    write_file(&file, &initial_credentials(), 0o600);
    env.write_config_with_file(&file, &profiles());
    let chown = Command::new("chown")
        .args(["-R", &format!("{NOBODY}:{NOBODY}")])
        .arg(env.root())
        .status()
        .unwrap();
    assert!(chown.success());
    let log = fs::File::create(env.root().join("daemon.log")).unwrap();
    let mut daemon = Command::new("setpriv")
        .args(["--reuid", NOBODY, "--regid", NOBODY, "--clear-groups"])
        .arg(env!("CARGO_BIN_EXE_credfresh"))
        .arg("--config")
        .arg(&env.config)
        .arg("daemon")
        .env_clear()
        .envs(env.vars())
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("start the daemon as uid 65534");
    let daemon_log = || fs::read_to_string(env.root().join("daemon.log")).unwrap_or_default();
    let status = || -> serde_json::Value {
        let out = cli_as_nobody(&env, &["status", "--json"]);
        serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null)
    };
    let complete = || {
        let t = fs::read_to_string(&file).unwrap();
        MANAGED.iter().all(|m| ini::section(&t, m).is_some())
    };
    wait_until(T, "first write by uid 65534", complete);

    let before = fs::read_to_string(&file).unwrap();
    fs::set_permissions(&vol, fs::Permissions::from_mode(0o500)).unwrap();
    let out = cli_as_nobody(&env, &["refresh"]);
    assert!(
        output_text(&out).contains("the credentials file was not updated"),
        "{}",
        show(&out)
    );
    let err = wait_for(T, "file_error", || {
        status()["file_error"].as_str().map(str::to_owned)
    });
    assert!(err.contains("Permission denied"), "{err}");
    assert_eq!(fs::read_to_string(&file).unwrap(), before, "file changed");
    assert!(temp_files(&vol).is_empty(), "temp file left");
    wait_until(T, "the error in the log", || {
        let log = daemon_log();
        log.contains("Permission denied") && log.contains("retry_in_ms")
    });

    let fixed = Instant::now();
    fs::set_permissions(&vol, fs::Permissions::from_mode(0o700)).unwrap();
    wait_until(Duration::from_secs(90), "recovery", || {
        status()["file_error"].is_null() && fs::read_to_string(&file).unwrap() != before
    });
    let text = fs::read_to_string(&file).unwrap();
    assert_complete(&text, "after recovery");
    assert!(text.starts_with(&initial_credentials()), "{text}");
    eprintln!(
        "permission denied: refused with `{err}`, recovered {:.1} s after the fix",
        fixed.elapsed().as_secs_f64()
    );
    let _ = daemon.kill();
    let _ = daemon.wait();
    let places = [("the daemon's log", daemon_log())];
    let secrets: std::collections::BTreeSet<String> = ini::parse(&text)
        .into_iter()
        .flat_map(|(_, s)| {
            ["aws_secret_access_key", "aws_session_token"]
                .into_iter()
                .filter_map(move |k| s.get(k).cloned())
        })
        .collect();
    crate::support::assert_secrets_absent(&secrets, &places);
}
