"""mkdocs hook: the session state diagrams and tables, drawn from the sessions' own tables.

A page asks for them with a marker line, ``<!-- state machine: client -->`` or ``<!-- state
machine: server -->``; the hook puts in its place a Mermaid state diagram and the transition
table, both generated at build time from `_RULES` in `soupbintcp._session._client` and
`_server` (as h11 draws its diagram from its own tables), so they cannot drift from the code.
The build fails if a marker names no machine, and `tests/test_docs.py` checks that every state
and transition of the tables is on the built page.
"""

from __future__ import annotations

import enum
import html
import re
from typing import Any

from soupbintcp._session import _client, _server
from soupbintcp._session._core import Rules
from soupbintcp._wire._packets import PacketType

MACHINES: dict[str, tuple[str, Rules[Any]]] = {
    "client": ("ClientSession", _client._RULES),
    "server": ("ServerConnectionState", _server._RULES),
}
MARKER = re.compile(r"^<!-- state machine: (\w+) -->$", re.M)


def packet_name(packet_type: int) -> str:
    """The specification's name of a packet type: ``Login Accepted``, ``End of Session``."""
    words = PacketType(packet_type).name.replace("_", " ").title()
    return words.replace(" Of ", " of ")


def state_name(state: enum.Enum) -> str:
    return str(state.value)


def _node(state: enum.Enum) -> str:
    return state.name.lower()


def states_of(rules: Rules[Any]) -> list[enum.Enum]:
    """Every state of a side, in its enum's order (the first is where a machine starts)."""
    kind: type[enum.Enum] = type(rules.error)
    return list(kind)


def transitions(rules: Rules[Any]) -> list[tuple[Any, str, Any]]:
    """Every (from, what, to) of a side's tables, in the tables' order: packets received,
    calls, timer expiry, connection loss. Self-loops are kept (a packet legal in a state)."""
    out: list[tuple[Any, str, Any]] = []
    for state, row in rules.receive.items():
        out.extend((state, f"receive {packet_name(t)}", new) for t, new in row.items())
    for call, row in rules.send.items():
        out.extend((state, call.replace("_", " ") + "()", new) for state, new in row.items())
    for state, (timer, new) in rules.timers.items():
        out.append((state, f"{timer.name.lower()} timer expires", new))
    out.extend((state, "connection lost", new) for state, new in rules.lost.items())
    return out


def mermaid(rules: Rules[Any]) -> str:
    """A Mermaid state diagram of the changes of state (self-loops are in the table)."""
    states = states_of(rules)
    lines = ["stateDiagram-v2"]
    lines.extend(f'    state "{state_name(s)}" as {_node(s)}' for s in states)
    lines.append(f"    [*] --> {_node(states[0])}")
    edges: dict[tuple[str, str], list[str]] = {}
    for old, what, new in transitions(rules):
        if old is not new:
            edges.setdefault((_node(old), _node(new)), []).append(what)
    for (source, target), whats in edges.items():
        lines.append(f"    {source} --> {target}: {', '.join(whats)}")
    lines.append(f"    note right of {_node(rules.error)}: any protocol error, from any state")
    return "\n".join(lines)


def table(rules: Rules[Any]) -> str:
    """The transition table, one row a state: what it accepts and where each thing leads."""

    def cell(pairs: list[tuple[str, enum.Enum]], state: enum.Enum) -> str:
        same = [what for what, new in pairs if new is state]
        moves = [f"{what} → {state_name(new)}" for what, new in pairs if new is not state]
        parts = ([", ".join(same) + " → same"] if same else []) + moves
        return "; ".join(parts) or "-"

    rows = [
        "| state | packets received | calls | timer expiry | connection lost |",
        "| --- | --- | --- | --- | --- |",
    ]
    for state in states_of(rules):
        received = [(packet_name(t), new) for t, new in rules.receive.get(state, {}).items()]
        calls = [(c.replace("_", " "), row[state]) for c, row in rules.send.items() if state in row]
        timer = rules.timers.get(state)
        timed = [(timer[0].name.lower(), timer[1])] if timer else []
        lost = rules.lost.get(state)
        rows.append(
            f"| {state_name(state)} | {cell(received, state)} | {cell(calls, state)} "
            f"| {cell(timed, state)} | {state_name(lost) if lost is not None else '-'} |"
        )
    return "\n".join(rows)


def render(name: str) -> str:
    if name not in MACHINES:
        raise ValueError(f"state machine marker names {name!r}, not one of {sorted(MACHINES)}")
    cls, rules = MACHINES[name]
    return (
        f'<pre class="mermaid">\n{html.escape(mermaid(rules))}\n</pre>\n\n'
        f"`{cls}`, generated from its `_RULES`; a protocol error leads to "
        f"{state_name(rules.error)} from any state.\n\n{table(rules)}\n"
    )


def on_page_markdown(markdown: str, **kwargs: Any) -> str:
    """The mkdocs hook: each marker replaced by its machine's diagram and table."""
    return MARKER.sub(lambda m: render(m.group(1)), markdown)
