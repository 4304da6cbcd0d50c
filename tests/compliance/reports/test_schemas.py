"""The ESMA XSDs shipped in the app are the team's reference files, byte for byte."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from compliance.reports import xsd

SHARED = Path(__file__).resolve().parents[3].parent / "shared" / "schemas" / "iso20022"


def test_schemas_are_byte_identical_to_the_shared_reference_copies():
    if not SHARED.is_dir():
        pytest.skip(f"{SHARED} is not here (a deployment or a checkout without shared/)")
    shipped = sorted(p.name for p in xsd.SCHEMA_DIR.glob("*.xsd"))
    assert shipped == sorted(p.name for p in SHARED.glob("*.xsd"))
    for name in shipped:
        ours = hashlib.sha256((xsd.SCHEMA_DIR / name).read_bytes()).hexdigest()
        theirs = hashlib.sha256((SHARED / name).read_bytes()).hexdigest()
        assert ours == theirs, f"{name} differs from {SHARED / name}"


def test_the_three_schema_sets_load_and_refuse_a_wrong_document():
    assert xsd.document_schema() and xsd.header_schema() and xsd.envelope_schema()
    bad = b'<Document xmlns="urn:iso:std:iso:20022:tech:xsd:auth.016.001.01"><FinInstrmRptgTxRpt/></Document>'
    result = xsd.xml_validate_bytes(bad)
    assert not result.valid and "Missing child element" in " ".join(result.errors)
    with pytest.raises(ValueError, match="not a transaction report"):
        xsd.xml_validate_bytes(b"<html/>")
