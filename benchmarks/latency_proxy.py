"""A TCP proxy that delays every byte by a fixed time each way, to measure clients at a distance.

`LatencyProxy(target_port, rtt_ms)` listens on a free loopback port and forwards each connection to
the target; data read from either side is written to the other `rtt_ms / 2` later (bytes keep
flowing meanwhile: the delay is latency, not a bandwidth limit). It also counts the PostgreSQL
round trips it forwards: every ReadyForQuery the server sends ends one exchange the client waited
for (one per simple Query or extended-protocol Sync, and one for the connection start). Counting
reads the protocol, so it needs connections without TLS (`sslmode=disable`); delaying does not.

Used by benchmarks/bench_wire.py and by the round-trip tests of the migration engine.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from contextlib import suppress

_READY_FOR_QUERY = ord("Z")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class _MessageCounter:
    """Counts ReadyForQuery messages in a server-to-client stream fed in arbitrary chunks."""

    def __init__(self) -> None:
        self.ready = 0
        self._pending = bytearray()

    def feed(self, data: bytes) -> None:
        self._pending += data
        offset = 0
        while len(self._pending) - offset >= 5:
            length = int.from_bytes(self._pending[offset + 1:offset + 5], "big")
            if len(self._pending) - offset < 1 + length:
                break
            if self._pending[offset] == _READY_FOR_QUERY:
                self.ready += 1
            offset += 1 + length
        del self._pending[:offset]


class LatencyProxy:
    """Forward 127.0.0.1:<port> to 127.0.0.1:<target_port> with `rtt_ms` of round-trip delay."""

    def __init__(self, target_port: int, rtt_ms: float = 0.0) -> None:
        self.target_port = target_port
        self.delay = rtt_ms / 2000
        self.port = free_port()
        self._counters: list[_MessageCounter] = []
        self._loop = asyncio.new_event_loop()
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._run, name="latency-proxy", daemon=True)
        self._thread.start()
        self._started.wait()

    @property
    def round_trips(self) -> int:
        """ReadyForQuery messages forwarded so far, over every connection."""
        return sum(counter.ready for counter in self._counters)

    def url(self, url: str) -> str:
        """`url` (postgresql://...@127.0.0.1:<target_port>/...) pointed at the proxy."""
        return url.replace(f":{self.target_port}/", f":{self.port}/", 1)

    def close(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()

    def __enter__(self) -> LatencyProxy:
        return self

    def __exit__(self, *_exc) -> None:
        self.close()

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(asyncio.start_server(self._serve, "127.0.0.1", self.port))
        self._started.set()
        try:
            self._loop.run_forever()
        finally:
            server.close()
            tasks = asyncio.all_tasks(self._loop)
            for task in tasks:
                task.cancel()
            self._loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
            self._loop.close()

    async def _serve(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        try:
            server_reader, server_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            client_writer.close()
            return
        for sock in (client_writer, server_writer):
            sock.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        counter = _MessageCounter()
        self._counters.append(counter)
        with suppress(asyncio.CancelledError):  # the proxy closing
            await asyncio.gather(self._pipe(client_reader, server_writer, None),
                                 self._pipe(server_reader, client_writer, counter))

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                    counter: _MessageCounter | None) -> None:
        """Copy one direction; each chunk is written `delay` after it was read."""
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

        async def deliver() -> None:
            while (item := await queue.get())[1]:
                due, data = item
                if (wait := due - time.monotonic()) > 0:
                    await asyncio.sleep(wait)
                writer.write(data)
                await writer.drain()

        delivering = asyncio.ensure_future(deliver())
        with suppress(ConnectionError):
            while data := await reader.read(65536):
                if counter:
                    counter.feed(data)
                queue.put_nowait((time.monotonic() + self.delay, data))
        queue.put_nowait((0.0, b""))
        with suppress(ConnectionError):
            await delivering
            writer.close()
