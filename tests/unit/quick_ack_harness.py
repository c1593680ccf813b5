"""Reads from TCP sockets, UNIX sockets, a pipe and a file, run preloaded with the quick-ack shim.

Run as a script by ``tests/unit/test_quick_ack.py`` (``python quick_ack_harness.py FILE``) with
or without ``LD_PRELOAD``; prints one JSON object:

* ``tcp``: for each read call (``read``, ``recv``, ``recvfrom``, ``recvmsg``) and address family,
  in how many of ``rounds`` reads the kernel reported ``TCP_QUICKACK`` on right after the read.
  Before each read the socket is put in delayed-ACK ("pingpong") mode with ``TCP_QUICKACK = 0``,
  so the kernel says 1 afterwards only if someone set it again (or, rarely, a delayed-ACK timer
  of at least 40 ms fired in between);
* ``sets``: how many times the shim set ``TCP_QUICKACK`` during those reads, per case, from its
  ``archive_quick_ack_count`` (``null`` when the shim is not loaded);
* ``enabled``: what the shim says of ``ARCHIVE_QUICKACK``.
"""

from __future__ import annotations

import ctypes
import json
import os
import select
import socket
import sys
from collections.abc import Callable
from pathlib import Path

ROUNDS = 20
PAYLOAD = b"x" * 200

Reader = Callable[[socket.socket], bytes]
READERS: dict[str, Reader] = {
    "read": lambda s: os.read(s.fileno(), 4096),
    "recv": lambda s: s.recv(4096),
    "recvfrom": lambda s: s.recvfrom(4096)[0],
    "recvmsg": lambda s: s.recvmsg(4096)[0],
}


def shim_function(name: str) -> Callable[[], int] | None:
    try:
        function = getattr(ctypes.CDLL(None), name)
    except AttributeError:
        return None
    function.restype = ctypes.c_ulong if name.endswith("count") else ctypes.c_int
    return function  # type: ignore[no-any-return]


COUNT = shim_function("archive_quick_ack_count")
ENABLED = shim_function("archive_quick_ack_enabled")


def count() -> int:
    return int(COUNT()) if COUNT is not None else 0


def tcp_pair(family: socket.AddressFamily) -> tuple[socket.socket, socket.socket]:
    host = "127.0.0.1" if family == socket.AF_INET else "::1"
    with socket.socket(family, socket.SOCK_STREAM) as listener:
        listener.bind((host, 0))
        listener.listen(1)
        client = socket.create_connection(listener.getsockname()[:2])
        server, _ = listener.accept()
    return client, server


def tcp_case(family: socket.AddressFamily, reader: Reader) -> dict[str, int | None]:
    client, server = tcp_pair(family)
    quick = 0
    sets = 0
    with client, server:
        for _ in range(ROUNDS):
            server.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 0)
            if server.getsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK) != 0:
                raise RuntimeError("the kernel does not report delayed-ACK mode")
            client.sendall(PAYLOAD)
            select.select([server], [], [], 5)
            before = count()
            got = reader(server)
            sets += count() - before
            quick += server.getsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK)
            if got != PAYLOAD:
                raise RuntimeError(f"read {len(got)} bytes, sent {len(PAYLOAD)}")
    return {"rounds": ROUNDS, "quick": quick, "sets": sets if COUNT is not None else None}


def unix_case(reader: Reader) -> int:
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    with a, b:
        before = count()
        for _ in range(ROUNDS):
            a.sendall(PAYLOAD)
            reader(b)
        return count() - before


def pipe_case() -> int:
    r, w = os.pipe()
    try:
        before = count()
        for _ in range(ROUNDS):
            os.write(w, PAYLOAD)
            os.read(r, 4096)
        return count() - before
    finally:
        os.close(r)
        os.close(w)


def file_case(path: Path) -> int:
    path.write_bytes(PAYLOAD * ROUNDS)
    fd = os.open(path, os.O_RDONLY)
    try:
        before = count()
        while os.read(fd, len(PAYLOAD)):
            pass
        return count() - before
    finally:
        os.close(fd)


def main() -> None:
    families = [socket.AF_INET]
    if socket.has_ipv6:
        try:
            tcp_pair(socket.AF_INET6)[0].close()
            families.append(socket.AF_INET6)
        except OSError:
            pass
    tcp = {f"{family.name}/{name}": tcp_case(family, reader)
           for family in families for name, reader in READERS.items()}
    other = {f"unix/{name}": unix_case(reader) for name, reader in READERS.items()}
    other["pipe"] = pipe_case()
    other["file"] = file_case(Path(sys.argv[1]))
    json.dump({"enabled": None if ENABLED is None else int(ENABLED()), "tcp": tcp,
               "other": other if COUNT is not None else None}, sys.stdout)


if __name__ == "__main__":
    main()
