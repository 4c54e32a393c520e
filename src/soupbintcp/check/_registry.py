"""Where the case modules register their cases: one list, in catalogue order.

Layer 4. A rule that reads the same in several specs is one procedure registered once per
spec, each id carrying that spec's version and section.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from ._case import Case, Level, Target

__all__ = ["CATALOGUE", "register"]

CATALOGUE: list[Case] = []

Procedure = Callable[[Any, str], Awaitable[None]]


def register(
    target: Target,
    name: str,
    level: Level,
    *,
    sections: Mapping[str, str],
    quote: str,
    sends: str,
    expects: str,
    levels: Mapping[str, Level] | None = None,
    gated: bool = True,
) -> Callable[[Procedure], Procedure]:
    """Register `procedure(target, version)` as one case per entry of `sections`
    ({version: section}); `levels` overrides the level for some versions. A `gated` case
    first asks the implementation whether it speaks `version` at all (`gate(version)`, where
    it has one): a 4.00 server makes the 4.10 cases "n/a" rather than fail them one by one;
    the case that judges the login itself is not gated."""

    def decorate(procedure: Procedure) -> Procedure:
        for version, section in sections.items():
            dialect = "omega" if version.startswith("omega") else "soupbintcp"

            async def run(implementation: Any, version: str = version) -> None:
                gate = getattr(implementation, "gate", None)
                if gated and gate is not None:
                    await gate(version)
                await procedure(implementation, version)

            CATALOGUE.append(
                Case(
                    id=f"{version}/{section}/{name}",
                    level=(levels or {}).get(version, level),
                    target=target,
                    quote=quote,
                    sends=sends,
                    expects=expects,
                    run=run,
                    dialect=dialect,
                )
            )
        return procedure

    return decorate
