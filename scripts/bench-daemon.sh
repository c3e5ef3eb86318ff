#!/usr/bin/env bash
# Daemon figures for BENCHMARKS.md, against a local STS (moto), release build:
#   - GET /v1/status throughput and latency with 10 profiles (benches/status_socket.rs),
#   - idle RSS with 10 and 1,000 profiles,
#   - idle wake-ups per minute: voluntary context switches (a thread that blocks again after
#     waking) per thread over IDLE_SECONDS, involuntary ones (preemption) shown apart,
#   - file rewrites (`credfresh_file_writes_total`) when 1,000 profiles become due together:
#     at start, and on a forced refresh of all of them.
#
#   scripts/bench-daemon.sh                  # IDLE_SECONDS=300 by default
#   IDLE_SECONDS=600 scripts/bench-daemon.sh
set -euo pipefail
cd "$(dirname "$0")/.."
idle="${IDLE_SECONDS:-300}"
venv="$(scripts/ensure-venv.sh)"
cargo build --quiet --release --bin credfresh
cargo bench --quiet --bench status_socket --no-run 2>/dev/null
bin="$PWD/target/release/credfresh"
orig_home="$HOME"

# shellcheck source=scripts/bench-sts.sh
. scripts/bench-sts.sh
printf '[default]\nregion = us-east-1\n' >"$HOME/.aws/config"

# Starts a daemon managing $1 profiles and waits until all are fresh; sets $daemon_pid.
# (No command substitution: its subshell would run the EXIT trap.)
start_daemon() {
    # The config gets a directory of its own: the daemon watches it, and its log must not be
    # written there (each line would wake the watcher).
    local n="$1" cfg="$work/config-$1/config.toml"
    mkdir -p "$work/config-$n"
    printf '[daemon]\nsocket = "%s"\n' "$work/run-$n/credfresh.sock" >"$cfg"
    for i in $(seq "$n"); do
        printf '\n[[profile]]\nname = "p%d"\nkind = "assume_role"\nrole_arn = "arn:aws:iam::123456789012:role/R%d"\nsource_profile = "base"\nduration = "1h"\n' "$i" "$i" >>"$cfg"
    done
    "$bin" --config "$cfg" daemon 2>"$work/daemon-$n.log" &
    local pid=$!
    pids+=("$pid")
    for _ in $(seq 600); do
        if "$bin" --config "$cfg" status --json 2>/dev/null | "$venv/bin/python" -c '
import json, sys
s = json.load(sys.stdin)
sys.exit(0 if s["profiles"] and all(p["state"] == "fresh" for p in s["profiles"]) else 1)' 2>/dev/null; then
            daemon_pid="$pid"
            return
        fi
        sleep 0.2
    done
    echo "daemon with $n profiles did not get fresh" >&2
    exit 1
}

threads() { # one line per thread of pid $1: tid name voluntary involuntary
    local t
    for t in /proc/"$1"/task/*; do
        printf '%s %s %s\n' "${t##*/}" "$(tr ' ' _ <"$t/comm")" \
            "$(awk '/^voluntary_ctxt_switches/ {v = $2} /^nonvoluntary_ctxt_switches/ {n = $2} END {print v, n}' "$t/status")"
    done
}
rss_kib() { awk '/VmRSS/ {print $2}' /proc/"$1"/status; }
file_writes() { # credfresh_file_writes_total of the daemon on socket $1
    curl -fs --unix-socket "$1" http://x/metrics | awk '/^credfresh_file_writes_total / {print $2}'
}

echo "| measurement | value |"
echo "|---|---:|"
for n in 10 1000; do
    start_daemon "$n"
    pid="$daemon_pid"
    # Let the start-up's blocking-pool threads retire (tokio keeps them 10 s), so the count
    # covers the same threads at both ends.
    sleep 15
    threads "$pid" >"$work/threads-before"
    sleep "$idle"
    threads "$pid" >"$work/threads-after"
    awk -v n="$n" -v kib="$(rss_kib "$pid")" 'BEGIN { printf "| idle RSS, %d profiles | %.1f MiB |\n", n, kib / 1024 }'
    # Per thread (threads born meanwhile count from 0): voluntary = wake-ups.
    awk -v n="$n" -v s="$idle" '
        FNR == NR { v0[$1] = $3; i0[$1] = $4; next }
        { dv = $3 - v0[$1]; di = $4 - i0[$1]; vol += dv; inv += di
          if (dv + di > 0) who = who sprintf("%s%s %d/%d", (who ? ", " : ""), $2, dv, di) }
        END { printf "| idle wake-ups per minute, %d profiles (%d s) | %.2f (involuntary %.2f; by thread, voluntary/involuntary in %d s: %s) |\n",
                     n, s, vol * 60 / s, inv * 60 / s, s, (who ? who : "none") }' \
        "$work/threads-before" "$work/threads-after"
    if [[ "$n" == 1000 ]]; then
        sock="$work/run-1000/credfresh.sock"
        echo "| file rewrites while 1,000 profiles got their first credentials (start) | $(file_writes "$sock") |"
        before="$(file_writes "$sock")"
        t0="$(date +%s.%N)"
        "$bin" --config "$work/config-1000/config.toml" refresh >/dev/null
        t1="$(date +%s.%N)"
        sleep 2 # the writer's last batch and its verification pass
        awk -v d="$(( $(file_writes "$sock") - before ))" -v t="$(echo "$t1 - $t0" | bc)" \
            'BEGIN { printf "| file rewrites for a forced refresh of all 1,000 profiles | %d (fetches took %.1f s) |\n", d, t }'
    fi
    if [[ "$n" == 10 ]]; then
        result="$(HOME="$orig_home" cargo bench --quiet --bench status_socket -- "$work/run-10/credfresh.sock" 8 5)"
        echo "| status socket, 10 profiles | $result |"
    fi
    kill "$pid"
done
