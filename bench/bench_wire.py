"""Wire and session receive path, in process (no sockets): ns per message, as ratios.

The reference measured in the same run is a naive pure-Python frame splitter
(`struct.unpack_from` over a memoryview, counting frames), as in docs/perf notes.
"""

from __future__ import annotations

import random
import statistics
import struct
import time
from collections.abc import Callable

from soupbintcp import ClientSession, PacketDecoder, Role, SequencedMessages, ServerSession

N = 500_000
CHUNK = 65_536


def itch_payloads(n: int, seed: int = 1) -> list[bytes]:
    """ITCH-sized messages: 11 to 50 bytes, about 30 on average."""
    rng = random.Random(seed)
    return [rng.randbytes(rng.randint(11, 50)) for _ in range(n)]


def stream(n: int) -> tuple[list[bytes], ClientSession]:
    client = ClientSession("user", "secret")
    server = ServerSession(0.0)
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


def measure(fn: Callable[[list[bytes], ClientSession], int], runs: int = 5) -> float:
    """Median ns per message over `runs`, each on a fresh stream built outside the timing."""
    times = []
    for _ in range(runs):
        chunks, client = stream(N)
        t = time.perf_counter()
        n = fn(chunks, client)
        times.append((time.perf_counter() - t) / n * 1e9)
    return statistics.median(times)


def main() -> None:
    results: dict[str, float] = {}
    results["naive reader (reference)"] = measure(lambda c, _: naive_reader(c))
    results["PacketDecoder batch"] = measure(lambda c, _: decoder_batch(c))
    results["ClientSession batch"] = measure(session_batch)
    results["ClientSession + Message objects"] = measure(session_messages)
    ref = results["naive reader (reference)"]
    print(f"{'path':34} {'ns/msg':>8} {'M msg/s':>8} {'speed vs naive':>15}")
    for name, ns in results.items():
        print(f"{name:34} {ns:8.0f} {1e3 / ns:8.2f} {ref / ns:14.2f}x")


if __name__ == "__main__":
    main()
