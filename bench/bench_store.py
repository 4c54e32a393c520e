"""Message store figures: append rates, replay rate, seek time and reopen time.

    python bench/bench_store.py                      # 10,000,000-message journal
    python bench/bench_store.py --messages 1000000   # quicker

Messages are ITCH-sized (20 to 50 bytes). Prints one line per figure.

The checksums' cost: each FileStore figure is also taken with the checksums switched off in
the same run ("format 1", today's format before checksums: the same code without the CRC-32
of the bytes written or read), and the ratio printed (1.00x = free, 0.90x = 10 % slower).
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from benchlib import write_json
from soupbintcp.lowlevel import SequencedDataPacket
from soupbintcp.store import Durability, FileStore, MemoryStore, MessageStore

POOL_SIZE = 10_000
#: Every figure printed, for --json: (what, value, unit).
FIGURES: list[tuple[str, float, str]] = []


def pool(seed: int = 1) -> list[bytes]:
    rng = random.Random(seed)
    return [rng.randbytes(rng.randint(20, 50)) for _ in range(POOL_SIZE)]


def report(what: str, count: int, seconds: float, unit: str = "msg/s") -> None:
    print(f"{what:<58} {count / seconds:>14,.0f} {unit}  ({count:,} in {seconds:.3f} s)")
    FIGURES.append((what, count / seconds, unit))


def figure(what: str, value: float, unit: str, fmt: str) -> None:
    print(f"{what:<58} {value:>14{fmt}} {unit}")
    FIGURES.append((what, value, unit))


def timed(fn: Callable[[], object]) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def without_checksums(store: FileStore) -> FileStore:
    """The yardstick: `store` as it was before checksums (nothing computed or checked)."""
    store._sums = None
    store._reader.sums = None
    return store


def ratio(what: str, new: float, old: float) -> None:
    figure(what, new / old, "x", ".3f")


def bench_appends(
    make: Callable[[], MessageStore], label: str, n: int, messages: list[bytes]
) -> dict[str, float]:
    batch = 1000
    frames = [
        (b"".join(SequencedDataPacket(m).encode() for m in messages[i : i + batch]), batch)
        for i in range(0, POOL_SIZE, batch)
    ]

    def one_by_one(store: MessageStore) -> None:
        append = store.append
        for i in range(n):
            append(messages[i % POOL_SIZE])
        store.flush()

    def many(store: MessageStore) -> None:
        for i in range(0, n, batch):
            j = i % POOL_SIZE
            store.append_many(messages[j : j + batch])
        store.flush()

    def pre_encoded(store: MessageStore) -> None:
        for i in range(0, n, batch):
            store.append_frames(*frames[(i % POOL_SIZE) // batch])
        store.flush()

    rates = {}
    for name, fn in (
        ("append", one_by_one),
        (f"append_many x{batch}", many),
        (f"append_frames x{batch}", pre_encoded),
    ):
        store = make()
        seconds = timed(lambda s=store, f=fn: f(s))  # type: ignore[misc]
        report(f"{label}: {name}", n, seconds)
        rates[name] = n / seconds
        store.close()
    return rates


def bench_replay(
    store: MessageStore, label: str, sizes: tuple[int, ...] = (64 << 10, 1 << 20)
) -> dict[int, float]:
    rates = {}
    for max_bytes in sizes:
        sequence = 1

        def replay(max_bytes: int = max_bytes) -> None:
            nonlocal sequence
            read_frames = store.read_frames
            while True:
                _, n = read_frames(sequence, max_bytes)
                if not n:
                    return
                sequence += n

        seconds = timed(replay)
        report(
            f"{label}: read_frames replay, max_bytes={max_bytes >> 10} KiB", sequence - 1, seconds
        )
        rates[max_bytes] = (sequence - 1) / seconds
    return rates


def bench_seek(store: MessageStore, label: str, samples: int = 20_000) -> None:
    rng = random.Random(2)
    sequences = [rng.randint(1, store.durable_count) for _ in range(samples)]

    def seek() -> None:
        for s in sequences:
            store.read_frames(s, 4096)

    seconds = timed(seek)
    figure(f"{label}: random read_frames(seq, 4 KiB)", seconds / samples * 1e6, "us each", ".1f")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=10_000_000, help="journal size")
    parser.add_argument("--appends", type=int, default=1_000_000, help="messages per append test")
    parser.add_argument("--dir", type=Path, default=None, help="where to put the journals")
    parser.add_argument("--json", help="write the figures here")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="bench-store-", dir=args.dir))
    messages = pool()
    try:
        journal = workdir / "journal"

        def fresh(durability: Durability, checksums: bool = True) -> Callable[[], FileStore]:
            def make() -> FileStore:
                for p in (journal, Path(f"{journal}.idx"), Path(f"{journal}.crc")):
                    p.unlink(missing_ok=True)
                store = FileStore(journal, durability=durability)
                return store if checksums else without_checksums(store)

            return make

        bench_appends(MemoryStore, "MemoryStore", args.appends, messages)
        for durability in (Durability.PUBLISH, Durability.TIMER):
            label = f"FileStore {durability.name}"
            # Interleaved, three times each: the machine is shared; the best is kept.
            old: dict[str, float] = {}
            new: dict[str, float] = {}
            rates: dict[str, float]
            for _ in range(3):
                for rates, on, tag in ((old, False, " (format 1)"), (new, True, "")):
                    got = bench_appends(fresh(durability, on), label + tag, args.appends, messages)
                    for k, v in got.items():
                        rates[k] = max(rates.get(k, 0.0), v)
            for k in new:
                ratio(f"{label}: {k}, checksums vs format 1", new[k], old[k])

        memory = MemoryStore()
        for i in range(0, args.appends, 1000):
            memory.append_many(messages[i % POOL_SIZE : i % POOL_SIZE + 1000])
        bench_replay(memory, "MemoryStore")
        bench_seek(memory, "MemoryStore")
        memory.close()

        # The big journal.
        n = args.messages
        store = fresh(Durability.TIMER)()
        batch = 10_000

        def build() -> None:
            for _ in range(0, n, batch):
                store.append_many(messages)
            store.close()

        report(f"FileStore: write a {n:,}-message journal (TIMER, x{batch})", n, timed(build))
        size = journal.stat().st_size / 2**20
        index_size = Path(f"{journal}.idx").stat().st_size / 2**10
        figure("journal size", size, "MiB", ",.1f")
        figure("journal index size", index_size, "KiB", ",.1f")

        opened: list[FileStore] = []
        seconds = timed(lambda: opened.append(FileStore(journal)))
        figure(f"reopen {n:,} messages with the index", seconds, "s", ".3f")
        reopened = opened.pop()
        assert reopened.count == n
        bench_replay(reopened, "FileStore")
        bench_seek(reopened, "FileStore")
        reopened.close()
        # Replay checked against the checksums from cold (a fresh open: nothing known good
        # yet) against the same without them, interleaved, the better of two each.
        # A second replay on the same open store finds every block known good ("warm"): what
        # the second and later clients of a session cost.
        old_r: dict[int, float] = {}
        new_r: dict[int, float] = {}
        warm_r: dict[int, float] = {}
        for _ in range(3):
            for rates_r, on, tag in (
                (old_r, False, " (format 1)"),
                (new_r, True, " (cold checks)"),
            ):
                for size in (64 << 10, 1 << 20):
                    fs = FileStore(journal) if on else without_checksums(FileStore(journal))
                    got_r = bench_replay(fs, "FileStore" + tag, (size,))
                    rates_r[size] = max(rates_r.get(size, 0.0), got_r[size])
                    if on:
                        got_r = bench_replay(fs, "FileStore (warm checks)", (size,))
                        warm_r[size] = max(warm_r.get(size, 0.0), got_r[size])
                    fs.close()
        for size in new_r:
            ratio(
                f"FileStore: replay max_bytes={size >> 10} KiB, checksums (first read) vs format 1",
                new_r[size],
                old_r[size],
            )
            ratio(
                f"FileStore: replay max_bytes={size >> 10} KiB, checksums (known good) vs format 1",
                warm_r[size],
                old_r[size],
            )

        os.unlink(f"{journal}.idx")  # the checksums stay: they are not a cache
        seconds = timed(lambda: opened.append(FileStore(journal)))
        figure(f"reopen {n:,} messages, index missing (full scan)", seconds, "s", ".3f")
        report("  = scan rate", n, seconds)
        opened.pop().close()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    write_json(args.json, {"figures": FIGURES, "messages": args.messages, "appends": args.appends})


if __name__ == "__main__":
    main()
