#!/usr/bin/env python3
"""Prints the current RFC 6238 code of a base32 secret: an `mfa_process` for the tests.

    totp.py SECRET [COUNT_FILE]

With COUNT_FILE, appends one line to it per run (so a test can count the runs). Writes a
line on stderr, which the daemon logs.
"""

import sys
import time

from mfa_gate import totp

if len(sys.argv) > 2:
    with open(sys.argv[2], "a") as f:
        f.write("run\n")
print("totp.py: touch your key (e2e helper)", file=sys.stderr)
print(totp(sys.argv[1], int(time.time()) // 30))
