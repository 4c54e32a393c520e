"""OUCH 5.0 codec: messages per second decoded and encoded, pure Python, in process.

The mix is what flows on an account's stream (outbound: Accepted, Executed, Canceled,
Replaced, Rejected, no appendage mostly, some with options) and what a client sends
(inbound: Enter, Cancel, Replace, Modify). The yardstick measured in the same run is the
least a decoder must do: one `struct.unpack_from` of the message's fixed layout with no
conversions, and one `struct.pack` of ready values for encoding.

    python bench/bench_ouch.py [--runs 5] [-n 200000] [--json out.json]
"""

from __future__ import annotations

import argparse
import random
import statistics
import struct
import time
from collections.abc import Callable
from typing import Any

from benchlib import write_json
from soupbintcp import ouch

TARGET = 1_000_000  # msg/s, decode and encode


def outbound(n: int, seed: int = 1) -> list[ouch.Message]:
    rng = random.Random(seed)
    out: list[ouch.Message] = []
    for i in range(n):
        ts = 34_200_000_000_000 + i * 1000
        urn = 1 + i
        kind = rng.random()
        if kind < 0.35:
            options = (ouch.MinQty(100),) if rng.random() < 0.1 else ()
            symbol = rng.choice(("AAPL", "MSFT", "SPY"))
            out.append(ouch.OrderAccepted(
                ts, urn, ouch.Side.BUY, rng.randint(1, 9) * 100, symbol,
                rng.randint(900_000, 1_100_000), ouch.TimeInForce.DAY, ouch.Display.VISIBLE, urn,
                ouch.Capacity.AGENCY, ouch.IntermarketSweepEligibility.NOT_ELIGIBLE,
                ouch.CrossType.CONTINUOUS, ouch.OrderState.LIVE, f"c{urn}", options,
            ))  # fmt: skip
        elif kind < 0.65:
            out.append(ouch.OrderExecuted(ts, urn, 100, 1_000_000, ouch.LiquidityFlag.ADDED, urn))
        elif kind < 0.9:
            out.append(ouch.OrderCanceled(ts, urn, 100, ouch.CancelReason.USER_REQUESTED))
        elif kind < 0.95:
            out.append(ouch.OrderReplaced(
                ts, urn - 1, urn, ouch.Side.SELL, 300, "AAPL", 1_000_100, ouch.TimeInForce.DAY,
                ouch.Display.VISIBLE, urn, ouch.Capacity.AGENCY,
                ouch.IntermarketSweepEligibility.NOT_ELIGIBLE, ouch.CrossType.CONTINUOUS,
                ouch.OrderState.LIVE, f"r{urn}",
            ))  # fmt: skip
        else:
            out.append(ouch.Rejected(ts, urn, ouch.RejectReason.INVALID_PRICE, f"c{urn}"))
    return out


def inbound(n: int, seed: int = 2) -> list[ouch.Message]:
    rng = random.Random(seed)
    out: list[ouch.Message] = []
    for i in range(n):
        urn = 1 + i
        kind = rng.random()
        if kind < 0.6:
            options = (ouch.MinQty(100),) if rng.random() < 0.1 else ()
            out.append(ouch.EnterOrder(
                urn, ouch.Side.BUY, rng.randint(1, 9) * 100, rng.choice(("AAPL", "MSFT", "SPY")),
                rng.randint(900_000, 1_100_000), cl_ord_id=f"c{urn}", appendage=options,
            ))  # fmt: skip
        elif kind < 0.85:
            out.append(ouch.CancelOrderRequest(urn - 1, 0))
        elif kind < 0.95:
            out.append(ouch.ReplaceOrderRequest(urn - 1, urn, 300, 1_000_100, cl_ord_id=f"r{urn}"))
        else:
            out.append(ouch.ModifyOrderRequest(urn - 1, ouch.Side.SELL_SHORT, 100))
    return out


def _layouts(messages: list[ouch.Message]) -> dict[int, struct.Struct]:
    """Each type's fixed layout after the type byte, as the yardstick unpacks it."""
    found = {}
    for m in messages:
        cls = type(m)
        codes = "".join(k.struct_code for k in cls.KINDS) + ("H" if cls.TAGS is not None else "")
        found[ord(cls.TYPE)] = struct.Struct(">" + codes)
    return found


def _rate(n: int, work: Callable[[], Any]) -> float:
    """Messages per second of this thread's CPU time: on a machine shared with other busy
    processes, wall time counts the time they held the CPU too."""
    start = time.thread_time()
    work()
    return n / (time.thread_time() - start)


def measure(n: int, runs: int) -> dict[str, Any]:
    figures: dict[str, list[float]] = {}
    for direction, messages, decode in (
        ("outbound", outbound(n), ouch.decode_outbound),
        ("inbound", inbound(n), ouch.decode_inbound),
    ):
        payloads = [m.encode() for m in messages]
        layouts = _layouts(messages)
        whole = {t: struct.Struct(">c" + layout.format[1:]) for t, layout in layouts.items()}
        packed = [(whole[p[0]].pack, whole[p[0]].unpack_from(p)) for p in payloads]

        def decode_all(payloads: list[bytes] = payloads, decode: Any = decode) -> None:
            for p in payloads:
                decode(p)

        def unpack_all(payloads: list[bytes] = payloads, layouts: Any = layouts) -> None:
            for p in payloads:
                layouts[p[0]].unpack_from(p, 1)

        def encode_all(messages: list[ouch.Message] = messages) -> None:
            for m in messages:
                m.encode()

        def pack_all(packed: Any = packed) -> None:
            for pack, values in packed:
                pack(*values)

        for _ in range(runs):
            for name, work in (
                (f"decode {direction}", decode_all),
                (f"struct.unpack_from {direction} (yardstick)", unpack_all),
                (f"encode {direction}", encode_all),
                (f"struct.pack {direction} (yardstick)", pack_all),
            ):
                figures.setdefault(name, []).append(_rate(n, work))
    medians = {name: statistics.median(values) for name, values in figures.items()}
    ratios = {}
    for direction in ("outbound", "inbound"):
        for ours, yardstick in (("decode", "struct.unpack_from"), ("encode", "struct.pack")):
            pairs = zip(
                figures[f"{ours} {direction}"],
                figures[f"{yardstick} {direction} (yardstick)"],
                strict=True,
            )
            ratios[f"{ours} {direction}"] = statistics.median(a / b for a, b in pairs)
    return {"n": n, "runs": runs, "figures": medians, "ratios": ratios}


def section(res: dict[str, Any]) -> list[str]:
    """The report's OUCH codec section (bench/run.py)."""
    rows = []
    for name, value in res["figures"].items():
        ratio = res["ratios"].get(name)
        verdict = ""
        if ratio is not None:
            verdict = f"≥ {TARGET:,} {'met' if value >= TARGET else 'missed'}"
        rows.append(
            f"| {name} | {value:,.0f} | {'' if ratio is None else f'{ratio:.2f}x'} | {verdict} |"
        )
    return [
        "## OUCH 5.0 codec",
        "",
        f"{res['n']:,} messages a direction, pure Python, median of {res['runs']} runs; rates per"
        " second of CPU time (the machine is shared). Ratio: to the bare struct call on the same"
        " messages in the same run.",
        "",
        "| path | msg/s | vs yardstick | target |",
        "|---|---|---|---|",
        *rows,
        "",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-n", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--json")
    args = parser.parse_args()
    res = measure(args.n, args.runs)
    print("\n".join(section(res)))
    write_json(args.json, res)


if __name__ == "__main__":
    main()
