"""``manage.py surveil_scenarios --lob``: refused without evaluation seeds and with
``--fit-calibration``; ``--seeds N --lob --write-input F --write-labels L`` writes a book to
inspect and scores nothing."""

from __future__ import annotations

import io

import orjson
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from compliance.management.commands import surveil_scenarios


def test_lob_refused_while_no_evaluation_seed_is_set(monkeypatch):
    monkeypatch.setattr(surveil_scenarios, "LOB_SEEDS", ())
    monkeypatch.setattr(surveil_scenarios, "SEEN_LOB_SEEDS", ())
    with pytest.raises(CommandError, match="LOB_SEEDS"):
        call_command("surveil_scenarios", "--lob")
    with pytest.raises(CommandError, match="SEEN_LOB_SEEDS"):
        call_command("surveil_scenarios", "--seen-lob")


def test_lob_refused_for_the_calibration():
    with pytest.raises(CommandError, match="calibration"):
        call_command("surveil_scenarios", "--lob", "--seeds", "2", "--fit-calibration")


def test_write_a_seed_to_inspect_without_scoring(tmp_path):
    book, labels = tmp_path / "lob.jsonl", tmp_path / "labels.jsonl"
    out = io.StringIO()
    call_command(
        "surveil_scenarios",
        "--lob",
        "--seeds",
        "2",
        "--hours",
        "1.0",
        "--write-input",
        str(book),
        "--write-labels",
        str(labels),
        stdout=out,
        stderr=io.StringIO(),
    )
    assert out.getvalue() == ""  # no table: nothing scored
    rows = [orjson.loads(line) for line in book.read_bytes().splitlines()]
    assert rows and {r["type"] for r in rows} >= {"quote", "order", "fill"}
    for line in labels.read_bytes().splitlines():
        ep = orjson.loads(line)
        assert {"kind", "near_miss", "variant", "order_ids", "account", "owner", "symbol"} <= set(ep)
