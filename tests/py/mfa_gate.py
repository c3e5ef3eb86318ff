#!/usr/bin/env python3
"""An STS gate in front of moto that checks MFA codes and the role-chaining cap, as AWS does.

    mfa_gate.py --port PORT --upstream http://127.0.0.1:MOTO_PORT

moto accepts any SerialNumber/TokenCode and any DurationSeconds. The gate forwards every
request to moto, except that it refuses, with AWS's error shapes:

- GetSessionToken and AssumeRole with a SerialNumber whose TokenCode is not the RFC 6238 TOTP
  code (HMAC-SHA1, 30 s steps, 6 digits, one step either side) of that serial's secret, or a
  code already accepted for that serial: 403 AccessDenied "MultiFactorAuthentication failed
  with invalid MFA one time pass code. "; a serial it was not told about: 403 AccessDenied
  "MultiFactorAuthentication failed, unable to validate MFA code. ...";
- AssumeRole of a role that demands MFA without SerialNumber and TokenCode: 403 AccessDenied
  "User: ... is not authorized to perform: sts:AssumeRole on resource: ROLE";
- AssumeRole signed with credentials an AssumeRole answer issued (role chaining) asking for
  DurationSeconds over 3600: 400 ValidationError "The requested DurationSeconds exceeds the 1
  hour session limit for roles assumed by role chaining." (GetSessionToken credentials are no
  role credentials: roles assumed with them are not capped.)

`POST /__mfa` with JSON {"serials": {SERIAL: BASE32_SECRET, ...}, "mfa_roles": [ROLE_ARN, ...]}
sets what it checks (both keys optional; the stats are kept). `GET /__mfa` returns
{"by_action": {ACTION: n}, "accepted": {ACTION: n}, "refused": [{"action", "code"}, ...]
(the error codes, never a TokenCode), "chain_refused": n, "issued": [every SecretAccessKey and
SessionToken answered], "role_keys": n}.
"""

import base64
import hashlib
import hmac
import json
import re
import struct
import threading
import time
import urllib.parse

from upstream import FakeHandler, forward, relay, serve

LOCK = threading.Lock()
CONFIG = {"serials": {}, "mfa_roles": set()}
STATE = {"by_action": {}, "accepted": {}, "refused": [], "chain_refused": 0, "issued": []}
USED = {}  # serial -> set of codes accepted
ROLE_KEYS = set()  # access key ids issued by AssumeRole
CREDENTIAL = re.compile(r"Credential=([A-Z0-9]+)/")
ACCESS_KEY = re.compile(rb"<AccessKeyId>([^<]+)</AccessKeyId>")
SECRETS = re.compile(rb"<(?:SecretAccessKey|SessionToken)>([^<]+)</")

INVALID_CODE = "MultiFactorAuthentication failed with invalid MFA one time pass code. "
UNKNOWN_SERIAL = (
    "MultiFactorAuthentication failed, unable to validate MFA code.  "
    "Please verify your MFA serial number is valid and associated with this user."
)
CHAINING = "The requested DurationSeconds exceeds the 1 hour session limit for roles assumed by role chaining."


def totp(secret, step):
    key = base64.b32decode(secret.upper() + "=" * (-len(secret) % 8))
    digest = hmac.new(key, struct.pack(">Q", step), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    value = struct.unpack(">I", digest[offset:offset + 4])[0] & 0x7FFFFFFF
    return "%06d" % (value % 1000000)


def sts_error(code, message):
    return (
        f'<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type>'
        f"<Code>{code}</Code><Message>{message}</Message></Error>"
        f"<RequestId>mfa-gate</RequestId></ErrorResponse>"
    ).encode()


def check_code(serial, code):
    """None when the code is valid (and now spent), else the AccessDenied message."""
    secret = CONFIG["serials"].get(serial)
    if secret is None:
        return UNKNOWN_SERIAL
    step = int(time.time()) // 30
    if not code or code not in {totp(secret, step + d) for d in (-1, 0, 1)}:
        return INVALID_CODE
    used = USED.setdefault(serial, set())
    if code in used:
        return INVALID_CODE
    used.add(code)
    return None


class Handler(FakeHandler):
    def control(self, body):
        with LOCK:
            if self.command == "POST":
                req = json.loads(body or b"{}")
                if "serials" in req:
                    CONFIG["serials"] = dict(req["serials"])
                if "mfa_roles" in req:
                    CONFIG["mfa_roles"] = set(req["mfa_roles"])
            out = dict(STATE)
            out["role_keys"] = len(ROLE_KEYS)
            data = json.dumps(out).encode()
        self.reply(200, data, "application/json")

    def refuse(self, action, status, code, message):
        with LOCK:
            STATE["refused"].append({"action": action, "code": code})
        self.reply(status, sts_error(code, message))

    def handle_any(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        if self.path.startswith("/__mfa"):
            return self.control(body)
        form = {k: v[0] for k, v in urllib.parse.parse_qs(body.decode("latin-1")).items()}
        action = form.get("Action", self.command)
        signer = CREDENTIAL.search(self.headers.get("Authorization", ""))
        signer = signer.group(1) if signer else None
        with LOCK:
            STATE["by_action"][action] = STATE["by_action"].get(action, 0) + 1
            if action in ("GetSessionToken", "AssumeRole"):
                serial = form.get("SerialNumber")
                if action == "AssumeRole" and form.get("RoleArn") in CONFIG["mfa_roles"] and not serial:
                    why = "User: arn:aws:iam::123456789012:user/moto is not authorized to perform: sts:AssumeRole on resource: " + form.get("RoleArn", "")
                    refused = (403, "AccessDenied", why)
                elif serial:
                    why = check_code(serial, form.get("TokenCode"))
                    refused = (403, "AccessDenied", why) if why else None
                else:
                    refused = None
                if refused is None and action == "AssumeRole" and signer in ROLE_KEYS:
                    if int(form.get("DurationSeconds") or 3600) > 3600:
                        STATE["chain_refused"] += 1
                        refused = (400, "ValidationError", CHAINING)
            else:
                refused = None
        if refused:
            return self.refuse(action, *refused)
        status, headers, data = forward(self, self.upstream, self.path, body)
        with LOCK:
            STATE["issued"].extend(v.decode() for v in SECRETS.findall(data))
            if status == 200 and action in ("GetSessionToken", "AssumeRole"):
                STATE["accepted"][action] = STATE["accepted"].get(action, 0) + 1
            if status == 200 and action == "AssumeRole":
                ROLE_KEYS.update(k.decode() for k in ACCESS_KEY.findall(data))
        relay(self, status, headers, data)

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = handle_any


if __name__ == "__main__":
    serve(Handler, __doc__, "mfa gate")
