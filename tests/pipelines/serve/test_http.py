"""`mlops serve` with several workers: every connection sends without Nagle's delay."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import pytest
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.server import ServerState

from pipelines.serve.http import NoDelayH11Protocol, NoDelayHttpToolsProtocol


async def _app(scope: Any, receive: Any, send: Any) -> None:
    pass


def _nodelay_of_an_accepted_connection(protocol: type[H11Protocol]) -> int:
    config = uvicorn.Config(_app, http=protocol, lifespan="off", log_level="warning")
    config.load()
    state = ServerState()

    async def main() -> int:
        # The listening socket as uvicorn binds it for several workers: protocol number 0.
        listener = socket.socket(family=socket.AF_INET)
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        assert listener.proto == 0
        server = await asyncio.get_running_loop().create_server(
            lambda: protocol(config=config, server_state=state, app_state={}), sock=listener)
        _, writer = await asyncio.open_connection(*listener.getsockname())
        for _ in range(100):  # until the server has accepted it
            if state.connections:
                break
            await asyncio.sleep(0.01)
        (accepted,) = state.connections
        value = accepted.transport.get_extra_info("socket").getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
        writer.close()
        server.close()
        return int(value)

    return asyncio.run(main())


@pytest.mark.parametrize(("protocol", "nodelay"), [(H11Protocol, False), (NoDelayH11Protocol, True),
                                                  (NoDelayHttpToolsProtocol, True)],
                         ids=["uvicorn-h11-leaves-nagle-on", "ours-h11", "ours-httptools"])
def test_connections_on_a_multi_worker_socket_send_without_delay(protocol: type[H11Protocol], nodelay: bool) -> None:
    assert bool(_nodelay_of_an_accepted_connection(protocol)) is nodelay
