#!/usr/bin/env bash
# Installs cargo-deny (pinned) into <repo>/target/tools once; prints the path of the binary.
# Used by the static checks in .ci/run. Fails loudly when it cannot install.
set -euo pipefail
# shellcheck source=ensure-cargo-tool.sh
source "$(dirname "${BASH_SOURCE[0]}")/ensure-cargo-tool.sh"
ensure_cargo_tool cargo-deny 0.20.2
