#!/usr/bin/env bash
# The main job, end to end on this machine: a local STS (moto_server), a credfresh daemon
# keeping two profiles fresh (one chained from the other) with 30-second credentials, the
# credentials file being rewritten, and `credfresh status`. Secrets are masked on screen.
#
#   ./demo.sh                 # about 50 s
#   DEMO_SECONDS=120 ./demo.sh
set -euo pipefail
cd "$(dirname "$0")"
seconds="${DEMO_SECONDS:-50}"

venv="$(scripts/ensure-venv.sh)"
echo "==> building credfresh"
cargo build --quiet
bin="$PWD/target/debug/credfresh"

work="$(mktemp -d /tmp/credfresh-demo.XXXXXX)"
moto_pid=""
daemon_pid=""
cleanup() {
    [[ -n "$daemon_pid" ]] && kill "$daemon_pid" 2>/dev/null || true
    [[ -n "$moto_pid" ]] && kill "$moto_pid" 2>/dev/null || true
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

port="$("$venv/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
echo "==> starting a local STS (moto_server) on 127.0.0.1:$port"
"$venv/bin/moto_server" -H 127.0.0.1 -p "$port" >"$work/moto.log" 2>&1 &
moto_pid=$!
for _ in $(seq 100); do
    curl -fs "http://127.0.0.1:$port/moto-api/" >/dev/null 2>&1 && break
    sleep 0.2
done

export HOME="$work/home" AWS_ENDPOINT_URL_STS="http://127.0.0.1:$port" AWS_REGION=us-east-1
unset AWS_PROFILE AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_SESSION_TOKEN AWS_SHARED_CREDENTIALS_FILE AWS_CONFIG_FILE
mkdir -p "$HOME/.aws"
cat >"$HOME/.aws/credentials" <<'INI'
# Long-term keys of a CI user (fake: the local STS accepts anything).
[base]
aws_access_key_id = AKIAIOSFODNN7EXAMPLE
aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY

[someone-elses]
aws_access_key_id = AKIAI44QH8DHBEXAMPLE
aws_secret_access_key = je7MtGbClwBF/2Zp9Utk/h3yCo8nvbEXAMPLEKEY
INI
printf '[default]\nregion = us-east-1\n' >"$HOME/.aws/config"
cat >"$work/config.toml" <<TOML
[daemon]
socket = "$work/run/credfresh.sock"
refresh_before = "15m"

[[profile]]
name = "team-base"
kind = "assume_role"
role_arn = "arn:aws:iam::123456789012:role/TeamBase"
source_profile = "base"
duration = "30s"

[[profile]]
name = "metaflow"
kind = "assume_role"
role_arn = "arn:aws:iam::123456789012:role/MetaflowUserRole"
source_profile = "team-base"
duration = "30s"
TOML
cf() { "$bin" --config "$work/config.toml" "$@"; }

echo "==> credfresh validate"
cf validate
echo "==> starting credfresh daemon (log: daemon.log)"
"$bin" --config "$work/config.toml" daemon 2>"$work/daemon.log" &
daemon_pid=$!
for _ in $(seq 100); do
    cf status >/dev/null 2>&1 && break
    sleep 0.1
done

mask() { sed -E 's/^(aws_secret_access_key|aws_session_token)( *= *).*/\1\2****/'; }
end=$((SECONDS + seconds))
round=0
while ((SECONDS < end)); do
    round=$((round + 1))
    echo
    echo "==> t=${SECONDS}s: ~/.aws/credentials (secrets masked)"
    mask <"$HOME/.aws/credentials"
    echo
    echo "==> credfresh status"
    cf status
    sleep 12
done

echo
echo "==> daemon log"
cat "$work/daemon.log"
echo "==> stopping the daemon (SIGTERM)"
kill -TERM "$daemon_pid"
wait "$daemon_pid" && echo "daemon exited 0" || echo "daemon exited $?"
daemon_pid=""
