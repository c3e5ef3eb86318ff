#!/usr/bin/env bash
# Makes sure libfaketime is installed, from the distribution (apt-get or dnf) when it is absent;
# prints the path of the preload library. The clock-skew tests run the daemon under it (LD_PRELOAD,
# FAKETIME=±20m) and `.ci/run` installs it up front. Installing needs root (the test suite runs
# as root). Fails loudly when it cannot install: the skew tests must not go unrun.
set -euo pipefail

say() { printf 'ensure-libfaketime: %s\n' "$*" >&2; }
die() {
    say "FAILED: $*"
    say "install libfaketime (Debian/Ubuntu: apt-get install libfaketime; Fedora: dnf install libfaketime) and run $0 again"
    exit 1
}

found() {
    local lib
    for lib in /usr/lib/*/faketime/libfaketime.so.1 /usr/lib64/faketime/libfaketime.so.1 \
        /usr/lib/faketime/libfaketime.so.1; do
        if [[ -f "$lib" ]]; then
            printf '%s\n' "$lib"
            return 0
        fi
    done
    return 1
}

if lib="$(found)"; then
    printf '%s\n' "$lib"
    exit 0
fi

[[ "$(uname -s)" == Linux ]] || die "the skew tests need libfaketime's LD_PRELOAD, which is Linux-only here"
[[ "$(id -u)" == 0 ]] || die "not installed, and installing it needs root"
command -v flock >/dev/null 2>&1 || die "flock (util-linux) is not installed"

# Parallel tests may get here together: one installs, the others wait and find it.
exec 9>"${TMPDIR:-/tmp}/credfresh-libfaketime.lock"
flock -w 1200 9 || die "timed out waiting for another install"
if lib="$(found)"; then
    printf '%s\n' "$lib"
    exit 0
fi

if command -v apt-get >/dev/null 2>&1; then
    say "installing libfaketime with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2 || die "apt-get update failed"
    apt-get install -y -qq --no-install-recommends libfaketime >&2 || die "apt-get install libfaketime failed"
elif command -v dnf >/dev/null 2>&1; then
    say "installing libfaketime with dnf"
    dnf install -y -q libfaketime >&2 || die "dnf install libfaketime failed"
else
    die "neither apt-get nor dnf is available"
fi

lib="$(found)" || die "libfaketime.so.1 is still not found after the install"
say "ready: $lib"
printf '%s\n' "$lib"
