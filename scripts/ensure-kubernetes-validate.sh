#!/usr/bin/env bash
# Installs kubernetes-validate (pinned, from PyPI) into its own venv under
# <repo>/target/tools/kubernetes-validate once; prints the path of the `kubernetes-validate`
# program. The package ships the Kubernetes JSON schemas (strict and not, per release), so
# validating needs no network. Used by tests/e2e/packaging.rs and pre-installed by .ci/run.
# Fails loudly when it cannot install.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
python="${PYTHON:-python3}"
root="${CREDFRESH_TOOLS:-$repo/target/tools}/kubernetes-validate"
# kubernetes-validate and everything it needs, pinned: every machine validates alike.
pins=(
    kubernetes-validate==1.37.0
    attrs==26.1.0
    importlib_resources==7.1.0
    jsonschema==4.26.0
    jsonschema-specifications==2025.9.1
    packaging==26.4
    PyYAML==6.0.4
    referencing==0.37.0
    rpds-py==2026.9.1
    typing_extensions==4.16.0
)
want="$(printf '%s\n' "${pins[@]}" | sha256sum | cut -d' ' -f1)"
venv="$root/venv"
program="$venv/bin/kubernetes-validate"
works() {
    [[ -x "$program" && "$(cat "$venv/.credfresh-pins" 2>/dev/null)" == "$want" ]] \
        && "$program" --version >/dev/null 2>&1
}
if works; then
    printf '%s\n' "$program"
    exit 0
fi
command -v flock >/dev/null || { echo "ensure-kubernetes-validate: needs flock" >&2; exit 1; }
command -v "$python" >/dev/null || { echo "ensure-kubernetes-validate: needs $python" >&2; exit 1; }
mkdir -p "$root"
exec 9>"$root/.install.lock"
flock -w 1800 9 || { echo "ensure-kubernetes-validate: timed out waiting for another install" >&2; exit 1; }
if ! works; then
    echo "ensure-kubernetes-validate: installing ${pins[0]} into $venv" >&2
    rm -rf "$venv"
    "$python" -m venv "$venv" >&2 \
        || { echo "ensure-kubernetes-validate: FAILED to create a venv (apt-get install python3-venv)" >&2; exit 1; }
    "$venv/bin/pip" install --quiet --disable-pip-version-check --no-deps "${pins[@]}" >&2 \
        || { echo "ensure-kubernetes-validate: FAILED to install from PyPI" >&2; exit 1; }
    printf '%s\n' "$want" > "$venv/.credfresh-pins"
fi
works || { echo "ensure-kubernetes-validate: FAILED: $program does not run" >&2; exit 1; }
printf '%s\n' "$program"
