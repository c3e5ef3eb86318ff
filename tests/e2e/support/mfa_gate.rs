//! `tests/py/mfa_gate.py`: an STS gate in front of moto that checks MFA codes (RFC 6238
//! TOTP) and the 1 h role-chaining cap as AWS does; and the TOTP codes the tests type.

use super::fault_proxy::{control_request, spawn_python_fake, strings};
use super::TestEnv;
use serde_json::Value;
use std::io::Write;
use std::process::{Child, Output, Stdio};
use std::time::SystemTime;

/// The MFA device of the tests' IAM user.
pub const SERIAL: &str = "arn:aws:iam::123456789012:mfa/e2e-alice";
/// Its TOTP secret (base32), known to the gate and the tests only.
pub const SECRET: &str = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";

/// The running gate, killed on drop.
pub struct MfaGate {
    child: Child,
    port: u16,
}

impl MfaGate {
    /// Starts the gate in front of `upstream` (moto), checking [`SERIAL`] with [`SECRET`]
    /// and demanding MFA for the roles in `mfa_roles`.
    pub fn start(upstream: &str, mfa_roles: &[&str]) -> MfaGate {
        let (child, port) = spawn_python_fake("mfa_gate.py", upstream);
        let gate = MfaGate { child, port };
        let body = serde_json::json!({"serials": {SERIAL: SECRET}, "mfa_roles": mfa_roles});
        gate.control("POST", &body.to_string());
        gate
    }

    /// The URL the daemon uses as its STS endpoint.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn control(&self, method: &str, body: &str) -> Value {
        control_request(self.port, method, "/__mfa", body)
    }

    /// `{"by_action", "accepted", "refused", "chain_refused", "issued", "role_keys"}`.
    pub fn stats(&self) -> Value {
        self.control("GET", "")
    }

    /// How many `action` requests STS answered with credentials.
    pub fn accepted(&self, action: &str) -> u64 {
        self.stats()["accepted"][action].as_u64().unwrap_or(0)
    }

    /// How many `action` requests reached the gate.
    pub fn requests(&self, action: &str) -> u64 {
        self.stats()["by_action"][action].as_u64().unwrap_or(0)
    }

    /// The error codes the gate answered, in order.
    pub fn refused(&self) -> Vec<String> {
        self.stats()["refused"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|r| r["code"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Every secret access key and session token STS issued through the gate.
    pub fn issued_secrets(&self) -> Vec<String> {
        strings(&self.stats()["issued"])
    }
}

impl Drop for MfaGate {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn base32(text: &str) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let (mut bits, mut value, mut out) = (0u32, 0u64, Vec::new());
    for c in text.bytes() {
        let v = ALPHABET.iter().position(|&a| a == c).expect("base32") as u64;
        value = (value << 5) | v;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((value >> bits) as u8);
            value &= (1 << bits) - 1;
        }
    }
    out
}

fn hmac_sha1(key: &[u8], message: &[u8]) -> [u8; 20] {
    use sha1::Digest;
    let mut block = [0u8; 64];
    block[..key.len()].copy_from_slice(key);
    let pad = |byte: u8| block.iter().map(|b| b ^ byte).collect::<Vec<u8>>();
    let inner = sha1::Sha1::new()
        .chain_update(pad(0x36))
        .chain_update(message)
        .finalize();
    sha1::Sha1::new()
        .chain_update(pad(0x5c))
        .chain_update(inner)
        .finalize()
        .into()
}

/// `credfresh mfa PROFILE` with `stdin` as its standard input (a code there, not on the
/// command line, which the transcript records).
pub fn mfa_with_stdin(env: &TestEnv, profile: &str, stdin: &[u8]) -> Output {
    let mut child = env
        .command(&["mfa", profile])
        .stdin(Stdio::piped())
        .spawn()
        .expect("run credfresh mfa");
    // The command may exit before reading (an unknown profile): ignore a broken pipe.
    let _ = child.stdin.take().unwrap().write_all(stdin);
    let out = child.wait_with_output().expect("wait for credfresh mfa");
    env.note(&format!("credfresh mfa {profile} (stdin given)"), &out);
    out
}

/// `credfresh mfa PROFILE` with `code` on stdin.
pub fn mfa(env: &TestEnv, profile: &str, code: &str) -> Output {
    mfa_with_stdin(env, profile, format!("{code}\n").as_bytes())
}

/// Records every secret the gate issued, for the secret scans.
pub fn record_issued(env: &TestEnv, gate: &MfaGate) {
    for s in gate.issued_secrets() {
        env.record_secret(&s);
    }
}

/// The RFC 6238 code (SHA-1, 30 s, 6 digits) of `secret` for the step `offset` steps from now.
pub fn totp(secret: &str, offset: i64) -> String {
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let step = (now / 30 + offset) as u64;
    let digest = hmac_sha1(&base32(secret), &step.to_be_bytes());
    let at = (digest[19] & 0x0f) as usize;
    let value = u32::from_be_bytes(digest[at..at + 4].try_into().unwrap()) & 0x7fff_ffff;
    format!("{:06}", value % 1_000_000)
}

/// A code the gate refuses now: none of the codes of the steps it accepts.
pub fn wrong_code(secret: &str) -> String {
    let valid: Vec<String> = (-2..=2).map(|d| totp(secret, d)).collect();
    (0..1_000_000u32)
        .map(|n| format!("{:06}", (n * 7919 + 424_242) % 1_000_000))
        .find(|c| !valid.contains(c))
        .unwrap()
}

/// Panics if `code` shows in any of `places` as a number of its own (not part of a longer
/// run of digits), or if a `TokenCode` parameter does.
pub fn assert_code_absent(code: &str, places: &[(&str, String)]) {
    for (what, text) in places {
        assert!(
            !text.contains("TokenCode=") && !text.contains("token_code"),
            "a TokenCode parameter shows in {what}"
        );
        let bytes = text.as_bytes();
        let mut from = 0;
        while let Some(i) = text[from..].find(code) {
            let at = from + i;
            let before = at.checked_sub(1).map(|j| bytes[j]);
            let after = bytes.get(at + code.len()).copied();
            let digit = |b: Option<u8>| b.is_some_and(|b| b.is_ascii_digit());
            // A timestamp's fraction of a second (".123456") is no code.
            let fraction = before == Some(b'.');
            assert!(
                digit(before) || digit(after) || fraction,
                "the MFA code shows in {what}: …{}…",
                &text[at.saturating_sub(60)..(at + code.len() + 20).min(text.len())]
            );
            from = at + code.len();
        }
    }
}

#[test]
fn totp_matches_rfc_6238() {
    // RFC 6238 appendix B, SHA-1, T = 59 s: 94287082 (8 digits) → 287082 (6 digits).
    let key = b"12345678901234567890";
    let digest = hmac_sha1(key, &1u64.to_be_bytes());
    let at = (digest[19] & 0x0f) as usize;
    let value = u32::from_be_bytes(digest[at..at + 4].try_into().unwrap()) & 0x7fff_ffff;
    assert_eq!(value % 100_000_000, 94_287_082);
    assert_eq!(base32("GEZDGNBVGY3TQOJQ"), b"1234567890");
}
