"""Your first peer: dial a node, read its version, ask it for addresses.

The node here is a responder started on 127.0.0.1 by the example itself, so
it runs anywhere; point ``open_tcp_peer`` at a real node's address instead.
"""

from __future__ import annotations

import functools

import trio

from trio_kaspa_peer import ModernPeer, PeerConfig, open_tcp_peer
from trio_kaspa_peer.crawl import NodeAddress, Responder

CONFIG = PeerConfig(net="simnet", user_agent_name="tutorial")


async def main() -> list[str]:
    node = Responder(CONFIG, known=[NodeAddress("192.0.2.10", 16511)])
    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(functools.partial(node.serve, 0, host="127.0.0.1"))
        port = listeners[0].socket.getsockname()[1]

        async with open_tcp_peer("127.0.0.1", port, CONFIG, connect_timeout=5) as peer:
            assert isinstance(peer, ModernPeer)  # the default protocol's peer
            print("connected to", peer.remote_version.user_agent)
            known = await peer.request_addresses()
            addresses = [str(NodeAddress.from_ip(a.ip, a.port)) for a in known]
            print("it knows", addresses)
            print(f"ping {await peer.ping() * 1000:.1f} ms")
        nursery.cancel_scope.cancel()
    return addresses


if __name__ == "__main__":
    trio.run(main)
