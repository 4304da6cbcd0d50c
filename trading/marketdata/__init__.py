"""Market data: sources (real historical bars, MT5 exports, synthetic), trading sessions, the
quarantine for bad rows, and the pure market monitor handler. The collector runner that wires
them to the bus lives in ``workers/collector.py``."""
