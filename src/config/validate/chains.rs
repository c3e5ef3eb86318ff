//! `source_profile` chains between managed profiles: sources first, cycles reported.

use super::Validator;
use crate::config::raw::RawProfile;
use crate::config::Profile;
use std::collections::BTreeMap;
use toml::Spanned;

impl Validator<'_> {
    /// Orders profiles so every managed source comes before the profiles that use it, and
    /// reports cycles.
    pub(super) fn order(
        &mut self,
        raw: &[Spanned<RawProfile>],
        profiles: Vec<Option<Profile>>,
    ) -> Vec<Profile> {
        let by_name: BTreeMap<&str, usize> = raw
            .iter()
            .enumerate()
            .map(|(i, p)| (p.get_ref().name.get_ref().as_str(), i))
            .collect();
        // 0 = unvisited, 1 = on the current path, 2 = done.
        let mut mark = vec![0u8; raw.len()];
        let mut order = Vec::with_capacity(raw.len());
        let mut cycles = Vec::new();
        for start in 0..raw.len() {
            let mut path = Vec::new();
            let mut at = Some(start);
            while let Some(i) = at {
                match mark[i] {
                    2 => break,
                    1 => {
                        let from = path.iter().position(|&p| p == i).unwrap_or(0);
                        cycles.push(path[from..].to_vec());
                        break;
                    }
                    _ => {}
                }
                mark[i] = 1;
                path.push(i);
                at = profiles[i]
                    .as_ref()
                    .and_then(|p| p.source.managed_source())
                    .and_then(|s| by_name.get(s).copied());
            }
            for &i in path.iter().rev() {
                mark[i] = 2;
                order.push(i);
            }
        }
        for cycle in cycles {
            let names: Vec<&str> = cycle
                .iter()
                .map(|&i| raw[i].get_ref().name.get_ref().as_str())
                .collect();
            let first = cycle[0];
            let span = raw[first].get_ref().source_profile_span();
            let msg = format!(
                "source_profile chain is a cycle: {} -> {}; one profile in it must take credentials from an AWS profile",
                names.join(" -> "),
                names[0]
            );
            self.error(span, Some(names[0]), msg);
        }
        let mut profiles: Vec<Option<Profile>> = profiles;
        order
            .into_iter()
            .filter_map(|i| profiles[i].take())
            .collect()
    }
}
