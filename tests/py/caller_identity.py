#!/usr/bin/env python3
"""Calls STS GetCallerIdentity the way a user's program would and prints the answer as JSON.

    caller_identity.py [--profile NAME]

With --profile, boto3 reads that profile from the shared credentials file
($AWS_SHARED_CREDENTIALS_FILE), exactly as Metaflow or a notebook would; without it, the
default chain applies (environment keys in the harness self-test). STS is the local fake
at $AWS_ENDPOINT_URL_STS. Prints {"Arn", "Account", "UserId", "AccessKeyId"}; the access
key id (not a secret) lets the caller check which credentials were used.
"""

import argparse
import json
import os
import sys

import boto3
import botocore.config


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--profile", help="profile in the shared credentials file")
    args = parser.parse_args()

    endpoint = os.environ.get("AWS_ENDPOINT_URL_STS")
    if not endpoint:
        print("AWS_ENDPOINT_URL_STS is not set; refusing to talk to the real AWS", file=sys.stderr)
        return 2
    session = boto3.Session(profile_name=args.profile)
    sts = session.client(
        "sts",
        endpoint_url=endpoint,
        region_name=os.environ.get("AWS_REGION", "us-east-1"),
        config=botocore.config.Config(retries={"total_max_attempts": 1}),
    )
    identity = sts.get_caller_identity()
    credentials = session.get_credentials().get_frozen_credentials()
    print(
        json.dumps(
            {
                "Arn": identity["Arn"],
                "Account": identity["Account"],
                "UserId": identity["UserId"],
                "AccessKeyId": credentials.access_key,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
