"""`python -m neon_emulator`: a local Neon API (fake control plane, real PostgreSQL) until Ctrl-C.

Prints the `neon:apiUrl` and API key to configure; every cluster it starts is stopped and removed
on exit (Ctrl-C or SIGTERM).
"""

from __future__ import annotations

import argparse
import logging
import os
import secrets
import signal
import threading
from pathlib import Path

from neon_emulator.api_server import ApiServer
from neon_emulator.fake import DEFAULT_OPERATION_SECONDS, NeonFake, checked_operation_seconds


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m neon_emulator", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1", help="loopback address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=4010, help="port to listen on (default 4010; 0 = any free port)")
    parser.add_argument(
        "--api-key",
        default=os.environ.get("NEON_EMULATOR_API_KEY"),
        help="API key clients must send (default $NEON_EMULATOR_API_KEY, else a random one)",
    )
    parser.add_argument(
        "--data-dir", type=Path, help="directory for the clusters' files (default: the system's temporary directory)"
    )
    parser.add_argument(
        "--operation-seconds",
        type=float,
        default=DEFAULT_OPERATION_SECONDS,
        help=f"how long each operation runs (default {DEFAULT_OPERATION_SECONDS:g}; 0 = finished at once)",
    )
    args = parser.parse_args(argv)
    try:
        seconds = checked_operation_seconds(args.operation_seconds)
    except ValueError as error:
        parser.error(f"--operation-seconds: {error}")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    if args.data_dir:
        args.data_dir.mkdir(parents=True, exist_ok=True)
    api_key = args.api_key or "neon-emulator-" + secrets.token_hex(12)
    fake = NeonFake(api_key=api_key, data_dir=args.data_dir, operation_seconds=seconds)
    try:
        server = ApiServer(fake, args.host, args.port)
    except OSError as error:
        fake.close()
        parser.error(f"cannot listen on {args.host}:{args.port}: {error.strerror} (choose another --port)")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    print(f"Neon API emulator listening on {server.url}", flush=True)
    print(f"  pulumi config set neon:apiUrl {server.url}", flush=True)
    print(f"  pulumi config set --secret neon:apiKey {fake.api_key}", flush=True)
    print("Press Ctrl-C to stop (every PostgreSQL cluster it started is removed).", flush=True)
    try:
        stop.wait()
    finally:
        server.close()
        print("Neon API emulator stopped.", flush=True)


if __name__ == "__main__":
    main()
