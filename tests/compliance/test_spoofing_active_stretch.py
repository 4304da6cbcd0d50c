"""Spoofing against the account's own active stretch (``active_gap_s`` 15 s,
``active_min_cancels`` 3; 2026-12-04 night, wip/slip13).

The look-alike (the independent book's "short intense" quoting, now in our generator too): an
account quiet for minutes starts quoting intensely, parking orders behind the touch and
cancelling about one a second; a fill comes, and it goes on cancelling at the same pace. Its
600 s baseline is mostly quiet time, so the cancels after the fill beat ten times it; against
the rate of the stretch it is in they do not. A spoofer whose cancels before the fill are one or
two, or end more than 15 s before it, is alerted as before."""

from __future__ import annotations

import orjson

from tests.compliance.helpers import parked_cancels, run, spoofing_episode

NO_CHANCE = {"spoofing": {"max_expected_by_chance": None}}


def _intense():
    """Quiet until 580 s, then a cancel a second up to the fill and on after it (3 more in the
    5 s after the fill: 4 with the episode's own)."""
    return parked_cancels([580 + i for i in range(20)]) + parked_cancels([602, 603, 604], tag="a")


def test_short_intense_quoting_is_not_alerted_against_its_own_stretch():
    alerts = run(_intense() + spoofing_episode(), only={"spoofing"}, params=NO_CHANCE)
    assert alerts == []


def test_the_same_messages_with_the_stretch_off_are_alerted_on_the_600_s_baseline():
    off = {"spoofing": {"max_expected_by_chance": None, "active_gap_s": None}}
    alerts = run(_intense() + spoofing_episode(), only={"spoofing"}, params=off)
    assert [a["alert_type"] for a in alerts] == ["spoofing"]
    base = alerts[0]["evidence"]["cancel_baseline"]
    # 4 cancels in 5 s against 20 in 600 s: 24 x the 600 s rate
    assert (base["cancels_after_fill"], base["cancels_before_fill"], base["rate_multiple"]) == (4, 20, 24.0)


def test_a_spoofer_with_two_cancels_just_before_the_fill_is_alerted():
    alerts = run(parked_cancels([590, 595]) + spoofing_episode(), only={"spoofing"}, params=NO_CHANCE)
    assert [a["alert_type"] for a in alerts] == ["spoofing"]
    base = alerts[0]["evidence"]["cancel_baseline"]
    assert base["active_stretch_cancels"] == 2 and base["passed"]  # two cancels are not a stretch


def test_a_spoofer_whose_routine_ended_more_than_15_s_before_the_fill_is_alerted():
    alerts = run(
        parked_cancels([560, 565, 570, 575, 580, 584]) + spoofing_episode(), only={"spoofing"}, params=NO_CHANCE
    )
    assert [a["alert_type"] for a in alerts] == ["spoofing"]
    base = alerts[0]["evidence"]["cancel_baseline"]
    assert base["active_stretch_cancels"] == 0 and base["cancels_before_fill"] == 6


def test_a_stretch_is_compared_over_at_least_15_s():
    """Three cancels in the 2 s before the fill are a stretch, taken as 3 per 15 s (0.2/s), not 3
    per 2 s: 4 cancels in the 5 s after (0.8/s) are under 10 x that, so it is not alerted; the
    600 s baseline alone (3 in 600 s) would alert it."""
    rows = parked_cancels([598, 598.5, 599]) + spoofing_episode() + parked_cancels([602, 603, 604], tag="a")
    alerts = run(rows, only={"spoofing"}, params=NO_CHANCE)
    assert alerts == []
    off = {"spoofing": {"max_expected_by_chance": None, "active_gap_s": None}}
    kept = run(rows, only={"spoofing"}, params=off)
    assert len(kept) == 1 and kept[0]["evidence"]["cancel_baseline"]["cancels_before_fill"] == 3


def test_a_restart_in_the_middle_of_the_stretch_changes_nothing():
    """The stretch is read from the cancel times the snapshot already keeps (no new state)."""
    from tests.compliance.test_spoofing_baseline import _surveil

    for rows in (_intense() + spoofing_episode(), parked_cancels([570, 590, 595]) + spoofing_episode()):
        plain = _surveil(rows, params=NO_CHANCE)
        for cut in (5, 20, 40):
            assert orjson.dumps(_surveil(rows, restart_at=cut, params=NO_CHANCE)) == orjson.dumps(plain)
    assert _surveil(_intense() + spoofing_episode(), params=NO_CHANCE) == []
    kept = _surveil(parked_cancels([570, 590, 595]) + spoofing_episode(), params=NO_CHANCE)
    assert len(kept) == 1 and kept[0]["evidence"]["cancel_baseline"]["active_stretch_cancels"] == 2
