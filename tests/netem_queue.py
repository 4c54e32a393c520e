"""Delay, jitter, reordering and loss on a network namespace's packets, without sch_netem.

This machine's kernel has no netem qdisc ("Specified qdisc kind is unknown") but it has
nfnetlink_queue: an iptables rule (`-j NFQUEUE --queue-num N --queue-bypass`) hands every packet
of a namespace's link to a userspace queue, and the program bound to it gives each packet its
verdict when it likes. This one holds each packet for `delay` ± `jitter` ms (uniform), lets a
`reorder` share through at once (so they overtake the held ones, as netem's reorder does; the
jitter reorders too), and drops a `loss` share. It speaks to the queue through NetfilterQueue
(PyPI, a binding of libnetfilter_queue; `make test-long` installs both).

Run as a script inside the namespace (`ip netns exec NS python tests/netem_queue.py ...`): it
prints ``ready`` once bound, and on SIGTERM lets every held packet go, unbinds and prints what
it did. `Netem` below starts it on a `Host`, adds the iptables chain (``sbt26netem``) that feeds
the queue, and takes both away again, on any exit.
"""

from __future__ import annotations

import argparse
import contextlib
import heapq
import itertools
import json
import random
import selectors
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .jetstream_support import Host

# The kernel's NFQUEUE target is the xtables one (it has no nft_queue: nftables' own `queue`
# statement fails with "No such file or directory"), so the rule is an iptables one.
IPTABLES = shutil.which("iptables-legacy") or shutil.which(
    "iptables-legacy", path="/usr/sbin:/sbin"
)
CHAIN = "sbt26netem"
HOOKS = [("OUTPUT", "-o"), ("INPUT", "-i")]
TOOL = Path(__file__).resolve()


def available() -> str | None:
    """None if the tool can run here, else why not (and what installs it)."""
    if IPTABLES is None:
        return "iptables-legacy not found: `make test-long` installs it (apt package iptables)"
    if not Path("/proc/net/netfilter/nfnetlink_queue").exists():
        with contextlib.suppress(OSError):
            subprocess.run(["modprobe", "nfnetlink_queue"], capture_output=True, check=False)
    if not Path("/proc/net/netfilter/nfnetlink_queue").exists():
        return "this kernel has no nfnetlink_queue"
    try:
        import netfilterqueue  # noqa: F401
    except ImportError:
        return "NetfilterQueue not installed: `make test-long` installs it (group netem)"
    return None


class Netem:
    """The impairment on one host's link, both ways, from `start` (or `with`) to `stop`."""

    def __init__(
        self,
        host: Host,
        *,
        delay: float,
        jitter: float = 0.0,
        reorder: float = 0.0,
        loss: float = 0.0,
        seed: int = 26,
        queue: int = 26,
        device: str = "eth0",
    ) -> None:
        assert host.netns is not None, "only a namespace of a Lan (its whole link is impaired)"
        self.host = host
        self.queue = queue
        self.device = device
        self.argv = [
            sys.executable, str(TOOL), "--queue", str(queue), "--delay", str(delay),
            "--jitter", str(jitter), "--reorder", str(reorder), "--loss", str(loss),
            "--seed", str(seed),
        ]  # fmt: skip
        self.popen: subprocess.Popen[str] | None = None
        self.stats: dict[str, Any] = {}

    def start(self) -> None:
        why = available()
        assert why is None, why
        self.popen = subprocess.Popen(
            self.host.command(self.argv), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        try:
            assert self.popen.stdout is not None
            line = self.popen.stdout.readline()  # the tool says "ready" once bound
            assert line.strip() == "ready", f"netem_queue did not start: {line!r}"
            # Every packet of the link through our chain to the queue; bypass: with no
            # program bound (it died), packets pass instead of being dropped.
            self._iptables("-N", CHAIN)
            self._iptables("-A", CHAIN, "-j", "NFQUEUE", "--queue-num", str(self.queue),
                           "--queue-bypass")  # fmt: skip
            for hook, way in HOOKS:
                self._iptables("-I", hook, way, self.device, "-j", CHAIN)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> dict[str, Any]:
        """Take the rules away first (nothing new is held), then let the held packets go."""
        for hook, way in HOOKS:
            self._iptables("-D", hook, way, self.device, "-j", CHAIN, check=False)
        self._iptables("-F", CHAIN, check=False)
        self._iptables("-X", CHAIN, check=False)
        popen, self.popen = self.popen, None
        if popen is None:
            return self.stats
        popen.send_signal(signal.SIGTERM)
        try:
            out, err = popen.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            popen.kill()
            out, err = popen.communicate()
        for line in out.splitlines():
            if line.startswith("{"):
                self.stats = json.loads(line)
        if popen.returncode != 0:
            raise RuntimeError(f"netem_queue exited {popen.returncode}: {err.strip()}")
        return self.stats

    def _iptables(self, *args: str, check: bool = True) -> None:
        assert IPTABLES is not None
        subprocess.run(self.host.command([IPTABLES, *args]), capture_output=True, check=check)

    def __enter__(self) -> Netem:
        self.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def serve(queue: int, delay: float, jitter: float, reorder: float, loss: float, seed: int) -> None:
    from netfilterqueue import COPY_META, NetfilterQueue, Packet

    rng = random.Random(seed)
    held: list[tuple[float, int, Packet]] = []  # (when to let it go, arrival, packet)
    arrival = itertools.count()
    stats = {"packets": 0, "delayed": 0, "reordered": 0, "dropped": 0, "most_held": 0}

    def on_packet(packet: Packet) -> None:
        stats["packets"] += 1
        if rng.random() < loss:
            packet.drop()
            stats["dropped"] += 1
        elif rng.random() < reorder:
            packet.accept()  # ahead of every packet still held
            stats["reordered"] += 1
        else:
            hold = max(0.0, rng.uniform(delay - jitter, delay + jitter)) / 1000
            heapq.heappush(held, (time.monotonic() + hold, next(arrival), packet))
            stats["delayed"] += 1
            stats["most_held"] = max(stats["most_held"], len(held))

    stopping = False

    def on_signal(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    nfq = NetfilterQueue()
    # Only the verdict is given, never the bytes read: metadata suffices. A long queue, as
    # everything held for `delay` ms sits in it.
    nfq.bind(queue, on_packet, max_len=65536, mode=COPY_META)
    selector = selectors.DefaultSelector()
    selector.register(nfq.get_fd(), selectors.EVENT_READ)
    print("ready", flush=True)
    try:
        while not stopping:
            wait = 0.1 if not held else min(0.1, max(0.0, held[0][0] - time.monotonic()))
            if selector.select(wait):
                nfq.run(block=False)
            now = time.monotonic()
            while held and held[0][0] <= now:
                heapq.heappop(held)[2].accept()
    finally:
        nfq.run(block=False)  # what arrived before the rules went: hold nothing back
        while held:
            heapq.heappop(held)[2].accept()
        nfq.unbind()
        print(json.dumps(stats), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--queue", type=int, default=26)
    parser.add_argument("--delay", type=float, required=True, help="ms each packet is held")
    parser.add_argument("--jitter", type=float, default=0.0, help="± ms, uniform")
    parser.add_argument("--reorder", type=float, default=0.0, help="share let through at once")
    parser.add_argument("--loss", type=float, default=0.0, help="share dropped")
    parser.add_argument("--seed", type=int, default=26)
    args = parser.parse_args()
    serve(args.queue, args.delay, args.jitter, args.reorder, args.loss, args.seed)


if __name__ == "__main__":
    main()
