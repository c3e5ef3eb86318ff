//! The fake IAM Identity Center (`support/sso.rs`) agrees with botocore's `sso-oidc` and `sso`
//! service models: paths, the portal's bearer-token header, error codes and their HTTP
//! statuses, and the fields of its answers (driven by botocore's own clients).

use crate::support::sso::{SsoFake, BEARER_HEADER, ERROR_STATUS, ROUTES};
use crate::support::{show, TestEnv};
use serde_json::Value;
use std::time::Duration;

#[test]
fn the_fake_sso_services_match_botocores_models() {
    let fake = SsoFake::start(Duration::from_secs(3600));
    let env = TestEnv::with_sts("http://127.0.0.1:9");
    let m = fake.mint();
    fake.slow_down_next(1);
    let out = env.python(
        "sso_model_check.py",
        &[&fake.endpoint()],
        &[
            ("SSO_CHECK_ACCESS_TOKEN", &m.access_token),
            ("SSO_CHECK_REFRESH_TOKEN", &m.refresh_token),
            ("SSO_CHECK_CLIENT_ID", &m.client_id),
            ("SSO_CHECK_CLIENT_SECRET", &m.client_secret),
        ],
    );
    assert!(out.status.success(), "{}", show(&out));
    let facts: Value = serde_json::from_slice(&out.stdout).expect("the script prints JSON");

    assert_eq!(facts["bearer_header"], BEARER_HEADER);
    for (method, path, op) in ROUTES {
        assert_eq!(
            facts["routes"][op],
            serde_json::json!([method, path]),
            "{op}"
        );
    }
    for (code, status) in ERROR_STATUS {
        assert_eq!(
            facts["errors"][code].as_u64(),
            Some(u64::from(*status)),
            "{code}: the fake's HTTP status"
        );
    }
    // Every request the script made reached a known operation.
    assert!(fake.count("RegisterClient") >= 1);
    assert_eq!(fake.count("CreateToken:device_code"), 2);
    assert_eq!(fake.count("GetRoleCredentials"), 2);
}
