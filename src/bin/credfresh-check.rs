//! `credfresh-check`: the `credfresh` command line with `check` built in; `credfresh check`
//! runs it, so the daemon's binary carries no S3 client.

fn main() -> std::process::ExitCode {
    credfresh::cli::main_with(credfresh::check::command)
}
