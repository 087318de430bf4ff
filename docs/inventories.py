"""Sphinx inventories of the Python and Trio names these docs link to, written offline.

Sphinx's intersphinx needs each linked project's ``objects.inv``; the docs
must build on a machine without network access, so the few names we link
to are listed here with the page that documents them, and
:func:`write_inventories` writes them in the inventory format.  A name
missing here shows up as an unresolved reference (``nitpicky`` is on).
"""

from __future__ import annotations

import zlib
from pathlib import Path

PYTHON: dict[str, tuple[str, str]] = {
    # name: (role, page#anchor) -- role is the py domain's object type
    "bytes": ("class", "library/stdtypes.html#bytes"),
    "bytearray": ("class", "library/stdtypes.html#bytearray"),
    "memoryview": ("class", "library/stdtypes.html#memoryview"),
    "str": ("class", "library/stdtypes.html#str"),
    "int": ("class", "library/functions.html#int"),
    "float": ("class", "library/functions.html#float"),
    "bool": ("class", "library/functions.html#bool"),
    "object": ("class", "library/functions.html#object"),
    "tuple": ("class", "library/stdtypes.html#tuple"),
    "list": ("class", "library/stdtypes.html#list"),
    "dict": ("class", "library/stdtypes.html#dict"),
    "frozenset": ("class", "library/stdtypes.html#frozenset"),
    "type": ("class", "library/functions.html#type"),
    "None": ("data", "library/constants.html#None"),
    "Exception": ("exception", "library/exceptions.html#Exception"),
    "BaseException": ("exception", "library/exceptions.html#BaseException"),
    "ValueError": ("exception", "library/exceptions.html#ValueError"),
    "TypeError": ("exception", "library/exceptions.html#TypeError"),
    "OSError": ("exception", "library/exceptions.html#OSError"),
    "KeyError": ("exception", "library/exceptions.html#KeyError"),
    "ExceptionGroup": ("exception", "library/exceptions.html#ExceptionGroup"),
    "BaseExceptionGroup": ("exception", "library/exceptions.html#BaseExceptionGroup"),
    "enum.Enum": ("class", "library/enum.html#enum.Enum"),
    "enum.IntEnum": ("class", "library/enum.html#enum.IntEnum"),
    "enum.IntFlag": ("class", "library/enum.html#enum.IntFlag"),
    "typing.Any": ("data", "library/typing.html#typing.Any"),
    "typing.NamedTuple": ("function", "library/typing.html#typing.NamedTuple"),
    "typing.Generic": ("class", "library/typing.html#typing.Generic"),
    "typing.NoReturn": ("data", "library/typing.html#typing.NoReturn"),
    "typing.Self": ("data", "library/typing.html#typing.Self"),
    "collections.abc.Callable": ("class", "library/collections.abc.html#collections.abc.Callable"),
    "collections.abc.Awaitable": (
        "class",
        "library/collections.abc.html#collections.abc.Awaitable",
    ),
    "collections.abc.Iterable": ("class", "library/collections.abc.html#collections.abc.Iterable"),
    "collections.abc.Iterator": ("class", "library/collections.abc.html#collections.abc.Iterator"),
    "collections.abc.Sequence": ("class", "library/collections.abc.html#collections.abc.Sequence"),
    "collections.abc.Mapping": ("class", "library/collections.abc.html#collections.abc.Mapping"),
    "collections.abc.AsyncGenerator": (
        "class",
        "library/collections.abc.html#collections.abc.AsyncGenerator",
    ),
    "collections.abc.AsyncIterator": (
        "class",
        "library/collections.abc.html#collections.abc.AsyncIterator",
    ),
    "collections.abc.Generator": (
        "class",
        "library/collections.abc.html#collections.abc.Generator",
    ),
    "ipaddress.IPv4Address": ("class", "library/ipaddress.html#ipaddress.IPv4Address"),
    "ipaddress.IPv6Address": ("class", "library/ipaddress.html#ipaddress.IPv6Address"),
    "ipaddress.IPv4Network": ("class", "library/ipaddress.html#ipaddress.IPv4Network"),
    "ipaddress.IPv6Network": ("class", "library/ipaddress.html#ipaddress.IPv6Network"),
    "ipaddress.IPv4Address.is_global": (
        "attribute",
        "library/ipaddress.html#ipaddress.IPv4Address.is_global",
    ),
    "pathlib.Path": ("class", "library/pathlib.html#pathlib.Path"),
    "re.search": ("function", "library/re.html#re.search"),
    "ipaddress": ("module", "library/ipaddress.html#module-ipaddress"),
    "dataclasses.replace": ("function", "library/dataclasses.html#dataclasses.replace"),
    "logging": ("module", "library/logging.html#module-logging"),
    "sqlite3": ("module", "library/sqlite3.html#module-sqlite3"),
    "zlib": ("module", "library/zlib.html#module-zlib"),
    "random.Random": ("class", "library/random.html#random.Random"),
    "types.MappingProxyType": ("class", "library/types.html#types.MappingProxyType"),
    "struct.Struct": ("class", "library/struct.html#struct.Struct"),
    "abc.ABC": ("class", "library/abc.html#abc.ABC"),
    "TimeoutError": ("exception", "library/exceptions.html#TimeoutError"),
    "typing.TypeAlias": ("data", "library/typing.html#typing.TypeAlias"),
}

TRIO: dict[str, tuple[str, str]] = {
    "trio": ("module", "reference-core.html#module-trio"),
    "trio.run": ("function", "reference-core.html#trio.run"),
    "trio.Nursery": ("class", "reference-core.html#trio.Nursery"),
    "trio.MemorySendChannel": ("class", "reference-core.html#trio.MemorySendChannel"),
    "trio.MemoryReceiveChannel": (
        "class",
        "reference-core.html#trio.MemoryReceiveChannel",
    ),
    "trio.TaskStatus": ("class", "reference-core.html#trio.TaskStatus"),
    "trio.CancelScope": ("class", "reference-core.html#trio.CancelScope"),
    "trio.Event": ("class", "reference-core.html#trio.Event"),
    "trio.WouldBlock": ("exception", "reference-core.html#trio.WouldBlock"),
    "trio.Cancelled": ("exception", "reference-core.html#trio.Cancelled"),
    "trio.TooSlowError": ("exception", "reference-core.html#trio.TooSlowError"),
    "trio.BrokenResourceError": ("exception", "reference-core.html#trio.BrokenResourceError"),
    "trio.ClosedResourceError": ("exception", "reference-core.html#trio.ClosedResourceError"),
    "trio.serve_tcp": ("function", "reference-io.html#trio.serve_tcp"),
    "trio.serve_listeners": ("function", "reference-io.html#trio.serve_listeners"),
    "trio.open_tcp_stream": ("function", "reference-io.html#trio.open_tcp_stream"),
    "trio.open_tcp_listeners": ("function", "reference-io.html#trio.open_tcp_listeners"),
    "trio.SocketStream": ("class", "reference-io.html#trio.SocketStream"),
    "trio.SocketListener": ("class", "reference-io.html#trio.SocketListener"),
    "trio.abc.Stream": ("class", "reference-io.html#trio.abc.Stream"),
    "trio.abc.AsyncResource": ("class", "reference-io.html#trio.abc.AsyncResource"),
    "trio.to_thread.run_sync": ("function", "reference-core.html#trio.to_thread.run_sync"),
    "trio.testing.MockClock": ("class", "reference-testing.html#trio.testing.MockClock"),
    "trio.testing.memory_stream_pair": (
        "function",
        "reference-testing.html#trio.testing.memory_stream_pair",
    ),
    "trio.TASK_STATUS_IGNORED": ("data", "reference-core.html#trio.TASK_STATUS_IGNORED"),
    "trio.fail_after": ("function", "reference-core.html#trio.fail_after"),
    "trio.move_on_after": ("function", "reference-core.html#trio.move_on_after"),
}

PROTOBUF: dict[str, tuple[str, str]] = {
    "google.protobuf.message.Message": (
        "class",
        "google/protobuf/message.html#google.protobuf.message.Message",
    ),
}


def _inventory(project: str, names: dict[str, tuple[str, str]]) -> bytes:
    header = (
        "# Sphinx inventory version 2\n"
        f"# Project: {project}\n"
        "# Version: \n"
        "# The remainder of this file is compressed using zlib.\n"
    ).encode()
    lines = [f"{name} py:{role} 1 {page} -\n" for name, (role, page) in sorted(names.items())]
    return header + zlib.compress("".join(lines).encode())


def write_inventories(folder: Path) -> dict[str, Path]:
    """Write ``python.inv``, ``trio.inv`` and ``protobuf.inv`` into ``folder``; their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for project, names in (("python", PYTHON), ("trio", TRIO), ("protobuf", PROTOBUF)):
        path = folder / f"{project}.inv"
        data = _inventory(project, names)
        if not path.exists() or path.read_bytes() != data:
            path.write_bytes(data)
        paths[project] = path
    return paths
