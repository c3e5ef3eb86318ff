# Shared by the scripts/ensure-*.sh installers of cargo tools; sourced, not run:
#
#   source "$(dirname "${BASH_SOURCE[0]}")/ensure-cargo-tool.sh"
#   ensure_cargo_tool cargo-deny 0.20.2
#
# `ensure_cargo_tool CRATE VERSION` installs the pinned CRATE (`cargo install --locked`) into
# <repo>/target/tools (or $CREDFRESH_TOOLS) once and prints the path of its binary. One
# installer at a time (flock); fails loudly.

ensure_cargo_tool() {
    local crate="$1" version="$2" repo root bin
    repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
    root="${CREDFRESH_TOOLS:-$repo/target/tools}"
    bin="$root/bin/$crate"
    installed() { [[ -x "$bin" ]] && "$bin" --version 2>/dev/null | grep -q "$version"; }
    if installed; then
        printf '%s\n' "$bin"
        return 0
    fi
    mkdir -p "$root"
    exec 9>"$root/.install.lock"
    flock -w 1800 9 || { echo "ensure-$crate: timed out waiting for another install" >&2; exit 1; }
    if ! installed; then
        echo "ensure-$crate: installing $crate $version into $root" >&2
        cargo install --quiet --locked --version "$version" --root "$root" "$crate" >&2 \
            || { echo "ensure-$crate: FAILED to install $crate $version" >&2; exit 1; }
    fi
    exec 9>&-
    printf '%s\n' "$bin"
}
