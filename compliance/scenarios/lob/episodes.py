"""Abuse and near-miss scripts of the limit order book (helper B's part; a placeholder)."""


def plan_episodes(desk, rng):
    return None
