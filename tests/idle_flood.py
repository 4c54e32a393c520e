"""Open many TCP connections to a server and never log in: the idle flood of the load tests.

    python tests/idle_flood.py HOST PORT COUNT [--go] [--churn] [--login-timeout S]

Opens COUNT connections that send nothing (after a `go` line on stdin, with `--go`), then
prints `ready` once all are established. Without `--churn` it ends once the server has
closed them all. With `--churn`, every connection the server closes is replaced by a new
one, so COUNT stay open until `stop` (or end of stdin); then it opens no more. Either way
it waits (up to 20 s after `stop`) for the server to close the rest and prints one JSON
line: how many it opened, how many the server closed, how many it refused (closed within
half the login timeout), how many were left open, and the lifetimes of the closed ones
(min, median, max seconds). Loopback and stdlib only.
"""

from __future__ import annotations

import argparse
import errno
import json
import resource
import selectors
import socket
import statistics
import sys
import time


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("host")
    parser.add_argument("port", type=int)
    parser.add_argument("count", type=int)
    parser.add_argument("--go", action="store_true")
    parser.add_argument("--churn", action="store_true")
    parser.add_argument("--login-timeout", type=float, default=0.5)
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = args.count * 2 + 100
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, hard), hard))

    sel = selectors.DefaultSelector()
    sel.register(sys.stdin, selectors.EVENT_READ, "stdin")
    opened: dict[socket.socket, float] = {}
    connecting: set[socket.socket] = set()
    lifetimes: list[float] = []
    unexpected = 0
    total = 0
    ready = False
    stopping = False
    stop_deadline = 0.0

    def open_one() -> None:
        nonlocal total
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        err = sock.connect_ex((args.host, args.port))
        if err not in (0, errno.EINPROGRESS):
            sock.close()
            raise OSError(err, f"connect failed: {errno.errorcode.get(err, err)}")
        opened[sock] = time.monotonic()
        connecting.add(sock)
        sel.register(sock, selectors.EVENT_READ | selectors.EVENT_WRITE, None)
        total += 1

    if args.go and sys.stdin.readline().strip() != "go":
        return
    for _ in range(args.count):
        open_one()
    while True:
        now = time.monotonic()
        if stopping and (not opened or now > stop_deadline):
            break
        if not args.churn and not opened:
            break  # the server closed them all
        for key, events in sel.select(0.05):
            if key.data == "stdin":  # a command from the test
                line = sys.stdin.readline()
                if not line or line.strip() == "stop":
                    stopping = True
                    stop_deadline = time.monotonic() + 20
                    sel.unregister(sys.stdin)
                continue
            sock = key.fileobj
            assert isinstance(sock, socket.socket)
            if sock in connecting and events & selectors.EVENT_WRITE:
                connecting.discard(sock)
                sel.modify(sock, selectors.EVENT_READ, None)
            if not events & selectors.EVENT_READ:
                continue
            try:
                data = sock.recv(4096)
            except OSError:
                data = b""
            if data:
                unexpected += 1  # the server has nothing to say before a login
                continue
            lifetimes.append(time.monotonic() - opened.pop(sock))
            connecting.discard(sock)
            sel.unregister(sock)
            sock.close()
            if args.churn and not stopping:
                open_one()
        if not ready and not connecting and len(opened) >= args.count:
            ready = True
            print("ready", flush=True)
    refused = sum(1 for t in lifetimes if t < args.login_timeout / 2)
    print(
        json.dumps(
            {
                "opened": total,
                "closed": len(lifetimes),
                "refused": refused,
                "left_open": len(opened),
                "unexpected_data": unexpected,
                "min": min(lifetimes, default=0.0),
                "median": statistics.median(lifetimes) if lifetimes else 0.0,
                "max": max(lifetimes, default=0.0),
            }
        ),
        flush=True,
    )
    for sock in opened:
        sock.close()


if __name__ == "__main__":
    main()
