#!/usr/bin/env bash
# Makes sure Ruby and Debian's AWS SDK for Ruby (`ruby-aws-sdk-core`, which carries the STS
# client in that release) are installed; prints the path of `ruby`. The SDK matrix test
# (tests/e2e/sdk_matrix.rs) runs tests/sdk/ruby/client.rb with it, and `.ci/run` installs it up
# front. Installing needs root. Fails loudly: the matrix must not go unrun.
set -euo pipefail
# shellcheck source=ensure-apt-package.sh
source "$(dirname "${BASH_SOURCE[0]}")/ensure-apt-package.sh"

found() {
    local ruby
    ruby="$(command -v ruby 2>/dev/null)" || return 1
    "$ruby" -e 'require "aws-sdk-core"; Aws::STS::Client' >/dev/null 2>&1 || return 1
    printf '%s\n' "$ruby"
}

ensure_package ruby-aws-sdk "ruby ruby-aws-sdk-core"
