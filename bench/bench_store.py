"""Message store figures: append rates, replay rate, seek time and reopen time.

    python bench/bench_store.py                      # 10,000,000-message journal
    python bench/bench_store.py --messages 1000000   # quicker

Messages are ITCH-sized (20 to 50 bytes). Prints one line per figure.

The checksums' cost: each FileStore figure is also taken with the checksums switched off in
the same run ("format 1", today's format before checksums: the same code without the CRC-32
of the bytes written or read), round by round alternately, and the median of the rounds'
ratios printed with their range (1.00x = free, 0.90x = 10 % slower). Replay is taken three
ways: at once after opening (racing the store's check ahead, which checks every block in a
thread of its own from the open on), once the check ahead is done, and a second time.

    python bench/bench_store.py --only checksums     # only the checksums' ratios
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
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
    ahead = getattr(store, "_ahead", None)  # absent before the check ahead
    if ahead is not None:
        ahead.stop()
    store._sums = None
    store._reader.sums = None
    return store


def checked_ahead(store: FileStore) -> FileStore:
    """`store` once its check ahead has checked every block."""
    ahead = getattr(store, "_ahead", None)
    if ahead is not None:
        ahead.join()
    return store


def ratio(what: str, new: float, old: float) -> None:
    figure(what, new / old, "x", ".3f")


def ratios(what: str, new: list[float], old: list[float]) -> None:
    """The median of the rounds' ratios (round i of `new` over round i of `old`), and their
    range."""
    each = sorted(a / b for a, b in zip(new, old, strict=True))
    print(f"{what:<58} {statistics.median(each):>14.3f} x  (range {each[0]:.3f} to {each[-1]:.3f},"
          f" {len(each)} rounds)")  # fmt: skip
    FIGURES.append((what, statistics.median(each), "x"))
    FIGURES.append((f"{what}: lowest round", each[0], "x"))
    FIGURES.append((f"{what}: highest round", each[-1], "x"))


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
        cpu = time.thread_time()
        seconds = timed(lambda s=store, f=fn: f(s))  # type: ignore[misc]
        cpu = time.thread_time() - cpu
        report(f"{label}: {name}", n, seconds)
        rates[name] = n / seconds
        # The same in CPU time (system calls included): what other work on a shared machine
        # barely moves, where wall-clock rounds vary by a third.
        rates[f"{name} (CPU time)"] = n / cpu
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
    parser.add_argument("--rounds", type=int, default=5, help="rounds of each checksums ratio")
    parser.add_argument(
        "--only", choices=("checksums",), help="only the figures of the checksums' cost"
    )
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

        only = args.only == "checksums"
        if not only:
            bench_appends(MemoryStore, "MemoryStore", args.appends, messages)
        for durability in (Durability.PUBLISH, Durability.TIMER):
            label = f"FileStore {durability.name}"
            # Interleaved round by round: the machine is shared.
            old: dict[str, list[float]] = {}
            new: dict[str, list[float]] = {}
            rates: dict[str, list[float]]
            for _ in range(args.rounds):
                for rates, on, tag in ((old, False, " (format 1)"), (new, True, "")):
                    got = bench_appends(fresh(durability, on), label + tag, args.appends, messages)
                    for k, v in got.items():
                        rates.setdefault(k, []).append(v)
            for k in new:
                cpu = k.endswith(" (CPU time)")
                what = f"{k.removesuffix(' (CPU time)')}, checksums vs format 1"
                ratios(f"{label}: {what}{', CPU time' if cpu else ''}", new[k], old[k])

        if not only:
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
        seconds = timed(lambda: checked_ahead(reopened))
        figure(f"check ahead of {n:,} messages, done after the open", seconds, "s", ".3f")
        if not only:
            bench_replay(reopened, "FileStore")
            bench_seek(reopened, "FileStore")
        reopened.close()
        # Replay from a fresh open, interleaved round by round with the same journal opened
        # with the checksums off: at once (racing the check ahead, or checking in line where
        # there is none), once the check ahead is done, and a second time on the same store
        # (every block known good: the second and later clients of a session).
        variants: dict[str, dict[int, list[float]]] = {
            k: {} for k in ("format 1", "at once", "checked ahead", "second")
        }
        for _ in range(args.rounds):
            for size in (64 << 10, 1 << 20):
                for tag in ("format 1", "at once", "checked ahead"):
                    fs = FileStore(journal)
                    if tag == "format 1":
                        without_checksums(fs)
                    elif tag == "checked ahead":
                        checked_ahead(fs)
                    got_r = bench_replay(fs, f"FileStore ({tag})", (size,))
                    variants[tag].setdefault(size, []).append(got_r[size])
                    if tag == "checked ahead":
                        got_r = bench_replay(fs, "FileStore (second replay)", (size,))
                        variants["second"].setdefault(size, []).append(got_r[size])
                    fs.close()
        for size in (64 << 10, 1 << 20):
            for tag, what in (
                ("at once", "first read at once after the open"),
                ("checked ahead", "first read after the check ahead"),
                ("second", "second read"),
            ):
                ratios(
                    f"FileStore: replay max_bytes={size >> 10} KiB, checksums ({what}) vs format 1",
                    variants[tag][size],
                    variants["format 1"][size],
                )

        if not only:
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
