"""The version of the data the API's cached list pages show (``tradeops.api.cache``).

One row, ``api_data_version``, moved by a deferred constraint trigger on every table those pages
read (positions with their accounts and instruments, alerts with their cases), whoever writes:
the services, the order path's one-statement writer, the admin, plain SQL. The trigger fires at
commit, once per transaction, in that transaction, so the new version becomes visible exactly
with the rows it stands for (a reader that reads the version first, then the rows, never files
old rows under a new version), and its lock is the last one a writer takes (after the audit
chain's head: no lock-order deadlock). The function runs as the owner; the runtime role may only
read the row (``ApiConfig.runtime_table_privileges``). PostgreSQL only: elsewhere there is no
version and nothing is cached.
"""

from django.db import migrations

TABLES = ("trading_position", "trading_tradingaccount", "trading_instrument", "compliance_alert", "compliance_case")

CREATE = """
CREATE TABLE api_data_version (id smallint PRIMARY KEY CHECK (id = 1), n bigint NOT NULL);
INSERT INTO api_data_version VALUES (1, 0);
CREATE FUNCTION api_data_version_bump() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public AS $$
BEGIN
    -- once per transaction (the flag is local to it)
    IF current_setting('tradeops.api_data_version_bumped', true) = 'yes' THEN
        RETURN NULL;
    END IF;
    PERFORM set_config('tradeops.api_data_version_bumped', 'yes', true);
    UPDATE api_data_version SET n = n + 1 WHERE id = 1;
    RETURN NULL;
END
$$;
"""

TRIGGER = """
CREATE CONSTRAINT TRIGGER api_data_version_{table}
AFTER INSERT OR UPDATE OR DELETE ON {table}
DEFERRABLE INITIALLY DEFERRED
FOR EACH ROW EXECUTE FUNCTION api_data_version_bump();
"""

DROP = """
{triggers}
DROP FUNCTION IF EXISTS api_data_version_bump();
DROP TABLE IF EXISTS api_data_version;
"""


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(CREATE)
    for table in TABLES:
        schema_editor.execute(TRIGGER.format(table=table))


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    triggers = "\n".join(f"DROP TRIGGER IF EXISTS api_data_version_{t} ON {t};" for t in TABLES)
    schema_editor.execute(DROP.format(triggers=triggers))


class Migration(migrations.Migration):
    dependencies = [
        ("api", "0001_initial"),
        ("trading", "0004_risklimitproposal"),
        ("compliance", "0003_surveillancestate"),
    ]

    operations = [migrations.RunPython(forwards, backwards)]
