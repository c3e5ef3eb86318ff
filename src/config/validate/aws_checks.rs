//! Checks against AWS's own files: `source_profile`s that must exist there, and names that
//! would clash with a profile or a credentials file section credfresh does not own.

use super::Validator;
use crate::config::aws::AwsConfigIndex;
use crate::config::raw::RawProfile;
use crate::config::{Profile, ProfileSource, SourceRef};
use std::collections::HashSet;
use toml::Spanned;

impl Validator<'_> {
    /// Decides whether each `source_profile` is managed (a chain) or an AWS profile that exists.
    pub(super) fn check_sources(
        &mut self,
        raw: &[Spanned<RawProfile>],
        profiles: &mut [Option<Profile>],
        aws_config: &AwsConfigIndex,
        credentials: &AwsConfigIndex,
    ) {
        let managed: HashSet<&str> = raw
            .iter()
            .map(|p| p.get_ref().name.get_ref().as_str())
            .collect();
        for (i, p) in profiles.iter_mut().enumerate() {
            let Some(Profile {
                source: ProfileSource::AssumeRole(ar),
                name,
                ..
            }) = p
            else {
                continue;
            };
            let SourceRef::Aws(src) = &ar.source else {
                continue;
            };
            if managed.contains(src.as_str()) {
                ar.source = SourceRef::Managed(src.clone());
            } else if !aws_config.has_profile(src) && !credentials.has_section(src) {
                let span = raw[i].get_ref().source_profile_span();
                let msg = format!(
                    "source_profile \"{src}\" is neither a [[profile]] in this file nor a profile in {} or {}; fix the name or add that profile",
                    aws_config.path.display(),
                    credentials.path.display()
                );
                self.error(span, Some(name.as_str()), msg);
            }
        }
    }

    /// Rejects managed names that `~/.aws/config` defines as a role or SSO profile (the SDKs
    /// would use those settings and ignore the keys credfresh writes), and names of sections
    /// in the credentials file that credfresh did not write (no
    /// [`EXPIRATION_KEY`](crate::credentials_file::EXPIRATION_KEY)): their keys, an IAM
    /// user's long-term ones say, would be lost.
    pub(super) fn check_conflicts(
        &mut self,
        raw: &[Spanned<RawProfile>],
        aws_config: &AwsConfigIndex,
        credentials: &AwsConfigIndex,
    ) {
        for p in raw {
            let name = p.get_ref().name.get_ref();
            if let Some(section) = credentials.section(name) {
                let ours = section
                    .entries
                    .iter()
                    .any(|e| e.key == crate::credentials_file::EXPIRATION_KEY);
                if !ours {
                    let msg = format!(
                        "{}:{} has a section [{name}] that credfresh did not write (it has no `{}`), and credfresh never overwrites it; rename this [[profile]], or rename or delete that section",
                        credentials.path.display(),
                        credentials.header_line(name),
                        crate::credentials_file::EXPIRATION_KEY,
                    );
                    self.error(p.get_ref().name.span(), Some(name), msg);
                }
            }
            if let Some((key, line)) = aws_config.credential_key(name) {
                let msg = format!(
                    "{}:{line} defines [profile {name}] with `{key}`, so the AWS SDKs would ignore the keys credfresh writes for it; rename this [[profile]] or remove `{key}` there",
                    aws_config.path.display()
                );
                self.error(p.get_ref().name.span(), Some(name), msg);
            }
        }
    }
}
