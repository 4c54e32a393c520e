"""Types of the compiled module `_core.pyx` (for mypy --strict; the .pyx is the source)."""

from array import array
from collections.abc import Iterator
from typing import Any, Generic, TypeVar

_T = TypeVar("_T", bound=tuple[Any, ...])

Buffer = bytes | bytearray | memoryview

def split_sequenced(buf: Buffer, pos: int, limit: int, omega: bool) -> tuple[list[bytes], int]: ...
def sequenced_frames(
    buf: Buffer, pos: int, limit: int, omega: bool
) -> tuple[array[int], array[int], int]: ...
def mold_blocks(data: Buffer, count: int, start: int) -> tuple[list[bytes], int]: ...
def walk(
    buf: Buffer,
    pos: int,
    count: int,
    kind: int,
    starts: array[int] | None,
    number: int,
    mark: int,
    every: int,
    base: int,
) -> tuple[int, int, int, int]: ...
def frame_payloads(buf: Buffer, count: int, pos: int, typed: bool) -> list[bytes]: ...

class MessageCursor(Generic[_T], Iterator[_T]):
    def __init__(self, cls: type[_T], first: int, payloads: list[bytes]) -> None: ...
    def __next__(self) -> _T: ...
    def __length_hint__(self) -> int: ...
    @property
    def next_sequence(self) -> int: ...
    def rest(self) -> list[bytes]: ...
