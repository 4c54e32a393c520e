"""The documents: the API reference builds with warnings as errors, every public name has a
docstring, and the README's examples run as written."""

from __future__ import annotations

import enum
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
import soupbintcp.gateways
import soupbintcp.itch
import soupbintcp.metrics
import soupbintcp.moldudp64
import soupbintcp.ouch
import soupbintcp.store
import soupbintcp.testing
import soupbintcp.venue

ROOT = Path(__file__).resolve().parent.parent
PUBLIC = (
    soupbintcp,
    soupbintcp.store,
    soupbintcp.itch,
    soupbintcp.ouch,
    soupbintcp.venue,
    soupbintcp.testing,
    soupbintcp.moldudp64,
    soupbintcp.gateways,
    soupbintcp.metrics,
    soupbintcp.check,
)


def test_the_api_reference_builds_strictly(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    page = (tmp_path / "api" / "itch" / "index.html").read_text(encoding="utf-8")
    assert "TimeOfDay" in page


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
