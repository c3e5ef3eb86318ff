//! End-to-end tests: the real `credfresh` binary, a throw-away HOME, and a local moto STS
//! started by each test (never the real AWS). The Python fakes live in a venv that
//! `scripts/ensure-venv.sh` creates on first use.
//!
//! Each test owns its temp dir, moto and daemon, so the tests run in parallel.

mod support;

mod access;
mod bad_input;
mod chain;
mod check_init;
mod cli_errors;
mod credential_process;
mod credentials_file;
mod delivery;
mod docker;
mod endpoint_errors;
mod env_snippet;
mod exec;
mod fakes;
mod faults;
mod file_guard;
mod file_safety;
mod file_truth;
mod filewatch;
mod instance;
mod log_loops;
mod mfa;
mod mfa_handover;
mod outage;
mod packaging;
mod peer_uid;
mod readiness;
mod rotation;
mod sdk_matrix;
mod secrets;
mod service;
mod signals;
mod skew;
mod soak;
mod sso;
mod sso_faults;
mod sso_model;
mod status;
mod sts_profile;
mod web_identity;
