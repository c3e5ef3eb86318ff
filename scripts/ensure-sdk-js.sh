#!/usr/bin/env bash
# Installs the AWS SDK for JavaScript v3 of the SDK matrix test (tests/sdk/js/package.json and
# its package-lock.json, exact versions) with the machine's node (>= 20) and npm into
# <repo>/target/tools/sdk-js once; prints the node_modules directory (the test runs
# tests/sdk/js/client.js with NODE_PATH set to it). npm's cache lives beside it, so a reinstall
# after `package-lock.json` changes mostly works offline. The matrix test and `.ci/run` call it.
# Fails loudly.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
say() { printf 'ensure-sdk-js: %s\n' "$*" >&2; }
die() { say "FAILED: $*"; exit 1; }

src="$repo/tests/sdk/js"
root="${CREDFRESH_TOOLS:-$repo/target/tools}/sdk-js"
want="$(cat "$src/package.json" "$src/package-lock.json" "${BASH_SOURCE[0]}" | sha256sum | cut -c1-16)"
modules="$root/$want/node_modules"
works() { [[ -f "$root/$want/.complete" && -d "$modules/@aws-sdk/client-sts" ]]; }
if works; then
    printf '%s\n' "$modules"
    exit 0
fi
for tool in node npm flock; do
    command -v "$tool" >/dev/null 2>&1 || die "needs $tool (Debian: apt-get install nodejs npm; the SDK needs node >= 20)"
done
major="$(node -p 'process.versions.node.split(".")[0]')"
[[ "$major" -ge 20 ]] || die "node $(node --version) is too old: the AWS SDK for JavaScript v3 needs node >= 20"
mkdir -p "$root"
exec 9>"$root/.install.lock"
flock -w 1200 9 || die "timed out waiting for another install"
if ! works; then
    say "installing $(node -p "Object.entries(require('$src/package.json').dependencies).map(([n, v]) => n + '@' + v).join(' ')") into $root/$want"
    tmp="$(mktemp -d "$root/.install.XXXXXX")"
    trap 'rm -rf "$tmp"' EXIT
    cp "$src/package.json" "$src/package-lock.json" "$tmp/"
    (cd "$tmp" && npm ci --cache "$root/npm-cache" --prefer-offline --no-audit --no-fund \
        --loglevel=error >&2) || die "npm ci failed"
    NODE_PATH="$tmp/node_modules" node -e 'require("@aws-sdk/client-sts")' >&2 \
        || die "the installed SDK does not load"
    touch "$tmp/.complete"
    rm -rf "${root:?}/$want"
    mv "$tmp" "$root/$want"
    # Earlier installs are of no further use.
    find "$root" -mindepth 1 -maxdepth 1 -type d ! -name "$want" ! -name npm-cache ! -name '.install.*' \
        -exec rm -rf {} +
fi
works || die "no complete install under $root/$want"
printf '%s\n' "$modules"
