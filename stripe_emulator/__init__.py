"""A local Stripe-compatible API for development, tests, QA runs and benchmarks.

Run it with ``python -m stripe_emulator --port 12111`` or in-process with
``stripe_emulator.testing.start_emulator()``; see docs/STRIPE_EMULATOR.md.
This package imports neither Django nor the project's apps.
"""

__version__ = "1.0.0"
