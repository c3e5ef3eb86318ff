//! `fresh` means delivered: what the writer reports about each attempt to write moves a
//! profile whose fetch succeeded from `refreshing` to `fresh` (its credentials are in the
//! file), or to `retrying` with the write error while the writer tries again.

use super::Scheduler;
use crate::api::ProfileState;
use crate::writer::WriteReport;

/// What `last_error` says while fetched credentials cannot be written (the writer retries).
pub const NOT_WRITTEN: &str = "the credentials file was not updated";

impl Scheduler {
    /// Applies one write report. Only the credentials a profile holds now count: a report
    /// about earlier ones changes nothing. A profile whose next fetch is already under way
    /// keeps `refreshing` (that fetch's outcome is what it shows next).
    pub(super) fn written(&mut self, report: WriteReport) {
        let now = self.clock.now();
        for stamp in &report.profiles {
            let Some(i) = self.index(&stamp.name) else {
                continue;
            };
            let e = &mut self.entries[i];
            if e.delivered || !e.creds.as_ref().is_some_and(|c| stamp.matches(c)) {
                continue;
            }
            match &report.outcome {
                Ok(()) => {
                    e.delivered = true;
                    self.metrics.refreshed(&e.profile.name);
                    if !e.awaiting || e.in_flight {
                        continue;
                    }
                    e.awaiting = false;
                    e.state = ProfileState::Fresh;
                    e.last_error = None;
                    tracing::debug!(profile = %e.profile.name, "credentials are in the file");
                }
                Err(err) => {
                    if !e.awaiting || e.in_flight {
                        continue;
                    }
                    let valid = e.valid_creds(now).is_some();
                    e.state = if valid {
                        ProfileState::Retrying
                    } else {
                        ProfileState::Expired
                    };
                    e.last_error = Some(format!("{NOT_WRITTEN}: {err}"));
                }
            }
            self.answer(i, None);
        }
    }
}
