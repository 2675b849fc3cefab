"""Published scorecard rules are immutable in the database itself.

Once a version is approved, its settings and items are the record of how partners are (or were)
scored. The governance services refuse to edit anything past a draft; these triggers make every
other path fail too: a raw ``QuerySet.update()``, a script, the admin, a bug. Of an approved,
active or retired version only what the lifecycle moves may change:

- ``status``: approved -> active (activation) and active -> retired (a successor was activated);
- ``effective_from`` and ``activated_at``: in the update that activates it;
- ``created_by``, ``proposed_by``, ``approved_by``: only to NULL, when that person is deleted.

Its items are never inserted, updated or deleted, and the version itself is never deleted.
Drafts and proposed versions are left to the services (a proposal can go back to draft).

PostgreSQL compares the whole row except those columns (``to_jsonb(NEW) - lifecycle``), so a
column added later is guarded without touching the trigger. SQLite names every column; a
migration that adds a column to either table, or rebuilds it (SQLite drops a table's triggers
when Django remakes it), installs the SQLite triggers again (tests/scorecards/
test_version_immutability.py fails until it does).
"""

from django.db import migrations

GUARDED = "('approved', 'active', 'retired')"

POSTGRES_INSTALL = [
    """
    CREATE OR REPLACE FUNCTION scorecards_version_rules_immutable() RETURNS trigger
    LANGUAGE plpgsql AS $$
    DECLARE
        lifecycle CONSTANT text[] := ARRAY[
            'status', 'effective_from', 'activated_at', 'created_by_id', 'proposed_by_id', 'approved_by_id'
        ];
    BEGIN
        IF OLD.status NOT IN ('approved', 'active', 'retired') THEN
            RETURN COALESCE(NEW, OLD);
        END IF;
        IF TG_OP = 'DELETE' THEN
            RAISE EXCEPTION 'Scorecard version % is %: it is kept as the record of its rules and cannot be deleted.',
                OLD.number, OLD.status
                USING ERRCODE = 'integrity_constraint_violation';
        END IF;
        IF (to_jsonb(NEW) - lifecycle) IS DISTINCT FROM (to_jsonb(OLD) - lifecycle) THEN
            RAISE EXCEPTION 'The rules of scorecard version % are % and cannot change; '
                'create a new draft to change them.', OLD.number, OLD.status
                USING ERRCODE = 'integrity_constraint_violation';
        END IF;
        IF NEW.status IS DISTINCT FROM OLD.status
           AND NOT ((OLD.status = 'approved' AND NEW.status = 'active')
                    OR (OLD.status = 'active' AND NEW.status = 'retired')) THEN
            RAISE EXCEPTION 'Scorecard version % cannot go from % to %: an approved version can only be activated, '
                'and an active one only retired.', OLD.number, OLD.status, NEW.status
                USING ERRCODE = 'integrity_constraint_violation';
        END IF;
        IF (NEW.effective_from IS DISTINCT FROM OLD.effective_from
            OR NEW.activated_at IS DISTINCT FROM OLD.activated_at)
           AND NOT (OLD.status = 'approved' AND NEW.status = 'active') THEN
            RAISE EXCEPTION 'The period scorecard version % is in force from is set once, when it is activated.',
                OLD.number
                USING ERRCODE = 'integrity_constraint_violation';
        END IF;
        IF (NEW.created_by_id IS DISTINCT FROM OLD.created_by_id AND NEW.created_by_id IS NOT NULL)
           OR (NEW.proposed_by_id IS DISTINCT FROM OLD.proposed_by_id AND NEW.proposed_by_id IS NOT NULL)
           OR (NEW.approved_by_id IS DISTINCT FROM OLD.approved_by_id AND NEW.approved_by_id IS NOT NULL) THEN
            RAISE EXCEPTION 'Who created, proposed and approved scorecard version % is part of its record; '
                'only a deleted person leaves it.', OLD.number
                USING ERRCODE = 'integrity_constraint_violation';
        END IF;
        RETURN NEW;
    END
    $$
    """,
    """
    CREATE TRIGGER scorecards_version_rules_immutable
    BEFORE UPDATE OR DELETE ON scorecards_scorecardversion
    FOR EACH ROW EXECUTE FUNCTION scorecards_version_rules_immutable()
    """,
    """
    CREATE OR REPLACE FUNCTION scorecards_item_rules_immutable() RETURNS trigger
    LANGUAGE plpgsql AS $$
    DECLARE
        old_version bigint;
        new_version bigint;
        guarded record;
    BEGIN
        IF TG_OP <> 'INSERT' THEN
            old_version := OLD.version_id;
        END IF;
        IF TG_OP <> 'DELETE' THEN
            new_version := NEW.version_id;
        END IF;
        -- The version is read as the session sees it; an item and its version share a tenant,
        -- so row-level security shows the application role the version of any item it may write.
        SELECT number, status INTO guarded
        FROM scorecards_scorecardversion
        WHERE id IN (old_version, new_version) AND status IN ('approved', 'active', 'retired')
        LIMIT 1;
        IF FOUND THEN
            RAISE EXCEPTION 'Scorecard version % is %: its items cannot be added, changed or removed; '
                'create a new draft to change the rules.', guarded.number, guarded.status
                USING ERRCODE = 'integrity_constraint_violation';
        END IF;
        RETURN COALESCE(NEW, OLD);
    END
    $$
    """,
    """
    CREATE TRIGGER scorecards_item_rules_immutable
    BEFORE INSERT OR UPDATE OR DELETE ON scorecards_scorecarditem
    FOR EACH ROW EXECUTE FUNCTION scorecards_item_rules_immutable()
    """,
]

POSTGRES_REMOVE = [
    "DROP TRIGGER IF EXISTS scorecards_item_rules_immutable ON scorecards_scorecarditem",
    "DROP FUNCTION IF EXISTS scorecards_item_rules_immutable()",
    "DROP TRIGGER IF EXISTS scorecards_version_rules_immutable ON scorecards_scorecardversion",
    "DROP FUNCTION IF EXISTS scorecards_version_rules_immutable()",
]

# Every column of a version that is neither lifecycle nor people: its rules and its record.
SQLITE_RULE_COLUMNS = (
    "id",
    "tenant_id",
    "scorecard_id",
    "number",
    "partner_types",
    "period_kind",
    "band_excellent",
    "band_good",
    "missing_data",
    "min_completeness",
    "rationale",
    "created_at",
    "proposed_at",
    "approved_at",
)
_CHANGED = " OR ".join(f"NEW.{column} IS NOT OLD.{column}" for column in SQLITE_RULE_COLUMNS)
# Constant SQL: the table and column names of this migration, nothing from outside.
_VERSION_STATUS = (
    "(SELECT status FROM scorecards_scorecardversion WHERE id = {side}.version_id) IN " + GUARDED  # noqa: S608
)
_VERSION_UPDATE = "BEFORE UPDATE ON scorecards_scorecardversion FOR EACH ROW WHEN OLD.status IN " + GUARDED
_ITEM_MESSAGE = (
    "The items of an approved, active or retired scorecard version cannot be added, changed or removed; "
    "create a new draft to change the rules."
)

SQLITE_TRIGGERS = {
    "scorecards_version_rules_immutable": (
        f"{_VERSION_UPDATE} AND ({_CHANGED})",
        "The rules of an approved, active or retired scorecard version cannot change; "
        "create a new draft to change them.",
    ),
    "scorecards_version_status_forward": (
        f"{_VERSION_UPDATE} AND NEW.status IS NOT OLD.status AND NOT ("
        "(OLD.status = 'approved' AND NEW.status = 'active') OR (OLD.status = 'active' AND NEW.status = 'retired'))",
        "An approved scorecard version can only be activated, and an active one only retired.",
    ),
    "scorecards_version_activation_once": (
        f"{_VERSION_UPDATE} AND (NEW.effective_from IS NOT OLD.effective_from "
        "OR NEW.activated_at IS NOT OLD.activated_at) "
        "AND NOT (OLD.status = 'approved' AND NEW.status = 'active')",
        "The period a scorecard version is in force from is set once, when it is activated.",
    ),
    "scorecards_version_people_kept": (
        f"{_VERSION_UPDATE} AND ("
        "(NEW.created_by_id IS NOT OLD.created_by_id AND NEW.created_by_id IS NOT NULL) "
        "OR (NEW.proposed_by_id IS NOT OLD.proposed_by_id AND NEW.proposed_by_id IS NOT NULL) "
        "OR (NEW.approved_by_id IS NOT OLD.approved_by_id AND NEW.approved_by_id IS NOT NULL))",
        "Who created, proposed and approved a scorecard version is part of its record; "
        "only a deleted person leaves it.",
    ),
    "scorecards_version_kept": (
        "BEFORE DELETE ON scorecards_scorecardversion FOR EACH ROW WHEN OLD.status IN " + GUARDED,
        "An approved, active or retired scorecard version is kept as the record of its rules and cannot be deleted.",
    ),
    "scorecards_item_insert_immutable": (
        "BEFORE INSERT ON scorecards_scorecarditem FOR EACH ROW WHEN " + _VERSION_STATUS.format(side="NEW"),
        _ITEM_MESSAGE,
    ),
    "scorecards_item_update_immutable": (
        "BEFORE UPDATE ON scorecards_scorecarditem FOR EACH ROW WHEN "
        + _VERSION_STATUS.format(side="OLD")
        + " OR "
        + _VERSION_STATUS.format(side="NEW"),
        _ITEM_MESSAGE,
    ),
    "scorecards_item_delete_immutable": (
        "BEFORE DELETE ON scorecards_scorecarditem FOR EACH ROW WHEN " + _VERSION_STATUS.format(side="OLD"),
        _ITEM_MESSAGE,
    ),
}


def _sqlite_install() -> list[str]:
    statements = []
    for name, (when, message) in SQLITE_TRIGGERS.items():
        literal = message.replace("'", "''")
        statements.append(f"CREATE TRIGGER {name} {when} BEGIN SELECT RAISE(ABORT, '{literal}'); END")
    return statements


def _sqlite_remove() -> list[str]:
    return [f"DROP TRIGGER IF EXISTS {name}" for name in SQLITE_TRIGGERS]


def _run(schema_editor, statements: dict[str, list[str]]) -> None:
    # params=None: the SQL is sent as written, so PL/pgSQL's % placeholders reach the server.
    for sql in statements.get(schema_editor.connection.vendor, []):
        schema_editor.execute(sql, params=None)


def install(apps, schema_editor):
    _run(schema_editor, {"postgresql": POSTGRES_INSTALL, "sqlite": _sqlite_install()})


def remove(apps, schema_editor):
    _run(schema_editor, {"postgresql": POSTGRES_REMOVE, "sqlite": _sqlite_remove()})


class Migration(migrations.Migration):
    dependencies = [
        ("scorecards", "0004_correction_requests"),
    ]

    operations = [migrations.RunPython(install, remove, elidable=False)]
