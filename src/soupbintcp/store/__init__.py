"""Message stores: the journals a SoupBinTCP server numbers its messages in and replays from.

Layer 2, beside the sessions, over the wire layer only. `MessageStore` is the contract;
`MemoryStore` keeps messages in memory (tests, demos) and `FileStore` in a durable
append-only journal whose records are the Sequenced Data packets exactly as on the wire.
`JournalReader` (or `FileStore.open_read_only`) reads a journal while a server writes it and
`verify()`s it. `import_binaryfile` / `export_binaryfile` / `BinaryFileWriter` convert to and
from Nasdaq's BinaryFILE format of ITCH 5.0 files.
"""

from ._binaryfile import BinaryFileWriter, export_binaryfile, import_binaryfile, iter_binaryfile
from ._file import DEFAULT_INDEX_INTERVAL, FileStore
from ._memory import MemoryStore
from ._protocol import Durability, EndsSession, JournalCorruptError, MessageStore, StoreError
from ._reader import JournalReader, JournalReport

__all__ = [
    "DEFAULT_INDEX_INTERVAL",
    "BinaryFileWriter",
    "Durability",
    "EndsSession",
    "FileStore",
    "JournalCorruptError",
    "JournalReader",
    "JournalReport",
    "MemoryStore",
    "MessageStore",
    "StoreError",
    "export_binaryfile",
    "import_binaryfile",
    "iter_binaryfile",
]
