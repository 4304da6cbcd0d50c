"""Instrument specifications as retail CFD/FX brokers publish them (MT5 symbol specs).

Contract sizes, tick sizes and volume limits follow the usual MT5 broker specifications;
margin rates are ESMA's retail leverage limits (major FX 30:1, gold and major indices 20:1,
other commodities 10:1, single equities 5:1). Hours are UTC sessions in northern-hemisphere
winter time (brokers shift them by an hour with daylight saving).

CFI codes are ISO 10962 as the ANNA DSB assigns them to OTC CFDs (category J, last attribute
C = cash-settled contract for difference); check them against the DSB before reporting.
"""

from decimal import Decimal as D

FX_HOURS = {
    "sun": [["22:00", "24:00"]],
    "mon": [["00:00", "24:00"]],
    "tue": [["00:00", "24:00"]],
    "wed": [["00:00", "24:00"]],
    "thu": [["00:00", "24:00"]],
    "fri": [["00:00", "21:55"]],
}
# Index, metals and energy CFDs follow CME Globex: a daily break 22:00-23:00 UTC.
GLOBEX_HOURS = {
    "sun": [["23:00", "24:00"]],
    "mon": [["00:00", "22:00"], ["23:00", "24:00"]],
    "tue": [["00:00", "22:00"], ["23:00", "24:00"]],
    "wed": [["00:00", "22:00"], ["23:00", "24:00"]],
    "thu": [["00:00", "22:00"], ["23:00", "24:00"]],
    "fri": [["00:00", "21:55"]],
}
XETRA_EXTENDED = {day: [["07:00", "21:00"]] for day in ("mon", "tue", "wed", "thu", "fri")}
NASDAQ_REGULAR = {day: [["14:30", "21:00"]] for day in ("mon", "tue", "wed", "thu", "fri")}


def _fx(symbol: str, description: str, base: str, quote: str, digits: int = 5) -> dict:
    return {
        "symbol": symbol,
        "description": description,
        "asset_class": "FX",
        "isin": "",
        "cfi_code": "JFTXFC",
        "currency": base,
        "quote_currency": quote,
        "digits": digits,
        "tick_size": D(1).scaleb(-digits),
        "contract_size": D(100000),
        "min_volume": D("0.01"),
        "max_volume": D("100"),
        "volume_step": D("0.01"),
        "margin_rate": D("0.033333"),
        "venue_mic": "XOFF",
        "trading_hours": FX_HOURS,
    }


INSTRUMENTS: list[dict] = [
    _fx("EURUSD", "Euro vs US Dollar", "EUR", "USD"),
    _fx("GBPUSD", "Pound Sterling vs US Dollar", "GBP", "USD"),
    _fx("USDJPY", "US Dollar vs Japanese Yen", "USD", "JPY", digits=3),
    _fx("USDCHF", "US Dollar vs Swiss Franc", "USD", "CHF"),
    _fx("AUDUSD", "Australian Dollar vs US Dollar", "AUD", "USD"),
    _fx("USDCAD", "US Dollar vs Canadian Dollar", "USD", "CAD"),
    _fx("NZDUSD", "New Zealand Dollar vs US Dollar", "NZD", "USD"),
    {
        "symbol": "XAUUSD",
        "description": "Gold vs US Dollar",
        "asset_class": "COMMODITY",
        "cfi_code": "JCAXFC",
        "currency": "XAU",
        "quote_currency": "USD",
        "digits": 2,
        "tick_size": D("0.01"),
        "contract_size": D(100),
        "min_volume": D("0.01"),
        "max_volume": D("50"),
        "volume_step": D("0.01"),
        "margin_rate": D("0.05"),
        "venue_mic": "XOFF",
        "trading_hours": GLOBEX_HOURS,
    },
    {
        "symbol": "XTIUSD",
        "description": "WTI Crude Oil CFD",
        "asset_class": "COMMODITY",
        "cfi_code": "JCAXFC",
        "currency": "USD",
        "quote_currency": "USD",
        "digits": 3,
        "tick_size": D("0.001"),
        "contract_size": D(1000),
        "min_volume": D("0.01"),
        "max_volume": D("50"),
        "volume_step": D("0.01"),
        "margin_rate": D("0.10"),
        "venue_mic": "XOFF",
        "trading_hours": GLOBEX_HOURS,
    },
    {
        "symbol": "US500",
        "description": "US 500 index CFD (S&P 500)",
        "asset_class": "CFD_INDEX",
        "cfi_code": "JEIXFC",
        "currency": "USD",
        "quote_currency": "USD",
        "digits": 2,
        "tick_size": D("0.01"),
        "contract_size": D(1),
        "min_volume": D("0.1"),
        "max_volume": D("500"),
        "volume_step": D("0.1"),
        "margin_rate": D("0.05"),
        "venue_mic": "XXXX",
        "trading_hours": GLOBEX_HOURS,
    },
    {
        "symbol": "GER40",
        "description": "Germany 40 index CFD (DAX)",
        "asset_class": "CFD_INDEX",
        "cfi_code": "JEIXFC",
        "currency": "EUR",
        "quote_currency": "EUR",
        "digits": 2,
        "tick_size": D("0.01"),
        "contract_size": D(1),
        "min_volume": D("0.1"),
        "max_volume": D("500"),
        "volume_step": D("0.1"),
        "margin_rate": D("0.05"),
        "venue_mic": "XXXX",
        "trading_hours": XETRA_EXTENDED,
    },
    {
        "symbol": "AAPL",
        "description": "Apple Inc. share CFD",
        "asset_class": "CFD_EQUITY",
        "isin": "US0378331005",
        "cfi_code": "JESXFC",
        "currency": "USD",
        "quote_currency": "USD",
        "digits": 2,
        "tick_size": D("0.01"),
        "contract_size": D(1),
        "min_volume": D("1"),
        "max_volume": D("10000"),
        "volume_step": D("1"),
        "margin_rate": D("0.20"),
        "venue_mic": "XXXX",
        "trading_hours": NASDAQ_REGULAR,
    },
    {
        "symbol": "GOOG",
        "description": "Alphabet Inc. class C share CFD",
        "asset_class": "CFD_EQUITY",
        "isin": "US02079K1079",
        "cfi_code": "JESXFC",
        "currency": "USD",
        "quote_currency": "USD",
        "digits": 2,
        "tick_size": D("0.01"),
        "contract_size": D(1),
        "min_volume": D("1"),
        "max_volume": D("10000"),
        "volume_step": D("1"),
        "margin_rate": D("0.20"),
        "venue_mic": "XXXX",
        "trading_hours": NASDAQ_REGULAR,
    },
]

DEMO_ACCOUNT = {
    "name": "Paper demo",
    "mt5_login": 5000001,
    "mt5_server": "tradeops-paper",
    # An 18-character prefix completed with its ISO 7064 check digits at seed time.
    "firm_lei_prefix": "TRADEOPSDEMO000000",
    "client_id": "DEMO-CLIENT-1",
    "beneficial_owner": "DEMO-OWNER-1",
    "margin_mode": "NETTING",
    "base_currency": "USD",
}

# Account-wide limits for the demo account (risk manager's defaults; editable in the admin).
# A demo balance of 100,000 USD: 5 lots of EURUSD is about 550,000 USD notional (5.5x).
DEMO_RISK_LIMITS = {
    "max_position_lots": D("5"),
    "max_gross_exposure": D("1500000"),
    "daily_loss_limit": D("5000"),
    "max_drawdown": D("0.10"),
    "max_submits_per_second": 20,
    "max_open_orders": 20,
}
