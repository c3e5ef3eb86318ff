#!/usr/bin/env python3
"""An HTTP proxy in front of moto that enforces credential expiry and injects faults.

    fault_proxy.py --port PORT --upstream http://127.0.0.1:MOTO_PORT

It also works as a plain-HTTP forward proxy (a client's HTTP_PROXY): absolute request URLs are
forwarded to moto as well and counted in "proxied".

Expiry: moto accepts the temporary credentials it issued forever. The proxy learns every
AccessKeyId -> Expiration pair from the STS responses passing through it and answers requests
signed with an expired key with 403 ExpiredToken, as AWS does.

Faults: `POST /__fault` with JSON {"mode": MODE, "count": N} makes the next N requests (all
when count is absent) fail with MODE, then requests pass again; {"mode": "pass"} ends it.
MODE is one of:
  status500, status503       HTTP 500 / 503 with an InternalFailure / ServiceUnavailable body
  throttle                   400 Throttling ("Rate exceeded")
  expired_token              400 ExpiredToken
  access_denied              403 AccessDenied
  hang                       accept the request and never answer (until the client gives up)
  close                      close the connection in the middle of the response
  garbage                    200 with a body that is not XML
  no_expiration              pass the request on, strip <Expiration> from the answer
  echo                       403 InvalidClientTokenId whose message quotes the request's
                             X-Amz-Security-Token header and its form body (as a careless
                             server or gateway might): the client's tokens come back in error text
`GET /__fault` returns {"requests": total seen, "by_action": {...}, "faulted": n,
"issued": [every SecretAccessKey and SessionToken in a response], "signers": [{"action",
"key_id"} for every signed request, the key id from its Authorization header]}.
"""

import datetime
import html
import json
import re
import threading
import time
import urllib.parse

from upstream import FakeHandler, forward, relay, serve

LOCK = threading.Lock()
EXPIRATIONS = {}
STATE = {"mode": "pass", "count": None, "requests": 0, "faulted": 0, "by_action": {}, "issued": [], "signers": [], "proxied": 0}
PAIR = re.compile(rb"<AccessKeyId>([^<]+)</AccessKeyId>.*?<Expiration>([^<]+)</Expiration>", re.S)
CREDENTIAL = re.compile(r"Credential=([A-Z0-9]+)/")
ACTION = re.compile(rb"Action=([A-Za-z]+)")
SECRETS = re.compile(rb"<(?:SecretAccessKey|SessionToken)>([^<]+)</")


def sts_error(code, message, kind="Sender"):
    return (
        f'<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>{kind}</Type>'
        f"<Code>{code}</Code><Message>{message}</Message></Error>"
        f"<RequestId>fault-proxy</RequestId></ErrorResponse>"
    ).encode()


FAULTS = {
    "status500": (500, sts_error("InternalFailure", "injected failure", "Receiver")),
    "status503": (503, sts_error("ServiceUnavailable", "injected unavailability", "Receiver")),
    "throttle": (400, sts_error("Throttling", "Rate exceeded")),
    "expired_token": (400, sts_error("ExpiredToken", "The security token included in the request is expired")),
    "access_denied": (403, sts_error("AccessDenied", "User is not authorized to perform: sts:AssumeRole")),
    "garbage": (200, b"\x00\x01this is not XML at all {"),
}


class Handler(FakeHandler):
    def control(self, body):
        with LOCK:
            if self.command == "POST":
                req = json.loads(body or b"{}")
                STATE["mode"] = req.get("mode", "pass")
                STATE["count"] = req.get("count")
            out = {k: STATE[k] for k in ("mode", "count", "requests", "faulted", "by_action", "issued", "signers", "proxied")}
        self.reply(200, json.dumps(out).encode(), "application/json")

    def handle_any(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        if self.path.startswith("/__fault"):
            return self.control(body)
        action = ACTION.search(body)
        signer = CREDENTIAL.search(self.headers.get("Authorization", ""))
        # A client using this as its HTTP_PROXY sends absolute URLs: forward them to moto too.
        path = self.path
        proxied = path.startswith("http://")
        if proxied:
            url = urllib.parse.urlsplit(path)
            path = urllib.parse.urlunsplit(("", "", url.path or "/", url.query, ""))
        with LOCK:
            STATE["requests"] += 1
            STATE["proxied"] += int(proxied)
            name = action.group(1).decode() if action else self.command
            STATE["by_action"][name] = STATE["by_action"].get(name, 0) + 1
            if signer:
                STATE["signers"].append({"action": name, "key_id": signer.group(1)})
            mode = STATE["mode"]
            if mode != "pass":
                STATE["faulted"] += 1
                if STATE["count"] is not None:
                    STATE["count"] -= 1
                    if STATE["count"] <= 0:
                        STATE["mode"], STATE["count"] = "pass", None
        if mode == "hang":
            time.sleep(3600)
            return
        if mode == "close":
            self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n<AssumeRoleResponse>")
            self.wfile.flush()
            self.close_connection = True
            return
        if mode in FAULTS:
            return self.reply(*FAULTS[mode])
        if mode == "echo":
            quoted = "token {} body {}".format(
                self.headers.get("X-Amz-Security-Token", "none"), body.decode("latin-1")
            )
            return self.reply(403, sts_error("InvalidClientTokenId", html.escape(quoted)))
        match = CREDENTIAL.search(self.headers.get("Authorization", ""))
        if match:
            with LOCK:
                expiry = EXPIRATIONS.get(match.group(1))
            if expiry and expiry <= datetime.datetime.now(datetime.timezone.utc):
                return self.reply(403, sts_error("ExpiredToken", "The security token included in the request is expired"))
        status, headers, data = forward(self, self.upstream, path, body)
        if mode == "no_expiration":
            data = re.sub(rb"<Expiration>[^<]*</Expiration>", b"", data)
        with LOCK:
            STATE["issued"].extend(v.decode() for v in SECRETS.findall(data))
        for key, when in PAIR.findall(data):
            with LOCK:
                EXPIRATIONS[key.decode()] = datetime.datetime.fromisoformat(when.decode().replace("Z", "+00:00"))
        relay(self, status, headers, data)

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = handle_any


if __name__ == "__main__":
    serve(Handler, __doc__, "fault proxy")
