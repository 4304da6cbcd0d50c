"""Two tiny pure stages for runner tests: ticks -> features -> predictions. No Django, no I/O."""

from __future__ import annotations

from tradeops.events import Envelope, Features, Prediction, Tick, make_event


class MidPrice:
    """Tick -> Features(mid). Counts what it has applied, so double application is visible."""

    def __init__(self) -> None:
        self.applied: dict[str, int] = {}

    def handle(self, event: Envelope) -> list[Envelope]:
        tick = event.payload
        if not isinstance(tick, Tick):
            return []
        if tick.symbol == "POISON":
            raise ValueError("poison tick")
        self.applied[tick.symbol] = self.applied.get(tick.symbol, 0) + 1
        mid = (tick.bid + tick.ask) / 2
        features = Features(symbol=tick.symbol, ts=tick.ts, values={"mid": float(mid)}, price=mid)
        return [make_event(features, source="toy-features", key=tick.symbol)]


class UpIfAboveOne:
    def handle(self, event: Envelope) -> list[Envelope]:
        f = event.payload
        prediction = Prediction(
            symbol=f.symbol,
            ts=f.ts,
            model="toy",
            model_version="1",
            direction=1 if f.price > 1 else -1,
            probability=0.6,
        )
        return [make_event(prediction, source="toy-model", key=f.symbol)]
