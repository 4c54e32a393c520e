"""The package's folders are its layers: each may import only from the layers below it.

The map (folder -> rank, and what each offers) is declared once, in
``src/soupbintcp/_layers.py``; this test reads it, checks every import against it, checks that
the drawings in README.md and docs/architecture.md are the map's, and tests its own check.
The facades (``soupbintcp/__init__.py``, ``__main__``) re-export and may import anything.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

from soupbintcp._layers import DOCUMENTS, FACADES, LAYERS, PUBLIC_FACADES, RANKS, block

PACKAGE = "soupbintcp"
SOURCE_ROOT = Path(__file__).resolve().parent.parent / "src" / PACKAGE
ROOT = SOURCE_ROOT.parent.parent
CLI_RANK = RANKS["cli"]
# What the command line may import of its own package: the public API only.
CLI_ALLOWED = (
    {PACKAGE}
    | {f"{PACKAGE}.{layer.name}" for layer in LAYERS if layer.public and layer.rank < CLI_RANK}
    | {f"{PACKAGE}.{facade}" for facade in PUBLIC_FACADES}
)


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
        return [f"{module}: folder {own!r} has no rank in src/soupbintcp/_layers.py (LAYERS)"]
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


def test_every_layer_in_the_map_exists() -> None:
    missing = [
        layer.name
        for layer in LAYERS
        if not (SOURCE_ROOT / (f"{layer.name}.py" if layer.module else layer.name)).exists()
    ]
    assert missing == []
    assert len(RANKS) == len(LAYERS), "a folder is in the map twice"


@pytest.mark.parametrize("document", DOCUMENTS)
def test_the_documents_draw_the_map(document: str) -> None:
    text = (ROOT / document).read_text(encoding="utf-8")
    assert block() in text, f"{document}: run `python -m soupbintcp._layers` to redraw the map"


def _cli_command_modules() -> set[str]:
    """The command line's command modules: those that define a click command or group."""
    return {
        f"{PACKAGE}.cli.{path.stem}"
        for path in (SOURCE_ROOT / "cli").glob("_*.py")
        if "@click.command(" in (text := path.read_text(encoding="utf-8"))
        or "@click.group(" in text
    } - {f"{PACKAGE}.cli._app"}


def cli_sideways(module: str, source: str, commands: set[str]) -> list[str]:
    """Each import by a command line module (other than `_app`, which assembles them) of a
    command module: commands share helper modules, never each other."""
    if module in {f"{PACKAGE}.cli._app", f"{PACKAGE}.cli"}:
        return []
    return [
        f"{module}:{lineno}: imports the command module {target}; share through a helper module"
        for lineno, target in _imported_modules(module, False, source)
        if target in commands and target != module
    ]


def test_cli_commands_do_not_import_each_other() -> None:
    commands = _cli_command_modules()
    assert f"{PACKAGE}.cli._serve" in commands
    problems = [
        line
        for module, _, path in _package_modules()
        if module.startswith(f"{PACKAGE}.cli.")
        for line in cli_sideways(module, path.read_text(encoding="utf-8"), commands)
    ]
    assert problems == []


def test_the_cli_check_catches_a_command_importing_another() -> None:
    commands = {f"{PACKAGE}.cli._serve", f"{PACKAGE}.cli._mold"}
    bad = "from ._serve import DEFAULT_SESSION\n"
    assert cli_sideways(f"{PACKAGE}.cli._mold", bad, commands) != []
    assert cli_sideways(f"{PACKAGE}.cli._mold", "from ._common import plural\n", commands) == []


def _imported_names(layer: str) -> dict[str, set[str]]:
    """Each name imported from inside `layer` by a module outside it -> the importing modules
    (submodules of the layer itself, and the compiled module's names, are not names it offers)."""
    found: dict[str, set[str]] = {}
    for module, is_package, path in _package_modules():
        if _layer_of(module) == layer:
            continue
        package_parts = module.split(".") if is_package else module.split(".")[:-1]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.ImportFrom):
                continue
            if node.level:
                base = package_parts[: len(package_parts) - node.level + 1]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            if _layer_of(target) != layer:
                continue
            inner = target.split(".")[2:]
            if inner and not SOURCE_ROOT.joinpath(layer, *inner).with_suffix(".py").exists():
                continue  # the compiled module (_speedups._core): its names are its own
            for alias in node.names:
                if not (SOURCE_ROOT / layer / f"{alias.name}.py").exists():
                    found.setdefault(alias.name, set()).add(module)
    return found


PRIVATE_FOLDERS = [x.name for x in LAYERS if not x.public and not x.module]


@pytest.mark.parametrize("layer", PRIVATE_FOLDERS, ids=str)
def test_a_private_layer_exports_exactly_what_the_others_use(layer: str) -> None:
    """A private folder's ``__all__`` is what the layers above (and the facades) import from it:
    nothing they use is missing from it, nothing in it goes unused."""
    package = importlib.import_module(f"{PACKAGE}.{layer}")
    used = _imported_names(layer)
    exported = set(getattr(package, "__all__", ()))
    missing = sorted(
        f"{name} (by {', '.join(sorted(used[name]))})" for name in used.keys() - exported
    )
    assert missing == [], f"add to {layer}/__init__.py (import and __all__)"
    assert sorted(exported - used.keys()) == [], f"{layer}/__init__.py exports what no one uses"


@pytest.mark.parametrize("layer", [x.name for x in LAYERS if not x.module], ids=str)
def test_each_layer_says_what_it_offers(layer: str) -> None:
    """Its ``__init__`` docstring says what it offers (more than the folder's name), and its
    ``__all__`` names only what it really has."""
    package = importlib.import_module(f"{PACKAGE}.{layer}") if layer != "jetstream" else None
    init = (SOURCE_ROOT / layer / "__init__.py").read_text(encoding="utf-8")
    doc = ast.get_docstring(ast.parse(init)) or ""
    assert len(doc.split()) >= 8, f"{layer}/__init__.py: say what the layer offers"
    if package is not None:
        for name in getattr(package, "__all__", []):
            assert hasattr(package, name), f"{layer}.__all__ names {name}, which it lacks"


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
        ("soupbintcp.gateways._gateways", "from ..jetstream import JetStreamGateway\n"),
        ("soupbintcp.nofolder._x", "import soupbintcp\n"),
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
