//! The Debian package holds the binary, the user unit, the example config, the man page and
//! the completions.

use crate::support::repo_root;
use std::process::Command;

#[test]
fn deb_package_has_everything_a_user_needs() {
    // Packages the debug binary this test run built; `scripts/build-deb.sh` builds releases.
    let out = Command::new(repo_root().join("scripts/build-deb.sh"))
        .args(["--profile", "dev", "--no-build"])
        .current_dir(repo_root())
        .output()
        .expect("run scripts/build-deb.sh");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "build-deb.sh failed:\n{stderr}");
    let deb = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let deb = repo_root().join(deb);
    let listing = Command::new("dpkg-deb")
        .arg("-c")
        .arg(&deb)
        .output()
        .expect("dpkg-deb -c");
    assert!(listing.status.success());
    let listing = String::from_utf8_lossy(&listing.stdout);
    for path in [
        "./usr/bin/credfresh",
        "./usr/lib/systemd/user/credfresh.service",
        "./usr/share/doc/credfresh/examples/config.example.toml",
        "./usr/share/man/man1/credfresh.1.gz",
        "./usr/share/bash-completion/completions/credfresh",
        "./usr/share/zsh/vendor-completions/_credfresh",
        "./usr/share/fish/vendor_completions.d/credfresh.fish",
    ] {
        assert!(
            listing.lines().any(|l| l.ends_with(path)),
            "{path} missing from the .deb:\n{listing}"
        );
    }
    assert!(
        listing
            .lines()
            .any(|l| l.starts_with("-rwxr-xr-x") && l.ends_with("./usr/bin/credfresh")),
        "the binary is not executable:\n{listing}"
    );
    let info = Command::new("dpkg-deb")
        .arg("-f")
        .arg(&deb)
        .arg("Package")
        .output()
        .expect("dpkg-deb -f");
    assert_eq!(String::from_utf8_lossy(&info.stdout).trim(), "credfresh");

    // The unpacked binary runs.
    let dir = tempfile::tempdir().expect("tempdir");
    let x = Command::new("dpkg-deb")
        .arg("-x")
        .arg(&deb)
        .arg(dir.path())
        .status()
        .expect("dpkg-deb -x");
    assert!(x.success());
    let version = Command::new(dir.path().join("usr/bin/credfresh"))
        .arg("--version")
        .output()
        .expect("run packaged credfresh");
    assert_eq!(
        String::from_utf8_lossy(&version.stdout).trim(),
        format!("credfresh {}", env!("CARGO_PKG_VERSION"))
    );
}
