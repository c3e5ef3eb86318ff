#!/usr/bin/env bash
# Installs AWS CLI v2 (pinned) into <repo>/target/tools/awscli-v2 once; prints the path of `aws`.
# For benchmarks only (`aws configure export-credentials` exists only in v2). The CLI v2 is not
# on PyPI itself; the AWS CDK's asset package `aws-cdk-asset-awscli-v2` carries the official
# x86_64 Linux build (the `amazon/aws-cli` image's /usr/local/aws-cli) as a Lambda layer zip.
# Fails loudly when it cannot install.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
asset_version="2.0.198"
cli_version="2.38.5"
root="${CREDFRESH_TOOLS:-$repo/target/tools}/awscli-v2"
aws="$root/$cli_version/awscli/v2/$cli_version/dist/aws"
works() { [[ -x "$aws" ]] && "$aws" --version 2>/dev/null | grep -q "^aws-cli/$cli_version "; }
if works; then
    printf '%s\n' "$aws"
    exit 0
fi
[[ "$(uname -sm)" == "Linux x86_64" ]] \
    || { echo "ensure-awscli-v2: the packaged AWS CLI v2 is for Linux x86_64 only" >&2; exit 1; }
for tool in unzip tar flock; do
    command -v "$tool" >/dev/null || { echo "ensure-awscli-v2: needs $tool" >&2; exit 1; }
done
venv="$("$repo/scripts/ensure-venv.sh")"
mkdir -p "$root"
exec 9>"$root/.install.lock"
flock -w 1800 9 || { echo "ensure-awscli-v2: timed out waiting for another install" >&2; exit 1; }
if ! works; then
    echo "ensure-awscli-v2: installing AWS CLI $cli_version (aws-cdk-asset-awscli-v2 $asset_version) into $root" >&2
    tmp="$(mktemp -d "$root/.install.XXXXXX")"
    trap 'rm -rf "$tmp"' EXIT
    "$venv/bin/pip" download --quiet --no-deps --dest "$tmp" "aws-cdk-asset-awscli-v2==$asset_version" >&2 \
        || { echo "ensure-awscli-v2: FAILED to download the package" >&2; exit 1; }
    unzip -q -o "$tmp/aws_cdk_asset_awscli_v2-$asset_version-py3-none-any.whl" \
        "aws_cdk/asset_awscli_v2/_jsii/asset-awscli-v2@$asset_version.jsii.tgz" -d "$tmp" >&2
    tar -xzf "$tmp/aws_cdk/asset_awscli_v2/_jsii/asset-awscli-v2@$asset_version.jsii.tgz" \
        -C "$tmp" package/lib/layer.zip >&2
    mkdir "$tmp/cli"
    unzip -q "$tmp/package/lib/layer.zip" -d "$tmp/cli" >&2
    # Only a complete, working unpack takes the place of an earlier one.
    "$tmp/cli/awscli/v2/$cli_version/dist/aws" --version 2>/dev/null | grep -q "^aws-cli/$cli_version " \
        || { echo "ensure-awscli-v2: FAILED: the unpacked aws does not run" >&2; exit 1; }
    rm -rf "${root:?}/$cli_version"
    mv "$tmp/cli" "$root/$cli_version"
fi
works || { echo "ensure-awscli-v2: FAILED: no working aws $cli_version under $root" >&2; exit 1; }
printf '%s\n' "$aws"
