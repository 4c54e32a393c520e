"""How the client commands connect: TLS options and the errors a person can act on."""

from __future__ import annotations

import asyncio
import logging
import ssl as _ssl
from pathlib import Path
from typing import Any

import click

import soupbintcp
import soupbintcp.lowlevel

from ._common import PASSWORD_ENV, F, UserError, describe_error, stderr

__all__ = ["connect", "tls_options"]

log = logging.getLogger("soupbintcp.cli")


def tls_options(func: F) -> F:
    """--tls, --ca-file, --server-name, --insecure (each of the last three implies --tls)."""
    func = click.option(
        "--insecure",
        is_flag=True,
        help="TLS without checking the server's certificate or name (test setups only).",
    )(func)
    func = click.option(
        "--server-name",
        metavar="NAME",
        help="The name the server's certificate must carry (default: the host connected to).",
    )(func)
    func = click.option(
        "--ca-file",
        type=click.Path(path_type=Path, dir_okay=False, exists=True),
        help="Trust the CA certificates in this PEM file instead of the system's.",
    )(func)
    func = click.option("--tls", is_flag=True, help="Connect with TLS (system trust store).")(func)
    return func


def tls_context(
    tls: bool, ca_file: Path | None, server_name: str | None, insecure: bool
) -> _ssl.SSLContext | None:
    """The client's TLS context for these options, or None for a plain connection."""
    if not (tls or ca_file or server_name or insecure):
        return None
    try:
        context = _ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
    except (OSError, _ssl.SSLError) as exc:
        raise UserError(f"cannot load --ca-file {ca_file}: {exc}") from None
    if insecure:
        context.check_hostname = False
        context.verify_mode = _ssl.CERT_NONE
        stderr.print("warning: --insecure: the server's certificate is not checked")
    return context


async def connect(
    address: tuple[str, int] | list[tuple[str, int]],
    username: str,
    password: str,
    tls: dict[str, Any],
    *,
    wait_for_server: bool = False,
    **options: Any,
) -> tuple[soupbintcp.AsyncClient, list[int]]:
    """`connect_async` with the TLS options; a failed plain login says TLS may be needed.

    Returns the client and the sequence number of each Login Accepted so far (the first is
    where the server started); every status event is logged at debug level (``-v``).
    `wait_for_server`: a refused first connection is tried again until the server is up.
    """
    context = tls_context(**tls)
    accepted: list[int] = []
    first = address[0] if isinstance(address, list) else address
    where = f"{first[0]}:{first[1]}"

    def on_status(event: soupbintcp.lowlevel.Event) -> None:
        log.debug("status: %r", event)
        if isinstance(event, soupbintcp.lowlevel.LoginAcceptedPacket):
            accepted.append(event.sequence)

    delay = 0.0
    while True:
        try:
            client = await soupbintcp.connect_async(
                address,
                username,
                password,
                ssl=context,
                server_hostname=tls["server_name"] if context else None,
                on_status=on_status,
                **options,
            )
            return client, accepted
        except ConnectionRefusedError:
            if not wait_for_server:
                raise
            # Started before the server: wait for it, as reconnecting would.
            if not delay:
                stderr.print(
                    f"waiting for the server at {where} (connection refused): trying again "
                    "until it is up (Ctrl-C to stop)"
                )
            delay = min(max(delay * 2, 0.1), 2.0)
            await asyncio.sleep(delay)
            continue
        except soupbintcp.LoginRejected as exc:
            if exc.reason is not soupbintcp.RejectReason.NOT_AUTHORIZED:
                raise
            if not username:
                raise UserError(
                    f"{describe_error(exc)}: no username was given (--user with {PASSWORD_ENV},"
                    " or --credentials-file); only a server run with --no-auth takes none"
                ) from None
            if not password:
                raise UserError(
                    f"{describe_error(exc)}: no password was given for {username!r} (set "
                    f"{PASSWORD_ENV}, or --password, or --credentials-file)"
                ) from None
            raise
        except (ConnectionResetError, _ssl.SSLError, soupbintcp.ConnectionLost) as exc:
            if context is None and not isinstance(exc, soupbintcp.ConnectionLost):
                raise
            if context is None:
                # A TLS server takes our Login Request for a broken handshake and hangs up.
                raise UserError(
                    f"{describe_error(exc)}: if the server uses TLS, add --tls (and --ca-file "
                    "for a private CA)"
                ) from None
            if isinstance(exc, _ssl.SSLCertVerificationError):
                raise
            raise UserError(
                f"the TLS handshake with {where} failed ({describe_error(exc)}): is the server "
                "serving TLS? For a plain server, leave out --tls"
            ) from None
        except soupbintcp.RemoteProtocolError as exc:
            if context is not None:
                raise
            # Or it answers with a TLS alert, which is no SoupBinTCP packet.
            raise UserError(
                f"{describe_error(exc)}: if the server uses TLS, add --tls (and --ca-file for "
                "a private CA)"
            ) from None
