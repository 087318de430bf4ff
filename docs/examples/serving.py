"""Serving peers: accept connections and answer them with your own handler.

``serve_tcp_peers`` runs ``handler(peer)`` for every peer that completes the
handshake; here the handler answers ``getaddr`` with one address and counts
what else arrives.  A client is started against it to show the exchange.
"""

from __future__ import annotations

import functools
import time

import trio

from trio_kaspa_peer import Peer, PeerConfig, V1Peer, open_tcp_peer, serve_tcp_peers, wire

CONFIG = PeerConfig(protocol=1, net=wire.KaspaNet.SIMNET, user_agent_name="server")
HANDED_OUT = wire.NetAddress("192.0.2.20", 16511, wire.ServiceFlag.NODE_NETWORK, 0)


async def handler(peer: Peer) -> None:
    assert isinstance(peer, V1Peer)  # protocol 1 peers have the push_* helpers
    async for message in peer.messages():
        if isinstance(message, wire.MsgGetAddr):
            stamped = HANDED_OUT._replace(timestamp=int(time.time()))
            await peer.push_addr([stamped])


async def main() -> int:
    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(
            functools.partial(serve_tcp_peers, host="127.0.0.1"), handler, 0, CONFIG
        )
        port = listeners[0].socket.getsockname()[1]
        print("serving on 127.0.0.1 port", port)
        async with open_tcp_peer("127.0.0.1", port, CONFIG) as client:
            await client.send(wire.MsgGetAddr())
            async for message in client.messages():
                if isinstance(message, wire.MsgAddr):
                    print("the server handed out", message.addr_list[0].ip_string)
                    count = len(message.addr_list)
                    break
        nursery.cancel_scope.cancel()
    return count


if __name__ == "__main__":
    trio.run(main)
