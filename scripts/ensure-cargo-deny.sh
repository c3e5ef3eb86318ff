#!/usr/bin/env bash
# Installs cargo-deny (pinned) into <repo>/target/tools once; prints the path of the binary.
# Used by the static checks in .ci/run. Fails loudly when it cannot install.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
version="0.20.2"
root="${CREDFRESH_TOOLS:-$repo/target/tools}"
bin="$root/bin/cargo-deny"
if [[ -x "$bin" ]] && "$bin" --version 2>/dev/null | grep -q "$version"; then
    printf '%s\n' "$bin"
    exit 0
fi
mkdir -p "$root"
exec 9>"$root/.install.lock"
flock -w 1800 9 || { echo "ensure-cargo-deny: timed out waiting for another install" >&2; exit 1; }
if ! { [[ -x "$bin" ]] && "$bin" --version 2>/dev/null | grep -q "$version"; }; then
    echo "ensure-cargo-deny: installing cargo-deny $version into $root" >&2
    cargo install --quiet --locked --version "$version" --root "$root" cargo-deny >&2 \
        || { echo "ensure-cargo-deny: FAILED to install cargo-deny $version" >&2; exit 1; }
fi
printf '%s\n' "$bin"
