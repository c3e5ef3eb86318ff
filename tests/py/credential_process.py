#!/usr/bin/env python3
"""A `credential_process` helper for the end-to-end tests, like the ones teams write around
their identity provider.

    credential_process.py --state FILE [--lifetime SECONDS] [--fail]

Prints the AWS `credential_process` JSON (Version 1) with new keys on every call (a counter
in FILE) and `Expiration` = now + lifetime. With --fail, or when FILE's directory holds a
file named `fail`, prints an error quoting its login token on stderr and exits 1, as a
helper does when its login ran out.
"""

import argparse
import datetime
import json
import os
import sys

# The token of the helper's own login, in its error message (tests/e2e/credential_process.rs).
HELPER_LOGIN_TOKEN = "helperLoginTokenNeverShown/0123456789+e2e=="


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--state", required=True, help="counter file")
    parser.add_argument("--lifetime", type=int, default=3600)
    parser.add_argument("--fail", action="store_true")
    args = parser.parse_args()

    if args.fail or os.path.exists(os.path.join(os.path.dirname(args.state), "fail")):
        # A helper may quote its own login's token, which credfresh never holds.
        print(
            "credential helper: auth failed for token %s; log in again" % HELPER_LOGIN_TOKEN,
            file=sys.stderr,
        )
        return 1

    try:
        with open(args.state) as f:
            n = int(f.read().strip() or "0")
    except FileNotFoundError:
        n = 0
    n += 1
    with open(args.state + ".tmp", "w") as f:
        f.write(str(n))
    os.replace(args.state + ".tmp", args.state)

    expires = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=args.lifetime)
    print(
        json.dumps(
            {
                "Version": 1,
                "AccessKeyId": "ASIAPROCESS%012d" % n,
                "SecretAccessKey": "processSecretNeverInLogs/%012d" % n,
                "SessionToken": "processSessionTokenNeverInLogs+%012d==" % n,
                "Expiration": expires.strftime("%Y-%m-%dT%H:%M:%SZ"),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
