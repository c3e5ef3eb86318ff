# Shared by the scripts/ensure-*.sh installers of distribution packages; sourced, not run:
#
#   source "$(dirname "${BASH_SOURCE[0]}")/ensure-apt-package.sh"
#   found() { command -v ruby; }                     # prints the path when installed
#   ensure_package ruby "ruby ruby-aws-sdk-core" "ruby rubygem-aws-sdk-core"
#
# `ensure_package WHAT APT_PACKAGES [DNF_PACKAGES]` prints what the caller's `found` prints,
# installing the packages first (apt-get, else dnf when DNF_PACKAGES is given) when `found`
# fails. Installing needs root (the test suite and CI run as root). One installer at a time on
# the machine (a flock shared by every such script, and dpkg's own lock waited for), so tests
# that start together never race: the others wait and then find the package. Fails loudly —
# the tests that need a package must never go unrun.

ensure_package() {
    local what="$1" apt_packages="$2" dnf_packages="${3:-}" path
    say() { printf 'ensure-%s: %s\n' "$what" "$*" >&2; }
    die() {
        say "FAILED: $*"
        say "install it (Debian/Ubuntu: apt-get install $apt_packages${dnf_packages:+; Fedora: dnf install $dnf_packages}) and run ${0##*/} again"
        exit 1
    }
    if path="$(found)"; then
        printf '%s\n' "$path"
        return 0
    fi
    [[ "$(uname -s)" == Linux ]] || die "installs only from a Linux distribution's packages"
    [[ "$(id -u)" == 0 ]] || die "not installed, and installing it needs root"
    command -v flock >/dev/null 2>&1 || die "flock (util-linux) is not installed"

    exec 9>"${TMPDIR:-/tmp}/credfresh-apt.lock"
    flock -w 1800 9 || die "timed out waiting for another install"
    if path="$(found)"; then
        exec 9>&-
        printf '%s\n' "$path"
        return 0
    fi
    local started=$SECONDS
    if command -v apt-get >/dev/null 2>&1; then
        say "installing $apt_packages with apt-get"
        export DEBIAN_FRONTEND=noninteractive
        # shellcheck disable=SC2086 # word splitting of the package list is wanted
        apt-get -o DPkg::Lock::Timeout=600 update -qq >&2 || die "apt-get update failed"
        # shellcheck disable=SC2086
        apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends $apt_packages >&2 \
            || die "apt-get install $apt_packages failed"
    elif [[ -n "$dnf_packages" ]] && command -v dnf >/dev/null 2>&1; then
        say "installing $dnf_packages with dnf"
        # shellcheck disable=SC2086
        dnf install -y -q $dnf_packages >&2 || die "dnf install $dnf_packages failed"
    else
        die "no apt-get${dnf_packages:+ or dnf} to install with"
    fi
    exec 9>&-
    path="$(found)" || die "still not found after installing $apt_packages"
    say "ready after $((SECONDS - started)) s: $path"
    printf '%s\n' "$path"
}
