"""Message stores: the journals a SoupBinTCP server numbers its messages in and replays from.

Layer 4. `MessageStore` is the contract; `MemoryStore` keeps messages in memory (tests,
demos) and `FileStore` in a durable append-only journal whose records are the Sequenced Data
packets exactly as on the wire. `import_binaryfile` / `export_binaryfile` convert to and from
Nasdaq's BinaryFILE format of ITCH 5.0 files.
"""

from ._binaryfile import export_binaryfile, import_binaryfile, iter_binaryfile
from ._file import DEFAULT_INDEX_INTERVAL, FileStore
from ._memory import MemoryStore
from ._protocol import Durability, MessageStore, StoreError

__all__ = [
    "DEFAULT_INDEX_INTERVAL",
    "Durability",
    "FileStore",
    "MemoryStore",
    "MessageStore",
    "StoreError",
    "export_binaryfile",
    "import_binaryfile",
    "iter_binaryfile",
]
