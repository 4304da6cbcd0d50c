"""manage.py broker_check: is the broker reachable, what does it say, can we trade the minimum?

Prints the account, the symbol's specification and its latest tick; with ``--trade`` it opens
and closes the symbol's minimum volume at market and prints each return code. Against a real
MT5 account ``--trade`` sends real orders: use a demo account.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from django.core.management.base import BaseCommand, CommandError

from tradeops.core.clock import ensure_utc, utcnow
from trading.brokers import BrokerError, OrderRequest, Quote, get_broker
from trading.brokers.base import BUY, SELL, OrderResult


def _describe(result: OrderResult) -> str:
    text = f"retcode {result.retcode} {result.outcome}"
    if result.broker_order_id:
        text += f", order {result.broker_order_id}"
    if result.filled_volume:
        text += f", filled {result.filled_volume} @ {result.price}, deals {len(result.deals)}"
    if result.attempts > 1:
        text += f", {result.attempts} attempts"
    return f"{text} ({result.message})"


class Command(BaseCommand):
    help = "Print account, symbol spec and latest tick; --trade opens and closes the minimum volume."

    def add_arguments(self, parser):
        parser.add_argument("--broker", choices=["mt5", "paper"], default=None, help="default: settings.BROKER")
        parser.add_argument("--symbol", default="EURUSD")
        parser.add_argument("--trade", action="store_true", help="open and close the minimum volume at market")
        parser.add_argument("--deviation", type=int, default=20, help="allowed slippage in points (--trade)")
        parser.add_argument("--price", default="", help="paper only: the bid to quote (default: last real close)")
        parser.add_argument("--at", default="", help="paper only: ISO time with offset to run at (trading hours)")

    def handle(self, *args, broker=None, symbol="EURUSD", trade=False, deviation=20, price="", at="", **options):
        kwargs = {}
        self._now = utcnow
        if broker == "paper" or (broker is None and self._configured() == "paper"):
            broker = "paper"
            if at:
                try:
                    when = ensure_utc(datetime.fromisoformat(at))
                except ValueError as exc:
                    raise CommandError(f"--at: {exc}") from None
                self._now = kwargs["clock"] = lambda: when
        try:
            client = get_broker(broker, **kwargs)
            client.connect()
        except BrokerError as exc:
            raise CommandError(f"{exc.code}: {exc}") from None
        try:
            if client.name == "paper":
                self._seed_paper_quote(client, symbol, price)
            self._report(client, symbol)
            if trade:
                self._trade(client, symbol, deviation)
        except BrokerError as exc:
            raise CommandError(f"{exc.code}: {exc}") from None
        finally:
            client.disconnect()

    def _configured(self) -> str:
        from django.conf import settings

        return getattr(settings, "BROKER", "paper")

    def _seed_paper_quote(self, client, symbol: str, price: str) -> None:
        spec = client.symbol_spec(symbol)
        if price:
            bid = Decimal(price)
        elif symbol == "EURUSD":
            from trading.marketdata.sources import DemoDataMissing, backtesting_bars

            try:
                *_, last = backtesting_bars("EURUSD")
            except DemoDataMissing as exc:
                raise CommandError(f"no --price given and {exc}") from None
            bid = last.close
        else:
            raise CommandError(f"the paper broker has no quote for {symbol}: pass --price")
        spread = spec.point * 10
        client.update_quote(Quote(symbol, bid, bid + spread, self._now()))

    def _report(self, client, symbol: str) -> None:
        out = self.stdout.write
        account = client.account_info()
        out(f"broker: {client.name}")
        out(
            f"account: {account.login} @ {account.server} ({account.margin_mode}), {account.currency} "
            f"balance {account.balance}, equity {account.equity}, margin {account.margin}, "
            f"free {account.margin_free}, leverage 1:{account.leverage}, "
            f"trading {'allowed' if account.trade_allowed else 'DISABLED'}"
        )
        spec = client.symbol_spec(symbol)
        out(
            f"symbol: {spec.symbol} digits {spec.digits}, point {spec.point}, tick {spec.tick_size}, "
            f"contract {spec.contract_size}, volume {spec.volume_min}..{spec.volume_max} step {spec.volume_step}, "
            f"filling {','.join(sorted(spec.filling_modes))}, "
            f"trading {'allowed' if spec.trade_allowed else 'DISABLED'}"
        )
        quote = client.quote(symbol)
        spread_points = (quote.ask - quote.bid) / spec.point
        out(f"tick: bid {quote.bid} ask {quote.ask} spread {spread_points:.0f} points at {quote.ts.isoformat()}")

    def _trade(self, client, symbol: str, deviation: int) -> None:
        spec = client.symbol_spec(symbol)
        stamp = datetime.now(UTC).strftime("%H%M%S")
        opening = OrderRequest(
            client_order_id=f"CHK-{stamp}-O",
            symbol=symbol,
            side=BUY,
            volume=spec.volume_min,
            deviation_points=deviation,
        )
        check = getattr(client, "check_order", None)  # MT5's order_check: margin, volume, stops, no order sent
        if check is not None:
            outcome, comment = check(opening)
            self.stdout.write(f"check: BUY {spec.volume_min} {symbol} -> {outcome} ({comment})")
        opened = client.send_order(opening)
        self.stdout.write(f"open: BUY {spec.volume_min} {symbol} -> {_describe(opened)}")
        if opened.filled_volume <= 0:
            raise CommandError(f"the opening order was not filled ({opened.outcome}); nothing to close")
        position = None
        if client.account_info().margin_mode == "HEDGING":
            matches = [p for p in client.positions(symbol) if p.comment == opening.client_order_id]
            position = matches[0].ticket if matches else None
        closing = OrderRequest(
            client_order_id=f"CHK-{stamp}-C",
            symbol=symbol,
            side=SELL,
            volume=opened.filled_volume,
            deviation_points=deviation,
            position=position,
        )
        closed = client.send_order(closing)
        self.stdout.write(f"close: SELL {opened.filled_volume} {symbol} -> {_describe(closed)}")
        if closed.filled_volume != opened.filled_volume:
            raise CommandError(f"the closing order did not close the position ({closed.outcome}): check the terminal")
