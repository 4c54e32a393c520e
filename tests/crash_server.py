"""A SoupBinTCP server process for the crash-restart tests: killed with SIGKILL, restarted.

    python tests/crash_server.py JOURNAL --epoch E [--port P] [--durability publish|timer]
                                 [--flush-interval S] [--seed N]

It serves the `FileStore` journal JOURNAL on 127.0.0.1:P (0: a free port) and publishes
without pause, numbering each message itself: message n is `payload(n, E)`, which names its
number and the epoch E (how many times the server was started before), so a message lost
and published again under the same number by a later epoch cannot pass for the old one.

It reports on stdout, one line per event, each line one `write` to the pipe, so a line
written before a SIGKILL is in the pipe for the test to read:

    ready PORT COUNT            listening; the journal held COUNT messages at start
    published LAST DURABLE      `publish`/`publish_many` returned LAST; DURABLE is the store's
                                durable_count right after (what clients may have been sent)
    ended COUNT                 after the `end` command: End of Session sent after COUNT

Commands on stdin, one per line: `end` (stop publishing, flush, End of Session), `quit`
(close and exit 0). End of stdin (the test went away) also closes and exits.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sys

from soupbintcp import Durability, FileStore, serve

USER, PASSWORD, SESSION = "user", "secret", "SESSION1"
_FILL = bytes(range(33, 127))


def payload(n: int, epoch: int) -> bytes:
    """Message `n` as published by the server started for the `epoch`-th time."""
    return b"%d:e%d:" % (n, epoch) + _FILL[: (n * 7919) % 80]


def report(line: str) -> None:
    os.write(1, (line + "\n").encode())  # one write: whole lines in the pipe, even on SIGKILL


async def run(args: argparse.Namespace) -> None:
    durability = Durability.PUBLISH if args.durability == "publish" else Durability.TIMER
    rng = random.Random(args.seed)
    loop = asyncio.get_running_loop()
    commands: asyncio.Queue[str] = asyncio.Queue()

    def on_stdin() -> None:
        line = sys.stdin.buffer.readline()
        commands.put_nowait(line.decode().strip() if line else "quit")

    with FileStore(args.journal, durability=durability, session_id=SESSION) as store:
        async with serve(
            ("127.0.0.1", args.port),
            store=store,
            session_id=SESSION,
            credentials={USER: PASSWORD},
            flush_interval=args.flush_interval,
            heartbeat_interval=0.2,
            end_of_session_linger=30.0,
        ) as server:
            report(f"ready {server.address[1]} {store.count}")

            async def publish() -> None:
                batch = 0
                while True:
                    n = store.count + 1
                    k = rng.randint(1, 200)
                    if batch % 4 == 0:
                        for i in range(n, n + k):
                            if server.publish(payload(i, args.epoch)) != i:
                                report(f"error publish returned a wrong number for {i}")
                                os._exit(3)
                            report(f"published {i} {store.durable_count}")
                    else:
                        first = server.publish_many(
                            [payload(i, args.epoch) for i in range(n, n + k)]
                        )
                        if first != n:
                            report(f"error publish_many returned {first}, not {n}")
                            os._exit(3)
                        report(f"published {n + k - 1} {store.durable_count}")
                    batch += 1
                    await asyncio.sleep(0.001 if batch % 3 else 0)

            publisher = asyncio.create_task(publish())
            loop.add_reader(sys.stdin.fileno(), on_stdin)
            try:
                while True:
                    command = await commands.get()
                    if command == "end":
                        publisher.cancel()
                        await asyncio.gather(publisher, return_exceptions=True)
                        await server.end_session()
                        report(f"ended {store.count}")
                    elif command == "quit":
                        break
            finally:
                loop.remove_reader(sys.stdin.fileno())
                publisher.cancel()
                await asyncio.gather(publisher, return_exceptions=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("journal")
    parser.add_argument("--epoch", type=int, required=True)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--durability", choices=["publish", "timer"], default="publish")
    parser.add_argument("--flush-interval", type=float, default=0.005)
    parser.add_argument("--seed", type=int, default=0)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
