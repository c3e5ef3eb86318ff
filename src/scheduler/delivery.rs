//! `fresh` means delivered: what the writer reports about each attempt to write moves a
//! profile whose fetch succeeded from `refreshing` to `fresh` (its credentials are in the
//! file). The state a profile shows is true of the file: while the writer cannot put the
//! credentials held into it (a write error, the file replaced by a directory or unreadable,
//! found by a write or by the file watch), the profile shows `retrying` with the write error,
//! or `expired` once the copy in the file has lapsed, through new fetches too, until a write
//! lands.

use super::{Entry, Scheduler};
use crate::api::ProfileState;
use crate::writer::WriteReport;
use std::time::SystemTime;

/// What `last_error` says while fetched credentials cannot be written (the writer retries).
pub const NOT_WRITTEN: &str = "the credentials file was not updated";

impl Entry {
    /// The state and `last_error` the profile shows at `now`: its own, unless the file
    /// cannot be written, which a profile that is fetched (or being fetched) shows instead:
    /// `retrying`, or `expired` once the credentials in the file (or, with none there, the
    /// ones held) have lapsed.
    pub(super) fn shown(&self, now: SystemTime) -> (ProfileState, Option<String>) {
        let own = (self.state, self.last_error.clone());
        let Some(err) = &self.file_error else {
            return own;
        };
        if !matches!(
            self.state,
            ProfileState::Fresh | ProfileState::Refreshing | ProfileState::Expired
        ) {
            return own;
        }
        let until = self
            .in_file
            .or_else(|| self.creds.as_ref().map(|c| c.expiration));
        let state = if until.is_some_and(|t| t > now) {
            ProfileState::Retrying
        } else {
            ProfileState::Expired
        };
        (state, Some(format!("{NOT_WRITTEN}: {err}")))
    }
}

impl Scheduler {
    /// Applies one write report. A success tells which credentials the file holds (and,
    /// about the ones held, ends a write error); a failure about the credentials a profile holds now means the file cannot be vouched
    /// for (also when they were in it before: the file watch found it replaced or broken).
    /// A report about earlier credentials that failed changes nothing. A profile whose next
    /// fetch is already under way keeps `refreshing` as its own state (that fetch's outcome
    /// is what it shows next).
    pub(super) fn written(&mut self, report: WriteReport) {
        for stamp in &report.profiles {
            let Some(i) = self.index(&stamp.name) else {
                continue;
            };
            let e = &mut self.entries[i];
            let current = e.creds.as_ref().is_some_and(|c| stamp.matches(c));
            match &report.outcome {
                Ok(()) => {
                    e.in_file = Some(stamp.expiration);
                    if !current {
                        continue;
                    }
                    e.file_error = None;
                    if !e.delivered {
                        e.delivered = true;
                        self.metrics.refreshed(&e.profile.name);
                    }
                    if !e.awaiting || e.in_flight {
                        continue;
                    }
                    e.awaiting = false;
                    e.state = ProfileState::Fresh;
                    e.last_error = None;
                    tracing::debug!(profile = %e.profile.name, "credentials are in the file");
                }
                Err(err) => {
                    if !current {
                        continue;
                    }
                    e.file_error = Some(err.clone());
                    if e.state == ProfileState::Fresh {
                        // Written once, lost since: fresh again once a write lands.
                        e.awaiting = true;
                    }
                    if !e.awaiting || e.in_flight {
                        continue;
                    }
                }
            }
            self.answer(i, None);
        }
    }
}
