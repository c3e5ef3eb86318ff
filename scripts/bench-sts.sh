# Sourced by the bench scripts (needs $venv from scripts/ensure-venv.sh): a local STS (moto) on
# a free loopback port and a scratch HOME whose ~/.aws/credentials holds static keys for the
# profile `base`. Sets $work (removed at exit, when every pid in $pids is killed too), HOME,
# AWS_ENDPOINT_URL_STS and the region, and clears the AWS variables that would win over them.
work="$(mktemp -d /tmp/credfresh-bench.XXXXXX)"
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

port="$("$venv/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
"$venv/bin/moto_server" -H 127.0.0.1 -p "$port" >"$work/moto.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$port/moto-api/" >/dev/null 2>&1 && break; sleep 0.2; done

export HOME="$work/home" AWS_ENDPOINT_URL_STS="http://127.0.0.1:$port" AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
unset AWS_PROFILE AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_SESSION_TOKEN AWS_SHARED_CREDENTIALS_FILE AWS_CONFIG_FILE
mkdir -p "$HOME/.aws"
printf '[base]\naws_access_key_id = AKIAIOSFODNN7EXAMPLE\naws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n' >"$HOME/.aws/credentials"
