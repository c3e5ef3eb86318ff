"""Reads the shared credentials file with botocore's own loader in a loop until a stop file
exists (and at least MIN_READS reads were made); prints counts as JSON.

usage: torn_reader.py PATH STOP_FILE MIN_READS PROFILE...
"""
import json
import os
import sys

import botocore.configloader

KEYS = ("aws_access_key_id", "aws_secret_access_key", "aws_session_token", "x_credfresh_expiration")

path, stop, min_reads, profiles = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4:]
reads = errors = missing = 0
first_problem = None
while True:
    try:
        config = botocore.configloader.raw_config_parse(path)
        for p in profiles:
            section = config.get(p) or {}
            if not all(section.get(k) for k in KEYS):
                missing += 1
                first_problem = first_problem or f"profile {p} incomplete: keys {sorted(section)}"
    except Exception as e:  # any parse error is a torn or invalid read
        errors += 1
        first_problem = first_problem or f"{type(e).__name__}: {e}"[:300]
    reads += 1
    if reads >= min_reads and reads % 50 == 0 and os.path.exists(stop):
        break
print(json.dumps({"reads": reads, "errors": errors, "missing": missing, "first_problem": first_problem}))
