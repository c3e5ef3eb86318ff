#!/usr/bin/env bash
# Installs cargo-deb (pinned) into <repo>/target/tools once; prints the path of the binary.
# Used by the packaging test and scripts/build-deb.sh. Fails loudly when it cannot install.
set -euo pipefail
# shellcheck source=ensure-cargo-tool.sh
source "$(dirname "${BASH_SOURCE[0]}")/ensure-cargo-tool.sh"
ensure_cargo_tool cargo-deb 3.8.0
