"""The firm's background client accounts on the limit order book (legitimate behaviour only)."""

from __future__ import annotations


def start(desk, rng) -> None:
    """Create the background accounts and spawn their scripts on the desk."""
    return None
