#!/usr/bin/env bash
# Installs AWS CLI v2 (pinned) into <repo>/target/tools/awscli-v2 once; prints the path of `aws`.
# For benchmarks only (`aws configure export-credentials` exists only in v2). The CLI v2 is not
# on PyPI itself; the AWS CDK's asset package `aws-cdk-asset-awscli-v2` carries the official
# x86_64 Linux build (the `amazon/aws-cli` image's /usr/local/aws-cli) as a Lambda layer zip.
# Fails loudly when it cannot install.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
asset_version="2.0.198" # AWS CLI 2.38.5
root="${CREDFRESH_TOOLS:-$repo/target/tools}/awscli-v2"
find_aws() { compgen -G "$root/awscli/v2/2.*/dist/aws" | head -1; }
aws="$(find_aws || true)"
if [[ -n "$aws" ]] && "$aws" --version >/dev/null 2>&1; then
    printf '%s\n' "$aws"
    exit 0
fi
[[ "$(uname -sm)" == "Linux x86_64" ]] \
    || { echo "ensure-awscli-v2: the packaged AWS CLI v2 is for Linux x86_64 only" >&2; exit 1; }
command -v unzip >/dev/null || { echo "ensure-awscli-v2: needs unzip" >&2; exit 1; }
venv="$("$repo/scripts/ensure-venv.sh")"
mkdir -p "$root"
exec 9>"$root/.install.lock"
flock -w 1800 9 || { echo "ensure-awscli-v2: timed out waiting for another install" >&2; exit 1; }
aws="$(find_aws || true)"
if [[ -z "$aws" ]]; then
    echo "ensure-awscli-v2: installing AWS CLI v2 (aws-cdk-asset-awscli-v2 $asset_version) into $root" >&2
    tmp="$(mktemp -d)"
    trap 'rm -rf "$tmp"' EXIT
    "$venv/bin/pip" download --quiet --no-deps --dest "$tmp" "aws-cdk-asset-awscli-v2==$asset_version" >&2 \
        || { echo "ensure-awscli-v2: FAILED to download the package" >&2; exit 1; }
    unzip -q -o "$tmp"/aws_cdk_asset_awscli_v2-*.whl 'aws_cdk/asset_awscli_v2/_jsii/*.tgz' -d "$tmp"
    tar -xzf "$tmp"/aws_cdk/asset_awscli_v2/_jsii/*.tgz -C "$tmp" package/lib/layer.zip
    unzip -q -o "$tmp/package/lib/layer.zip" -d "$root"
    aws="$(find_aws || true)"
fi
[[ -n "$aws" ]] && "$aws" --version >/dev/null 2>&1 \
    || { echo "ensure-awscli-v2: FAILED: no working aws under $root" >&2; exit 1; }
printf '%s\n' "$aws"
