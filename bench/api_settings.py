"""Settings of bench/api_throughput.py's server: the project's, plus the minimal view's route."""

from tradeops.settings.local import *  # noqa: F403

DEBUG = False
ROOT_URLCONF = "bench.api_urls"
