//! credfresh keeps temporary AWS credentials fresh for people and programs that must not
//! notice they expire.

pub mod api;
pub mod aws_files;
pub mod backoff;
pub mod check;
pub mod cli;
pub mod client;
pub mod clock;
pub mod config;
pub mod container;
pub mod control;
pub mod credentials_file;
pub mod creds;
pub mod daemon;
pub mod daemon_lock;
pub mod env;
pub mod file_watch;
pub mod fsutil;
pub mod init;
pub mod logging;
pub mod metrics;
pub mod mfa;
pub mod mounts;
pub mod output;
pub mod readiness;
pub mod redact;
pub mod scheduler;
pub mod service;
pub mod skew;
pub mod snapshot;
pub mod source_error;
pub mod sources;
pub mod sso;
pub mod text;
pub mod writer;
