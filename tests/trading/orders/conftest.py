"""The order path's tests share the execution worker's fixtures (a second instrument, paper brokers)."""

from tests.workers.conftest import gbpusd  # noqa: F401 - a fixture, used by name
