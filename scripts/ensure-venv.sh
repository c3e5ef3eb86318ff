#!/usr/bin/env bash
# Creates or reuses the Python venv that holds the local AWS fakes (moto) and clients
# (boto3, awscli v1) used by the end-to-end tests.
#
#   scripts/ensure-venv.sh            # venv at $CREDFRESH_VENV, default <repo>/.venv
#
# Idempotent: a stamp inside the venv records the hash of tests/requirements.txt (and the
# Python version), so a second run returns at once. Safe to run from several processes at
# the same time (flock). Needs no terminal or stdin (CI=true). Prints the venv's path on
# stdout; progress and errors go to stderr. Any failure exits non-zero: the tests need the
# fakes and must not be skipped without them.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${CREDFRESH_VENV:-$repo/.venv}"
requirements="$repo/tests/requirements.txt"
python="${PYTHON:-python3}"

say() { printf 'ensure-venv: %s\n' "$*" >&2; }
die() {
    say "FAILED: $*"
    say "the end-to-end tests need this venv; fix the problem above and run $0 again"
    exit 1
}
trap 'die "command failed (line $LINENO): $BASH_COMMAND"' ERR

[[ -f "$requirements" ]] || die "missing $requirements"
command -v "$python" >/dev/null 2>&1 || die "no $python on PATH (set PYTHON to a Python 3 interpreter)"
command -v flock >/dev/null 2>&1 || die "flock (util-linux) is not installed"

py_version="$("$python" -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])')"
want="$(cat "$requirements" "${BASH_SOURCE[0]}" | sha256sum | cut -d' ' -f1) python-$py_version"
stamp="$venv/.credfresh-requirements"

fresh() {
    [[ -f "$stamp" && "$(cat "$stamp")" == "$want" && -x "$venv/bin/python" && -x "$venv/bin/moto_server" ]]
}

if fresh; then
    printf '%s\n' "$venv"
    exit 0
fi

# One installer at a time; the others wait and then find the stamp.
lock="${TMPDIR:-/tmp}/credfresh-venv-$(printf '%s' "$venv" | sha256sum | cut -c1-16).lock"
exec 9>"$lock"
if ! flock -w 1200 9; then
    die "timed out waiting for another ensure-venv.sh holding $lock"
fi
if fresh; then
    printf '%s\n' "$venv"
    exit 0
fi

export PIP_NO_INPUT=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONDONTWRITEBYTECODE=1
rm -f "$stamp"
if [[ -e "$venv" ]] && ! "$venv/bin/python" -c 'import sys' >/dev/null 2>&1; then
    say "removing broken venv at $venv"
    rm -rf "$venv"
fi
if [[ ! -x "$venv/bin/python" ]]; then
    say "creating venv at $venv with $python ($py_version)"
    "$python" -m venv "$venv" >&2 || die "python3 -m venv $venv failed (on Debian: apt-get install python3-venv)"
fi
say "installing $requirements"
"$venv/bin/python" -m pip install --no-input --progress-bar off -q -r "$requirements" >&2 \
    || die "pip install -r $requirements failed"
"$venv/bin/python" -c 'import moto, boto3, botocore, awscli, prometheus_client' >&2 \
    || die "the installed packages do not import"
for tool in moto_server aws; do
    [[ -x "$venv/bin/$tool" ]] || die "$venv/bin/$tool is missing after install"
done
printf '%s\n' "$want" >"$stamp.tmp"
mv -f "$stamp.tmp" "$stamp"
say "ready: $venv"
printf '%s\n' "$venv"
