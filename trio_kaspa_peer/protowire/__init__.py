"""The modern kaspa P2P protocol's messages (protobuf ``KaspadMessage``): a sans-IO codec.

Nothing here imports Trio or touches sockets.  The message classes are
generated from this package's ``p2p.proto`` (protocol 10).
"""
