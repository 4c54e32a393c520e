"""`soupbintcp pcap info`: what a capture holds."""

from __future__ import annotations

from pathlib import Path

import click

from ._captures import CAPTURE, describe, read_capture, when
from ._common import plural

__all__ = ["group"]


@click.group("pcap")
def group() -> None:
    """Read SoupBinTCP and MoldUDP64 out of pcap / pcapng captures (tcpdump, Wireshark)."""


@group.command("info")
@click.argument("capture", type=CAPTURE)
def info(capture: Path) -> int:
    """The SoupBinTCP conversations (every TCP connection reassembled, both directions) and
    MoldUDP64 sessions in CAPTURE: sessions, sequence numbers, counts, gaps, capture times,
    and the unbroken pieces between gaps (`journal import --pcap --piece K` imports one)."""
    found = read_capture(capture)
    lines = [
        f"capture      {capture} ({found.format}), {plural(found.records, 'packet')}"
        + (f", {found.truncated:,} cut by the snapshot length" if found.truncated else ""),
        f"packets      {found.tcp_segments:,} TCP, {found.udp_datagrams:,} UDP, "
        f"{found.other_packets:,} other",
    ]
    if found.records:
        lines.append(f"captured     {when(found.first_time)} .. {when(found.last_time)} UTC")
    if found.fault:
        lines.append(f"file         ends early: {found.fault}")
    for stream in found.streams:
        lines.extend(describe(stream))
    lines.extend(f"not read     {why}" for why in found.unread[:20])
    if not found.streams:
        lines.append("streams      no SoupBinTCP or MoldUDP64 found")
    click.echo("\n".join(lines))
    return 0
