"""The journal file: its header, creating one, and reading one's header back. POSIX only.

Journal file format (all integers big-endian)::

    offset  size  field
         0     8  magic b"SBTCPJNL"
         8     2  format version: 2 (1: the same, without checksums; still read, and
                  upgraded to 2 when a writer opens it; 3: a first sequence number
                  follows the header, see below)
        10     2  reserved, zero
        12    10  session id: the spec's Session field (ASCII, left-padded with spaces;
                  all spaces when the journal records no session id)
        22     8  journal id: random bytes chosen at creation; the side index names it
        30     2  flags: bit 0 set once the session ended (End of Session was sent; nothing
                  is appended after it, and a server restarted on the journal serves the
                  rest and then End of Session again); other bits zero
        32     -  records: Sequenced Data frames exactly as on the wire, back to back:
                  2-byte length of what follows, b"S", payload. Record n is message n.

Format 3 is format 2 for a journal whose first message is not number 1 (a capture that
joined the session late: `journal import --pcap`). Between the header and the records::

        32     8  first sequence number N (N >= 1): record n is message N + n - 1
        40     -  records, as above

A journal whose first message is 1 is still written as format 2, byte for byte what older
versions write and read; an older version refuses a format 3 journal (an unknown version)
rather than number its messages from 1. The checksums' blocks start at offset 32 in every
format, so in format 3 the first block covers the first sequence number too.

Format 2 keeps a CRC-32 of every 4 KiB block of the records in the side file
``<journal>.crc`` (`_checksums`): the records stay exactly the wire bytes.

Because records are the wire bytes, replaying a run of messages is one `os.pread` of the
file, written straight to the socket. The side index is `_index`; opening and cutting a torn
tail is `_recovery`; the store over all of it is `FileStore`.
"""

from __future__ import annotations

import os
from typing import Final, NamedTuple

from .._errors import RemoteProtocolError
from .._wire._fields import parse_session, session_field
from ._protocol import StoreError

__all__ = [
    "FIRST_HEADER_SIZE",
    "HEADER_SIZE",
    "MAGIC",
    "MAX_SEQUENCE",
    "VERSION",
    "VERSION_FIRST",
    "Header",
    "check_first_sequence",
    "create_journal",
    "fdatasync",
    "read_header",
    "record_session_end",
    "set_version",
]

MAGIC: Final = b"SBTCPJNL"
VERSION: Final = 2
#: Format 2 with a first sequence number after the header.
VERSION_FIRST: Final = 3
#: Versions this code reads: 1 had no checksums, 3 has a first sequence number.
READABLE: Final = (1, 2, 3)
HEADER_SIZE: Final = 32
#: Where the records start in format 3, after the first sequence number.
FIRST_HEADER_SIZE: Final = HEADER_SIZE + 8
#: The highest sequence number: the 20-digit Login Accepted field holds more, MoldUDP64's
#: 8-byte field this much.
MAX_SEQUENCE: Final = (1 << 64) - 1
_SESSION_AT: Final = 12
_ID_AT: Final = 22
_FLAGS_AT: Final = 30
_ENDED: Final = 1

fdatasync = getattr(os, "fdatasync", os.fsync)


class Header(NamedTuple):
    """What a journal's header records."""

    session_id: str | None
    journal_id: bytes
    #: The session ended (flags bit 0).
    ended: bool = False
    #: The format version: 1 has no checksums, 3 has a first sequence number.
    version: int = VERSION
    #: The sequence number of the first record (1 unless the format is 3).
    first_sequence: int = 1

    @property
    def records_at(self) -> int:
        """The file offset of the first record."""
        return FIRST_HEADER_SIZE if self.version == VERSION_FIRST else HEADER_SIZE


def read_header(fd: int, path: str) -> Header:
    """The header of the journal open on `fd`; `StoreError` if it is not a journal's."""
    header = os.pread(fd, HEADER_SIZE, 0)
    if len(header) < HEADER_SIZE or header[:8] != MAGIC:
        raise StoreError(f"{path} is not a soupbintcp journal")
    version = int.from_bytes(header[8:10], "big")
    if version not in READABLE:
        raise StoreError(
            f"journal {path} has format version {version}: this soupbintcp reads versions "
            f"{READABLE[0]} to {READABLE[-1]} (a newer soupbintcp wrote it?)"
        )
    try:
        recorded = parse_session(header[_SESSION_AT:_ID_AT]) or None
    except RemoteProtocolError as exc:
        raise StoreError(f"journal {path} has a bad session id field: {exc}") from None
    flags = int.from_bytes(header[_FLAGS_AT : _FLAGS_AT + 2], "big")
    first = 1
    if version == VERSION_FIRST:
        field = os.pread(fd, 8, HEADER_SIZE)
        first = int.from_bytes(field, "big") if len(field) == 8 else 0
        if first < 1:
            raise StoreError(
                f"journal {path} has format 3 and no valid first sequence number "
                f"(bytes {HEADER_SIZE} to {FIRST_HEADER_SIZE}: {field.hex() or 'missing'})"
            )
    return Header(recorded, header[_ID_AT : _ID_AT + 8], bool(flags & _ENDED), version, first)


def set_version(fd: int, path: str) -> None:
    """Mark the journal open for writing on `fd` as of the current format (its checksums
    are written), durably."""
    try:
        os.pwrite(fd, VERSION.to_bytes(2, "big"), 8)
        fdatasync(fd)
    except OSError as exc:
        raise StoreError(f"cannot upgrade journal {path}: {exc}") from exc


def record_session_end(fd: int, path: str) -> None:
    """Set the header's session-ended flag on the journal open for writing on `fd`, and
    make it durable (it is written once per session: the cost does not matter)."""
    try:
        os.pwrite(fd, _ENDED.to_bytes(2, "big"), _FLAGS_AT)
        fdatasync(fd)
    except OSError as exc:
        raise StoreError(f"cannot record the end of the session in {path}: {exc}") from exc


def check_first_sequence(first: int) -> None:
    """`StoreError` for a first sequence number that cannot be one."""
    if not isinstance(first, int) or not 1 <= first <= MAX_SEQUENCE:
        raise StoreError(f"a first sequence number must be 1 to {MAX_SEQUENCE}, not {first!r}")


def create_journal(
    path: str, session_id: str | None, *, fsync: bool, first_sequence: int = 1
) -> None:
    """Create an empty journal at `path` whose first message will be `first_sequence`
    (format 3 unless that is 1), unless one appeared there meanwhile."""
    # Written aside and linked into place, so a journal never exists without its header,
    # and one that another process created meanwhile is never replaced.
    check_first_sequence(first_sequence)
    shifted = first_sequence != 1
    header = bytearray(FIRST_HEADER_SIZE if shifted else HEADER_SIZE)
    header[:8] = MAGIC
    header[8:10] = (VERSION_FIRST if shifted else VERSION).to_bytes(2, "big")
    if shifted:
        header[HEADER_SIZE:FIRST_HEADER_SIZE] = first_sequence.to_bytes(8, "big")
    header[_SESSION_AT:_ID_AT] = session_field(session_id or "")
    header[_ID_AT : _ID_AT + 8] = os.urandom(8)
    tmp = f"{path}.{os.getpid()}.tmp"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            os.write(fd, header)
            if fsync:
                os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass  # created meanwhile: open that one
        finally:
            os.unlink(tmp)
        if fsync:
            dfd = os.open(os.path.dirname(os.path.abspath(path)), os.O_RDONLY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)
    except OSError as exc:
        raise StoreError(f"cannot create journal {path}: {exc}") from exc
