"""`soupbintcp order`: OUCH 5.0 order entry from the command line (send, cancel-all, status).

`order send` is the order client's guarantee made usable: each line of the file is entered
exactly once, however often the command is killed (`kill -9` included) and run again with
the same `--state`. Built only on the public API (`soupbintcp.orders`).
"""

from __future__ import annotations

import asyncio
import enum
import json
import signal
import sys
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, cast

import click

from soupbintcp.orders import Answer, Order, OrderClient, OrderEvent

from ._common import ADDRESSES, UserError, client_credentials, credential_options, plural, stderr
from ._run import run_async

_TIF = {"day": "0", "ioc": "3", "gtx": "5", "gtt": "6", "after-hours": "E"}
_TIF_LETTERS = frozenset("0356E")
_SIDES = frozenset("BSTE")
#: Prices are 4 implied decimals (§1.2); the highest limit is $199,999.9900.
_TICKS = Decimal(10_000)


class Intent:
    """One line of an orders file."""

    __slots__ = ("cl_ord_id", "display", "price", "quantity", "side", "symbol", "tif")

    def __init__(self, line: str, where: str) -> None:
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise UserError(f"{where}: not JSON: {exc.msg}") from None
        if not isinstance(obj, dict):
            raise UserError(f"{where}: expected a JSON object")
        try:
            self.cl_ord_id = _id(obj["id"])
            self.symbol = str(obj["symbol"]).upper()
            self.side = str(obj["side"]).upper()
            self.quantity = int(obj["qty"])
            self.price = _ticks(obj["price"])
            tif = str(obj.get("tif", "day"))
            self.tif = _TIF.get(tif.lower(), tif)
            self.display = str(obj.get("display", "Y"))
        except KeyError as exc:
            raise UserError(f"{where}: missing {exc.args[0]!r}") from None
        except (TypeError, ValueError) as exc:
            raise UserError(f"{where}: {exc}") from None
        if self.side not in _SIDES:
            raise UserError(f"{where}: side is one of B, S, T, E, not {self.side!r}")
        if self.tif not in _TIF_LETTERS:
            raise UserError(f"{where}: tif is day, ioc, gtx, gtt, after-hours or a letter")
        if not 1 <= len(self.symbol) <= 8:
            raise UserError(f"{where}: a symbol has 1 to 8 characters")


def _id(value: object) -> str:
    text = str(value)
    if not 1 <= len(text) <= 14 or not text.isascii() or not text.replace(" ", "").isalnum():
        raise ValueError(f"id must be 1 to 14 letters or digits (a ClOrdID), not {text!r}")
    return text


def _ticks(value: object) -> int:
    try:
        ticks = Decimal(str(value)) * _TICKS
    except InvalidOperation:
        raise ValueError(f"price must be a decimal, not {value!r}") from None
    if ticks != ticks.to_integral_value() or ticks <= 0:
        raise ValueError(f"price must be positive with at most 4 decimals, not {value!r}")
    return int(ticks)


def read_intents(path: Path) -> list[Intent]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise UserError(f"cannot read {str(path)!r}: {exc.strerror}") from None
    intents = [Intent(line, f"{path}:{n}") for n, line in enumerate(lines, 1) if line.strip()]
    seen: set[str] = set()
    for intent in intents:
        if intent.cl_ord_id in seen:
            raise UserError(f"{path}: id {intent.cl_ord_id!r} appears twice (ids must be unique)")
        seen.add(intent.cl_ord_id)
    return intents


def _price(ticks: int) -> str:
    return str(Decimal(ticks) / _TICKS)


def order_json(order: Order) -> dict[str, Any]:
    return {
        "user_ref_num": order.user_ref_num,
        "id": order.cl_ord_id,
        "symbol": order.symbol,
        "side": order.side,
        "status": order.status.value,
        "qty": order.quantity,
        "price": _price(order.price),
        "open": order.open,
        "executed": order.executed,
        "canceled": order.canceled,
        **({"replaces": order.replaces} if order.replaces is not None else {}),
        **({"reject_reason": order.reject_reason} if order.reject_reason is not None else {}),
    }


def _answer_json(answer: Answer) -> dict[str, Any]:
    out: dict[str, Any] = {
        "request": answer.request.kind.value,
        "user_ref_num": answer.request.user_ref_num,
        "outcome": answer.outcome,
    }
    if answer.order is not None:
        out["order"] = order_json(answer.order)
    return out


def _field(name: str, value: Any) -> Any:
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, tuple):
        return [repr(v) for v in value]
    if "price" in name and isinstance(value, int):
        return _price(value)
    return value.value if isinstance(value, enum.Enum) else value


def event_json(event: OrderEvent) -> str:
    """One outbound message as a JSON line: its sequence number, its type and fields (prices
    as decimals), and the requests it answered."""
    obj: dict[str, Any] = {"sequence": event.sequence, "type": event.type}
    msg = event.message
    if msg is not None:
        obj["message"] = type(msg).__name__
        fields: dict[str, Any] = cast(Any, msg)._asdict()
        obj.update((k, _field(k, v)) for k, v in fields.items() if k != "appendage")
    if event.answers:
        obj["answers"] = [_answer_json(a) for a in event.answers]
    return json.dumps(obj, separators=(",", ":"))


async def _drain_and_sync(client: OrderClient) -> None:
    """Every order answered, then everything the venue did since (fills) received."""
    await client.drain()
    await client.sync()


def _connect_options(func: Any) -> Any:
    func = credential_options(func)
    func = click.option(
        "--state",
        type=click.Path(path_type=Path, file_okay=False),
        help="Directory of the client's journals: what was sent and received. Rerun with the "
        "same one to go on where a killed run stopped.",
    )(func)
    func = click.option(
        "--venue",
        "address",
        type=ADDRESSES,
        required=True,
        help="The venue's OUCH port(s); several, comma-separated, are mirrors to fail over to.",
    )(func)
    return func


async def _open(
    address: list[tuple[str, int]], user: str, password: str, state: Path | None, **kw: Any
) -> OrderClient:
    return await OrderClient.connect(address, user, password, state=state, **kw)


def _stop_on_signals() -> asyncio.Event:
    """An event set by Ctrl-C or SIGTERM: the command stops cleanly (journals closed)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    return stop


async def _until(work: Any, stop: asyncio.Event) -> bool:
    """Await `work` unless `stop` is set first; whether it finished."""
    done = asyncio.ensure_future(work)
    stopped = asyncio.ensure_future(stop.wait())
    await asyncio.wait({done, stopped}, return_when=asyncio.FIRST_COMPLETED)
    stopped.cancel()
    if not done.done():
        done.cancel()
        return False
    done.result()
    return True


@click.group("order")
def group() -> None:
    """OUCH 5.0 order entry: send orders from a file, cancel everything, show the state.

    \b
    soupbintcp order send orders.jsonl --venue H:P --user U --state DIR [--rate N]
    soupbintcp order cancel-all --venue H:P --user U [--state DIR]
    soupbintcp order status --venue H:P --user U [--state DIR]
    """


@group.command("send")
@click.argument("orders", type=click.Path(path_type=Path, dir_okay=False, exists=True))
@_connect_options
@click.option(
    "--rate",
    type=click.FloatRange(min=0, min_open=True),
    help="Messages per second at most (they queue).",
)
@click.pass_context
def send(
    ctx: click.Context,
    /,
    orders: Path,
    address: list[tuple[str, int]],
    state: Path | None,
    user: str | None,
    password: str | None,
    credentials_file: Path | None,
    rate: float | None,
) -> int:
    """Enter the orders of ORDERS (one JSON object per line) and print every response.

    \b
    A line: {"id": "C00001", "symbol": "AAPL", "side": "B", "qty": 100,
             "price": "10.25", "tif": "day"}
    id becomes the ClOrdID (unique in the file); side B, S, T or E; price a decimal;
    tif day, ioc, gtx, gtt, after-hours or the spec's letter; display Y, N or A (optional).

    Each line's order is entered exactly once: killed (even with kill -9) and run again
    with the same --state, it re-sends what may not have arrived (the venue ignores a repeat)
    and goes on with the lines not sent yet. Responses print as JSON lines on stdout, each
    once (a run killed between keeping a response and printing it does not print it again:
    `order status` shows the state). Exits 0 once every order has its answer; Ctrl-C or
    SIGTERM stops it cleanly (exit 130), to be run again the same way.
    """
    username, secret = client_credentials(user, password, credentials_file)
    intents = read_intents(orders)
    out = sys.stdout

    def on_event(event: OrderEvent) -> None:
        out.write(event_json(event) + "\n")

    async def main() -> int:
        stop = _stop_on_signals()
        client = await _open(address, username, secret, state, rate=rate, on_event=on_event)
        try:
            known = {o.cl_ord_id for o in client.orders.values() if o.replaces is None}
            fresh = [i for i in intents if i.cl_ord_id not in known]
            for i in fresh:
                client.enter(
                    i.symbol, i.side, i.quantity, i.price,
                    time_in_force=i.tif, display=i.display, cl_ord_id=i.cl_ord_id,
                )  # fmt: skip
            if not await _until(_drain_and_sync(client), stop):
                stderr.print(
                    "interrupted: what was sent is in the state; rerun with the same --state "
                    "to go on (nothing is entered twice)"
                )
                return 130
            statuses: dict[str, int] = {}
            for order in client.orders.values():
                statuses[order.status.value] = statuses.get(order.status.value, 0) + 1
            stderr.print(
                f"{plural(len(fresh), 'order')} entered now, {len(intents) - len(fresh)} before; "
                + ", ".join(f"{n} {s}" for s, n in sorted(statuses.items()))
            )
        finally:
            out.flush()
            await client.close()
        return 0

    return run_async(main(), ctx.obj["loop"])


@group.command("cancel-all")
@_connect_options
@click.pass_context
def cancel_all(
    ctx: click.Context,
    /,
    address: list[tuple[str, int]],
    state: Path | None,
    user: str | None,
    password: str | None,
    credentials_file: Path | None,
) -> int:
    """Cancel every live order of the account (the kill switch), from the state rebuilt from
    the venue's stream (and --state's journals if given); print each answer."""
    username, secret = client_credentials(user, password, credentials_file)

    async def main() -> int:
        client = await _open(address, username, secret, state)
        try:
            handles = client.cancel_all()
            for handle in handles:
                answer = await handle
                sys.stdout.write(json.dumps(_answer_json(answer), separators=(",", ":")) + "\n")
            stderr.print(f"{plural(len(handles), 'order')} cancelled")
        finally:
            await client.close()
        return 0

    return run_async(main(), ctx.obj["loop"])


@group.command("status")
@_connect_options
@click.pass_context
def status(
    ctx: click.Context,
    /,
    address: list[tuple[str, int]],
    state: Path | None,
    user: str | None,
    password: str | None,
    credentials_file: Path | None,
) -> int:
    """Print every order of the account (one JSON line each) and the positions per symbol,
    as rebuilt from the venue's outbound stream (and --state's journals if given)."""
    username, secret = client_credentials(user, password, credentials_file)

    async def main() -> int:
        client = await _open(address, username, secret, state)
        try:
            for order in client.orders.values():
                sys.stdout.write(json.dumps(order_json(order), separators=(",", ":")) + "\n")
            positions = {s: p for s, p in sorted(client.positions.items()) if p}
            sys.stdout.write(json.dumps({"positions": positions}) + "\n")
        finally:
            await client.close()
        return 0

    return run_async(main(), ctx.obj["loop"])
