"""The catalogue and the interop matrix as Markdown, for docs/conformance.md.

Layer 4. Both are generated: the catalogue from the registered cases, the matrix from
results (the tests run the suite against every implementation and compare the page with
what they render).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from ._case import Case, Outcome, Result, Target
from ._report import score

__all__ = ["catalogue_markdown", "matrix_markdown", "replace_section"]

_CELL = {Outcome.PASS: "pass", Outcome.FAIL: "**FAIL**", Outcome.NOT_APPLICABLE: "n/a"}


def _escape(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def catalogue_markdown(cases: Sequence[Case]) -> str:
    """One table per target: id, level, what the case sends and what it expects."""
    out = []
    for target in Target:
        chosen = [c for c in cases if c.target is target]
        if not chosen:
            continue
        out.append(f"### {target.value} ({len(chosen)} cases)\n")
        out.append("| case | level | sends | expects |")
        out.append("| --- | --- | --- | --- |")
        out.extend(
            f"| `{c.id}` | {c.level.value} | {_escape(c.sends)} | {_escape(c.expects)} |"
            for c in chosen
        )
        out.append("")
    return "\n".join(out)


def matrix_markdown(columns: Mapping[str, Sequence[Result]]) -> str:
    """A table of cases (rows) by implementation (columns), with each column's score; a case
    an implementation was not run against (another dialect) shows as a dash."""
    names = list(columns)
    by_name = {name: {r.case.id: r for r in results} for name, results in columns.items()}
    ids: list[str] = []
    levels: dict[str, str] = {}
    for results in columns.values():
        for r in results:
            if r.case.id not in levels:
                ids.append(r.case.id)
                levels[r.case.id] = r.case.level.value
    head = "| case | level | " + " | ".join(names) + " |"
    rule = "| --- | --- |" + " --- |" * len(names)
    scores = "| **score** | | " + " | ".join(score(columns[n]) for n in names) + " |"
    rows = [
        f"| `{i}` | {levels[i]} | "
        + " | ".join(_CELL[by_name[n][i].outcome] if i in by_name[n] else "-" for n in names)
        + " |"
        for i in ids
    ]
    return "\n".join([head, rule, scores, *rows]) + "\n"


def replace_section(page: str, name: str, body: str) -> str:
    """`page` with what lies between ``<!-- name:start -->`` and ``<!-- name:end -->``
    replaced by `body` (`ValueError` if the markers are missing)."""
    start, end = f"<!-- {name}:start -->\n", f"<!-- {name}:end -->"
    before, found, rest = page.partition(start)
    if not found or end not in rest:
        raise ValueError(f"no {start.strip()} ... {end} section")
    return before + start + body + rest[rest.index(end) :]
