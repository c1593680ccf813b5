"""uvicorn's HTTP protocol with ``TCP_NODELAY`` on every connection, whatever the process mode.

asyncio turns Nagle off on accepted sockets only when their ``proto`` is ``IPPROTO_TCP``. With
one process uvicorn lets asyncio bind the listening socket, which has it; with
``Archive.Api.Processes`` > 1 uvicorn binds it itself with ``proto`` 0, so answers wait for
nginx's delayed ACK: measured, bodies of STOW-RS arrived 7× slower (about 40 ms lost per
request). This protocol sets the option itself (``python -m archive_api`` passes it as ``http``).
"""

from __future__ import annotations

import asyncio
import socket

from uvicorn.protocols.http.h11_impl import H11Protocol


class NoDelayH11Protocol(H11Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                pass  # not a TCP socket after all: nothing to turn off
        super().connection_made(transport)  # type: ignore[arg-type]
