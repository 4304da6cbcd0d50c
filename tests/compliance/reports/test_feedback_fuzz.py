"""Fuzzing the ARM feedback parser (compliance.reports.feedback): a header and records rendered
in the documented format parse back to the same values; any other input, bytes or JSON of any
shape, gives FeedbackFormatError naming the line, never another exception."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from compliance.reports.feedback import (
    FeedbackFormatError,
    FeedbackHeader,
    FeedbackRecord,
    feedback_parse,
    feedback_render,
)

texts = st.text(min_size=1, max_size=20)
reasons = st.lists(st.builds(lambda c, t: {"code": c, "text": t}, texts, st.text(max_size=30)), max_size=3)


@st.composite
def feedback_files(draw):
    records = []
    for trn in draw(st.lists(texts, max_size=15, unique=True)):
        accepted = draw(st.booleans())
        why = draw(reasons) if accepted else draw(reasons.filter(bool))
        records.append(FeedbackRecord(trn=trn, accepted=accepted, reasons=tuple(why)))
    rejected = sum(not r.accepted for r in records)
    status = "RJCT" if not records else ("PART" if rejected else "ACPT")
    header = FeedbackHeader(
        submission_id=draw(texts),
        file_sha256=draw(st.text(alphabet="0123456789abcdef", min_size=64, max_size=64)),
        status=status,
        received_at=draw(st.just("2026-03-03T00:41:05Z") | st.text(max_size=25)),
        accepted=len(records) - rejected,
        rejected=rejected,
        reasons=tuple(draw(reasons)) if status == "RJCT" else (),
    )
    return header, records


@given(feedback_files(), st.sampled_from(["bytes", "text"]))
@settings(max_examples=200, deadline=None)
def test_a_rendered_feedback_file_parses_back_to_the_same_values(file, as_type):
    header, records = file
    data = feedback_render(header, records)
    lines = data.splitlines() if as_type == "bytes" else data.decode().splitlines()
    parsed_header, parsed = feedback_parse(lines)
    assert parsed_header == header
    assert list(parsed) == records


def _parse_all(lines):
    header, records = feedback_parse(lines)
    return header, list(records)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=8,
)


@given(st.lists(st.binary(max_size=60), max_size=8))
@settings(max_examples=300, deadline=None)
def test_any_bytes_give_a_format_error_naming_the_line(lines):
    try:
        _parse_all(lines)
    except FeedbackFormatError as exc:
        assert str(exc).startswith("line ") or str(exc) == "empty feedback file"


@given(feedback_files(), st.data())
@settings(max_examples=300, deadline=None)
def test_a_field_of_any_type_on_any_line_is_accepted_or_refused_with_its_line(file, data):
    lines = feedback_render(*file).decode().splitlines()
    number = data.draw(st.integers(1, len(lines)), label="line")
    item = json.loads(lines[number - 1])
    field = data.draw(st.sampled_from([*sorted(item), "type", "status", "reasons"]), label="field")
    item[field] = data.draw(json_values, label="value")
    lines[number - 1] = json.dumps(item)
    try:
        header, records = _parse_all(lines)
    except FeedbackFormatError as exc:
        assert str(exc).startswith(f"line {number}:"), (number, str(exc))
    else:  # the value was acceptable: everything parsed is of the documented shape
        assert header.status in ("ACPT", "PART", "RJCT")
        assert all(isinstance(r.trn, str) and r.trn and (r.accepted or r.reasons) for r in records)


def test_blank_lines_do_not_shift_the_line_numbers_in_errors():
    header, records = (
        json.dumps({"type": "header", "submission_id": "S", "file_sha256": "ab", "status": "PART"}),
        [
            json.dumps({"type": "record", "trn": "T1", "status": "ACPT"}),
            "",
            json.dumps({"type": "record", "trn": "T2", "status": "NOPE"}),
        ],
    )
    with pytest.raises(FeedbackFormatError, match=r"^line 4: record status 'NOPE'"):
        _parse_all([header, *records])
