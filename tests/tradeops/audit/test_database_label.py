"""Which database the verification names, and to whom (review of session 41): the checkpoint
identity carries the database's host, port and name (``engine://host:port/name``), which an
auditor or an integration does not need and an attacker would like. The screens show officers
and auditors a label (engine and a keyed fingerprint, or a plain AUDIT_CHECKPOINT_DATABASE label),
admins the identity; ``manage.py audit_verify`` prints it in full; the trail records the label.

And which checkpoints the verification compared (this database's, adopted ones of a former name
of this chain) and which it skipped as another database's, on the page and in the API."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.db import connection
from django.test import override_settings

from tests.tradeops.audit.test_checkpoint import FIRST_RUN, OLD_HOME, _signed_checkpoint
from tradeops.audit.checkpoint import audit_checkpoint_create, database_identity, database_label
from tradeops.audit.models import AuditRecord
from tradeops.audit.verify import audit_verify, verify_report_labelled

pytestmark = pytest.mark.django_db(transaction=True)


def _addresses() -> list[str]:
    """What must not reach an auditor: this database's host, port, name and identity, and those of
    the other databases whose checkpoints share the storage."""
    config = connection.settings_dict
    return [
        database_identity(),
        f"{config['HOST']}:{config['PORT']}",
        f"/{config['NAME']}",
        "db-old.internal",
        "/home/newcomer",
        FIRST_RUN,
        OLD_HOME,
    ]


def _user(role: str, *, superuser: bool = False):
    user = get_user_model().objects.create_user(
        username=f"u-{role}", password="a-long-enough-password", is_superuser=superuser
    )
    user.groups.add(Group.objects.get_or_create(name=role)[0])
    return user


@pytest.fixture
def two_other_databases(chain, audit_checkpoint_dir):
    """This chain under a former name (its checkpoints sign records of it: adopted), a SQLite
    first run's (another chain: skipped), and this database's own."""
    _signed_checkpoint(audit_checkpoint_dir, sequence=5, hash=chain[4].hash, database=OLD_HOME)
    _signed_checkpoint(audit_checkpoint_dir, sequence=8, hash=chain[7].hash, database=OLD_HOME)
    _signed_checkpoint(audit_checkpoint_dir, sequence=3, hash="ab" * 32, database=FIRST_RUN)
    audit_checkpoint_create()
    return chain


def test_a_label_names_the_engine_and_a_keyed_fingerprint_or_a_plain_pinned_label(db, settings):
    identity = database_identity()
    label = database_label(identity)
    assert label.startswith(f"{connection.vendor}#") and len(label) == len(connection.vendor) + 13
    assert label == database_label(identity) != database_label(OLD_HOME)  # stable, one per database
    assert database_label("tradeops-prod-eu") == "tradeops-prod-eu"  # a pinned label with no address: as set
    assert database_label(OLD_HOME).startswith("postgresql#")  # a pinned old URL: fingerprinted like any
    assert database_label(FIRST_RUN).startswith("sqlite#")
    settings.SECRET_KEY = "another secret key for this test only, long enough"
    assert database_label(identity) != label  # keyed: not to be matched against guessed addresses


@pytest.mark.parametrize(
    "pinned",
    ["db-prod.internal:5432/tradeops", "db-prod.internal/tradeops", "tradeops@db-prod.internal", "10.0.4.7:6432"],
)
def test_a_pinned_identity_that_is_no_url_lends_no_part_of_its_address_to_the_label(db, pinned):
    """The engine is read only from a ``scheme://`` or ``sqlite:`` head: an AUDIT_CHECKPOINT_DATABASE
    pinned to an address of another form is fingerprinted whole (``database#...``), never shown
    up to its first colon as if that were the engine."""
    label = database_label(pinned)
    assert label.startswith("database#") and len(label) == len("database#") + 12, label
    assert "db-prod" not in label and "10.0.4.7" not in label
    assert database_label("sqlite::memory:").startswith("sqlite#")


@pytest.mark.parametrize("pinned", ["db01.prod.internal", "10.0.4.7"])
def test_a_host_name_or_address_pinned_as_the_label_is_not_shown_as_one(db, pinned):
    """A label is shown as set only when it names no address: a bare host name or IP address
    pinned as AUDIT_CHECKPOINT_DATABASE is where the database lives, so it is fingerprinted."""
    assert database_label(pinned).startswith("database#")
    assert database_label("tradeops-prod-eu") == "tradeops-prod-eu"


def test_the_verification_report_for_the_screens_and_the_api_names_no_address(two_other_databases, capsys):
    full = audit_verify()
    assert full.ok, full.findings
    labelled = verify_report_labelled(full)
    shown = repr(labelled)
    for address in _addresses():
        assert address not in shown, address
    assert labelled.database == database_label(database_identity())
    assert any(f"{database_label(OLD_HOME)} (2) sign records of this chain" in n for n in labelled.notes)
    assert any("manage.py audit_verify prints them in full" in n for n in labelled.notes)
    # the operator's tool keeps the identity in full, with the label the screens show beside it
    call_command("audit_verify")
    out = capsys.readouterr().out
    assert database_identity() in out and OLD_HOME in out and FIRST_RUN in out
    assert f"show {database_identity()} as {database_label(database_identity())}" in out


def test_a_finding_that_names_the_database_is_labelled_too(chain, audit_checkpoint_dir):
    _signed_checkpoint(audit_checkpoint_dir, sequence=500, hash="ab" * 32, database=FIRST_RUN)
    full = audit_verify()
    (finding,) = full.findings
    # "no signed checkpoint names this database (...)": the database a field, named where shown
    assert finding.databases == (database_identity(),) and database_identity() not in finding.detail
    assert database_identity() in finding.text() and database_identity() in str(finding)
    labelled = verify_report_labelled(full)
    assert database_label(database_identity()) in labelled.findings[0].detail
    assert labelled.problem == labelled.findings[0]
    for address in _addresses():
        assert address not in repr(labelled), address


def test_the_verify_page_shows_an_auditor_labels_and_an_admin_the_identity(two_other_databases, client):
    client.force_login(_user("auditor"))
    body = client.post("/compliance/audit/verify/").content.decode()
    assert "Intact." in body
    for address in _addresses():
        assert address not in body, address
    assert database_label(database_identity()) in body and database_label(FIRST_RUN) in body
    search = client.get("/compliance/audit/").content.decode()  # the status card beside every search
    for address in _addresses():
        assert address not in search, address
    # the trail's record of the run, which auditors read, names labels only
    run = AuditRecord.objects.filter(action="audit.verified").latest("sequence")
    record_page = client.get(f"/compliance/audit/records/{run.sequence}/").content.decode()
    for address in _addresses():
        assert address not in run.payload and address not in record_page, address

    client.force_login(_user("admin", superuser=True))
    body = client.post("/compliance/audit/verify/").content.decode()
    assert database_identity() in body and OLD_HOME in body and FIRST_RUN in body
    run = AuditRecord.objects.filter(action="audit.verified").latest("sequence")
    assert database_identity() not in run.payload  # recorded as a label whoever ran it


def test_the_verify_page_lists_the_checkpoints_compared_adopted_and_skipped(two_other_databases, client):
    client.force_login(_user("compliance_officer"))
    body = client.post("/compliance/audit/verify/").content.decode()
    table = body.split('id="checkpoint-sources"')[1].split("</table>")[0]
    rows = table.split("<tr>")[2:]  # after the header
    assert len(rows) == 3
    this, adopted, skipped = rows
    assert database_label(database_identity()) in this and "this database's: compared" in this
    assert database_label(OLD_HOME) in adopted and "adopted" in adopted and "#5..#8" in adopted
    assert database_label(FIRST_RUN) in skipped and "skipped: another database" in skipped
    # the status card lists the adopted checkpoints with this database's, and names the skipped
    card = client.get("/compliance/audit/").content.decode().split('id="checkpoints-compared"')[1]
    compared = card.split("</table>")[0]
    assert compared.count(database_label(OLD_HOME)) == 2 and compared.count(database_label(database_identity())) == 1
    assert compared.count(">adopted</td>") == 2 and compared.count(">this database</td>") == 1
    assert f"{database_label(OLD_HOME)}</span> (2)" in card.split('id="checkpoints-adopted"')[1]
    assert f"{database_label(FIRST_RUN)}</span> (1)" in card.split('id="checkpoints-skipped"')[1]


def test_checkpoint_list_names_each_database_and_its_label(two_other_databases, capsys):
    call_command("audit_checkpoint", "--list")
    out = capsys.readouterr().out
    assert f"this database: {database_identity()} (the audit screens and the API show it as " in out
    assert f"{OLD_HOME} = {database_label(OLD_HOME)}" in out


@override_settings(AUDIT_CHECKPOINT_DATABASE="tradeops-prod-eu")
def test_a_plain_pinned_label_is_shown_as_set(chain, audit_checkpoint_dir):
    audit_checkpoint_create()
    labelled = verify_report_labelled(audit_verify())
    assert labelled.database == "tradeops-prod-eu"
    assert [(s.role, s.database, s.count) for s in labelled.checkpoint_sources] == [("this", "tradeops-prod-eu", 1)]


def test_the_recorded_verification_names_labels_whoever_records_it(chain, audit_checkpoint_dir):
    """The record of a run (``audit.verified``) is read by auditors and over the API: the service
    that writes it labels the report itself, whichever caller hands it the full one."""
    from tradeops.audit.services import audit_verification_record

    _signed_checkpoint(audit_checkpoint_dir, sequence=500, hash="ab" * 32, database=FIRST_RUN)
    full = audit_verify()
    assert database_identity() in full.findings[0].text()
    record = audit_verification_record(report=full, actor="service:test")
    assert database_label(database_identity()) in record.payload
    for address in _addresses():
        assert address not in record.payload, address


def test_an_older_verification_record_is_labelled_on_the_screens_for_a_non_admin(chain, client):
    """A record of a run from before findings named databases by field holds full identities in
    its text; the trail keeps it as recorded, the screens label it when they show it."""
    from tests.tradeops.api.test_audit_verification import _old_verification_record

    record = _old_verification_record()
    assert database_identity() in record.payload and "10.0.4.7" in record.payload
    page = f"/compliance/audit/records/{record.sequence}/"
    client.force_login(_user("auditor"))
    for body in (client.get(page).content.decode(), client.get("/compliance/audit/").content.decode()):
        for address in [*_addresses(), "10.0.4.7", ":5432", "db01.prod.internal"]:
            assert address not in body, address
    assert database_label(database_identity()) in client.get(page).content.decode()
    client.force_login(_user("admin", superuser=True))
    assert "10.0.4.7" in client.get(page).content.decode()  # admins see it as recorded


def _found(client, text: str) -> list[int]:
    response = client.get("/compliance/audit/", {"q": text})
    assert response.status_code == 200
    return [record.sequence for record in response.context["result"].records]


def test_an_auditor_cannot_find_an_older_verification_record_by_the_address_it_names(chain, client):
    """walk45 labelled an older ``audit.verified`` record's addresses on the screens, but the
    search still matched them: an auditor typing an address learnt which record named it (an
    oracle for the address). Non-admins now match such records without their addresses; admins,
    who see them, still find them by address."""
    from tests.tradeops.api.test_audit_verification import _old_verification_record

    record = _old_verification_record()
    # what PostgreSQL's full text makes of the record's addresses (its URL, host and path tokens)
    searchable = ["10.0.4.7", "5432/tradeops", "/tradeops"]
    if connection.vendor == "postgresql":
        searchable.append(connection.settings_dict["HOST"])
    others = [
        "db01.prod.internal",
        "db01.prod.internal:5432",
        "postgresql://10.0.4.7:5432/tradeops",
        database_identity(),
    ]
    client.force_login(_user("auditor"))
    for address in [*searchable, *others]:
        assert _found(client, address) == [], address
    assert _found(client, "skipped") == [record.sequence]  # its other words still find it
    if connection.vendor == "postgresql":  # nor by leaving the address out: the same answer for any
        for address in searchable:
            assert _found(client, f"-{address} skipped") == [record.sequence], address
        assert record.sequence not in _found(client, "-skipped")
        assert _found(client, "-10.0.5.5 skipped") == [record.sequence]
    client.force_login(_user("compliance_officer"))
    assert _found(client, "10.0.4.7") == [] and _found(client, "5432/tradeops") == []
    client.force_login(_user("admin", superuser=True))
    for address in searchable:
        assert _found(client, address) == [record.sequence], address
    if connection.vendor == "postgresql":
        assert _found(client, "-10.0.4.7 skipped") == []  # as recorded: it does name 10.0.4.7
