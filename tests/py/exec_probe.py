#!/usr/bin/env python3
"""The command `credfresh exec` runs in the tests: reports what it was given.

    exec_probe.py REPORT

Writes to REPORT (JSON): the names of every AWS_* / CREDFRESH_* variable it got, the values
of those that are not secrets, whether AWS_CONTAINER_AUTHORIZATION_TOKEN equals the token
file's contents, and the endpoint's answers (status, and the error's Code / Message / error,
or which credential fields came) to a request without a token, with a wrong token, for
another profile, and with the right token. The token itself goes to REPORT.token, so the
test can look for it in logs; credentials are never written.
"""

import json
import os
import sys
import urllib.error
import urllib.request

PLAIN = [
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_SHARED_CREDENTIALS_FILE",
    "AWS_CONFIG_FILE",
    "CREDFRESH_PROFILE",
]


def ask(url, token):
    req = urllib.request.Request(url)
    if token is not None:
        req.add_header("Authorization", token)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            body = json.load(r)
            return {"status": r.status, "fields": sorted(body)}
    except urllib.error.HTTPError as e:
        body = json.loads(e.read() or b"{}")
        return {"status": e.code, "Code": body.get("Code"), "Message": body.get("Message"), "error": body.get("error")}


def main() -> int:
    report = sys.argv[1]
    env = os.environ
    names = sorted(k for k in env if k.startswith("AWS_") or k.startswith("CREDFRESH_"))
    out = {"names": names, "values": {k: env[k] for k in PLAIN if k in env}}
    token_file = env.get("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE")
    token = open(token_file).read() if token_file else None
    out["token_var_matches_file"] = token is not None and env.get("AWS_CONTAINER_AUTHORIZATION_TOKEN") == token
    url = env.get("AWS_CONTAINER_CREDENTIALS_FULL_URI")
    if url and token:
        other = url.rsplit("/", 1)[0] + "/someone-else"
        out["no_token"] = ask(url, None)
        out["wrong_token"] = ask(url, "x" * len(token))
        out["other_profile"] = ask(other, token)
        out["right_token"] = ask(url, token)
        with open(report + ".token", "w") as f:
            f.write(token)
    with open(report, "w") as f:
        json.dump(out, f)
    return 0


if __name__ == "__main__":
    sys.exit(main())
