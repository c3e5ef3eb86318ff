#!/usr/bin/env bash
# Makes sure libfaketime is installed, from the distribution (apt-get or dnf) when it is absent;
# prints the path of the preload library. The clock-skew tests run the daemon under it (LD_PRELOAD,
# FAKETIME=±20m) and `.ci/run` installs it up front. Installing needs root (the test suite runs
# as root). Fails loudly when it cannot install: the skew tests must not go unrun.
set -euo pipefail
# shellcheck source=ensure-apt-package.sh
source "$(dirname "${BASH_SOURCE[0]}")/ensure-apt-package.sh"

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

ensure_package libfaketime libfaketime libfaketime
