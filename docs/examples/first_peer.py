"""Your first peer: dial a node, read its version, ask it for addresses.

The node here is a responder started on 127.0.0.1 by the example itself, so
it runs anywhere; point ``open_tcp_peer`` at a real node's address instead.
"""

from __future__ import annotations

import functools

import trio

from trio_kaspa_peer import PeerConfig, open_tcp_peer, wire
from trio_kaspa_peer.crawl import NodeAddress, Responder

CONFIG = PeerConfig(protocol=1, net=wire.KaspaNet.SIMNET, user_agent_name="tutorial")


async def main() -> list[str]:
    node = Responder(CONFIG, known=[NodeAddress("192.0.2.10", 16511)])
    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(functools.partial(node.serve, 0, host="127.0.0.1"))
        port = listeners[0].socket.getsockname()[1]

        async with open_tcp_peer("127.0.0.1", port, CONFIG, connect_timeout=5) as peer:
            print("connected to", peer.remote_version.user_agent)
            await peer.send(wire.MsgGetAddr())
            async for message in peer.messages():
                if isinstance(message, wire.MsgAddr):
                    addresses = [f"{a.ip_string}:{a.port}" for a in message.addr_list]
                    print("it knows", addresses)
                    break
        nursery.cancel_scope.cancel()
    return addresses


if __name__ == "__main__":
    trio.run(main)
