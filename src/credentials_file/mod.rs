//! Editing and atomically rewriting the AWS shared credentials file.
//!
//! The file belongs to the user and to every other tool that touches it, so the editor
//! only rewrites the lines it owns (four keys in each managed section) and leaves every
//! other byte alone. The writer replaces the file via a temporary file and `rename`, so
//! readers (SDKs, the CLI) never observe a half-written file.
//!
//! Parsing follows what botocore (Python `configparser`) and the AWS SDKs agree on:
//! whole-line `#`/`;` comments, `key = value` (also `key: value`), keys compared
//! ASCII-case-insensitively, and indented lines after a key continuing that key's value.
//!
//! - `ini`: the byte-preserving line model and parser, the refusal of files readers reject
//!   or disagree about ([`EditError`]), [`read_section`] and the profile-name rule
//!   ([`section_name_problem`]). Depends on nothing.
//! - `edit`: updates of the managed sections ([`apply_updates`]) and [`prune_sections`];
//!   pure text to text, on top of `ini`.
//! - `atomic`: [`write_atomic`] (advisory lock, settle, private temp file through
//!   [`crate::fsutil`], re-read-and-compare, rename, merge of late edits, owner kept) and the
//!   removal of stale temp files; takes the edit as a closure, so it needs only `ini`'s error.

mod atomic;
mod edit;
mod ini;

pub(crate) use atomic::{ensure_dir, resolve_symlinks};
pub use atomic::{
    is_own_write, lock_path, read_or_empty, remove_stale_temp_files, write_atomic, WriteError,
    WriteOutcome, LOCK_TIMEOUT, MAX_FILE_SIZE, SETTLE,
};
pub use edit::{apply_updates, prune_sections, SectionUpdate};
pub use ini::{read_section, section_name_problem, EditError, EXPIRATION_KEY};
