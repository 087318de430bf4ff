"""Connect to a kaspa node, print its user agent, the addresses it knows and the ping time.

    python docs/examples/modern_addresses.py [HOST [PORT [NETWORK]]]

Defaults: 127.0.0.1, port 16111 (mainnet's), network mainnet.
"""

from __future__ import annotations

import sys

import trio

from trio_kaspa_peer import ModernPeer, PeerConfig, open_tcp_peer
from trio_kaspa_peer.crawl import NodeAddress


async def main(host: str, port: int, network: str) -> None:
    config = PeerConfig(net=network, user_agent_name="example", user_agent_version="1")
    with trio.fail_after(30):
        async with open_tcp_peer(host, port, config, connect_timeout=5) as peer:
            assert isinstance(peer, ModernPeer)
            print("node:", peer.remote_version.user_agent, "protocol", peer.protocol_version)
            addresses = await peer.request_addresses()
            for address in addresses[:10]:
                # NodeAddress reads the 4 or 16 bytes (kaspad sends IPv4 as IPv4-mapped IPv6)
                print(" ", NodeAddress.from_ip(address.ip, address.port))
            print(len(addresses), "addresses")
            print(f"ping: {await peer.ping() * 1000:.2f} ms")


if __name__ == "__main__":
    args = sys.argv[1:]
    trio.run(
        main,
        args[0] if args else "127.0.0.1",
        int(args[1]) if len(args) > 1 else 16111,
        args[2] if len(args) > 2 else "mainnet",
    )
