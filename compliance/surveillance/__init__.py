"""Post-trade surveillance (RTS 6 Art. 13, MAR Art. 16): pure streaming detectors and the
engine that runs them, in batch (``manage.py surveil``) or on trading-events (the
``surveillance`` stage). No Django in this package."""
