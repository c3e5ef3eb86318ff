#!/usr/bin/env bash
# Builds the AWS SDK for Go v2 client of the SDK matrix test (tests/sdk/go/main.go) once, offline,
# against Debian's packaged SDK (golang-github-aws-aws-sdk-go-v2-dev 1.17.1, golang-go 1.19),
# installing those first when they are absent; prints the path of the binary, cached under
# <repo>/target/tools/sdk-go by the hash of the source, this script and `go version`. The matrix
# test and `.ci/run` call it. No module proxy: GOPATH mode against /usr/share/gocode. Fails loudly.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=ensure-apt-package.sh
source "$repo/scripts/ensure-apt-package.sh"

gocode=/usr/share/gocode
found() {
    [[ -d "$gocode/src/github.com/aws/aws-sdk-go-v2/service/sts" ]] || return 1
    command -v go 2>/dev/null
}
go="$(ensure_package go-aws-sdk "golang-go golang-github-aws-aws-sdk-go-v2-dev")"

root="${CREDFRESH_TOOLS:-$repo/target/tools}/sdk-go"
src="$repo/tests/sdk/go/main.go"
hash="$(cat "$src" "${BASH_SOURCE[0]}" <("$go" version) | sha256sum | cut -c1-16)"
bin="$root/client-$hash"
if [[ -x "$bin" ]]; then
    printf '%s\n' "$bin"
    exit 0
fi
mkdir -p "$root"
exec 9>"$root/.build.lock"
flock -w 1200 9 || { echo "ensure-sdk-go: timed out waiting for another build" >&2; exit 1; }
if [[ ! -x "$bin" ]]; then
    echo "ensure-sdk-go: building $src against $gocode" >&2
    tmp="$(mktemp "$root/.client.XXXXXX")"
    trap 'rm -f "$tmp"' EXIT
    GOPATH="$gocode" GO111MODULE=off GOFLAGS= GOPROXY=off GOTOOLCHAIN=local \
        GOCACHE="$root/cache" "$go" build -o "$tmp" "$src" >&2 \
        || { echo "ensure-sdk-go: FAILED to build $src" >&2; exit 1; }
    chmod 0755 "$tmp"
    mv -f "$tmp" "$bin"
    # Older builds of the client are of no further use.
    find "$root" -maxdepth 1 -name 'client-*' ! -name "client-$hash" -delete
fi
printf '%s\n' "$bin"
