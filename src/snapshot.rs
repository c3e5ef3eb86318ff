//! What the scheduler publishes about each profile, typed: times are `SystemTime`s. The
//! control server turns it into the wire type (`api::ProfileStatus`, times as RFC 3339
//! strings); metrics and the systemd status line read it as it is.

use crate::api::{rfc3339, ProfileState, ProfileStatus};
use std::time::SystemTime;

/// One profile as the scheduler last saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProfileSnapshot {
    /// Section name in the credentials file.
    pub name: String,
    /// The config `kind`.
    pub kind: String,
    /// Current state.
    pub state: ProfileState,
    /// Expiry of the credentials held, as the source reported it.
    pub expires_at: Option<SystemTime>,
    /// When the next fetch is planned.
    pub next_refresh_at: Option<SystemTime>,
    /// When the last successful fetch finished.
    pub last_refresh_at: Option<SystemTime>,
    /// Why the last fetch failed, cleared on success.
    pub last_error: Option<String>,
    /// The account of the credentials held.
    pub account_id: Option<String>,
    /// Until when the profile's credentials in the credentials file are valid: the ones held,
    /// or earlier ones while newer ones are being written (for `credfresh wait`). `None` when
    /// the file holds none of them or the last write of the ones held failed.
    pub in_file_until: Option<SystemTime>,
}

impl ProfileSnapshot {
    /// The profile as `GET /v1/status` and `GET /v1/profiles/{name}` show it.
    pub fn to_wire(&self) -> ProfileStatus {
        ProfileStatus {
            name: self.name.clone(),
            kind: self.kind.clone(),
            state: self.state,
            expires_at: self.expires_at.map(rfc3339),
            next_refresh_at: self.next_refresh_at.map(rfc3339),
            last_refresh_at: self.last_refresh_at.map(rfc3339),
            last_error: self.last_error.clone(),
            account_id: self.account_id.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn wire_form_writes_times_as_rfc3339() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_millis(1_800_000_000_250);
        let s = ProfileSnapshot {
            name: "a".into(),
            kind: "sso".into(),
            state: ProfileState::Fresh,
            expires_at: Some(t),
            next_refresh_at: None,
            last_refresh_at: Some(t),
            last_error: Some("x".into()),
            account_id: Some("123456789012".into()),
            in_file_until: Some(t),
        };
        let w = s.to_wire();
        assert_eq!(w.expires_at.as_deref(), Some("2027-01-15T08:00:00Z"));
        assert_eq!(w.last_refresh_at, w.expires_at);
        assert_eq!(w.next_refresh_at, None);
        assert_eq!((w.name.as_str(), w.kind.as_str()), ("a", "sso"));
        assert_eq!(w.state, ProfileState::Fresh);
        assert_eq!(w.last_error.as_deref(), Some("x"));
        assert_eq!(w.account_id.as_deref(), Some("123456789012"));
    }
}
