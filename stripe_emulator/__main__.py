"""``python -m stripe_emulator --port 12111 [--webhook-url URL] [--webhook-secret whsec_...]
[--latency-ms N] [--search-lag-ms N] [--state-file PATH] [--webhook-delay-ms N]
[--webhook-jitter F] [--webhook-shuffle MS] [--webhook-duplicate-rate F]
[--webhook-concurrency N] [--webhook-seed N] [--webhook-retry-schedule live|test]
[--webhook-retry-compression F]``: serve on 127.0.0.1 until SIGINT or SIGTERM.

The webhook delivery options emulate what Stripe documents (events late, out of order, twice,
concurrently); their defaults keep delivery deterministic (see ``webhooks.py``)."""

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
    hooks = parser.add_argument_group(
        "webhook delivery", "Stripe's deliveries can be late, out of order, doubled and "
                            "concurrent; the defaults are deterministic (none of that)")
    hooks.add_argument("--webhook-delay-ms", type=float, default=0,
                       help="each event waits this long before its first try (default 0)")
    hooks.add_argument("--webhook-jitter", type=float, default=0.5,
                       help="the delay varies by ± this fraction of it (default 0.5)")
    hooks.add_argument("--webhook-shuffle", type=float, default=0, metavar="WINDOW_MS",
                       help="events queued within a window of this many ms go out in a random "
                            "order (default 0: in order)")
    hooks.add_argument("--webhook-duplicate-rate", type=float, default=0,
                       help="0..1: the chance an event is delivered twice (default 0)")
    hooks.add_argument("--webhook-concurrency", type=int, default=1,
                       help="deliveries in flight at once (default 1)")
    hooks.add_argument("--webhook-seed", type=int, default=None,
                       help="seed of the random choices above, for reproducible runs")
    hooks.add_argument("--webhook-retry-schedule", choices=["live", "test"], default=None,
                       help="retry on Stripe's schedule (live: up to ~3 days; test: 3 retries "
                            "over ~3 hours) instead of 4 attempts 1, 2, 4 s apart")
    hooks.add_argument("--webhook-retry-compression", type=float, default=None,
                       help="Stripe's retry delays are divided by this (default 10000)")
    args = parser.parse_args(argv)
    if args.search_lag_ms < 0 or args.latency_ms < 0:
        parser.error("--latency-ms and --search-lag-ms must be 0 or more")
    delivery = {"delay_ms": args.webhook_delay_ms, "jitter": args.webhook_jitter,
                "shuffle_window_ms": args.webhook_shuffle,
                "duplicate_rate": args.webhook_duplicate_rate,
                "concurrency": args.webhook_concurrency, "seed": args.webhook_seed,
                "retry_schedule": args.webhook_retry_schedule}
    if args.webhook_retry_compression is not None:
        delivery["retry_compression"] = args.webhook_retry_compression

    emulator = Emulator(webhook_url=args.webhook_url, webhook_secret=args.webhook_secret,
                        latency_ms=args.latency_ms, search_lag_ms=args.search_lag_ms)
    try:
        emulator.webhooks.set_delivery(**delivery)
    except ValueError as exc:
        emulator.close()
        parser.error(f"webhook delivery: {exc}")
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
