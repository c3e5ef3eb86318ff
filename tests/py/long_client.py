#!/usr/bin/env python3
"""A long-running program (a notebook kernel, a training job) calling STS for a while.

    long_client.py --seconds 75 --interval 1.5 [--profile NAME] [--bucket NAME]

It builds ONE boto3 session at start and keeps it, as long-running programs do, then calls
GetCallerIdentity every interval; with --bucket it also creates that bucket at start and puts
an object and lists the bucket every interval (S3 at the same endpoint as STS: moto serves
both). With --profile it uses that profile (the credentials file,
or a credential_process profile from AWS_CONFIG_FILE); without, the default chain (e.g. the
container endpoint from AWS_CONTAINER_CREDENTIALS_FULL_URI). STS is $AWS_ENDPOINT_URL_STS.
Prints {"calls", "s3_calls", "errors", "first_error", "access_keys"} as JSON; access_keys is
how many distinct keys signed the calls (more than one = the SDK picked up refreshed
credentials).
"""

import argparse
import json
import os
import sys
import time

import boto3
import botocore.config


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, required=True)
    parser.add_argument("--interval", type=float, default=1.5)
    parser.add_argument("--profile")
    parser.add_argument("--bucket")
    args = parser.parse_args()
    if not os.environ.get("AWS_ENDPOINT_URL_STS"):
        print("AWS_ENDPOINT_URL_STS is not set; refusing to talk to the real AWS", file=sys.stderr)
        return 2
    session = boto3.Session(profile_name=args.profile, region_name="us-east-1")
    sts = session.client(
        "sts",
        endpoint_url=os.environ["AWS_ENDPOINT_URL_STS"],
        config=botocore.config.Config(retries={"max_attempts": 1}),
    )
    s3 = session.client(
        "s3",
        endpoint_url=os.environ["AWS_ENDPOINT_URL_STS"],
        config=botocore.config.Config(retries={"max_attempts": 1}, s3={"addressing_style": "path"}),
    )
    if args.bucket:
        s3.create_bucket(Bucket=args.bucket)
    calls, s3_calls, errors, first_error, keys = 0, 0, 0, None, set()
    end = time.monotonic() + args.seconds
    while time.monotonic() < end:
        calls += 1
        try:
            sts.get_caller_identity()
            creds = session.get_credentials().get_frozen_credentials()
            keys.add(creds.access_key)
            if args.bucket:
                s3.put_object(Bucket=args.bucket, Key=f"object-{calls}", Body=b"x")
                listed = s3.list_objects_v2(Bucket=args.bucket)
                if not any(o["Key"] == f"object-{calls}" for o in listed.get("Contents", [])):
                    raise RuntimeError(f"object-{calls} missing from the listing")
                s3_calls += 2
        except Exception as e:  # noqa: BLE001 - every failure counts
            errors += 1
            first_error = first_error or f"{type(e).__name__}: {e}"
        time.sleep(args.interval)
    print(json.dumps({"calls": calls, "s3_calls": s3_calls, "errors": errors, "first_error": first_error, "access_keys": len(keys)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
