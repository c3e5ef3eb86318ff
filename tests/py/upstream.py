"""Forwarding for the fakes in front of moto (fault_proxy.py, mfa_gate.py)."""

import http.client
import http.server


class FakeHandler(http.server.BaseHTTPRequestHandler):
    """HTTP/1.1, silent, with `reply`; subclasses forward to `upstream` (set by `serve`)."""

    protocol_version = "HTTP/1.1"
    upstream = None

    def log_message(self, fmt, *args):
        pass

    def reply(self, status, body, content_type="text/xml"):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def forward(handler, upstream, path, body):
    """Sends the request `handler` is serving to `upstream` (a parsed URL); returns the
    answer's (status, headers, body)."""
    conn = http.client.HTTPConnection(upstream.hostname, upstream.port, timeout=30)
    headers = {k: v for k, v in handler.headers.items() if k.lower() not in ("connection", "host")}
    headers["Host"] = upstream.netloc
    conn.request(handler.command, path, body=body, headers=headers)
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    return resp.status, resp.getheaders(), data


def relay(handler, status, headers, data):
    """Answers with what `forward` returned (the body possibly changed)."""
    handler.send_response(status)
    for k, v in headers:
        if k.lower() not in ("content-length", "connection", "transfer-encoding", "server", "date"):
            handler.send_header(k, v)
    handler.send_header("Content-Length", str(len(data)))
    handler.end_headers()
    handler.wfile.write(data)


def serve(handler_class, description, what):
    """Parses `--port PORT --upstream URL` and serves `handler_class` (which forwards to
    `handler_class.upstream`) on loopback until killed."""
    import argparse
    import sys
    import urllib.parse

    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", required=True)
    args = parser.parse_args()
    handler_class.upstream = urllib.parse.urlparse(args.upstream)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", args.port), handler_class)
    server.daemon_threads = True
    print(f"{what} on 127.0.0.1:{args.port} -> {args.upstream}", file=sys.stderr, flush=True)
    server.serve_forever()
