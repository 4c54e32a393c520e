"""The documents: the site builds with warnings as errors, in four parts, with a reference page
per public module; every public name has a docstring; the state diagrams and tables are the
sessions' own tables; the README's and the tutorial's examples run as written."""

from __future__ import annotations

import enum
import html
import inspect
import re
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType

import pytest

import soupbintcp
import soupbintcp.check
import soupbintcp.events
import soupbintcp.gateways
import soupbintcp.itch
import soupbintcp.jetstream
import soupbintcp.lowlevel
import soupbintcp.metrics
import soupbintcp.moldudp64
import soupbintcp.ouch
import soupbintcp.store
import soupbintcp.testing
import soupbintcp.venue
from soupbintcp._layers import LAYERS, PUBLIC_FACADES

ROOT = Path(__file__).resolve().parent.parent
PUBLIC = (
    soupbintcp,
    soupbintcp.store,
    soupbintcp.events,
    soupbintcp.lowlevel,
    soupbintcp.itch,
    soupbintcp.ouch,
    soupbintcp.venue,
    soupbintcp.testing,
    soupbintcp.moldudp64,
    soupbintcp.gateways,
    soupbintcp.jetstream,
    soupbintcp.metrics,
    soupbintcp.check,
)
#: Public modules: every public layer but the command line, and the public namespaces.
PUBLIC_MODULES = {f"soupbintcp.{x.name}" for x in LAYERS if x.public and x.name != "cli"} | {
    f"soupbintcp.{name}" for name in PUBLIC_FACADES
}


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The documentation, built once with warnings as errors."""
    out = tmp_path_factory.mktemp("site")
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=180, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return out


def _text(page: Path) -> str:
    """A built page's text, tags dropped and entities decoded."""
    return html.unescape(re.sub(r"<[^>]+>", " ", page.read_text(encoding="utf-8")))


def test_the_api_reference_builds_strictly_with_signatures_and_types(site: Path) -> None:
    assert "TimeOfDay" in _text(site / "api" / "itch" / "index.html")
    client = _text(site / "api" / "client" / "index.html")
    signature = r"connect_async\s*\(\s*address\s*:\s*Addresses\s*,\s*username\s*:\s*str"
    assert re.search(signature, client)
    assert re.search(r"\)\s*->\s*AsyncClient", client)


def test_the_site_has_four_parts_and_the_client_and_server_lead_the_reference() -> None:
    nav = [next(iter(item)) for item in _nav()]
    assert nav[1:5] == ["Tutorial", "How-to guides", "Reference", "Explanation"]
    section = _nav()[3]["Reference"]
    assert isinstance(section, list)
    reference = [next(iter(page.values())) for page in section]
    assert reference[:2] == ["api/client.md", "api/server.md"]


def test_every_public_module_has_a_reference_page() -> None:
    pages = " ".join((ROOT / "docs" / "api").joinpath(p).read_text() for p in _api_pages())
    missing = [m for m in sorted(PUBLIC_MODULES) if f"::: {m}\n" not in pages]
    assert missing == []
    assert "::: soupbintcp.connect_async" in pages  # the top level, split by use


def _nav() -> list[dict[str, object]]:
    config = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    nav_text = config[config.index("nav:") : config.index("\nhooks:")]
    return _parse_nav(nav_text)


def _parse_nav(text: str) -> list[dict[str, object]]:
    """The two-level nav of mkdocs.yml (this file's own shape, without a YAML parser)."""
    items: list[dict[str, object]] = []
    for line in text.splitlines()[1:]:
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        name, _, value = line.strip().removeprefix("- ").partition(": ")
        if line.startswith("  - "):
            items.append({name.rstrip(":"): value or []})
        else:
            section = next(iter(items[-1].values()))
            assert isinstance(section, list)
            section.append({name: value})
    return items


def _api_pages() -> list[str]:
    return [p.name for p in (ROOT / "docs" / "api").glob("*.md")]


@pytest.mark.parametrize("side", ["client", "server"])
def test_the_state_diagrams_are_the_session_tables(site: Path, side: str) -> None:
    """Every state and every change of state of a side's `_RULES` is on the built page, both
    in the diagram and in the table: drawn from the code, not typed."""
    sys.path.insert(0, str(ROOT / "tools"))
    try:
        import mkdocs_hooks
    finally:
        sys.path.remove(str(ROOT / "tools"))
    _, rules = mkdocs_hooks.MACHINES[side]
    page = _text(site / "explanation" / "state-machines" / "index.html")
    for state in mkdocs_hooks.states_of(rules):
        assert f'state "{state.value}" as {state.name.lower()}' in page
        assert f"| {state.value} |" in page or f"{state.value}" in page
    for old, what, new in mkdocs_hooks.transitions(rules):
        if old is not new:
            assert f"{old.name.lower()} --> {new.name.lower()}: " in page
            assert what in page
    architecture = _text(site / "architecture" / "index.html")
    states = mkdocs_hooks.states_of(rules)
    assert f'state "{states[0].value}" as {states[0].name.lower()}' in architecture


def _documented(owner: type, name: str) -> bool:
    """Documented here, or by the base class or protocol whose member this one implements."""
    for klass in owner.__mro__:
        member = vars(klass).get(name)
        if member is None:
            continue
        target = member.fget if isinstance(member, property) else member
        target = getattr(target, "__func__", target)
        if getattr(target, "__doc__", None):
            return True
    protocol = soupbintcp.store.MessageStore
    return owner is not protocol and hasattr(protocol, name) and _documented(protocol, name)


def _owner(klass: type, attr: str) -> type:
    """The class in `klass`'s MRO that defines `attr`."""
    return next(base for base in klass.__mro__ if attr in vars(base))


def _public_members(module: ModuleType) -> list[str]:
    """Public names and the public members of public classes, inherited ones included
    (those our own bases define; Python's and the standard library's are not ours)."""
    names = []
    for name in module.__all__:
        value = getattr(module, name)
        if inspect.isclass(value) or inspect.isfunction(value):
            names.append(f"{module.__name__}.{name}")
        if not inspect.isclass(value) or issubclass(value, enum.Enum):
            continue
        for attr in dir(value):
            if attr.startswith("_"):
                continue
            owner = _owner(value, attr)
            if not owner.__module__.startswith("soupbintcp"):
                continue
            member = vars(owner)[attr]
            if isinstance(member, property | classmethod | staticmethod) or inspect.isfunction(
                member
            ):
                names.append(f"{module.__name__}.{name}.{attr}")
    return names


def _undocumented(module: ModuleType) -> list[str]:
    missing = []
    for dotted in _public_members(module):
        parts = dotted.removeprefix(module.__name__ + ".").split(".")
        value = getattr(module, parts[0])
        if len(parts) == 1:
            if not vars(value).get("__doc__") if inspect.isclass(value) else not value.__doc__:
                missing.append(dotted)
        elif not _documented(value, parts[1]):
            missing.append(dotted)
    return missing


@pytest.mark.parametrize("module", PUBLIC, ids=lambda m: m.__name__)
def test_every_public_name_has_a_docstring(module: ModuleType) -> None:
    assert _undocumented(module) == []


def _python_blocks(markdown: str) -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", markdown, flags=re.S | re.M)


def test_the_readme_server_and_blocking_client_examples_run_as_written(tmp_path: Path) -> None:
    """The README's server example serves, its blocking client example receives from it: the
    code as printed, but for the port (7000 may be taken here) swapped for a free one."""
    blocks = _python_blocks((ROOT / "README.md").read_text(encoding="utf-8"))
    server_code = next(b for b in blocks if "soupbintcp.serve(" in b)
    client_code = next(b for b in blocks if "soupbintcp.connect(" in b)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-c", server_code.replace("7000", str(port))],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and server.poll() is None:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.05)
        client = subprocess.run(
            [sys.executable, "-c", client_code.replace("7000", str(port))],
            cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
    finally:
        server.kill()
        _, server_err = server.communicate()
    assert client.returncode == 0, client.stderr + server_err
    assert client.stdout == "1 b'hello'\n"
    assert (tmp_path / "feed.soup").exists()


def test_the_tutorial_runs_as_written(tmp_path: Path) -> None:
    """The tutorial's server serves; its blocking client gets the four messages and its
    resuming client gets message 3: the code as printed, on a free port instead of 7000."""
    blocks = _python_blocks((ROOT / "docs" / "tutorial.md").read_text(encoding="utf-8"))
    server_code = next(b for b in blocks if "soupbintcp.serve(" in b)
    first, resume = (b for b in blocks if "soupbintcp.connect(" in b)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-c", server_code.replace("7000", str(port))],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and server.poll() is None:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.05)
        outputs = [
            subprocess.run(
                [sys.executable, "-c", code.replace("7000", str(port))],
                cwd=tmp_path,
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
            for code in (first, resume)
        ]
    finally:
        server.kill()
        _, server_err = server.communicate()
    for done in outputs:
        assert done.returncode == 0, done.stderr + server_err
    assert outputs[0].stdout == "1 b'hello'\n2 b'a'\n3 b'b'\n4 b'c'\n"
    assert outputs[1].stdout == "3\n"
