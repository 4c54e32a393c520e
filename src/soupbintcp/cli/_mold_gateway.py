"""`soupbintcp mold gateway`: a MoldUDP64 session served to SoupBinTCP clients.

Part of the `mold` group (`_mold`); `_app` adds it there, so that the two command modules
never import each other.
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import click

from soupbintcp.gateways import discover_session, mold_to_soupbintcp
from soupbintcp.store import FileStore

from ._common import ADDRESS, credential_options, server_credentials, stderr
from ._mold_lines import (
    binding,
    group_option,
    interface_option,
    named,
    session_option,
    waiting_hint,
)
from ._run import run_async
from ._signals import Stop

Address = tuple[str, int]


@click.command("gateway")
@group_option
@click.option("--request", type=ADDRESS, required=True, help="Re-request server HOST:PORT.")
@click.option("--listen", type=ADDRESS, required=True, help="SoupBinTCP HOST:PORT to serve on.")
@click.option(
    "--store",
    "store_path",
    type=click.Path(path_type=Path, dir_okay=False),
    required=True,
    help="Journal cache of the multicast session; a restart resumes it.",
)
@credential_options
@click.option(
    "--no-auth",
    is_flag=True,
    help="Accept any username and password, whatever SOUPBINTCP_USER and SOUPBINTCP_PASSWORD "
    "say (with --user, --password or --credentials-file given too: an error).",
)
@interface_option
@session_option
@click.pass_context
def command(
    ctx: click.Context,
    group: tuple[Address, ...],
    request: Address,
    listen: Address,
    store_path: Path,
    user: str | None,
    password: str | None,
    credentials_file: Path | None,
    no_auth: bool,
    interface: str | None,
    session_id: str | None,
) -> int:
    """Serve the MoldUDP64 session on --group to SoupBinTCP clients until Ctrl-C.

    Clients log in at any sequence number; the journal at --store fills from 1 through
    re-requests and follows the multicast live.
    """

    credentials = server_credentials(user, password, credentials_file, no_auth)
    auth = {"credentials": credentials} if credentials is not None else {
        "authenticate": lambda *_: True
    }  # fmt: skip

    async def main() -> int:
        stop = Stop()  # the first Ctrl-C or SIGTERM stops, the second at once
        session = session_id
        if session is None and not store_path.exists():
            stderr.print(f"waiting for a packet on {named(group[:1])} to learn the session")
            with binding(f"a listener of {named(group[:1])}"):
                session = await waiting_hint(
                    discover_session(group[0], interface=interface),
                    f"a first packet on {named(group[:1])}",
                    interface,
                )
        store_path.parent.mkdir(parents=True, exist_ok=True)
        store = FileStore(store_path, session_id=session)
        try:
            gateway = await mold_to_soupbintcp(
                list(group), request, listen, store, session_id=session, interface=interface, **auth
            )
            stderr.print(
                f"gateway: MoldUDP64 {named(group)} session {gateway.server.session_id!r}"
                f" onto SoupBinTCP {gateway.address[0]}:{gateway.address[1]} "
                f"(journal {store_path} holds {store.count:,})"
            )
            ended = asyncio.ensure_future(gateway.wait_closed())
            stopping = asyncio.ensure_future(stop.wait())
            try:
                await asyncio.wait([ended, stopping], return_when=asyncio.FIRST_COMPLETED)
                if ended.done():
                    ended.result()  # the listener's error, if it failed
                    stderr.print("End of Session on the multicast: serving the journal")
                    await stopping
            finally:
                stopping.cancel()
                await gateway.close()
                with contextlib.suppress(BaseException):
                    ended.cancel()
                stderr.print(f"stopped: journal {store_path} holds {store.count:,} messages")
        finally:
            store.close()
        return 0

    return run_async(main(), ctx.obj["loop"])
