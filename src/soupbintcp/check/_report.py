"""The results as files: JSON (like Autobahn's index), JUnit XML for CI, one HTML page.

Layer 4 (stdlib only: json, xml.etree, html).
"""

from __future__ import annotations

import html
import json
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Mapping, Sequence

from ._case import Level, Outcome, Result

__all__ = ["exit_status", "score", "tally", "to_html", "to_json", "to_junit"]


def exit_status(results: Sequence[Result]) -> int:
    """1 when a MUST case failed, 0 otherwise (SHOULD and MAY failures are reported only)."""
    return 1 if any(r.must_failed for r in results) else 0


def tally(results: Sequence[Result]) -> dict[str, dict[str, int]]:
    """{level: {outcome: count}} for every level and outcome (zeros included)."""
    counts = Counter((r.case.level, r.outcome) for r in results)
    return {lv.value: {oc.value: counts[lv, oc] for oc in Outcome} for lv in Level}


def score(results: Sequence[Result]) -> str:
    """One line: passed of judged, and the MUST figures, e.g. ``58/60 (MUST 40/40), 3 n/a``."""
    judged = [r for r in results if r.outcome is not Outcome.NOT_APPLICABLE]
    passed = sum(r.outcome is Outcome.PASS for r in judged)
    musts = [r for r in judged if r.case.level is Level.MUST]
    must_passed = sum(r.outcome is Outcome.PASS for r in musts)
    na = len(results) - len(judged)
    return f"{passed}/{len(judged)} (MUST {must_passed}/{len(musts)}), {na} n/a"


def _entry(result: Result) -> dict[str, object]:
    case = result.case
    return {
        "id": case.id,
        "level": case.level.value,
        "outcome": result.outcome.value,
        "reason": result.reason,
        "seconds": round(result.seconds, 3),
        "sends": case.sends,
        "expects": case.expects,
        "quote": case.quote,
    }


def to_json(results: Sequence[Result], about: Mapping[str, object]) -> str:
    """A JSON document: what was tested (`about`), the tally and every case's result."""
    document = {
        "about": dict(about),
        "score": score(results),
        "exit_status": exit_status(results),
        "tally": tally(results),
        "cases": {r.case.id: _entry(r) for r in results},
    }
    return json.dumps(document, indent=2) + "\n"


def to_junit(results: Sequence[Result], name: str) -> str:
    """JUnit XML: one testcase per case (classname: its spec version and section); a failed
    MUST or SHOULD is a failure (type = level), a MAY failure and n/a are skipped."""
    failures = sum(r.outcome is Outcome.FAIL and r.case.level is not Level.MAY for r in results)
    skipped = sum(
        r.outcome is Outcome.NOT_APPLICABLE
        or (r.outcome is Outcome.FAIL and r.case.level is Level.MAY)
        for r in results
    )
    suite = ET.Element(
        "testsuite",
        name=name,
        tests=str(len(results)),
        failures=str(failures),
        skipped=str(skipped),
        time=f"{sum(r.seconds for r in results):.3f}",
    )
    for r in results:
        element = ET.SubElement(
            suite,
            "testcase",
            classname=r.case.section.replace("/", "."),
            name=f"{r.case.id} [{r.case.level.value}]",
            time=f"{r.seconds:.3f}",
        )
        if r.outcome is Outcome.NOT_APPLICABLE:
            ET.SubElement(element, "skipped", message=f"not applicable: {r.reason}")
        elif r.outcome is Outcome.FAIL and r.case.level is Level.MAY:
            ET.SubElement(element, "skipped", message=f"MAY not met: {r.reason}")
        elif r.outcome is Outcome.FAIL:
            failure = ET.SubElement(element, "failure", type=r.case.level.value, message=r.reason)
            failure.text = f"sends: {r.case.sends}\nexpects: {r.case.expects}\n{r.reason}"
    ET.indent(suite)
    return ET.tostring(suite, encoding="unicode", xml_declaration=True) + "\n"


_STYLE = """body{font-family:system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse;width:100%}td,th{border:1px solid #ccc;padding:4px 8px;
text-align:left;vertical-align:top;font-size:14px}th{background:#f0f0f0}
.pass{background:#dff5dd}.fail{background:#fadbd8}.na{background:#eee;color:#666}
code{font-size:13px}"""


def to_html(results: Sequence[Result], about: Mapping[str, object]) -> str:
    """One self-contained page (inline style, no script, no outside resource)."""
    e = html.escape
    head = "".join(f"<li><b>{e(str(k))}</b>: {e(str(v))}</li>" for k, v in about.items())
    counts = tally(results)
    summary = "".join(
        f"<tr><td>{e(level)}</td>" + "".join(f"<td>{n}</td>" for n in row.values()) + "</tr>"
        for level, row in counts.items()
    )
    rows = []
    for r in results:
        css = {"pass": "pass", "fail": "fail", "n/a": "na"}[r.outcome.value]
        rows.append(
            f'<tr class="{css}"><td><code>{e(r.case.id)}</code></td><td>{r.case.level.value}'
            f"</td><td>{r.outcome.value}</td><td>{e(r.reason)}</td><td>{e(r.case.sends)}</td>"
            f"<td>{e(r.case.expects)}</td><td>{r.seconds:.2f}</td></tr>"
        )
    outcomes = "".join(f"<th>{o.value}</th>" for o in Outcome)
    return (
        "<!DOCTYPE html>\n<html><head><meta charset='utf-8'><title>soupbintcp check</title>"
        f"<style>{_STYLE}</style></head><body><h1>soupbintcp check: {e(score(results))}</h1>"
        f"<ul>{head}</ul><table><tr><th>level</th>{outcomes}</tr>{summary}</table><h2>Cases</h2>"
        "<table><tr><th>case</th><th>level</th><th>result</th><th>reason</th><th>sends</th>"
        f"<th>expects</th><th>s</th></tr>{''.join(rows)}</table></body></html>\n"
    )
