"""The package's folders are its layers: each may import only from the layers below it.

    _errors, _version, _speedups (0: shared by every layer; _speedups is the optional
                                  compiled twin of wire loops and imports nothing of ours)
    _wire | itch | ouch          (1: packets, the frame walk, the decoder | ITCH 5.0 decoding |
                                  OUCH 5.0 messages)
    _session | store             (2: sans-IO state machines | the sequenced log; not each other)
    _client | _server | moldudp64 (3: drivers; not each other)
    gateways                     (4: SoupBinTCP <-> MoldUDP64, over both kinds of driver)
    jetstream                    (4: gateways on a replicated log, on the public API)
    metrics                      (4: Prometheus metrics over the server, clients, MoldUDP64)
    cli                          (5: only the public API: ``soupbintcp`` and ``soupbintcp.store``)

The facade ``soupbintcp/__init__.py`` and ``__main__`` re-export and may import anything.
Optional layers added later (speedups, integrations) register their rank here.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = "soupbintcp"
SOURCE_ROOT = Path(__file__).resolve().parent.parent / "src" / PACKAGE

RANKS: dict[str, int] = {
    "_errors": 0,
    "_version": 0,
    "_speedups": 0,
    "_wire": 1,
    "itch": 1,
    # OUCH 5.0 order-entry messages: a codec like ITCH, stdlib only.
    "ouch": 1,
    "_session": 2,
    "store": 2,
    "_client": 3,
    "_server": 3,
    "moldudp64": 3,
    "integrations": 3,
    # Gateways join two layer-3 drivers (the SoupBinTCP server and MoldUDP64), which may
    # not import each other: only a layer above both may.
    "gateways": 4,
    "jetstream": 4,
    # Operations: metrics over the server, the clients and MoldUDP64 (layer 3 drivers).
    "metrics": 4,
    "cli": 5,
}
FACADES = {"__init__", "__main__"}
# What the command line may import of its own package: the public API only.
CLI_ALLOWED = {
    PACKAGE,
    f"{PACKAGE}.store",
    f"{PACKAGE}.moldudp64",
    f"{PACKAGE}.integrations",
    f"{PACKAGE}.itch",
    f"{PACKAGE}.ouch",
    f"{PACKAGE}.gateways",
    f"{PACKAGE}.jetstream",
    f"{PACKAGE}.metrics",
}


def _layer_of(module: str) -> str | None:
    """The top-level folder of a dotted module name inside the package (None: outside it)."""
    parts = module.split(".")
    if parts[0] != PACKAGE:
        return None
    if len(parts) == 1:
        return "__init__"
    return parts[1]


def _imported_modules(module: str, is_package: bool, source: str) -> list[tuple[int, str]]:
    """Absolute names of all that ``source`` (the module ``module``) imports, with line numbers."""
    tree = ast.parse(source)
    package_parts = module.split(".") if is_package else module.split(".")[:-1]
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package_parts[: len(package_parts) - node.level + 1]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            found.append((node.lineno, target))
            # ``from . import x`` and ``from .. import x`` name modules too.
            if node.module is None:
                found.extend((node.lineno, f"{target}.{alias.name}") for alias in node.names)
    return found


def violations(module: str, is_package: bool, source: str) -> list[str]:
    """Each import in ``source`` that crosses a layer the wrong way, as a readable line."""
    own = _layer_of(module)
    if own is None or own in FACADES:
        return []
    if own not in RANKS:
        return [f"{module}: folder {own!r} has no rank in tests/test_layering.py"]
    problems: list[str] = []
    for lineno, target in _imported_modules(module, is_package, source):
        other = _layer_of(target)
        if other is None:
            continue
        if own == "cli":
            if other != "cli" and target not in CLI_ALLOWED:
                problems.append(f"{module}:{lineno}: the CLI imports {target}, not the public API")
            continue
        if other == own:
            continue
        if other in FACADES or other not in RANKS or RANKS[other] >= RANKS[own]:
            problems.append(
                f"{module}:{lineno}: {own} (layer {RANKS[own]}) imports {target} "
                f"(layer {RANKS.get(other, '?')}): only lower layers may be imported"
            )
    return problems


def _package_modules() -> list[tuple[str, bool, Path]]:
    modules = []
    for path in sorted(SOURCE_ROOT.rglob("*.py")):
        relative = path.relative_to(SOURCE_ROOT.parent).with_suffix("")
        parts = list(relative.parts)
        is_package = parts[-1] == "__init__"
        if is_package:
            parts = parts[:-1]
        modules.append((".".join(parts), is_package, path))
    return modules


def test_no_module_imports_upward_or_sideways() -> None:
    problems = [
        line
        for module, is_package, path in _package_modules()
        for line in violations(module, is_package, path.read_text(encoding="utf-8"))
    ]
    assert problems == []


def test_every_folder_has_a_rank() -> None:
    folders = {p.name for p in SOURCE_ROOT.iterdir() if p.is_dir() and p.name != "__pycache__"}
    modules = {p.stem for p in SOURCE_ROOT.glob("*.py")} - FACADES
    assert (folders | modules) - set(RANKS) == set()


@pytest.mark.parametrize(
    ("module", "source"),
    [
        ("soupbintcp._wire._framing", "from .._session._client import ClientSession\n"),
        ("soupbintcp._session._client", "from ..store import FileStore\n"),
        ("soupbintcp.store._file", "from .._session import _events\n"),
        ("soupbintcp._client._async", "from .._server._server import Server\n"),
        ("soupbintcp._server._server", "import soupbintcp._client._async\n"),
        ("soupbintcp._wire._packets", "from soupbintcp import Message\n"),
        ("soupbintcp.cli._tail", "from soupbintcp._client._async import AsyncClient\n"),
        ("soupbintcp.cli._tail", "from .. import _wire\n"),
    ],
)
def test_the_check_catches_an_upward_or_sideways_import(module: str, source: str) -> None:
    assert violations(module, False, source) != []


@pytest.mark.parametrize(
    ("module", "source"),
    [
        ("soupbintcp._session._client", "from .._wire._framing import PacketDecoder\n"),
        ("soupbintcp.store._file", "from .._wire import frame_walk\nfrom .._errors import X\n"),
        ("soupbintcp._server._server", "from ..store import MessageStore\nfrom ._auth import A\n"),
        ("soupbintcp.cli._tail", "import soupbintcp\nfrom soupbintcp.store import FileStore\n"),
        ("soupbintcp.cli._tail", "from ._common import stderr\n"),
    ],
)
def test_the_check_allows_imports_from_below(module: str, source: str) -> None:
    assert violations(module, False, source) == []
