"""The default: a developer's machine or the embedded first run (SQLite, memory bus)."""

from tradeops.settings.base import *  # noqa: F403
from tradeops.settings.env import env

DEBUG = env.bool("DEBUG", default=True)
