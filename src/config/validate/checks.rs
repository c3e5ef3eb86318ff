//! Pure checks of single values: names, ARNs, regions.

/// The default `RoleSessionName`: `credfresh-<profile>`, cut to what STS accepts.
pub(in crate::config) fn default_session_name(profile: &str) -> String {
    let mut s: String = format!("credfresh-{profile}")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "+=,.@-_".contains(c) {
                c
            } else {
                '-'
            }
        })
        .collect();
    s.truncate(64);
    s
}

pub(in crate::config) fn check_profile_name(name: &str) -> Result<(), String> {
    if name.trim().is_empty() {
        return Err("`name` is empty; give the profile the section name it should have in the credentials file".into());
    }
    match crate::credentials_file::section_name_problem(name) {
        Some(reason) => Err(format!(
            "`name` = \"{}\" cannot be a credentials file section: {reason}; use letters, digits and -_./%@:+",
            name.escape_debug()
        )),
        None => Ok(()),
    }
}

pub(in crate::config) fn check_role_arn(arn: &str) -> Result<(), String> {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let ok = parts.len() == 6
        && parts[0] == "arn"
        && parts[1].starts_with("aws")
        && parts[2] == "iam"
        && parts[3].is_empty()
        && parts[4].len() == 12
        && parts[4].bytes().all(|b| b.is_ascii_digit())
        && parts[5]
            .strip_prefix("role/")
            .is_some_and(|r| !r.is_empty());
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`role_arn` = \"{arn}\" is not an IAM role ARN; write it like \"arn:aws:iam::123456789012:role/MyRole\""
        ))
    }
}

pub(in crate::config) fn check_session_name(name: &str) -> Result<(), String> {
    let ok = (2..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+=,.@-_".contains(c));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`session_name` = \"{}\" is not accepted by STS; use 2 to 64 of letters, digits and +=,.@-_",
            name.escape_debug()
        ))
    }
}

pub(in crate::config) fn check_region(region: &str) -> bool {
    !region.is_empty()
        && region.len() <= 32
        && region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && region.contains('-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_arns() {
        assert!(check_role_arn("arn:aws:iam::123456789012:role/MyRole").is_ok());
        assert!(check_role_arn("arn:aws-cn:iam::123456789012:role/path/R").is_ok());
        for bad in [
            "",
            "arn:aws:iam::12345678901:role/R",
            "arn:aws:iam::123456789012:user/R",
            "arn:aws:iam::123456789012:role/",
            "arn:aws:sts::123456789012:role/R",
            "arn:aws:iam:us-east-1:123456789012:role/R",
        ] {
            assert!(check_role_arn(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn session_names() {
        assert!(check_session_name("ci-run@2024.01").is_ok());
        assert!(check_session_name("a").is_err());
        assert!(check_session_name(&"a".repeat(65)).is_err());
        assert!(check_session_name("has space").is_err());
    }

    #[test]
    fn default_session_names_are_valid() {
        assert_eq!(default_session_name("dev"), "credfresh-dev");
        assert_eq!(default_session_name("a b/c"), "credfresh-a-b-c");
        let long = default_session_name(&"x".repeat(100));
        assert_eq!(long.len(), 64);
        assert!(check_session_name(&long).is_ok());
    }

    #[test]
    fn regions() {
        assert!(check_region("eu-west-1"));
        assert!(check_region("us-gov-west-1"));
        assert!(!check_region(""));
        assert!(!check_region("EU-WEST-1"));
        assert!(!check_region("local"));
    }
}
