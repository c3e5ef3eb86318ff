//! `mfa_process`: a helper (`ykman oath accounts code --single …`, a password manager's CLI)
//! run without a shell when a code is needed; its stdout is the code and is never logged,
//! its stderr is logged line by line (the log writer masks secrets in it).

use super::MfaCode;
use crate::source_error::SourceError;
use std::process::Stdio;
use std::time::Duration;

/// How long a helper may take (a hardware key may wait for a touch).
pub const TIMEOUT: Duration = Duration::from_secs(60);

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
                "mfa_process `{program}` of \"{name}\" {why} (or run `{}`)",
                super::mfa_command(name)
            ),
        )
    };
    let child = tokio::process::Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| fail(format!("could not be started: {e}")))?;
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
    for line in String::from_utf8_lossy(&out.stderr).lines() {
        if !line.trim().is_empty() {
            tracing::info!(profile = %name, "mfa_process: {}", line.trim_end());
        }
    }
    if !out.status.success() {
        return Err(fail(format!(
            "failed ({}); its stderr is in the log",
            out.status
        )));
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    MfaCode::parse(&stdout).map_err(|_| fail("printed no 6-digit code on stdout".into()))
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
}
