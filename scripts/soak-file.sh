#!/usr/bin/env bash
# The long credentials-file soak tests (issue 6): 4 botocore readers x >=25k reads against
# >=1,000 rewrites, 200 `aws configure set` calls racing >=1,000 rewrites, and kill -9 across
# >=500 writes. Each prints its figures; takes several minutes on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
exec cargo test --release --test e2e file_safety -- --ignored --test-threads=1 --nocapture "$@"
