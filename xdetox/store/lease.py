"""A run lease: one ``xdetox run`` of a spec at a time on one store.

The lease is an object (``lease.json`` in the run's prefix) created with ``put_if_absent``, so of
two runs starting together exactly one gets it. Its holder rewrites it every ``ttl/3`` seconds
(heartbeat) with a new expiry; a lease past its expiry belongs to a run that was killed, and
``break_stale`` takes it over. Only the local executor (``xdetox run``) takes a lease: Argo shards
of one workflow are steps, not runs, and never block each other.
"""

from __future__ import annotations

import json
import os
import platform
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from xdetox.store.base import NotFoundError, Store, StoreError

LEASE_KEY = "lease.json"
DEFAULT_TTL_S = 120.0


class LeaseHeldError(RuntimeError):
    """Another run holds the lease."""

    def __init__(self, holder: dict, stale: bool) -> None:
        self.holder = holder
        self.stale = stale
        who = (f"host {holder.get('host')}, pid {holder.get('pid')}, started {holder.get('started_at')}"
               f" (lease expires {holder.get('expires_at')})")
        if stale:
            super().__init__(f"a run that stopped heartbeating holds this run's lease: {who}; "
                             "if it is dead, run again with --break-lease")
        else:
            super().__init__(f"another run of this spec is in progress on this store: {who}; "
                             "wait for it (--wait) or stop it")


@dataclass
class Lease:
    store: Store
    token: str
    ttl_s: float
    record: dict
    _stop: threading.Event
    _thread: threading.Thread | None = None

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        current = _read(self.store)
        if current is not None and current.get("token") == self.token:
            self.store.delete(LEASE_KEY)

    def __enter__(self) -> Lease:
        return self

    def __exit__(self, *_: object) -> None:
        self.release()


def _read(store: Store) -> dict | None:
    try:
        return json.loads(store.get_bytes(LEASE_KEY))
    except NotFoundError:
        return None


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="seconds")


def read_lease(store: Store) -> dict | None:
    """The current lease record (for ``xdetox status``), or None."""
    return _read(store)


def is_stale(record: dict, now: float | None = None) -> bool:
    return float(record.get("expires", 0)) < (time.time() if now is None else now)


def acquire(store: Store, ttl_s: float = DEFAULT_TTL_S, wait_s: float = 0.0, break_stale: bool = False,
            poll_s: float = 2.0) -> Lease:
    """Take the lease of the run rooted at ``store``, or raise LeaseHeldError naming the holder."""
    token = uuid.uuid4().hex
    started = time.time()
    deadline = started + wait_s
    while True:
        now = time.time()
        record = {"token": token, "host": platform.node(), "pid": os.getpid(), "started_at": _iso(started),
                  "expires": now + ttl_s, "expires_at": _iso(now + ttl_s)}
        if store.put_if_absent(LEASE_KEY, json.dumps(record).encode()):
            return _start(store, token, ttl_s, record)
        holder = _read(store)
        if holder is None:
            continue  # released between our write and our read: try again at once
        stale = is_stale(holder)
        if stale and break_stale:
            # Delete-then-create: if two breakers race, put_if_absent still lets only one win.
            store.delete(LEASE_KEY)
            continue
        if time.time() >= deadline:
            raise LeaseHeldError(holder, stale)
        time.sleep(min(poll_s, max(0.0, deadline - time.time())))


def _start(store: Store, token: str, ttl_s: float, record: dict) -> Lease:
    stop = threading.Event()
    lease = Lease(store, token, ttl_s, record, stop)

    def beat() -> None:
        while not stop.wait(ttl_s / 3):
            try:
                current = _read(store)
                if current is None or current.get("token") != token:
                    return  # broken by someone else: never overwrite their lease
                now = time.time()
                store.put_bytes(LEASE_KEY, json.dumps({**record, "expires": now + ttl_s,
                                                       "expires_at": _iso(now + ttl_s)}).encode())
            except StoreError:
                continue  # a store hiccup: the next beat comes well before the lease expires

    lease._thread = threading.Thread(target=beat, name="xdetox-lease-heartbeat", daemon=True)
    lease._thread.start()
    return lease
