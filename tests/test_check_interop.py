"""The interop matrix: `soupbintcp check` against our server, client and MoldUDP64
transmitter and against the peers that install from the registries (nasdaq-protocols from
PyPI, soupbintcp from npm), each started by the test. Every implementation's result is
asserted case by case, and docs/conformance.md must show exactly this run's matrix (and the
catalogue as the code has it): ``SOUPBINTCP_UPDATE_DOCS=1`` rewrites both sections.
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import sys
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from importlib.metadata import version
from pathlib import Path

import pytest

from soupbintcp.check import (
    CATALOGUE,
    ListenerTarget,
    MoldTarget,
    Outcome,
    Result,
    ServerTarget,
    Target,
    catalogue_markdown,
    listener_command,
    matrix_markdown,
    replace_section,
    run_cases,
    select,
)
from soupbintcp.moldudp64 import serve_requests, transmit
from soupbintcp.store import MemoryStore

from . import check_peers as peers
from .mold_support import random_group

DOC = Path(__file__).resolve().parent.parent / "docs" / "conformance.md"
NASDAQ = f"nasdaq-protocols {version('nasdaq-protocols')}"
NODE = (
    "npm soupbintcp "
    + json.loads((peers.NODE_DIR / "package.json").read_text())["dependencies"]["soupbintcp"]
)
P, F, NA = Outcome.PASS, Outcome.FAIL, Outcome.NOT_APPLICABLE

#: What each implementation does not pass today, case by case (every other case: pass).
SERVERS: dict[str, dict[str, Outcome]] = {
    "soupbintcp serve": {
        # A live session: nothing has ended, so End of Session cannot be judged.
        "4.00/2.2.6/end-of-session-last": NA,
        "4.10/2.2.6/end-of-session-last": NA,
    },
    # Our Omega server never sends the optional empty "no more messages" marker.
    "soupbintcp serve (Omega)": {"omega-1.03/1.5.3/empty-message-ends-replay": NA},
    NASDAQ: {
        # A 4.00 server: a 51-byte 4.10 Login Request kills that connection's reader (a
        # struct.error in their task) and is never answered, so every other 4.10 case is n/a.
        **{c.id: NA for c in select(CATALOGUE, Target.SERVER) if c.id.startswith("4.10/")},
        "4.10/2.2.1/login-accepted-first": F,
        # Login Accepted's Session and Sequence Number padded on the right.
        "4.00/2.2.1/sequence-number-left-padded": F,
        "4.00/2.2.1/session-left-padded": F,
        # No Server Heartbeat in 2.6 s of quiet: its default interval is 10 s.
        "4.00/1.3/server-heartbeat-cadence": F,
        "4.00/2.2.6/end-of-session-last": NA,
    },
    NODE: {
        # A 3.00 library: the 4.10 Heartbeat Timeout is not read (it times out after 15 s).
        "4.10/2.3.1/heartbeat-timeout-enforced": F,
        # Every Login Request is handed to the application, whatever came before or its size.
        "4.00/2.2.1/second-login-request": F,
        "4.10/2.2.1/second-login-request": F,
        "4.00/2.3.1/oversize-login-request": F,
        "4.10/2.3.1/oversize-login-request": F,
        "4.00/2.2.6/end-of-session-last": NA,
        "4.10/2.2.6/end-of-session-last": NA,
    },
}
#: The clients the test runs do not reconnect by themselves, but for ours: the resume cases
#: are n/a for them.
RESUME = [
    "4.10/1.2/resume-after-cut",
    "4.00/2.2.4/unsequenced-not-counted",
    "4.10/2.2.3/count-from-login-accepted",
    "4.10/2.2.3/empty-message-counted",
    "4.10/2.2.1/session-either-padding",
]
CLIENTS: dict[str, dict[str, Outcome]] = {
    # It sends the 46-byte 4.00 Login Request unless given a heartbeat timeout to send.
    "soupbintcp AsyncClient": {"4.10/2.3.1/heartbeat-timeout-numeric": NA},
    "soupbintcp AsyncClient (Omega)": {},
    NASDAQ: {
        "4.10/2.3.1/heartbeat-timeout-numeric": NA,
        # Its default client heartbeat interval is 10 s.
        "4.10/1.3/client-heartbeat-cadence": F,
        # A Debug packet before Login Accepted is taken for a rejection ("Login rejected").
        "4.10/2.1/debug-tolerated": F,
        **dict.fromkeys(RESUME, NA),
    },
    NODE: {
        "4.10/2.3.1/heartbeat-timeout-numeric": NA,
        # A 3.00 client: server Unsequenced Data is an "Unknown packet type" error.
        "4.00/2.2.4/server-unsequenced-tolerated": F,
        **dict.fromkeys(RESUME, NA),
    },
}
#: Our listener as a user runs it, started for each case by the suite.
MOLD_TAIL = f"{sys.executable} -m soupbintcp --loop asyncio mold tail --group {{group}} " + (
    "--request {request} --interface 127.0.0.1"
)
LISTENERS: dict[str, dict[str, Outcome]] = {"soupbintcp mold tail": {}}
MOLD: dict[str, dict[str, Outcome]] = {
    # The session does not end while the cases watch (tests/test_check_mold.py ends one).
    "soupbintcp mold": {"moldudp64-1.00/end-of-session/repeated": NA},
}


async def _server_column(
    start: Callable[[], AbstractAsyncContextManager[tuple[str, int]]], dialect: str
) -> list[Result]:
    async with start() as (host, port):
        target = ServerTarget(host, port, peers.USER, peers.PASSWORD, dialect=dialect)
        return await run_cases(select(CATALOGUE, Target.SERVER, dialect), target, jobs=8)


async def _client_column(launch: peers.Launch, dialect: str) -> list[Result]:
    cases = select(CATALOGUE, Target.CLIENT, dialect)
    return await run_cases(cases, peers.client_target(launch, dialect), jobs=len(cases))


async def _mold_column() -> list[Result]:
    store = MemoryStore(session_id="TEST1")
    store.append_many([b"message %03d" % i for i in range(1, 101)])
    group = random_group()
    requests = await serve_requests(store, ("127.0.0.1", 0))
    tx = await transmit(store, group, interface="127.0.0.1", ttl=0, first=1)
    try:
        target = MoldTarget(group, requests.address, interface="127.0.0.1")
        cases = select(CATALOGUE, Target.MOLD_TRANSMITTER)
        return await run_cases(cases, target, jobs=len(cases))
    finally:
        await tx.close()
        await requests.close()


async def _listener_column(command: str) -> list[Result]:
    cases = select(CATALOGUE, Target.MOLD_LISTENER)
    return await run_cases(cases, ListenerTarget(listener_command(command)), jobs=len(cases))


async def _collect(with_node: bool) -> dict[str, dict[str, list[Result]]]:
    # The peers' own tasks die loudly on some cases (nasdaq-protocols' reader on a 4.10 Login
    # Request): the results say so; their tracebacks would only bury the test's output.
    asyncio.get_running_loop().set_exception_handler(lambda loop, context: None)
    servers_and_clients: dict[tuple[str, str], Awaitable[list[Result]]] = {
        ("server", "soupbintcp serve"): _server_column(peers.our_server, "soupbintcp"),
        ("server", "soupbintcp serve (Omega)"): _server_column(
            functools.partial(peers.our_server, "omega"), "omega"
        ),
        ("server", NASDAQ): _server_column(peers.nasdaq_server, "soupbintcp"),
        ("client", "soupbintcp AsyncClient"): _client_column(peers.our_client(), "soupbintcp"),
        ("client", "soupbintcp AsyncClient (Omega)"): _client_column(
            peers.our_client("omega"), "omega"
        ),
        ("client", NASDAQ): _client_column(peers.nasdaq_client(), "soupbintcp"),
    }
    if with_node:
        servers_and_clients["server", NODE] = _server_column(peers.node_server, "soupbintcp")
        servers_and_clients["client", NODE] = _client_column(peers.node_client(), "soupbintcp")
    out: dict[str, dict[str, list[Result]]] = {
        k: {} for k in ("server", "client", "mold", "listener")
    }
    # In turns: the cadence cases allow 0.6 s of lateness, and eight listener processes
    # starting at once (or some 200 cases on one event loop) can take more than that.
    for jobs in (
        servers_and_clients,
        {("listener", "soupbintcp mold tail"): _listener_column(MOLD_TAIL)},
        {("mold", "soupbintcp mold"): _mold_column()},
    ):
        results = await asyncio.gather(*jobs.values())
        for (kind, name), got in zip(jobs, results, strict=True):
            out[kind][name] = got
    return out


@functools.cache
def matrix(with_node: bool) -> dict[str, dict[str, list[Result]]]:
    """One run of every implementation at once (the first test to ask pays for it)."""
    return asyncio.run(_collect(with_node))


def _check(kind: str, name: str, expected: dict[str, Outcome]) -> None:
    results = matrix(peers.node_ready())[kind][name]
    got = {r.case.id: r.outcome for r in results}
    want = {r.case.id: expected.get(r.case.id, P) for r in results}
    assert got == want, {r.case.id: r.reason for r in results if got[r.case.id] != want[r.case.id]}


@pytest.mark.parametrize("name", list(SERVERS))
def test_server_results(name: str) -> None:
    if name == NODE and not peers.node_ready():
        pytest.skip("node is not installed")
    _check("server", name, SERVERS[name])


@pytest.mark.parametrize("name", list(CLIENTS))
def test_client_results(name: str) -> None:
    if name == NODE and not peers.node_ready():
        pytest.skip("node is not installed")
    _check("client", name, CLIENTS[name])


def test_mold_results() -> None:
    _check("mold", "soupbintcp mold", MOLD["soupbintcp mold"])


def test_listener_results() -> None:
    _check("listener", "soupbintcp mold tail", LISTENERS["soupbintcp mold tail"])


def test_the_docs_show_this_run_and_the_catalogue() -> None:
    if not peers.node_ready():
        pytest.skip("node is not installed: the matrix would lack its columns")
    run = matrix(True)
    page = DOC.read_text(encoding="utf-8")
    wanted = replace_section(page, "catalogue", catalogue_markdown(CATALOGUE))
    for kind in ("server", "client", "mold", "listener"):
        wanted = replace_section(wanted, f"matrix-{kind}", matrix_markdown(run[kind]))
    if os.environ.get("SOUPBINTCP_UPDATE_DOCS") == "1":
        DOC.write_text(wanted, encoding="utf-8")
        page = wanted
    if page != wanted:
        # One line, not pytest's diff of two long pages.
        old, new = page.splitlines(), wanted.splitlines()
        line = next((i for i, (a, b) in enumerate(zip(old, new, strict=False)) if a != b), None)
        where = (
            f"line {line + 1}: {old[line]!r} should be {new[line]!r}" if line is not None else ""
        )
        pytest.fail(f"docs/conformance.md is stale ({where}); SOUPBINTCP_UPDATE_DOCS=1 rewrites it")
