#!/usr/bin/env bash
# Latency of `credfresh credential-process` (credentials from the daemon's memory) side by side
# with what users run today to get the same role's credentials into a process:
#   - boto3 resolving an assume-role profile itself (a fresh python process calling STS),
#   - boto3 resolving a credential_process profile that calls credfresh,
#   - `aws configure export-credentials` (AWS CLI v2, installed by scripts/ensure-awscli-v2.sh
#     into target/tools) for the same role profile, and for the credential_process profile.
# Everything runs against a local STS (moto); the figures land on stdout as a Markdown table.
#
#   scripts/bench-credential-process.sh            # 200 runs each, release build
#   RUNS=50 CREDFRESH_BIN=target/debug/credfresh scripts/bench-credential-process.sh
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${RUNS:-200}"
venv="$(scripts/ensure-venv.sh)"
if [[ -z "${CREDFRESH_BIN:-}" ]]; then
    cargo build --quiet --release --bin credfresh
    CREDFRESH_BIN="$PWD/target/release/credfresh"
fi
bin="$(realpath "$CREDFRESH_BIN")"
# Installed before HOME changes below (pip keeps the user's configuration and cache).
aws_v2="$(scripts/ensure-awscli-v2.sh | tail -1 || true)"
[[ -x "$aws_v2" ]] || aws_v2=""

# shellcheck source=scripts/bench-sts.sh
. scripts/bench-sts.sh
cat >"$HOME/.aws/config" <<INI
[default]
region = us-east-1

[profile role-by-boto3]
role_arn = arn:aws:iam::123456789012:role/MetaflowUserRole
source_profile = base
region = us-east-1

[profile via-credfresh]
region = us-east-1
credential_process = $bin --config $work/config.toml credential-process metaflow
INI
cat >"$work/config.toml" <<TOML
[daemon]
socket = "$work/run/credfresh.sock"

[[profile]]
name = "metaflow"
kind = "assume_role"
role_arn = "arn:aws:iam::123456789012:role/MetaflowUserRole"
source_profile = "base"
duration = "1h"
TOML
"$bin" --config "$work/config.toml" daemon 2>"$work/daemon.log" &
pids+=($!)
for _ in $(seq 100); do "$bin" --config "$work/config.toml" status >/dev/null 2>&1 && break; sleep 0.1; done
"$bin" --config "$work/config.toml" refresh >/dev/null

export BENCH_RUNS="$runs" BENCH_BIN="$bin" BENCH_CONFIG="$work/config.toml" BENCH_VENV="$venv" BENCH_AWS="$aws_v2"
"$venv/bin/python" - <<'PY'
import os, statistics, subprocess, time

runs = int(os.environ["BENCH_RUNS"])
bin_, config, venv = os.environ["BENCH_BIN"], os.environ["BENCH_CONFIG"], os.environ["BENCH_VENV"]
py = f"{venv}/bin/python"
cases = [
    ("credfresh credential-process (daemon memory)",
     [bin_, "--config", config, "credential-process", "metaflow"]),
    ("boto3 resolving an assume-role profile (STS call)",
     [py, "-c", "import boto3; boto3.Session(profile_name='role-by-boto3').get_credentials().get_frozen_credentials()"]),
    ("boto3 resolving a credential_process profile → credfresh",
     [py, "-c", "import boto3; boto3.Session(profile_name='via-credfresh').get_credentials().get_frozen_credentials()"]),
    ("python interpreter + `import boto3` alone (floor of the two above)",
     [py, "-c", "import boto3"]),
]
aws = os.environ.get("BENCH_AWS")
if aws:
    cases += [
        ("aws configure export-credentials, AWS CLI v2 resolving the assume-role profile "
         "(STS once, then its ~/.aws/cli/cache)",
         [aws, "configure", "export-credentials", "--profile", "role-by-boto3", "--format", "process"]),
        ("aws configure export-credentials, AWS CLI v2, credential_process profile → credfresh",
         [aws, "configure", "export-credentials", "--profile", "via-credfresh", "--format", "process"]),
        ("aws --version, AWS CLI v2 (its start-up alone)", [aws, "--version"]),
    ]

def measure(cmd, n):
    times = []
    for i in range(n + 3):
        t = time.perf_counter()
        r = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        dt = (time.perf_counter() - t) * 1000
        if r.returncode != 0:
            raise SystemExit(f"{cmd} failed: {r.stderr.decode()}")
        if i >= 3:  # warm-up
            times.append(dt)
    times.sort()
    return statistics.median(times), times[int(len(times) * 0.9) - 1], times[-1]

print(f"| command | median ms | p90 ms | max ms |   ({runs} runs each)")
print("|---|---:|---:|---:|")
for name, cmd in cases:
    n = runs if "credfresh credential-process" in name else max(20, runs // 5)
    med, p90, worst = measure(cmd, n)
    print(f"| {name} | {med:.2f} | {p90:.2f} | {worst:.2f} |")
if not aws:
    print("\n`aws configure export-credentials` is not measured: AWS CLI v2 could not be installed "
          "(scripts/ensure-awscli-v2.sh: Linux x86_64 only).")
PY
