"""A TCP proxy on 127.0.0.1 in front of the test S3 server that cuts GET response bodies midway.

It speaks just enough HTTP/1.1 to know where a response body starts: each client request is
forwarded on its own upstream connection (``Connection: close``), the whole response is read, and
for a chosen share of GETs only the headers and the first half of the body are sent before the
client connection is reset, which is what a dropped connection mid-download looks like to
botocore (ResponseStreamingError / IncompleteRead). Hand-written because no library fault proxy
(toxiproxy is a Go server) ships in the dev dependencies; test-side code only.
"""

from __future__ import annotations

import random
import socket
import struct
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from urllib.parse import urlparse


@dataclass
class CutStats:
    gets: int = 0
    cut: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


def _read_until(sock: socket.socket, buf: bytes, marker: bytes) -> tuple[bytes, bytes] | None:
    while marker not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            return None
        buf += chunk
    head, _, rest = buf.partition(marker)
    return head + marker, rest


def _content_length(head: bytes) -> int:
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value.strip())
    return 0


def _with_connection_close(head: bytes) -> bytes:
    lines = [ln for ln in head.rstrip(b"\r\n").split(b"\r\n") if not ln.lower().startswith(b"connection:")]
    return b"\r\n".join([*lines, b"Connection: close"]) + b"\r\n\r\n"


def _serve(client: socket.socket, upstream: tuple[str, int], share: float, rng: random.Random,
           stats: CutStats) -> None:
    buf = b""
    with client:
        while True:
            got = _read_until(client, buf, b"\r\n\r\n")
            if got is None:
                return
            head, buf = got
            need = _content_length(head)
            if b"\r\nexpect: 100-continue" in head.lower():
                # botocore waits up to 1 s for this before sending a PUT body: answer at once, and
                # drop the header upstream (SigV4 does not sign it).
                client.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
                head = b"\r\n".join(ln for ln in head.split(b"\r\n") if not ln.lower().startswith(b"expect:"))
            while len(buf) < need:
                chunk = client.recv(65536)
                if not chunk:
                    return
                buf += chunk
            body, buf = buf[:need], buf[need:]
            with socket.create_connection(upstream) as up:
                up.sendall(_with_connection_close(head) + body)
                response = b""
                while chunk := up.recv(65536):
                    response += chunk
            is_get = head.startswith(b"GET ")
            with stats.lock:
                cut = is_get and rng.random() < share
                stats.gets += is_get
                stats.cut += cut
            resp_head, sep, resp_body = response.partition(b"\r\n\r\n")
            if cut and len(resp_body) >= 2:
                client.sendall(resp_head + sep + resp_body[: len(resp_body) // 2])
                # SO_LINGER 0: close with a reset, as a dropped connection does.
                client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                return
            if cut:  # nothing to cut in half: drop the connection before the body
                client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                return
            client.sendall(response)
            return  # the upstream said Connection: close; the client opens a new connection


@contextmanager
def cutting_proxy(endpoint: str, share: float = 0.10, seed: int = 7) -> Iterator[tuple[str, CutStats]]:
    """Yield (proxy endpoint URL, stats) for a proxy in front of ``endpoint``."""
    target = urlparse(endpoint)
    upstream = (target.hostname or "127.0.0.1", target.port or 80)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    listener.settimeout(0.1)  # so the accept loop sees ``stop`` promptly
    stats = CutStats()
    rng = random.Random(seed)
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            client.settimeout(30)
            threading.Thread(target=_guarded, args=(client,), daemon=True).start()

    def _guarded(client: socket.socket) -> None:
        with suppress(OSError):
            _serve(client, upstream, share, rng, stats)

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}", stats
    finally:
        stop.set()
        thread.join(timeout=5)
        listener.close()
