"""BinaryFILE (Nasdaq's ITCH 5.0 file format) import and export."""

from __future__ import annotations

import gzip
import io
import random
from collections.abc import Iterator
from pathlib import Path

import pytest

from soupbintcp import LocalProtocolError
from soupbintcp.store import (
    BinaryFileWriter,
    FileStore,
    MemoryStore,
    MessageStore,
    StoreError,
    export_binaryfile,
    import_binaryfile,
    iter_binaryfile,
)


def binaryfile(messages: list[bytes]) -> bytes:
    return b"".join(len(m).to_bytes(2, "big") + m for m in messages)


def itch_like(n: int, seed: int = 7) -> list[bytes]:
    """Messages the shape of ITCH 5.0: a type letter and a body, some edge sizes."""
    rng = random.Random(seed)
    out = [
        rng.choice(b"SRHAFEXDUPQ").to_bytes(1, "big") + rng.randbytes(rng.randint(10, 49))
        for _ in range(n)
    ]
    out[n // 3] = b""  # a zero-length record is legal in the format
    out[n // 2] = b"\xaa" * 65534  # the largest a Sequenced Data packet carries
    return out


@pytest.fixture(params=["memory", "file"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[MessageStore]:
    s: MessageStore = (
        MemoryStore() if request.param == "memory" else FileStore(tmp_path / "j", index_interval=16)
    )
    yield s
    s.close()


@pytest.mark.parametrize("batch", [2, 7, 1000, 1 << 20])
def test_round_trip_is_byte_exact(store: MessageStore, tmp_path: Path, batch: int) -> None:
    messages = itch_like(3000)
    source = tmp_path / "in.bin"
    source.write_bytes(binaryfile(messages))
    assert import_binaryfile(source, store, batch=batch) == 3000
    assert store.count == 3000
    assert store.read(1, 3000) == messages
    assert export_binaryfile(store, tmp_path / "out.bin", batch=batch) == 3000
    assert (tmp_path / "out.bin").read_bytes() == source.read_bytes()


def test_streams_and_str_paths(store: MessageStore, tmp_path: Path) -> None:
    messages = itch_like(500)
    data = binaryfile(messages)
    assert import_binaryfile(io.BytesIO(data), store) == 500
    out = io.BytesIO()
    assert export_binaryfile(store, out) == 500
    assert out.getvalue() == data
    assert not out.closed  # a stream we were given stays open
    path = tmp_path / "out.bin"
    export_binaryfile(store, str(path))
    assert path.read_bytes() == data
    assert list(iter_binaryfile(str(path))) == messages


def test_gzipped_source(store: MessageStore, tmp_path: Path) -> None:
    messages = itch_like(200)
    path = tmp_path / "day.bin.gz"
    with gzip.open(path, "wb") as f:
        f.write(binaryfile(messages))
    with gzip.open(path, "rb") as f:
        assert import_binaryfile(f, store) == 200  # type: ignore[arg-type]
    assert store.read(1, 200) == messages


def test_import_appends_after_existing_messages(store: MessageStore) -> None:
    store.append(b"first")
    assert import_binaryfile(io.BytesIO(binaryfile([b"a", b"b"])), store) == 2
    assert store.read(1, 5) == [b"first", b"a", b"b"]


def test_empty_file(store: MessageStore) -> None:
    assert import_binaryfile(io.BytesIO(b""), store) == 0
    assert list(iter_binaryfile(io.BytesIO(b""))) == []
    out = io.BytesIO()
    assert export_binaryfile(store, out) == 0
    assert out.getvalue() == b""


@pytest.mark.parametrize(
    ("tail", "detail"),
    [
        (b"\x00", "a partial length field"),
        (b"\x00\x09abc", "3 of 9 bytes"),
        (b"\x00\x01", "0 of 1"),
    ],
)
@pytest.mark.parametrize("batch", [3, 1 << 20])
def test_truncated_final_record(store: MessageStore, tail: bytes, detail: str, batch: int) -> None:
    messages = itch_like(100)
    data = binaryfile(messages)
    with pytest.raises(StoreError, match=f"offset {len(data)}: {detail}"):
        import_binaryfile(io.BytesIO(data + tail), store, batch=batch)
    assert store.count == 100  # everything before it was imported
    assert store.read(1, 100) == messages
    with pytest.raises(StoreError, match=f"offset {len(data)}"):
        list(iter_binaryfile(io.BytesIO(data + tail), batch=batch))


def test_record_too_big_for_a_packet(store: MessageStore) -> None:
    with pytest.raises(LocalProtocolError):
        import_binaryfile(io.BytesIO(binaryfile([b"ok", b"x" * 65535])), store)


def test_iter_binaryfile(tmp_path: Path) -> None:
    messages = itch_like(1000)
    path = tmp_path / "in.bin"
    path.write_bytes(binaryfile(messages))
    assert list(iter_binaryfile(path)) == messages
    assert list(iter_binaryfile(path, batch=5)) == messages
    with pytest.raises(ValueError, match="batch"):
        list(iter_binaryfile(path, batch=1))


def test_export_a_range(store: MessageStore) -> None:
    messages = itch_like(300)
    store.append_many(messages)
    out = io.BytesIO()
    assert export_binaryfile(store, out, start=101, end=200, batch=64) == 100
    assert out.getvalue() == binaryfile(messages[100:200])
    out = io.BytesIO()
    assert export_binaryfile(store, out, start=250, end=10_000) == 51  # stops at the end
    assert out.getvalue() == binaryfile(messages[249:])
    assert export_binaryfile(store, io.BytesIO(), start=301) == 0
    assert export_binaryfile(store, io.BytesIO(), start=5, end=4) == 0
    with pytest.raises(LocalProtocolError):
        export_binaryfile(store, io.BytesIO(), start=0)


def test_export_only_durable_messages(tmp_path: Path) -> None:
    from soupbintcp.store import Durability

    with FileStore(tmp_path / "j", durability=Durability.TIMER) as store:
        store.append_many([b"a", b"b"])
        store.flush()
        store.append(b"c")
        out = io.BytesIO()
        assert export_binaryfile(store, out) == 2
        assert out.getvalue() == binaryfile([b"a", b"b"])


def test_writer_resumes_and_cuts_a_torn_record(tmp_path: Path) -> None:
    path = tmp_path / "feed.bin"
    with BinaryFileWriter(path) as writer:
        assert writer.count == 0
        writer.write([b"one", b"", b"three"])
    with path.open("ab") as f:
        f.write(b"\x00\x09torn")  # killed in the middle of a record
    with BinaryFileWriter(path, batch=3) as writer:  # small reads: records span them
        assert writer.count == 3
        assert writer.cut_bytes == 6
        writer.write([b"four"])
    assert list(iter_binaryfile(path)) == [b"one", b"", b"three", b"four"]


def test_writer_refuses_a_record_too_long(tmp_path: Path) -> None:
    with BinaryFileWriter(tmp_path / "f.bin") as writer, pytest.raises(LocalProtocolError):
        writer.write([b"x" * 65536])
    assert (tmp_path / "f.bin").read_bytes() == b""
