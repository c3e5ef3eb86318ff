//! `POST /v1/profiles/{name}/mfa`: a code for the profile (or the MFA profile up its chain),
//! used at once; answered with the outcome like a refresh.

use super::{error, refresh, ControlState, ProfileName, RefreshReply};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;

/// The body's shape, for errors (which never quote the body: it holds a code).
const SHAPE: &str = "body must be {\"code\": \"<the 6 digits>\"}";

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
    crate::mfa::MfaCode::parse(code).map_err(|e| format!("{SHAPE}: {e}"))
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
    let target = match s.mfa.target(&name) {
        Ok(t) => t,
        Err(e) if e.starts_with("no managed profile") => return error(StatusCode::NOT_FOUND, e),
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    s.mfa.hand(&target, code);
    let mut names = vec![target.clone()];
    if name != target {
        names.push(name);
    }
    let outcome = refresh(&s, names).await;
    // A code no attempt took (the profile was mid-refresh) is forgotten: it lives seconds.
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
            br#"["123456"]"#,
            b"123456",
            b"",
        ] {
            let e = read_code(body).unwrap_err();
            assert!(!e.contains("12345"), "{e}");
        }
    }
}
