#!/usr/bin/env python3
"""Print N free TCP ports on 127.0.0.1, one per line (default N=1).

Each port is found by binding a socket to port 0 and reading the port the kernel
chose. All N sockets are held open until every port has been chosen, so the N
ports are distinct; they are closed before printing. Another process may still
take a port between this script exiting and the caller binding it, so callers
should treat "address in use" as retryable.

Usage: tools/free-port.py [N]
"""

from __future__ import annotations

import socket
import sys


def free_ports(count: int) -> list[int]:
    """Return `count` distinct TCP ports that were free on 127.0.0.1."""
    sockets: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sockets.append(sock)
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def main(argv: list[str]) -> int:
    if len(argv) > 2 or (len(argv) == 2 and argv[1] in ("-h", "--help")):
        print(__doc__.strip(), file=sys.stderr)
        return 2
    try:
        count = int(argv[1]) if len(argv) == 2 else 1
    except ValueError:
        print(f"free-port.py: error: N must be an integer, got {argv[1]!r}", file=sys.stderr)
        return 2
    if not 1 <= count <= 1000:
        print(f"free-port.py: error: N must be between 1 and 1000, got {count}", file=sys.stderr)
        return 2
    print("\n".join(str(port) for port in free_ports(count)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
