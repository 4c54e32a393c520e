"""The public surface: a small top level, `soupbintcp.lowlevel` and `soupbintcp.events` for
the rest, one place per name, and the 0.1 names still resolving with a DeprecationWarning."""

from __future__ import annotations

import inspect
import warnings

import pytest

import soupbintcp
import soupbintcp._server._events as server_events
import soupbintcp.events
import soupbintcp.lowlevel
from soupbintcp.lowlevel import Packet

NAMESPACES = (soupbintcp, soupbintcp.lowlevel, soupbintcp.events)


def test_the_top_level_stays_small() -> None:
    # 90 names before issue 23, 45 after: a new top-level name is what every application
    # needs; anything else belongs in soupbintcp.lowlevel, soupbintcp.events or a subpackage.
    assert len(soupbintcp.__all__) <= 50


def test_each_name_has_one_public_place() -> None:
    seen: dict[str, str] = {}
    for module in NAMESPACES:
        for name in module.__all__:
            assert name not in seen, f"{name} is in {seen[name]} and {module.__name__}"
            seen[name] = module.__name__


@pytest.mark.parametrize("module", NAMESPACES, ids=lambda m: m.__name__)
def test_every_exported_name_resolves_without_a_warning(module: object) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for name in module.__all__:  # type: ignore[attr-defined]
            getattr(module, name)


@pytest.mark.parametrize("old", sorted(soupbintcp.DEPRECATED_NAMES))
def test_a_deprecated_name_is_its_new_object_with_a_warning(old: str) -> None:
    module, new = soupbintcp.DEPRECATED_NAMES[old]
    assert old not in soupbintcp.__all__
    with pytest.warns(DeprecationWarning, match=rf"soupbintcp\.{old} .* use {module}\.{new}"):
        value = getattr(soupbintcp, old)
    namespace = soupbintcp.lowlevel if module.endswith("lowlevel") else soupbintcp.events
    assert new in namespace.__all__
    assert value is getattr(namespace, new)


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'NoSuchThing'"):
        _ = soupbintcp.NoSuchThing


def test_packets_are_named_as_packets() -> None:
    packets = [
        name
        for name in soupbintcp.lowlevel.__all__
        if inspect.isclass(value := getattr(soupbintcp.lowlevel, name))
        and issubclass(value, Packet)
        and value is not Packet
    ]
    assert len(packets) == 10  # the spec's ten packet types
    assert all(name.endswith("Packet") for name in packets)


def test_every_server_event_is_in_the_events_namespace() -> None:
    kinds = {
        name
        for name, value in vars(server_events).items()
        if inspect.isclass(value)
        and issubclass(value, server_events.ServerEvent)
        and value.__module__ == server_events.__name__
        and name == value.__name__  # not a 0.1 alias
    }
    assert kinds - set(soupbintcp.events.__all__) == set()
