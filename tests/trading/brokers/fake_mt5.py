"""A stand-in for MetaQuotes' ``MetaTrader5`` package, following its documented API.

Functions return named tuples (``AccountInfo``, ``SymbolInfo``, ``Tick``, ``OrderSendResult``,
``TradeDeal``, ``TradePosition``, ``TradeOrder``, ``TerminalInfo``) or numpy structured arrays
(``copy_ticks_from``, ``copy_rates_from_pos``), return ``None`` on failure with the reason in
``last_error()``, and export the documented constants. Behaviour is scripted per test through
the ``FakeTerminal`` behind the module:

- ``terminal.script(10004, 10009)``: the next ``order_send`` calls answer these retcodes;
- ``terminal.drop()`` / ``terminal.restore()``: the IPC link to the terminal fails / comes back;
- ``terminal.deal_delay_polls``: how many ``history_deals_get`` polls before new deals show.

``make_module()`` returns a fresh module object; ``install(name)`` also registers it in
``sys.modules`` so code that imports by name (``broker_check``) finds it.
"""

from __future__ import annotations

import sys
import types
from collections import namedtuple
from datetime import UTC, datetime

import numpy as np

# ---------------------------------------------------------------- documented constants

CONSTANTS = {
    "TIMEFRAME_M1": 1,
    "TIMEFRAME_M5": 5,
    "TIMEFRAME_M15": 15,
    "TIMEFRAME_M30": 30,
    "TIMEFRAME_H1": 16385,
    "TIMEFRAME_H4": 16388,
    "TIMEFRAME_D1": 16408,
    "TIMEFRAME_W1": 32769,
    "TIMEFRAME_MN1": 49153,
    "COPY_TICKS_ALL": -1,
    "COPY_TICKS_INFO": 1,
    "COPY_TICKS_TRADE": 2,
    "TRADE_ACTION_DEAL": 1,
    "TRADE_ACTION_PENDING": 5,
    "TRADE_ACTION_SLTP": 6,
    "TRADE_ACTION_MODIFY": 7,
    "TRADE_ACTION_REMOVE": 8,
    "TRADE_ACTION_CLOSE_BY": 10,
    "ORDER_TYPE_BUY": 0,
    "ORDER_TYPE_SELL": 1,
    "ORDER_TYPE_BUY_LIMIT": 2,
    "ORDER_TYPE_SELL_LIMIT": 3,
    "ORDER_TYPE_BUY_STOP": 4,
    "ORDER_TYPE_SELL_STOP": 5,
    "ORDER_FILLING_FOK": 0,
    "ORDER_FILLING_IOC": 1,
    "ORDER_FILLING_RETURN": 2,
    "ORDER_STATE_PLACED": 1,
    "ORDER_STATE_PARTIAL": 3,
    "ORDER_TIME_GTC": 0,
    "ORDER_TIME_DAY": 1,
    "DEAL_TYPE_BUY": 0,
    "DEAL_TYPE_SELL": 1,
    "DEAL_TYPE_BALANCE": 2,
    "DEAL_ENTRY_IN": 0,
    "DEAL_ENTRY_OUT": 1,
    "DEAL_ENTRY_INOUT": 2,
    "POSITION_TYPE_BUY": 0,
    "POSITION_TYPE_SELL": 1,
    "ACCOUNT_MARGIN_MODE_RETAIL_NETTING": 0,
    "ACCOUNT_MARGIN_MODE_RETAIL_HEDGING": 2,
    "TRADE_RETCODE_REQUOTE": 10004,
    "TRADE_RETCODE_REJECT": 10006,
    "TRADE_RETCODE_PLACED": 10008,
    "TRADE_RETCODE_DONE": 10009,
    "TRADE_RETCODE_DONE_PARTIAL": 10010,
    "TRADE_RETCODE_NO_MONEY": 10019,
    "TRADE_RETCODE_PRICE_CHANGED": 10020,
}
C = types.SimpleNamespace(**CONSTANTS)

AccountInfo = namedtuple(
    "AccountInfo",
    "login trade_mode leverage limit_orders margin_so_mode trade_allowed trade_expert margin_mode currency_digits "
    "fifo_close balance credit profit equity margin margin_free margin_level margin_so_call margin_so_so "
    "name server currency company",
)
TerminalInfo = namedtuple("TerminalInfo", "community_account connected trade_allowed build name path")
SymbolInfo = namedtuple(
    "SymbolInfo",
    "name visible digits point trade_tick_size trade_contract_size volume_min volume_max volume_step "
    "filling_mode trade_mode trade_exemode currency_base currency_profit currency_margin description",
)
Tick = namedtuple("Tick", "time bid ask last volume time_msc flags volume_real")
OrderSendResult = namedtuple(
    "OrderSendResult", "retcode deal order volume price bid ask comment request_id retcode_external request"
)
OrderCheckResult = namedtuple(
    "OrderCheckResult", "retcode balance equity profit margin margin_free margin_level comment request"
)
TradeDeal = namedtuple(
    "TradeDeal",
    "ticket order time time_msc type entry magic position_id reason volume price commission swap profit fee "
    "symbol comment external_id",
)
TradePosition = namedtuple(
    "TradePosition",
    "ticket time time_msc time_update time_update_msc type magic identifier reason volume price_open sl tp "
    "price_current swap profit symbol comment external_id",
)
TradeOrder = namedtuple(
    "TradeOrder",
    "ticket time_setup time_setup_msc time_done time_done_msc time_expiration type type_time type_filling state "
    "magic position_id position_by_id reason volume_initial volume_current price_open sl tp price_current "
    "price_stoplimit symbol comment external_id",
)

TICK_DTYPE = [
    ("time", "<i8"),
    ("bid", "<f8"),
    ("ask", "<f8"),
    ("last", "<f8"),
    ("volume", "<u8"),
    ("time_msc", "<i8"),
    ("flags", "<u4"),
    ("volume_real", "<f8"),
]
RATE_DTYPE = [
    ("time", "<i8"),
    ("open", "<f8"),
    ("high", "<f8"),
    ("low", "<f8"),
    ("close", "<f8"),
    ("tick_volume", "<u8"),
    ("spread", "<i4"),
    ("real_volume", "<u8"),
]

OK = (1, "Success")
IPC_SEND_FAILED = (-10001, "IPC send failed")
IPC_INIT_FAILED = (-10003, "IPC initialize failed, MetaTrader 5 x64 not found")
NOT_FOUND = (-4, "Terminal: Not found")
INVALID_PARAMS = (-2, "Invalid arguments")


def _epoch(when: datetime) -> int:
    if when.tzinfo is None:
        raise AssertionError("naive datetime passed to the terminal: it would be taken as local time")
    return int(when.timestamp())


class FakeTerminal:
    def __init__(self) -> None:
        self.now = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)  # a Monday
        self.initialized = False
        self.ipc_down = False
        self.trade_server_connected = True
        self.error = OK
        self.retcodes: list[int] = []
        self.requests: list[dict] = []
        self.initialize_calls = 0
        self.deal_delay_polls = 0
        self.requote_shift_points = 2
        self.filling_mode = 1 | 2  # FOK and IOC allowed
        self.trade_exemode = 2  # market execution
        self.symbols = {
            "EURUSD": SymbolInfo(
                "EURUSD", True, 5, 1e-05, 1e-05, 100000.0, 0.01, 100.0, 0.01, 3, 4, 2, "EUR", "USD", "EUR", "Euro"
            )
        }
        self.bid, self.ask = 1.08501, 1.08512
        self.deals: list[TradeDeal] = []
        self.pending_deals: list[tuple[int, TradeDeal]] = []  # (polls left, deal)
        self.positions: dict[str, TradePosition] = {}
        self.orders: dict[int, TradeOrder] = {}
        self.next_ticket = 5000
        self.balance = 10_000.0

    # -------------------------------------------------------- scripting

    def script(self, *retcodes: int) -> None:
        self.retcodes.extend(retcodes)

    def drop(self) -> None:
        self.ipc_down = True

    def restore(self) -> None:
        self.ipc_down = False

    def _fail(self, error: tuple[int, str]):
        self.error = error
        return None

    def _up(self) -> bool:
        if self.ipc_down or not self.initialized:
            self.error = IPC_SEND_FAILED
            return False
        self.error = OK
        return True

    def _ticket(self) -> int:
        self.next_ticket += 1
        return self.next_ticket

    # -------------------------------------------------------- API

    def initialize(self, path=None, *, login=None, password=None, server=None, timeout=None, portable=False):
        self.initialize_calls += 1
        if self.ipc_down:
            self.error = IPC_INIT_FAILED
            return False
        self.initialized = True
        self.error = OK
        return True

    def shutdown(self):
        self.initialized = False
        return True

    def last_error(self):
        return self.error

    def version(self):
        return (500, 4755, "1 Mar 2026") if self._up() else None

    def terminal_info(self):
        if not self._up():
            return None
        return TerminalInfo(False, self.trade_server_connected, True, 4755, "MetaTrader 5", "C:/MT5")

    def account_info(self):
        if not self._up():
            return None
        return AccountInfo(
            7000001, 0, 30, 200, 0, True, True, 0, 2, False, self.balance, 0.0, 0.0, self.balance, 0.0,
            self.balance, 0.0, 50.0, 30.0, "Demo", "Demo-Server", "USD", "Broker Ltd",
        )  # fmt: skip

    def symbol_info(self, symbol):
        if not self._up():
            return None
        info = self.symbols.get(symbol)
        if info is None:
            return self._fail(NOT_FOUND)
        return info._replace(filling_mode=self.filling_mode, trade_exemode=self.trade_exemode)

    def symbol_select(self, symbol, enable=True):
        return self._up() and symbol in self.symbols

    def symbol_info_tick(self, symbol):
        if not self._up():
            return None
        if symbol not in self.symbols:
            return self._fail(NOT_FOUND)
        msc = int(self.now.timestamp() * 1000)
        return Tick(msc // 1000, self.bid, self.ask, 0.0, 0, msc, 6, 0.0)

    def copy_ticks_from(self, symbol, date_from, count, flags):
        if not self._up():
            return None
        start = _epoch(date_from)
        rows = [(start + i, self.bid, self.ask, 0.0, 0, (start + i) * 1000 + 250, 6, 0.0) for i in range(count)]
        return np.array(rows, dtype=TICK_DTYPE)

    def copy_rates_from_pos(self, symbol, timeframe, start_pos, count):
        if not self._up():
            return None
        if timeframe not in CONSTANTS.values():
            return self._fail(INVALID_PARAMS)
        start = int(self.now.timestamp()) - 3600 * count
        rows = [(start + 3600 * i, 1.085, 1.086, 1.084, 1.0855, 1200, 11, 0) for i in range(count)]
        return np.array(rows, dtype=RATE_DTYPE)

    def order_check(self, request):
        if not self._up():
            return None
        return OrderCheckResult(0, self.balance, self.balance, 0.0, 36.0, self.balance - 36.0, 0.0, "Done", request)

    def order_send(self, request):
        if not self._up():
            return None
        self.requests.append(dict(request))
        retcode = self.retcodes.pop(0) if self.retcodes else 10009
        order = self._ticket()
        volume = request.get("volume", 0.0)
        buy = request.get("type") in (C.ORDER_TYPE_BUY, C.ORDER_TYPE_BUY_LIMIT, C.ORDER_TYPE_BUY_STOP)
        price = request.get("price", 0.0)
        bid, ask = self.bid, self.ask
        if retcode in (10004, 10020):
            shift = self.requote_shift_points * 1e-05
            self.bid, self.ask = round(self.bid + shift, 5), round(self.ask + shift, 5)
            return OrderSendResult(retcode, 0, 0, 0.0, 0.0, self.bid, self.ask, "Requote", 1, 0, request)
        if request.get("action") in (C.TRADE_ACTION_REMOVE, C.TRADE_ACTION_MODIFY):
            if request.get("order") not in self.orders:
                return OrderSendResult(10013, 0, 0, 0.0, 0.0, 0.0, 0.0, "Invalid request", 2, 0, request)
            if request["action"] == C.TRADE_ACTION_REMOVE and retcode == 10009:
                del self.orders[request["order"]]
            return OrderSendResult(retcode, 0, request["order"], 0.0, 0.0, 0.0, 0.0, "Request executed", 3, 0, request)
        if retcode == 10008 and request.get("action") == C.TRADE_ACTION_PENDING:
            ms = int(self.now.timestamp() * 1000)
            self.orders[order] = TradeOrder(
                order, ms // 1000, ms, 0, 0, 0, request["type"], 0, request["type_filling"], C.ORDER_STATE_PLACED,
                request["magic"], 0, 0, 3, volume, volume, price, request.get("sl", 0.0), request.get("tp", 0.0),
                price, 0.0, request["symbol"], request["comment"], "",
            )  # fmt: skip
            return OrderSendResult(retcode, 0, order, volume, price, bid, ask, "Request executed", 4, 0, request)
        if retcode not in (10009, 10010):
            return OrderSendResult(retcode, 0, 0, 0.0, 0.0, bid, ask, "Request rejected", 5, 0, request)
        filled = round(volume / 2, 2) if retcode == 10010 else volume
        fill_price = ask if buy else bid
        deal_ticket = self._ticket()
        ms = int(self.now.timestamp() * 1000)
        position = self.positions.get(request["symbol"])
        signed = (position.volume if position and position.type == 0 else -position.volume) if position else 0.0
        new = round(signed + (filled if buy else -filled), 2)
        entry = C.DEAL_ENTRY_IN if signed == 0 or (signed > 0) == buy else C.DEAL_ENTRY_OUT
        deal = TradeDeal(
            deal_ticket, order, ms // 1000, ms, C.DEAL_TYPE_BUY if buy else C.DEAL_TYPE_SELL, entry,
            request.get("magic", 0), position.ticket if position else order, 3, filled, fill_price, -0.35, 0.0,
            0.0, 0.0, request["symbol"], request.get("comment", ""), "",
        )  # fmt: skip
        self.pending_deals.append((self.deal_delay_polls, deal))
        if new == 0:
            self.positions.pop(request["symbol"], None)
        else:
            ticket = position.ticket if position else order
            self.positions[request["symbol"]] = TradePosition(
                ticket, ms // 1000, ms, ms // 1000, ms, 0 if new > 0 else 1, request.get("magic", 0), ticket, 3,
                abs(new), fill_price, 0.0, 0.0, fill_price, 0.0, 0.0, request["symbol"], request.get("comment", ""), "",
            )  # fmt: skip
        rest = round(volume - filled, 2)
        if rest > 0 and request.get("type_filling") == C.ORDER_FILLING_RETURN:
            # MetaQuotes, ORDER_FILLING_RETURN: "in case of partial filling, a market or limit order
            # with the remaining volume is not canceled but processed further": the rest is the same
            # order, still working (ORDER_STATE_PARTIAL), until it executes or is removed. IOC
            # cancels the rest at once; FOK never answers DONE_PARTIAL.
            self.orders[order] = TradeOrder(
                order, ms // 1000, ms, 0, 0, 0, request["type"], 0, request["type_filling"],
                C.ORDER_STATE_PARTIAL, request.get("magic", 0), 0, 0, 3, volume, rest, fill_price,
                request.get("sl", 0.0), request.get("tp", 0.0), fill_price, 0.0, request["symbol"],
                request.get("comment", ""), "",
            )  # fmt: skip
        comment = "Request executed"
        return OrderSendResult(retcode, deal_ticket, order, filled, fill_price, bid, ask, comment, 6, 0, request)

    def _visible_deals(self) -> list[TradeDeal]:
        still = []
        for polls, deal in self.pending_deals:
            if polls <= 0:
                self.deals.append(deal)
            else:
                still.append((polls - 1, deal))
        self.pending_deals = still
        return self.deals

    def history_deals_get(self, date_from=None, date_to=None, *, group=None, ticket=None, position=None):
        if not self._up():
            return None
        deals = self._visible_deals()
        if ticket is not None:
            return tuple(d for d in deals if d.order == ticket)
        if position is not None:
            return tuple(d for d in deals if d.position_id == position)
        lo, hi = _epoch(date_from), _epoch(date_to)
        return tuple(d for d in deals if lo <= d.time <= hi)

    def positions_get(self, symbol=None, group=None, ticket=None):
        if not self._up():
            return None
        return tuple(p for p in self.positions.values() if symbol in (None, p.symbol))

    def orders_get(self, symbol=None, group=None, ticket=None):
        if not self._up():
            return None
        return tuple(o for o in self.orders.values() if symbol in (None, o.symbol))


API = [
    "initialize",
    "shutdown",
    "last_error",
    "version",
    "terminal_info",
    "account_info",
    "symbol_info",
    "symbol_select",
    "symbol_info_tick",
    "copy_ticks_from",
    "copy_rates_from_pos",
    "order_check",
    "order_send",
    "history_deals_get",
    "positions_get",
    "orders_get",
]


def make_module(terminal: FakeTerminal | None = None, name: str = "MetaTrader5") -> types.ModuleType:
    terminal = terminal or FakeTerminal()
    module = types.ModuleType(name, "stand-in for MetaQuotes' MetaTrader5 package (tests only)")
    for key, value in CONSTANTS.items():
        setattr(module, key, value)
    for function in API:
        setattr(module, function, getattr(terminal, function))
    module.terminal = terminal
    return module


def install(name: str, terminal: FakeTerminal | None = None) -> types.ModuleType:
    module = make_module(terminal, name)
    sys.modules[name] = module
    return module
