#!/usr/bin/env bash
# Makes sure `systemd-analyze` is installed, from the distribution (apt-get or dnf) when it is
# absent; prints its path. The unit test (`systemd-analyze verify --user`) and `.ci/run` use it.
# Installing needs root (the test suite runs as root). Fails loudly when it cannot install: the
# unit must not go unverified.
set -euo pipefail

say() { printf 'ensure-systemd-analyze: %s\n' "$*" >&2; }
die() {
    say "FAILED: $*"
    say "install systemd-analyze (Debian/Ubuntu: package systemd; Fedora: dnf install /usr/bin/systemd-analyze) and run $0 again"
    exit 1
}

found() { command -v systemd-analyze 2>/dev/null; }

if bin="$(found)"; then
    printf '%s\n' "$bin"
    exit 0
fi

[[ "$(uname -s)" == Linux ]] || die "systemd-analyze exists only on Linux"
[[ "$(id -u)" == 0 ]] || die "not installed, and installing it needs root"
command -v flock >/dev/null 2>&1 || die "flock (util-linux) is not installed"

# Parallel tests may get here together: one installs, the others wait and find it.
exec 9>"${TMPDIR:-/tmp}/credfresh-systemd-analyze.lock"
flock -w 1200 9 || die "timed out waiting for another install"
if bin="$(found)"; then
    printf '%s\n' "$bin"
    exit 0
fi

if command -v apt-get >/dev/null 2>&1; then
    say "installing the systemd package with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2 || die "apt-get update failed"
    apt-get install -y -qq --no-install-recommends systemd >&2 || die "apt-get install systemd failed"
elif command -v dnf >/dev/null 2>&1; then
    say "installing /usr/bin/systemd-analyze with dnf"
    dnf install -y -q /usr/bin/systemd-analyze >&2 || die "dnf install /usr/bin/systemd-analyze failed"
else
    die "neither apt-get nor dnf is available"
fi

bin="$(found)" || die "systemd-analyze is still not on PATH after the install"
say "ready: $bin"
printf '%s\n' "$bin"
