//! The SSO token cache the AWS CLI and botocore share: `~/.aws/sso/cache/<sha1>.json`, one
//! JSON object per session with `startUrl`, `region`, `accessToken`, `expiresAt`,
//! `refreshToken`, `clientId`, `clientSecret` and `registrationExpiresAt`.
//!
//! Keys credfresh does not know are kept when it writes the file back, and the file is always
//! replaced atomically (temp file in the same directory, 0600, fsync, rename; directory 0700).

use secrecy::{ExposeSecret, SecretString};
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::fmt;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::{LazyLock, Mutex};
use std::time::{Duration, SystemTime};

/// One cached SSO token (and the client registration that can refresh it).
#[derive(Clone)]
pub struct CachedToken {
    /// The portal URL the token is for.
    pub start_url: Option<String>,
    /// The IAM Identity Center region.
    pub region: Option<String>,
    /// The bearer token for the SSO portal.
    pub access_token: SecretString,
    /// When `access_token` stops working.
    pub expires_at: SystemTime,
    /// Trades for a new access token at SSO-OIDC `CreateToken`.
    pub refresh_token: Option<SecretString>,
    /// The registered OIDC client.
    pub client_id: Option<String>,
    /// The registered client's secret.
    pub client_secret: Option<SecretString>,
    /// When the client registration (and with it the refresh token's use) ends.
    pub registration_expires_at: Option<SystemTime>,
    /// Every other key of the file, written back unchanged.
    pub extra: Map<String, Value>,
}

impl fmt::Debug for CachedToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CachedToken")
            .field("start_url", &self.start_url)
            .field("region", &self.region)
            .field("expires_at", &format_time(self.expires_at))
            .field("refresh_token", &self.refresh_token.as_ref().map(|_| "***"))
            .field("client_id", &self.client_id.as_ref().map(|_| "***"))
            .field(
                "registration_expires_at",
                &self.registration_expires_at.map(format_time),
            )
            .finish_non_exhaustive()
    }
}

impl CachedToken {
    /// Whether the refresh token can still be traded at `now`: it, the client id and secret are
    /// there and the registration has not expired.
    pub fn can_refresh(&self, now: SystemTime) -> bool {
        self.refresh_token.is_some()
            && self.client_id.is_some()
            && self.client_secret.is_some()
            && self.registration_expires_at.is_none_or(|t| t > now)
    }

    /// Whether the access token still works at `now` (with a little margin for the request).
    pub fn access_valid(&self, now: SystemTime) -> bool {
        self.expires_at > now + Duration::from_secs(10)
    }

    /// The JSON object written to the cache file.
    pub fn to_json(&self) -> Value {
        let mut m = self.extra.clone();
        let mut put = |k: &str, v: Option<String>| match v {
            Some(v) => {
                m.insert(k.to_owned(), Value::String(v));
            }
            None => {
                m.remove(k);
            }
        };
        put("startUrl", self.start_url.clone());
        put("region", self.region.clone());
        put(
            "accessToken",
            Some(self.access_token.expose_secret().to_owned()),
        );
        put("expiresAt", Some(format_time(self.expires_at)));
        put(
            "refreshToken",
            self.refresh_token
                .as_ref()
                .map(|t| t.expose_secret().to_owned()),
        );
        put("clientId", self.client_id.clone());
        put(
            "clientSecret",
            self.client_secret
                .as_ref()
                .map(|t| t.expose_secret().to_owned()),
        );
        put(
            "registrationExpiresAt",
            self.registration_expires_at.map(format_time),
        );
        Value::Object(m)
    }

    /// Reads the JSON of a cache file. Errors say which key is wrong, never a value.
    pub fn from_json(text: &str) -> Result<CachedToken, String> {
        let value: Value =
            serde_json::from_str(text).map_err(|e| format!("it is not JSON ({e})"))?;
        let Value::Object(mut m) = value else {
            return Err("it is not a JSON object".into());
        };
        let mut take = |k: &str| -> Result<Option<String>, String> {
            match m.remove(k) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s)),
                Some(_) => Err(format!("`{k}` is not a string")),
            }
        };
        let start_url = take("startUrl")?;
        let region = take("region")?;
        let access_token = take("accessToken")?.ok_or("it has no `accessToken`")?;
        let expires_raw = take("expiresAt")?.ok_or("it has no `expiresAt`")?;
        let expires_at = parse_time(&expires_raw)
            .ok_or_else(|| format!("`expiresAt` = {expires_raw:?} is not a time"))?;
        let refresh_token = take("refreshToken")?;
        let client_id = take("clientId")?;
        let client_secret = take("clientSecret")?;
        let registration_expires_at = match take("registrationExpiresAt")? {
            Some(r) => Some(
                parse_time(&r)
                    .ok_or_else(|| format!("`registrationExpiresAt` = {r:?} is not a time"))?,
            ),
            None => None,
        };
        Ok(CachedToken {
            start_url,
            region,
            access_token: crate::redact::secret(access_token),
            expires_at,
            refresh_token: refresh_token.map(crate::redact::secret),
            client_id,
            client_secret: client_secret.map(crate::redact::secret),
            registration_expires_at,
            extra: m,
        })
    }
}

/// `~/.aws/sso/cache`, where the AWS CLI and botocore keep SSO tokens.
pub fn cache_dir(home: &Path) -> PathBuf {
    home.join(".aws").join("sso").join("cache")
}

/// Formats a time as the AWS CLI writes `expiresAt`: `2026-11-23T10:00:00Z`.
pub fn format_time(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}

/// Parses the time formats found in caches: RFC 3339 with `Z` or `+00:00` (botocore's
/// `isoformat()`), with or without fractions, and the AWS CLI v1's `…UTC` suffix.
pub fn parse_time(s: &str) -> Option<SystemTime> {
    let s = s.trim();
    let normalised = if let Some(base) = s.strip_suffix("UTC") {
        format!("{}Z", base.trim_end())
    } else if let Some(base) = s.strip_suffix("+00:00") {
        format!("{base}Z")
    } else if let Some(base) = s.strip_suffix("+0000") {
        format!("{base}Z")
    } else {
        s.to_owned()
    };
    humantime::parse_rfc3339_weak(&normalised).ok()
}

/// Why a cache file could not be read.
#[derive(Debug)]
pub enum ReadError {
    /// There is no file: nobody has logged in to this session on this machine.
    Missing,
    /// The file could not be read or parsed.
    Broken(String),
}

/// Reads the cache file at `path`.
pub fn read(path: &Path) -> Result<CachedToken, ReadError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(ReadError::Missing),
        Err(e) => {
            return Err(ReadError::Broken(format!(
                "cannot read {}: {e}",
                path.display()
            )))
        }
    };
    CachedToken::from_json(&text)
        .map_err(|why| ReadError::Broken(format!("cannot use {}: {why}", path.display())))
}

/// Writes `token` to `path` atomically: the directory is created 0700, the file is written
/// 0600 to a temp file beside it, synced, and renamed over the old one.
pub fn write(path: &Path, token: &CachedToken) -> std::io::Result<()> {
    let dir = path
        .parent()
        .ok_or_else(|| std::io::Error::other("the cache path has no directory"))?;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    let mut text = serde_json::to_string(&token.to_json()).map_err(std::io::Error::other)?;
    text.push('\n');
    let tmp = crate::fsutil::write_private(dir, &temp_prefix(path), text.as_bytes())?;
    // Recorded before the rename, so the watcher never sees the new file unrecorded.
    own_writes().insert(path.to_owned(), digest(text.as_bytes()));
    crate::fsutil::persist(tmp, path)
}

/// The start of the temporary names used when replacing `path`:
/// `.<name>.credfresh-XXXXXX.tmp`.
fn temp_prefix(path: &Path) -> String {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    format!(".{name}.credfresh-")
}

/// Removes the temporary files that runs started before `started` left in the cache
/// directory `dir` when they were killed mid-write. Returns what was removed.
pub fn remove_stale_temp_files(dir: &Path, started: SystemTime) -> Vec<PathBuf> {
    let ours =
        |n: &str| n.starts_with('.') && n.contains(".json.credfresh-") && n.ends_with(".tmp");
    crate::fsutil::remove_leftovers(dir, ours, started)
}

/// [`read`] off the runtime thread.
pub async fn read_async(path: PathBuf) -> Result<CachedToken, ReadError> {
    tokio::task::spawn_blocking(move || read(&path))
        .await
        .unwrap_or_else(|e| {
            Err(ReadError::Broken(format!(
                "reading the SSO token cache: {e}"
            )))
        })
}

/// [`write`] (with its fsyncs) off the runtime thread.
pub async fn write_async(path: PathBuf, token: CachedToken) -> std::io::Result<()> {
    tokio::task::spawn_blocking(move || write(&path, &token))
        .await
        .map_err(std::io::Error::other)?
}

/// The digest of the last file this process wrote at each path, so the cache watcher can
/// tell its own writes from another program's (one entry per SSO session).
fn own_writes() -> std::sync::MutexGuard<'static, HashMap<PathBuf, [u8; 20]>> {
    static OWN: LazyLock<Mutex<HashMap<PathBuf, [u8; 20]>>> = LazyLock::new(Mutex::default);
    OWN.lock().unwrap_or_else(|e| e.into_inner())
}

fn digest(bytes: &[u8]) -> [u8; 20] {
    use sha1::Digest;
    sha1::Sha1::digest(bytes).into()
}

/// Whether the file at `path` holds just what this process last wrote there.
pub fn is_own_write(path: &Path) -> bool {
    let Some(ours) = own_writes().get(path).copied() else {
        return false;
    };
    std::fs::read(path).is_ok_and(|b| digest(&b) == ours)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SsoSession;
    use std::os::unix::fs::PermissionsExt;

    /// A cache file exactly as the AWS CLI v2 writes it after `aws sso login`.
    const CLI_FILE: &str = r#"{"startUrl": "https://d-1234567890.awsapps.com/start", "region": "eu-west-1", "accessToken": "aoaAAAAAGV-access-token-secret", "expiresAt": "2026-11-23T10:00:00Z", "clientId": "client-id-1", "clientSecret": "client-secret-value", "registrationExpiresAt": "2027-02-21T09:00:00Z", "refreshToken": "aorAAAAAGV-refresh-token-secret"}"#;

    #[test]
    fn own_writes_are_told_from_others() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.json");
        assert!(!is_own_write(&path));
        let token = CachedToken::from_json(CLI_FILE).unwrap();
        write(&path, &token).unwrap();
        assert!(is_own_write(&path));
        std::fs::write(&path, CLI_FILE).unwrap();
        assert!(!is_own_write(&path));
    }

    #[test]
    fn writes_through_random_temp_names_and_clears_old_ones() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("abc.json");
        // An older release's temp name for this pid, left by a kill between create and rename.
        let leftover = dir
            .path()
            .join(format!(".abc.json.credfresh-{}.tmp", std::process::id()));
        std::fs::write(&leftover, "{").unwrap();
        let foreign = dir.path().join(".other-tool.tmp");
        std::fs::write(&foreign, "keep").unwrap();
        write(&path, &CachedToken::from_json(CLI_FILE).unwrap()).unwrap();
        assert!(read(&path).is_ok());
        let later = SystemTime::now() + Duration::from_secs(5);
        assert_eq!(remove_stale_temp_files(dir.path(), later), vec![leftover]);
        assert!(foreign.exists() && path.exists());
    }

    #[test]
    fn cache_key_matches_botocore() {
        // hashlib.sha1(b"acme").hexdigest(); legacy profiles hash the start URL.
        let mut s = SsoSession {
            name: Some("acme".into()),
            start_url: "https://d-1234567890.awsapps.com/start".into(),
            region: "us-east-1".into(),
            scopes: vec![],
        };
        assert_eq!(s.cache_key(), "293abb6b76d7791c0732cc517d38c4b5c734b87f");
        s.name = None;
        assert_eq!(s.cache_key(), "7487b5b67d5fa1132cf33fa93ae51ef38cc37752");
    }

    #[test]
    fn reads_and_round_trips_the_cli_format() {
        let t = CachedToken::from_json(CLI_FILE).unwrap();
        assert_eq!(t.region.as_deref(), Some("eu-west-1"));
        assert_eq!(
            t.access_token.expose_secret(),
            "aoaAAAAAGV-access-token-secret"
        );
        assert_eq!(format_time(t.expires_at), "2026-11-23T10:00:00Z");
        assert_eq!(
            t.registration_expires_at.map(format_time).as_deref(),
            Some("2027-02-21T09:00:00Z")
        );
        assert!(!format!("{t:?}").contains("secret"));
        let back = t.to_json();
        let orig: Value = serde_json::from_str(CLI_FILE).unwrap();
        assert_eq!(back, orig);

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sso").join("cache").join("x.json");
        write(&path, &t).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let dmode = std::fs::metadata(path.parent().unwrap())
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(dmode, 0o700);
        let again = read(&path).unwrap();
        assert_eq!(again.to_json(), orig);
    }

    #[test]
    fn unknown_keys_survive_and_times_in_other_formats_parse() {
        let text =
            r#"{"accessToken": "a", "expiresAt": "2026-11-23T10:00:00UTC", "x_tool": {"k": 1}}"#;
        let t = CachedToken::from_json(text).unwrap();
        assert_eq!(format_time(t.expires_at), "2026-11-23T10:00:00Z");
        assert_eq!(t.to_json()["x_tool"]["k"], 1);
        assert!(t.refresh_token.is_none());
        assert!(!t.can_refresh(SystemTime::now()));
        for s in [
            "2026-11-23T10:00:00+00:00",
            "2026-11-23T10:00:00.123456+00:00",
            "2026-11-23T10:00:00Z",
        ] {
            assert_eq!(
                parse_time(s).map(format_time).as_deref(),
                Some("2026-11-23T10:00:00Z"),
                "{s}"
            );
        }
        assert!(CachedToken::from_json("{}")
            .unwrap_err()
            .contains("accessToken"));
        assert!(matches!(
            read(Path::new("/nonexistent/x.json")),
            Err(ReadError::Missing)
        ));
    }
}
