"""The core both sans-IO sessions share: its tables, its latch, and the renamed server end."""

from __future__ import annotations

from typing import Any

import pytest

import soupbintcp
import soupbintcp.lowlevel
from soupbintcp import ClientState, RemoteProtocolError
from soupbintcp._session._client import _RULES as CLIENT_RULES
from soupbintcp._session._core import Rules
from soupbintcp._session._server import _RULES as SERVER_RULES
from soupbintcp.lowlevel import ClientSession, ServerConnectionState, ServerState


def test_server_session_is_a_deprecated_alias() -> None:
    with pytest.warns(DeprecationWarning, match=r"lowlevel\.ServerConnectionState"):
        assert soupbintcp.ServerSession is ServerConnectionState
    assert "ServerConnectionState" in soupbintcp.lowlevel.__all__


@pytest.mark.parametrize("rules", [CLIENT_RULES, SERVER_RULES], ids=["client", "server"])
def test_every_table_leads_only_to_states_of_its_side(rules: Rules[Any]) -> None:
    states = set(rules.rows())
    targets = {rules.error}
    targets |= {s for row in rules.receive.values() for s in row.values()}
    targets |= {s for row in rules.send.values() for s in row.values()}
    targets |= {expired for _, expired in rules.timers.values()}
    targets |= set(rules.lost.values())
    assert targets <= states


def test_both_sides_latch_a_protocol_error_for_every_later_call() -> None:
    client = ClientSession("user", "pw")
    client.login(0.0)
    with pytest.raises(RemoteProtocolError):
        client.receive_data(b"\x00\x01Z", 0.0)  # End of Session before the login answer
    assert client.state is ClientState.ERROR
    for call in (lambda: client.send_debug("x", 1.0), lambda: client.receive_data(b"x", 1.0)):
        with pytest.raises(RemoteProtocolError):
            call()

    server = ServerConnectionState(0.0)
    with pytest.raises(RemoteProtocolError):
        server.receive_data(b"\x00\x01R", 0.0)  # a heartbeat before any Login Request
    assert server.state is ServerState.ERROR
    with pytest.raises(RemoteProtocolError):
        server.send_debug("x", 1.0)
    server.connection_lost()
    assert server.state is ServerState.ERROR  # the error is kept after the close


def test_a_timer_takes_the_transition_of_its_table() -> None:
    client = ClientSession("user", "pw", login_timeout=5.0)
    client.login(0.0)
    assert client.next_timer() == 5.0
    with pytest.raises(soupbintcp.LoginTimeout):
        client.handle_timer(5.0)
    assert client.state is CLIENT_RULES.timers[ClientState.LOGIN_SENT][1]
    server = ServerConnectionState(0.0, login_timeout=3.0)
    with pytest.raises(soupbintcp.LoginTimeout, match="no Login Request within 3 s"):
        server.handle_timer(3.0)
    assert server.state is ServerState.CLOSED
