"""Printing messages: text, hex or jsonl on stdout, optionally decoded as ITCH 5.0."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any, BinaryIO

import click

from ._common import F, UserError, plural

__all__ = ["MessagePrinter", "decode_option", "format_option", "utc_ns"]


def format_option(func: F, flag: str = "--format", dest: str = "fmt") -> F:
    return click.option(
        flag,
        dest,
        type=click.Choice(["text", "hex", "jsonl"]),
        default="text",
        show_default=True,
        help="jsonl: one JSON object per message (sequence, length, hex payload or fields).",
    )(func)


def decode_option(func: F) -> F:
    return click.option(
        "--decode",
        type=click.Choice(["none", "itch50", "ouch50"]),
        default="none",
        show_default=True,
        help="itch50: show each message's ITCH 5.0 type and fields (the 'itch' extra); "
        "ouch50: OUCH 5.0 outbound messages (an account's stream).",
    )(func)


def utc_ns(time_ns: int) -> str:
    """A time in nanoseconds since the epoch as ISO 8601 UTC with all nine digits."""
    moment = dt.datetime.fromtimestamp(time_ns // 1_000_000_000, dt.UTC)
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{time_ns % 1_000_000_000:09d}Z"


class _Ouch:
    """OUCH 5.0 outbound messages read the way `itch.Decoder` reads ITCH: never raising, bytes
    that are not OUCH counted in `warnings` and shown as hex."""

    def __init__(self) -> None:
        self.warnings = 0

    def decode(self, data: bytes) -> Any:
        from soupbintcp import ouch

        try:
            return ouch.decode_outbound(data)
        except ouch.OuchError as exc:
            self.warnings += 1
            return (bytes(data[:1]).decode("latin-1"), str(exc), bytes(data).hex())

    @staticmethod
    def to_text(message: Any) -> str:
        from soupbintcp import ouch

        if isinstance(message, ouch.Message):
            return ouch.to_text(message)
        letter, error, raw = message
        return f"{letter or '-'} undecodable ({error}): {raw}"

    @staticmethod
    def to_json(message: Any) -> str:
        from soupbintcp import ouch

        if isinstance(message, ouch.Message):
            return ouch.to_json(message)
        letter, error, raw = message
        fields = {"type": letter, "name": "undecodable", "hex": raw, "error": error}
        return json.dumps(fields)


def _text(data: bytes) -> str:
    # Printable ASCII as is, everything else escaped: one line per message, always.
    return data.decode("latin-1").encode("unicode_escape").decode("ascii")


class MessagePrinter:
    """Writes one line per message to `out`; with ``decode="itch50"`` the line shows the
    ITCH fields (jsonl: as JSON fields, prices as exact numbers), and bytes that are not
    ITCH 5.0 are shown as hex and counted in `warnings`."""

    def __init__(self, out: BinaryIO, fmt: str, decode: str = "none") -> None:
        self.out = out
        self.fmt = fmt
        self._decoder = None
        if decode == "itch50":
            from soupbintcp import itch

            try:
                itch.ensure_installed()
            except itch.ItchNotInstalled as exc:
                raise UserError(str(exc)) from None
            self._itch = itch
            self._decoder = itch.Decoder()
        elif decode == "ouch50":
            self._itch = _Ouch  # type: ignore[assignment]
            self._decoder = _Ouch()  # type: ignore[assignment]

    @property
    def warnings(self) -> int:
        return self._decoder.warnings if self._decoder is not None else 0

    def write(self, sequence: int | None, data: bytes, time_ns: int | None = None) -> None:
        """One line; with `time_ns` (a capture or receive time) it leads the line, as UTC
        with nanoseconds (jsonl: a "time" field)."""
        seq = "-" if sequence is None else str(sequence)
        if time_ns is not None:
            seq = f"{utc_ns(time_ns)} {seq}" if self.fmt != "jsonl" else seq
        decoder = self._decoder
        if decoder is None:
            if self.fmt == "jsonl":
                line = json.dumps(
                    {"sequence": sequence, "length": len(data), "payload": data.hex()},
                    separators=(",", ":"),
                )
            elif self.fmt == "hex":
                line = f"{seq} {data.hex()}"
            else:
                line = f"{seq}\t{_text(data)}"
        else:
            message = decoder.decode(data)
            if self.fmt == "jsonl":
                head = json.dumps({"sequence": sequence, "length": len(data)})[:-1]
                line = f"{head}, {self._itch.to_json(message)[1:]}"
            elif self.fmt == "hex":
                line = f"{seq} {data.hex()}\t{self._itch.to_text(message)}"
            else:
                line = f"{seq}\t{self._itch.to_text(message)}"
        if time_ns is not None and self.fmt == "jsonl":
            line = f'{{"time":"{utc_ns(time_ns)}",{line[1:]}'
        self.out.write(line.encode("utf-8") + b"\n")

    def summary(self) -> str:
        """``", 2 undecodable messages (shown as hex)"`` when there were any, else ``""``."""
        if not self.warnings:
            return ""
        return f", {plural(self.warnings, 'undecodable message')} (shown as hex)"
