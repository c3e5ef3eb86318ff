//! credfresh keeps temporary AWS credentials fresh for people and programs that must not
//! notice they expire.

pub mod api;
pub mod config;
pub mod credentials_file;
pub mod creds;
pub mod env;
pub mod scheduler;
pub mod sources;
