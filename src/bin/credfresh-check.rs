//! `credfresh-check`: the `credfresh` command line with `check` built in; `credfresh check`
//! runs it, so the daemon's binary carries no S3 client.

use credfresh::cli::{main_with, CHECK_VERSION_VAR};
use std::process::ExitCode;

fn main() -> ExitCode {
    let ours = env!("CARGO_PKG_VERSION");
    if let Some(wanted) = std::env::var_os(CHECK_VERSION_VAR).filter(|w| w != ours) {
        let me = std::env::current_exe().unwrap_or_else(|_| "credfresh-check".into());
        eprintln!(
            "credfresh: `check` found {} of credfresh {ours}, but this credfresh is {}; \
             install both programs from the same release",
            me.display(),
            wanted.to_string_lossy()
        );
        return ExitCode::from(credfresh::output::EXIT_FAILURE);
    }
    main_with(credfresh::check::command)
}
