#!/usr/bin/env bash
# Builds the Debian package: the binary, the systemd user unit, the example config, the man
# page and shell completions. Prints the path of the .deb.
#
#   scripts/build-deb.sh                 # release build (what you ship)
#   scripts/build-deb.sh --profile dev --no-build   # package the debug binary already built
#                                                    # (what the tests check)
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
profile=release
build=yes
while (($#)); do
    case "$1" in
    --profile) profile="${2:?--profile needs a value}"; shift 2 ;;
    --no-build) build=no; shift ;;
    *) echo "usage: $0 [--profile NAME] [--no-build]" >&2; exit 2 ;;
    esac
done
dir=$([[ "$profile" == dev ]] && echo debug || echo "$profile")
cargo_deb="$(scripts/ensure-cargo-deb.sh)"
if [[ "$build" == yes ]]; then cargo build --quiet --profile "$profile" --bins; fi
bin="target/$dir/credfresh"
mkdir -p target/assets
"$bin" man | gzip -9n >target/assets/credfresh.1.gz
"$bin" completions bash >target/assets/credfresh.bash
"$bin" completions zsh >target/assets/_credfresh
"$bin" completions fish >target/assets/credfresh.fish
out="target/debian/$profile"
mkdir -p "$out"
if [[ "$profile" == release ]]; then
    "$cargo_deb" --no-build --output "$out" >&2
else
    # cargo deb maps the target/release/ asset paths to this profile's directory.
    "$cargo_deb" --no-build --no-strip --profile "$profile" --output "$out" >&2
fi
ls -1t "$out"/*.deb | head -1
