"""Thin views by concept: validate with a serializer, call one service, render with its output
serializer. ``cards``, ``payments``, ``refunds``, ``webhooks``, and ``bookings`` (decline and cancel:
the booking actions that move money, on the bookings URLs)."""
