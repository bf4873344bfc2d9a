"""``python -m stripe_emulator --port 12111 [--webhook-url URL] [--webhook-secret whsec_...]
[--latency-ms N] [--search-lag-ms N] [--state-file PATH]``: serve on 127.0.0.1 until SIGINT or
SIGTERM."""

from __future__ import annotations

import argparse
import signal
import sys
import threading

from .emulator import Emulator
from .server import EmulatorServer


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stripe_emulator",
                                     description="A local Stripe-compatible API (127.0.0.1).")
    parser.add_argument("--port", type=int, default=12111)
    parser.add_argument("--webhook-url", default=None,
                        help="POST each event here, signed (off when absent)")
    parser.add_argument("--webhook-secret", default=None,
                        help="signing secret (default whsec_stripe_emulator_local_secret)")
    parser.add_argument("--latency-ms", type=float, default=0,
                        help="extra delay per /v1 request, in milliseconds")
    parser.add_argument("--search-lag-ms", type=float, default=0,
                        help="search (/v1/*/search) lags this many milliseconds behind, as "
                             "Stripe's eventually consistent search does (default 0)")
    parser.add_argument("--state-file", default=None,
                        help="load state from this file at start, save it there on exit")
    args = parser.parse_args(argv)
    if args.search_lag_ms < 0 or args.latency_ms < 0:
        parser.error("--latency-ms and --search-lag-ms must be 0 or more")

    emulator = Emulator(webhook_url=args.webhook_url, webhook_secret=args.webhook_secret,
                        latency_ms=args.latency_ms, search_lag_ms=args.search_lag_ms)
    if args.state_file:
        try:
            emulator.state.load_file(args.state_file)
        except (OSError, ValueError) as exc:
            print(f"stripe-emulator: cannot load {args.state_file}: {exc}", file=sys.stderr)
            return 2
    try:
        server = EmulatorServer(emulator, args.port)
    except OSError as exc:
        print(f"stripe-emulator: cannot listen on 127.0.0.1:{args.port}: {exc}", file=sys.stderr)
        return 1

    stopping = threading.Event()

    def stop(signum, frame):  # serve_forever runs in the main thread: shut down from another
        if not stopping.is_set():
            stopping.set()
            threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    print(f"stripe-emulator listening on {server.base_url}", flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        emulator.faults.release_all()
        server.close_connections()
        server.server_close()
        emulator.close()
        if args.state_file:
            emulator.state.save_file(args.state_file)
    return 0


if __name__ == "__main__":
    sys.exit(main())
