"""Compares how botocore reads credentials files before and after credfresh edited them.

usage: corpus_check.py DIR — DIR holds NAME.before / NAME.after pairs (after is absent for
files credfresh refused). Prints one line per problem; exit 1 if any.
"""
import os
import sys

import botocore.configloader
import botocore.exceptions

MANAGED = {"aws_access_key_id": "ASIANEW", "aws_secret_access_key": "newsecret/+=",
           "aws_session_token": "newtoken==", "x_credfresh_expiration": "2026-11-23T10:00:00Z"}
d = sys.argv[1]
problems = []


def load(path):
    try:
        return botocore.configloader.raw_config_parse(path)
    except botocore.exceptions.ConfigParseError as e:
        return e


for name in sorted(f[: -len(".before")] for f in os.listdir(d) if f.endswith(".before")):
    before = load(os.path.join(d, name + ".before"))
    after_path = os.path.join(d, name + ".after")
    if not os.path.exists(after_path):
        if not isinstance(before, Exception):
            problems.append(f"{name}: credfresh refused a file botocore reads")
        continue
    after = load(after_path)
    if isinstance(before, Exception) or isinstance(after, Exception):
        problems.append(f"{name}: botocore cannot read it: before={before!r} after={after!r}")
        continue
    for section, values in before.items():
        if section != "managed" and after.get(section) != values:
            problems.append(f"{name}: [{section}] reads differently after the edit")
    got = after.get("managed", {})
    for k, v in MANAGED.items():
        if got.get(k) != v:
            problems.append(f"{name}: managed {k} reads {got.get(k)!r}")
    for k, v in before.get("managed", {}).items():
        if k not in MANAGED and got.get(k) != v:
            problems.append(f"{name}: managed section's own key {k} changed")
print("\n".join(problems) or "ok")
sys.exit(1 if problems else 0)
