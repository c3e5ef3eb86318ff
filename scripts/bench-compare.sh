#!/usr/bin/env bash
# Binary size and idle RSS of two or more release builds of credfresh, side by side in one run,
# each managing the same 10 assume-role profiles against one local STS (moto). Runs the builds in
# turn, ROUNDS times (default 5), and prints the median RSS after 15 s idle:
#
#   scripts/bench-compare.sh OLD_BINARY NEW_BINARY...
#
# To compare a commit with the working tree:
#   git worktree add --detach /tmp/old REV && (cd /tmp/old && cargo build --release --bin credfresh)
#   cargo build --release --bin credfresh
#   scripts/bench-compare.sh /tmp/old/target/release/credfresh target/release/credfresh
set -euo pipefail
cd "$(dirname "$0")/.."
(($# >= 1)) || { echo "usage: $0 BINARY..." >&2; exit 2; }
rounds="${ROUNDS:-5}"
venv="$(scripts/ensure-venv.sh)"

# shellcheck source=scripts/bench-sts.sh
. scripts/bench-sts.sh
mkdir -p "$work/config"
printf '[default]\nregion = us-east-1\n' >"$HOME/.aws/config"
cfg="$work/config/config.toml"
printf '[daemon]\nsocket = "%s"\n' "$work/run/credfresh.sock" >"$cfg"
for i in $(seq 10); do
    printf '\n[[profile]]\nname = "p%d"\nkind = "assume_role"\nrole_arn = "arn:aws:iam::123456789012:role/R%d"\nsource_profile = "base"\nduration = "1h"\n' "$i" "$i" >>"$cfg"
done

# Idle RSS in KiB of BINARY $1 once all 10 profiles are fresh and 15 s have passed.
idle_rss() {
    "$1" --config "$cfg" daemon 2>"$work/daemon.log" &
    local pid=$! ok=""
    for _ in $(seq 300); do
        if "$1" --config "$cfg" status --json 2>/dev/null | "$venv/bin/python" -c '
import json, sys
s = json.load(sys.stdin)
sys.exit(0 if len(s["profiles"]) == 10 and all(p["state"] == "fresh" for p in s["profiles"]) else 1)' 2>/dev/null; then
            ok=1
            break
        fi
        sleep 0.2
    done
    [[ -n "$ok" ]] || { echo "$1: profiles did not get fresh" >&2; kill "$pid"; exit 1; }
    sleep 15
    awk '/VmRSS/ {print $2}' /proc/"$pid"/status
    kill "$pid"
    wait "$pid" 2>/dev/null || true
}

declare -A samples
for ((r = 0; r < rounds; r++)); do
    for bin in "$@"; do samples[$bin]+="$(idle_rss "$bin") "; done
done
echo "| build | binary size | idle RSS, 10 profiles (median of $rounds; all) |"
echo "|---|---:|---:|"
for bin in "$@"; do
    # shellcheck disable=SC2086
    read -r median all < <(printf '%s\n' ${samples[$bin]} | sort -n | awk '{v[NR] = $1; s = s sprintf("%s%.1f", (NR > 1 ? ", " : ""), $1 / 1024)} END {printf "%.1f %s\n", v[int((NR + 1) / 2)] / 1024, s}')
    printf '| %s | %s bytes | %s MiB (%s) |\n' "$bin" "$(stat -c %s "$bin")" "$median" "$all"
done
