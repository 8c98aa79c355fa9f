"""The listening socket the watchdog binds itself must give accepted connections TCP_NODELAY: without it
every small webhook answer waited ~40 ms for a delayed ACK (found by the ingest benchmark)."""

from __future__ import annotations

import socket

from watchdog.serving import bind


def test_bound_socket_is_tcp_with_nodelay_inherited_by_accepted_connections() -> None:
    listener = bind("127.0.0.1", 0)
    try:
        assert listener.proto == socket.IPPROTO_TCP  # asyncio sets TCP_NODELAY only on such sockets
        with socket.create_connection(listener.getsockname()[:2], timeout=5):
            accepted, _ = listener.accept()
            with accepted:
                assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
    finally:
        listener.close()
