#!/usr/bin/env python3
"""An HTTP proxy in front of moto that enforces credential expiry, as real AWS does.

    expiry_proxy.py --port PORT --upstream http://127.0.0.1:MOTO_PORT

moto accepts the temporary credentials it issued forever. This proxy learns every
AccessKeyId -> Expiration pair from the STS responses passing through it, and answers any
request signed with a key whose Expiration has passed with 403 ExpiredToken (the STS error
shape), so a client that keeps stale credentials fails the way it would against AWS.
"""

import argparse
import datetime
import http.client
import http.server
import re
import sys
import threading
import urllib.parse

EXPIRATIONS = {}
LOCK = threading.Lock()
PAIR = re.compile(rb"<AccessKeyId>([^<]+)</AccessKeyId>.*?<Expiration>([^<]+)</Expiration>", re.S)
CREDENTIAL = re.compile(r"Credential=([A-Z0-9]+)/")
EXPIRED = (
    b'<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type>'
    b"<Code>ExpiredToken</Code><Message>The security token included in the request is expired"
    b"</Message></Error><RequestId>expiry-proxy</RequestId></ErrorResponse>"
)


def parse_time(text):
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    upstream = None

    def log_message(self, fmt, *args):
        pass

    def handle_any(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        match = CREDENTIAL.search(self.headers.get("Authorization", ""))
        if match:
            with LOCK:
                expiry = EXPIRATIONS.get(match.group(1))
            if expiry and expiry <= datetime.datetime.now(datetime.timezone.utc):
                self.send_response(403)
                self.send_header("Content-Type", "text/xml")
                self.send_header("Content-Length", str(len(EXPIRED)))
                self.end_headers()
                self.wfile.write(EXPIRED)
                return
        conn = http.client.HTTPConnection(self.upstream.hostname, self.upstream.port, timeout=30)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("connection", "host")}
        headers["Host"] = self.upstream.netloc
        conn.request(self.command, self.path, body=body, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        for key, when in PAIR.findall(data):
            with LOCK:
                EXPIRATIONS[key.decode()] = parse_time(when.decode())
        self.send_response(resp.status)
        for k, v in resp.getheaders():
            if k.lower() not in ("content-length", "connection", "transfer-encoding", "server", "date"):
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        conn.close()

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = handle_any


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", required=True)
    args = parser.parse_args()
    Handler.upstream = urllib.parse.urlparse(args.upstream)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    print(f"expiry proxy on 127.0.0.1:{args.port} -> {args.upstream}", file=sys.stderr, flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
