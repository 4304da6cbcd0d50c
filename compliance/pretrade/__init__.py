"""Pre-trade compliance controls (RTS 6 Art. 15): pure checks that plug into ``trading.gate``."""
