#!/usr/bin/env bash
# Installs cargo-deb (pinned) into <repo>/target/tools once; prints the path of the binary.
# Used by the packaging test and scripts/build-deb.sh. Fails loudly when it cannot install.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
version="3.8.0"
root="${CREDFRESH_TOOLS:-$repo/target/tools}"
bin="$root/bin/cargo-deb"
if [[ -x "$bin" ]] && "$bin" --version 2>/dev/null | grep -q "$version"; then
    printf '%s\n' "$bin"
    exit 0
fi
mkdir -p "$root"
exec 9>"$root/.install.lock"
flock -w 1800 9 || { echo "ensure-cargo-deb: timed out waiting for another install" >&2; exit 1; }
if ! { [[ -x "$bin" ]] && "$bin" --version 2>/dev/null | grep -q "$version"; }; then
    echo "ensure-cargo-deb: installing cargo-deb $version into $root" >&2
    cargo install --quiet --locked --version "$version" --root "$root" cargo-deb >&2 \
        || { echo "ensure-cargo-deb: FAILED to install cargo-deb $version" >&2; exit 1; }
fi
printf '%s\n' "$bin"
