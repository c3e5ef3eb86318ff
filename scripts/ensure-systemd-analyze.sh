#!/usr/bin/env bash
# Makes sure `systemd-analyze` is installed, from the distribution (apt-get or dnf) when it is
# absent; prints its path. The unit test (`systemd-analyze verify --user`) and `.ci/run` use it.
# Installing needs root (the test suite runs as root). Fails loudly when it cannot install: the
# unit must not go unverified.
set -euo pipefail
# shellcheck source=ensure-apt-package.sh
source "$(dirname "${BASH_SOURCE[0]}")/ensure-apt-package.sh"

found() { command -v systemd-analyze 2>/dev/null; }

ensure_package systemd-analyze systemd /usr/bin/systemd-analyze
