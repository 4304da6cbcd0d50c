"""manage.py broker_check against the stand-in MetaTrader5 module and the paper broker; get_broker."""

from __future__ import annotations

import sys
import uuid

import pytest
from django.core.management import CommandError, call_command

from tests.trading.brokers import fake_mt5
from trading.brokers import BrokerNotConfigured, get_broker
from trading.brokers.mt5 import MT5Broker
from trading.brokers.paper import PaperBroker


@pytest.fixture
def stand_in(settings):
    name = f"fake_MetaTrader5_{uuid.uuid4().hex[:8]}"
    module = fake_mt5.install(name)
    settings.MT5_MODULE = name
    settings.MT5_LOGIN = 7000001
    yield module
    sys.modules.pop(name, None)


def test_broker_check_mt5_prints_account_spec_tick_and_each_retcode(stand_in, capsys):
    call_command("broker_check", "--broker", "mt5", "--symbol", "EURUSD", "--trade")
    out = capsys.readouterr().out
    assert "account: 7000001 @ Demo-Server (NETTING)" in out
    assert "symbol: EURUSD digits 5" in out and "filling FOK,IOC" in out
    assert "tick: bid 1.08501 ask 1.08512 spread 11 points" in out
    assert "check: BUY 0.01 EURUSD -> DONE" in out
    assert "open: BUY 0.01 EURUSD -> retcode 10009 DONE" in out
    assert "close: SELL 0.01 EURUSD -> retcode 10009 DONE" in out
    assert stand_in.terminal.positions == {}  # opened and closed
    assert [r["volume"] for r in stand_in.terminal.requests] == [0.01, 0.01]


def test_broker_check_reports_a_refused_opening(stand_in, capsys):
    stand_in.terminal.script(10019)
    with pytest.raises(CommandError, match="NO_MONEY"):
        call_command("broker_check", "--broker", "mt5", "--trade")
    assert "retcode 10019 NO_MONEY" in capsys.readouterr().out


def test_broker_check_paper_in_and_out_of_trading_hours(db, capsys):
    call_command("broker_check", "--broker", "paper", "--trade", "--at", "2026-03-02T10:00:00+00:00")
    out = capsys.readouterr().out
    assert "open: BUY" in out and "retcode 10009 DONE" in out
    with pytest.raises(CommandError, match="MARKET_CLOSED"):
        call_command("broker_check", "--broker", "paper", "--trade", "--at", "2026-03-07T10:00:00+00:00")


def test_get_broker_factory(settings, db):
    settings.BROKER = "paper"
    assert isinstance(get_broker(), PaperBroker)
    assert isinstance(get_broker("mt5"), MT5Broker)
    with pytest.raises(BrokerNotConfigured):
        get_broker("ib")
