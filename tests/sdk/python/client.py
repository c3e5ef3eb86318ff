#!/usr/bin/env python3
"""The boto3 client of credfresh's SDK matrix (tests/e2e/sdk_matrix.rs), run with the venv's boto3.

    client.py once            one GetCallerIdentity from a fresh process
    client.py long SECONDS    one client, a call every 2 s for SECONDS

Credentials come from botocore's default chain (AWS_PROFILE with the shared files, or the
container endpoint). STS is $AWS_ENDPOINT_URL_STS, passed explicitly. One JSON line per call:
{"call", "ok", "arn", "key"} or {"call", "ok": false, "error"}; "key" is the access key ID that
signed the request, read from its Authorization header. Secrets are never printed.
"""

import json
import os
import re
import sys
import time

import boto3
import botocore.config

CREDENTIAL = re.compile(r"Credential=([A-Z0-9]+)/")


def main() -> int:
    args = sys.argv[1:]
    if not (args == ["once"] or (len(args) == 2 and args[0] == "long" and float(args[1]) > 0)):
        print("usage: client.py once | client.py long SECONDS", file=sys.stderr)
        return 2
    endpoint = os.environ.get("AWS_ENDPOINT_URL_STS")
    if not endpoint:
        print("AWS_ENDPOINT_URL_STS is not set; refusing to talk to the real AWS", file=sys.stderr)
        return 2
    end = time.monotonic() + (float(args[1]) if args[0] == "long" else 0)
    signed_by = {}

    def capture(request, **_):
        auth = request.headers.get("Authorization", b"")
        auth = auth.decode() if isinstance(auth, bytes) else auth
        m = CREDENTIAL.search(auth)
        signed_by["key"] = m.group(1) if m else None

    try:
        client = boto3.client(
            "sts", endpoint_url=endpoint, config=botocore.config.Config(retries={"total_max_attempts": 1})
        )
    except Exception as e:  # noqa: BLE001 - reported like any failed call
        print(json.dumps({"call": 1, "ok": False, "error": f"{type(e).__name__}: {e}"}), flush=True)
        return 0
    client.meta.events.register("before-send.sts.GetCallerIdentity", capture)
    call = 0
    while True:
        call += 1
        signed_by.clear()
        try:
            arn = client.get_caller_identity()["Arn"]
            line = {"call": call, "ok": True, "arn": arn, "key": signed_by.get("key")}
        except Exception as e:  # noqa: BLE001 - every failure counts
            line = {"call": call, "ok": False, "error": f"{type(e).__name__}: {e}"}
        print(json.dumps(line), flush=True)
        if time.monotonic() >= end:
            return 0
        time.sleep(2)


if __name__ == "__main__":
    sys.exit(main())
