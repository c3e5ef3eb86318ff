//! `mfa_process`: a helper (`ykman oath accounts code --single …`, a password manager's CLI)
//! run without a shell when a code is needed, in a process group of its own (stopped as a
//! whole when it times out or gives way to a code handed over). Its stdout is the code and is
//! never logged; its stderr is logged line by line, except lines that hold a code-shaped
//! number it printed on stdout (6 digits are too short for the log scrubber).

use super::MfaCode;
use crate::source_error::SourceError;
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use std::process::Stdio;
use std::time::Duration;

/// How long a helper may take (a hardware key may wait for a touch).
pub const TIMEOUT: Duration = Duration::from_secs(60);

/// A helper's process group, killed when dropped armed: on a timeout, or when the attempt
/// that runs the helper is cancelled (a code was handed over).
struct Group(Option<Pid>);

impl Drop for Group {
    fn drop(&mut self) {
        if let Some(pgid) = self.0.take() {
            // Gone already (ESRCH) is fine.
            let _ = killpg(pgid, Signal::SIGKILL);
        }
    }
}

/// Runs `argv` for profile `name` and reads one code from its stdout.
pub async fn run(argv: &[String], name: &str, timeout: Duration) -> Result<MfaCode, SourceError> {
    let Some((program, args)) = argv.split_first() else {
        return Err(SourceError::permanent(
            "mfa_process",
            "`mfa_process` is empty",
        ));
    };
    let fail = |why: String| {
        SourceError::transient(
            "mfa_process",
            format!(
                "mfa_process `{program}` of \"{name}\" {why} (a code given with `{}` meanwhile is used at once)",
                super::mfa_command(name)
            ),
        )
    };
    let child = tokio::process::Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| fail(format!("could not be started: {e}")))?;
    let mut group = Group(
        child
            .id()
            .and_then(|id| i32::try_from(id).ok())
            .map(Pid::from_raw),
    );
    let out = match tokio::time::timeout(timeout, child.wait_with_output()).await {
        Ok(Ok(out)) => out,
        Ok(Err(e)) => return Err(fail(format!("could not be read: {e}"))),
        Err(_) => {
            return Err(fail(format!(
                "gave no code within {}s and was stopped",
                timeout.as_secs()
            )))
        }
    };
    // It exited: what it left running in the background is its own business.
    group.0 = None;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let (lines, withheld) = loggable(&stderr, &stdout);
    for line in lines {
        tracing::info!(profile = %name, "mfa_process: {line}");
    }
    if withheld > 0 {
        tracing::info!(profile = %name, "mfa_process: {withheld} line(s) of its stderr not logged: they hold the code it printed");
    }
    if !out.status.success() {
        return Err(fail(format!(
            "failed ({}); its stderr is in the log",
            out.status
        )));
    }
    MfaCode::parse(&stdout).map_err(|_| fail("printed no 6-digit code on stdout".into()))
}

/// The lines of a helper's `stderr` fit for the log, and how many were withheld: every
/// non-blank line except those whose digits (separators ignored, so `123 456` counts) hold
/// a code-shaped number (a run of 6 to 8 digits) of its `stdout`.
fn loggable<'a>(stderr: &'a str, stdout: &str) -> (Vec<&'a str>, usize) {
    let codes: Vec<String> = stdout
        .split(|c: char| !c.is_ascii_digit())
        .filter(|run| (6..=8).contains(&run.len()))
        .take(16)
        .map(str::to_owned)
        .collect();
    let mut withheld = 0;
    let mut lines = Vec::new();
    for line in stderr
        .lines()
        .map(str::trim_end)
        .filter(|l| !l.trim().is_empty())
    {
        let digits: String = line.chars().filter(char::is_ascii_digit).collect();
        if codes.iter().any(|c| digits.contains(c.as_str())) {
            withheld += 1;
        } else {
            lines.push(line);
        }
    }
    (lines, withheld)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str) -> Vec<String> {
        vec!["sh".into(), "-c".into(), script.into()]
    }

    #[tokio::test]
    async fn the_code_is_read_and_never_quoted() {
        let c = run(&sh("echo 654321"), "p", TIMEOUT).await.unwrap();
        assert_eq!(c.expose(), "654321");
        let e = run(&sh("echo 65432199"), "p", TIMEOUT).await.unwrap_err();
        assert!(!e.message.contains("65432199"), "{}", e.message);
        assert!(e.message.contains("credfresh mfa p"), "{}", e.message);
        let e = run(&sh("echo 777777; exit 3"), "p", TIMEOUT)
            .await
            .unwrap_err();
        assert!(
            !e.message.contains("777777") && e.message.contains("exit status: 3"),
            "{}",
            e.message
        );
        let e = run(&sh("sleep 5"), "p", Duration::from_millis(200))
            .await
            .unwrap_err();
        assert!(e.message.contains("within"), "{}", e.message);
        let e = run(&["/nonexistent/helper".into()], "p", TIMEOUT)
            .await
            .unwrap_err();
        assert!(e.message.contains("could not be started"), "{}", e.message);
    }

    #[test]
    fn stderr_lines_holding_the_code_are_withheld() {
        let stderr = "touch your key\ncode=654321\ncode: 654 321\n\nat 12:00:01\n";
        let (lines, withheld) = loggable(stderr, "654321\n");
        assert_eq!(lines, ["touch your key", "at 12:00:01"]);
        assert_eq!(withheld, 2);
        let (lines, withheld) = loggable("a 1234\n", "no code");
        assert_eq!((lines, withheld), (vec!["a 1234"], 0));
    }

    /// Whether process `pid` runs (a zombie does not).
    fn alive(pid: &str) -> bool {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|s| s.rsplit(')').next().map(|r| r.trim_start().to_owned()))
            .is_some_and(|r| !r.starts_with('Z') && !r.starts_with('X'))
    }

    #[tokio::test]
    async fn a_helper_that_times_out_is_stopped_with_its_children() {
        let dir = tempfile::tempdir().unwrap();
        let pid_file = dir.path().join("child");
        let script = format!("sleep 1000 & echo $! > {}; wait", pid_file.display());
        let e = run(&sh(&script), "p", Duration::from_millis(500))
            .await
            .unwrap_err();
        assert!(e.message.contains("within"), "{}", e.message);
        let pid = std::fs::read_to_string(&pid_file).unwrap();
        let pid = pid.trim();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while alive(pid) && std::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(!alive(pid), "the helper's child {pid} still runs");
    }
}
