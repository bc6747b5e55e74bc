"""A plain HTTP forwarding proxy in front of DynamoDB Local, for the proxy tests."""

from __future__ import annotations

import http.client
import http.server
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit


@contextmanager
def forwarding_proxy(
    target: str, lose: dict[str, int] | None = None
) -> Iterator[tuple[str, list[str]]]:
    """A plain HTTP proxy that forwards every request to `target` (DynamoDB Local).

    Yields its URL and the request lines it received (a proxied request names the whole
    URL: `POST http://host:port/ HTTP/1.1`). `lose` maps an operation (`"PutItem"`) to how
    many of its answers to lose: the request is forwarded, DynamoDB applies it, and the
    proxy then hangs up without answering.
    """
    up = urlsplit(target)
    seen: list[str] = []
    losing = dict(lose or {})
    counting = threading.Lock()

    class Forward(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            seen.append(self.requestline)
            body = self.rfile.read(int(self.headers["Content-Length"]))
            hop = {"connection", "proxy-connection", "keep-alive"}
            headers = {k: v for k, v in self.headers.items() if k.lower() not in hop}
            kind = (
                http.client.HTTPSConnection if up.scheme == "https" else http.client.HTTPConnection
            )
            server = kind(up.hostname or "", up.port, timeout=30)
            try:
                server.request("POST", "/", body, headers)
                answer = server.getresponse()
                data = answer.read()
            finally:
                server.close()
            operation = self.headers.get("X-Amz-Target", "").rpartition(".")[2]
            with counting:  # one handler thread per connection
                lose_this = losing.get(operation, 0) > 0
                if lose_this:
                    losing[operation] -= 1
            if lose_this:
                self.close_connection = True  # applied, and no answer at all
                return
            self.send_response(answer.status)
            for name, value in answer.getheaders():
                if name.lower() not in hop | {"content-length", "transfer-encoding"}:
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    proxy = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Forward)
    thread = threading.Thread(target=proxy.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{proxy.server_address[1]}", seen
        assert not any(losing.values()), f"answers still to lose: {losing}"
    finally:
        proxy.shutdown()
        proxy.server_close()
        thread.join()
