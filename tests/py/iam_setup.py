#!/usr/bin/env python3
"""Sets up a moto started with INITIAL_NO_AUTH_ACTION_COUNT for the `credfresh check` test.

    iam_setup.py --endpoint URL --bucket NAME

While moto still lets requests through unchecked, creates: an IAM user `checker` allowed
only sts:AssumeRole and sts:GetCallerIdentity, with an access key; a role `ListOnly` that
`checker` may assume and whose only permission is s3:ListBucket; and the bucket. Then it
spends the remaining free requests until moto enforces signatures and policies (an unknown
key is refused), so the test never depends on the exact count. Prints the user's key as
JSON {"AccessKeyId", "SecretAccessKey"} on stdout.
"""

import argparse
import json
import sys

import boto3
import botocore.exceptions

ACCOUNT = "123456789012"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--bucket", required=True)
    args = parser.parse_args()
    if not args.endpoint.startswith("http://127.0.0.1:"):
        print("refusing to set up anything but a local moto", file=sys.stderr)
        return 2

    def client(service, key="AKIAFREESETUP0000000", secret="free-setup-secret"):
        return boto3.client(
            service,
            endpoint_url=args.endpoint,
            region_name="us-east-1",
            aws_access_key_id=key,
            aws_secret_access_key=secret,
        )

    def doc(statements):
        return json.dumps({"Version": "2012-10-17", "Statement": statements})

    iam = client("iam")
    iam.create_user(UserName="checker")
    key = iam.create_access_key(UserName="checker")["AccessKey"]
    iam.put_user_policy(
        UserName="checker",
        PolicyName="assume-only",
        PolicyDocument=doc(
            [
                {
                    "Effect": "Allow",
                    "Action": ["sts:AssumeRole", "sts:GetCallerIdentity"],
                    "Resource": "*",
                }
            ]
        ),
    )
    iam.create_role(
        RoleName="ListOnly",
        AssumeRolePolicyDocument=doc(
            [
                {
                    "Effect": "Allow",
                    # moto matches the caller's ARN, not the account root.
                    "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:user/checker"},
                    "Action": "sts:AssumeRole",
                }
            ]
        ),
    )
    iam.put_role_policy(
        RoleName="ListOnly",
        PolicyName="list-only",
        PolicyDocument=doc([{"Effect": "Allow", "Action": ["s3:ListBucket"], "Resource": "*"}]),
    )
    client("s3").create_bucket(Bucket=args.bucket)

    unknown = client("sts", "AKIAUNKNOWNKEY000000", "unknown-secret")
    for _ in range(50):
        try:
            unknown.get_caller_identity()
        except botocore.exceptions.ClientError:
            break
    else:
        print("moto never started to check credentials", file=sys.stderr)
        return 1

    print(json.dumps({"AccessKeyId": key["AccessKeyId"], "SecretAccessKey": key["SecretAccessKey"]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
