"""Wire and session receive path, in process (no sockets): CPU ns per message, as ratios.

The reference measured in the same run is a naive pure-Python frame splitter
(`struct.unpack_from` over a memoryview, counting frames), as in docs/perf notes.
"""

from __future__ import annotations

import argparse
import statistics
import struct
import time
from collections.abc import Callable

from benchlib import itch_payloads, write_json
from soupbintcp.lowlevel import (
    ClientSession,
    PacketDecoder,
    Role,
    SequencedMessages,
    ServerConnectionState,
)

N = 500_000
CHUNK = 65_536


def stream(n: int) -> tuple[list[bytes], ClientSession]:
    client = ClientSession("user", "secret")
    server = ServerConnectionState(0.0)
    server.receive_data(client.login(0.0), 0.0)
    client.receive_data(server.accept("BENCH", 1, 0.0), 0.0)
    blob = server.send_sequenced_many(itch_payloads(n), 0.0)
    return [blob[i : i + CHUNK] for i in range(0, len(blob), CHUNK)], client


def naive_reader(chunks: list[bytes]) -> int:
    unpack = struct.Struct(">H").unpack_from
    count = 0
    rest = b""
    for chunk in chunks:
        buf = memoryview(rest + chunk)
        pos, end = 0, len(buf)
        while pos + 2 <= end:
            (n,) = unpack(buf, pos)
            if pos + 2 + n > end:
                break
            count += 1
            pos += 2 + n
        rest = bytes(buf[pos:])
    return count


def decoder_batch(chunks: list[bytes]) -> int:
    decoder = PacketDecoder(Role.SERVER)
    count = 0
    for chunk in chunks:
        decoder.feed(chunk)
        count += len(decoder.next_sequenced_payloads())
    return count


def session_batch(chunks: list[bytes], client: ClientSession) -> int:
    count = 0
    for chunk in chunks:
        for event in client.receive_data(chunk, 0.0):
            if isinstance(event, SequencedMessages):
                count += len(event.messages)
    return count


def session_messages(chunks: list[bytes], client: ClientSession) -> int:
    count = 0
    for chunk in chunks:
        for event in client.receive_data(chunk, 0.0):
            if isinstance(event, SequencedMessages):
                count += len(event.to_messages())
    return count


WirePath = Callable[[list[bytes], ClientSession], int]
NAIVE = "naive reader (reference)"
PATHS: dict[str, WirePath] = {
    NAIVE: lambda c, _: naive_reader(c),
    "PacketDecoder batch": lambda c, _: decoder_batch(c),
    "ClientSession batch": session_batch,
    "ClientSession + Message objects": session_messages,
}


def measure(runs: int) -> dict[str, list[float]]:
    """CPU ns per message of every path in every run (paths interleaved run by run), each
    on a fresh stream built outside the timing. CPU time (`process_time`), not wall time:
    on a shared machine it does not count time spent waiting for a core."""
    times: dict[str, list[float]] = {name: [] for name in PATHS}
    for _ in range(runs):
        for name, fn in PATHS.items():
            chunks, client = stream(N)
            t = time.process_time()
            n = fn(chunks, client)
            times[name].append((time.process_time() - t) / n * 1e9)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--json", help="write the figures (ns per message) here")
    args = parser.parse_args()
    runs = args.runs
    times = measure(runs)
    results = {name: statistics.median(values) for name, values in times.items()}
    speed = {  # median of the per-run speed ratios against the naive reader
        name: statistics.median(r / v for r, v in zip(times[NAIVE], values, strict=True))
        for name, values in times.items()
    }
    write_json(args.json, {"ns_per_msg": results, "vs_naive": speed, "n": N, "runs": runs})
    print(f"{'path':34} {'ns/msg':>8} {'M msg/s':>8} {'speed vs naive':>15}")
    for name, ns in results.items():
        print(f"{name:34} {ns:8.0f} {1e3 / ns:8.2f} {speed[name]:14.2f}x")


if __name__ == "__main__":
    main()
