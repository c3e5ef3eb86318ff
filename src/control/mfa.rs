//! `POST /v1/profiles/{name}/mfa`: a code for the profile (or the MFA profile up its chain),
//! used at once (a running `mfa_process` gives way to it); answered with the outcome like a
//! refresh, once every profile from the MFA profile down to `{name}` has settled.
//! `GET` of the same path says which profile a code for `{name}` is for, so the CLI checks
//! the name before it asks for a code.

use super::{error, refresh, ControlState, ProfileName, RefreshReply};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;

/// The body's shape, for errors (which never quote the body: it holds a code).
const SHAPE: &str = "body must be {\"code\": \"<the 6 digits>\"}";

/// The body, read a second time to refuse a duplicate `code` key (which `Value` would hide).
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Body {
    #[allow(dead_code)]
    code: String,
}

/// Which profile a code for `profile` is for (`GET /v1/profiles/{name}/mfa`).
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct MfaTarget {
    /// The profile asked about.
    pub profile: String,
    /// The profile with the MFA device: `profile` or one up its `source_profile` chain.
    pub code_for: String,
}

/// Reads the code from `{"code": "123456"}`; errors never quote the body.
fn read_code(body: &[u8]) -> Result<crate::mfa::MfaCode, String> {
    let value: serde_json::Value =
        serde_json::from_slice(body).map_err(|_| format!("{SHAPE}: not JSON"))?;
    let object = value
        .as_object()
        .ok_or_else(|| format!("{SHAPE}: not a JSON object"))?;
    if let Some(key) = object.keys().find(|k| *k != "code") {
        let key: String = key.chars().take(40).collect();
        return Err(format!("{SHAPE}: unknown key `{key}`"));
    }
    let code = object
        .get("code")
        .and_then(|c| c.as_str())
        .ok_or_else(|| format!("{SHAPE}: `code` must be a string"))?;
    let code = crate::mfa::MfaCode::parse(code).map_err(|e| format!("{SHAPE}: {e}"))?;
    serde_json::from_slice::<Body>(body).map_err(|_| format!("{SHAPE}: `code` given twice"))?;
    Ok(code)
}

/// The chain a code for `name` refreshes, or why not (404 unknown, 400 no MFA device).
fn chain(s: &ControlState, name: &str) -> Result<Vec<String>, (StatusCode, String)> {
    s.mfa.chain(name).map_err(|e| {
        if e.starts_with("no managed profile") {
            (StatusCode::NOT_FOUND, e)
        } else {
            (StatusCode::BAD_REQUEST, e)
        }
    })
}

pub(super) async fn code_for(
    State(s): State<ControlState>,
    ProfileName(name): ProfileName,
) -> Response {
    match chain(&s, &name) {
        Ok(chain) => Json(MfaTarget {
            code_for: chain.first().cloned().unwrap_or_else(|| name.clone()),
            profile: name,
        })
        .into_response(),
        Err((status, e)) => error(status, e),
    }
}

pub(super) async fn hand_code(
    State(s): State<ControlState>,
    ProfileName(name): ProfileName,
    body: Bytes,
) -> Response {
    let code = match read_code(&body) {
        Ok(c) => c,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    // From the MFA profile down to `name`, so a role two links below the session answers
    // with its own outcome, not its source's stale error.
    let names = match chain(&s, &name) {
        Ok(c) => c,
        Err((status, e)) => return error(status, e),
    };
    let target = names.first().cloned().unwrap_or_else(|| name.clone());
    s.mfa.hand(&target, code);
    let mut outcome = refresh(&s, names.clone()).await;
    if outcome.is_ok() && s.mfa.is_handed(&target) {
        // The attempt in flight ended without the code (it had already passed the point
        // where a code is taken): the next one takes it.
        outcome = refresh(&s, names).await;
    }
    // A code no attempt took is forgotten: it lives seconds.
    s.mfa.discard(&target);
    match outcome {
        Ok(profiles) => Json(RefreshReply { profiles }).into_response(),
        Err(r) => r,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_are_checked_without_quoting_them() {
        assert_eq!(
            read_code(br#"{"code": "123456"}"#).unwrap().expose(),
            "123456"
        );
        for body in [
            &br#"{"code": 123456}"#[..],
            br#"{"code": "12345"}"#,
            br#"{"code": "123456", "x": 1}"#,
            br#"{"code": "123456", "code": "654321"}"#,
            br#"["123456"]"#,
            b"123456",
            b"",
        ] {
            let e = read_code(body).unwrap_err();
            assert!(!e.contains("12345"), "{e}");
        }
    }
}
