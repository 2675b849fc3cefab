"""PostgreSQL row-level security: the database half of tenant isolation.

The application filter (``TenantScopedManager``) is the first wall; this is the second. Every
tenant-owned table gets RLS enabled *and forced* with a policy comparing ``tenant_id`` to the
``app.tenant_id`` setting of the database session, which ``push_scope`` keeps equal to the active
scope. The application connects as a role that is not superuser, not BYPASSRLS and not the owner of
the tables, so the policy applies to every query it makes. On SQLite all of this is a no-op.
"""

from __future__ import annotations

from django.conf import settings
from django.db import connections
from django.db.backends.signals import connection_created
from django.db.migrations.operations.base import Operation

TENANT_SETTING = "app.tenant_id"
USER_SETTING = "app.user_id"
TENANT_EXPR = f"NULLIF(current_setting('{TENANT_SETTING}', true), '')::bigint"
USER_EXPR = f"NULLIF(current_setting('{USER_SETTING}', true), '')::bigint"
POLICY_NAME = "tenant_isolation"

# Set while schema work runs as the owner (migrate, test database creation). Outside it, a
# connection opened as a privileged user switches to the application role, see assume_app_role().
_state = {"assume_role": False}


def _is_postgres(connection) -> bool:
    return connection.vendor == "postgresql"


def _apply(connection, scope) -> None:
    with connection.connection.cursor() as cursor:
        cursor.execute(
            "SELECT set_config(%s, %s, false), set_config(%s, %s, false)",
            [
                TENANT_SETTING,
                "" if scope.tenant_id is None else str(scope.tenant_id),
                USER_SETTING,
                "" if scope.user_id is None else str(scope.user_id),
            ],
        )


def _transaction_aborted(connection) -> bool:
    import psycopg2.extensions

    status = connection.connection.get_transaction_status()
    return status == psycopg2.extensions.TRANSACTION_STATUS_INERROR


def push_scope(scope) -> None:
    """Copy the scope into every open PostgreSQL session of this thread.

    A connection that is not open yet receives it in ``_on_connection_created``. In an aborted
    transaction the statement would fail; the rollback that must follow restores the setting the
    session had before the transaction, which is the one we are restoring to.
    """
    for connection in connections.all(initialized_only=True):
        if not _is_postgres(connection) or connection.connection is None:
            continue
        if _transaction_aborted(connection):
            continue
        _apply(connection, scope)


def _on_connection_created(sender, connection, **kwargs) -> None:
    if not _is_postgres(connection):
        return
    from partnerhub.tenancy.context import current_scope

    if _state["assume_role"]:
        with connection.connection.cursor() as cursor:
            cursor.execute(f'SET ROLE "{settings.DATABASE_APP_ROLE}"')
    _apply(connection, current_scope())


connection_created.connect(_on_connection_created, dispatch_uid="partnerhub.rls.connection_created")


def assume_app_role() -> None:
    """Make this process's PostgreSQL sessions run as the application role.

    For deployments and test runs that connect as the schema owner or a superuser: once set,
    every session switches to ``DATABASE_APP_ROLE`` so that RLS applies exactly as in production.
    """
    _state["assume_role"] = True
    for connection in connections.all(initialized_only=True):
        if _is_postgres(connection) and connection.connection is not None:
            with connection.connection.cursor() as cursor:
                cursor.execute(f'SET ROLE "{settings.DATABASE_APP_ROLE}"')


def release_app_role() -> None:
    """Return to the connecting (owner) role, for schema work such as migrations."""
    _state["assume_role"] = False
    for connection in connections.all(initialized_only=True):
        if _is_postgres(connection) and connection.connection is not None:
            with connection.connection.cursor() as cursor:
                cursor.execute("RESET ROLE")


class EnableTenantRLS(Operation):
    """Migration operation: enable and force RLS on a tenant-owned table with its policy.

    ``visible_to_own_user`` additionally lets a session see rows whose ``user_id`` is the
    session's user (a person's memberships across tenants, used to list their workspaces).
    """

    reversible = True
    reduces_to_sql = True

    def __init__(self, model_name: str, visible_to_own_user: bool = False):
        self.model_name = model_name
        self.visible_to_own_user = visible_to_own_user

    def deconstruct(self):
        kwargs = {"model_name": self.model_name}
        if self.visible_to_own_user:
            kwargs["visible_to_own_user"] = True
        return self.__class__.__qualname__, [], kwargs

    def state_forwards(self, app_label, state):
        pass

    def _table(self, app_label, state) -> str:
        return state.apps.get_model(app_label, self.model_name)._meta.db_table

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if not _is_postgres(schema_editor.connection):
            return
        table = schema_editor.quote_name(self._table(app_label, to_state))
        using = f"tenant_id = {TENANT_EXPR}"
        if self.visible_to_own_user:
            using = f"({using}) OR user_id = {USER_EXPR}"
        schema_editor.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        schema_editor.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
        schema_editor.execute(
            f"CREATE POLICY {POLICY_NAME} ON {table} USING ({using}) WITH CHECK (tenant_id = {TENANT_EXPR})"
        )

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if not _is_postgres(schema_editor.connection):
            return
        table = schema_editor.quote_name(self._table(app_label, from_state))
        schema_editor.execute(f"DROP POLICY IF EXISTS {POLICY_NAME} ON {table}")
        schema_editor.execute(f"ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY")
        schema_editor.execute(f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY")

    def describe(self):
        return f"Enable forced row-level security on {self.model_name}"

    @property
    def migration_name_fragment(self):
        return f"rls_{self.model_name.lower()}"


class GrantAppRole(Operation):
    """Migration operation: create the application role if missing and grant it data access.

    The role gets DML on existing and future tables of the schema, never ownership, so FORCE RLS
    binds it. ``append_only`` tables lose UPDATE and DELETE for it.
    """

    reversible = True
    reduces_to_sql = True

    def __init__(self, append_only: tuple[str, ...] = ()):
        self.append_only = tuple(append_only)

    def deconstruct(self):
        return self.__class__.__qualname__, [], {"append_only": self.append_only}

    def state_forwards(self, app_label, state):
        pass

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if not _is_postgres(schema_editor.connection):
            return
        role = schema_editor.quote_name(settings.DATABASE_APP_ROLE)
        literal = settings.DATABASE_APP_ROLE.replace("'", "''")
        # Identifiers cannot be bound as parameters; the role name comes from configuration.
        exists_check = f"SELECT 1 FROM pg_roles WHERE rolname = '{literal}'"  # noqa: S608
        create = f"CREATE ROLE {role} NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE"
        schema_editor.execute(f"DO $$ BEGIN IF NOT EXISTS ({exists_check}) THEN {create}; END IF; END $$")
        schema_editor.execute(f"GRANT USAGE ON SCHEMA public TO {role}")
        schema_editor.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {role}")
        schema_editor.execute(f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {role}")
        schema_editor.execute(
            f"ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {role}"
        )
        schema_editor.execute(f"ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO {role}")
        for model_name in self.append_only:
            table = schema_editor.quote_name(to_state.apps.get_model(app_label, model_name)._meta.db_table)
            schema_editor.execute(f"REVOKE UPDATE, DELETE ON {table} FROM {role}")

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        pass

    def describe(self):
        return "Grant the application role access to the schema"


class RestrictAppRoleWrites(Operation):
    """Migration operation: make a table append-only for the application role.

    The role keeps SELECT and INSERT, loses DELETE, and may UPDATE only ``updatable_columns``
    (e.g. the pointer to the row that superseded this one). Everything else in a row, once
    written, stays as written whatever the application does.
    """

    reversible = True
    reduces_to_sql = True

    def __init__(self, model_name: str, updatable_columns: tuple[str, ...] = ()):
        self.model_name = model_name
        self.updatable_columns = tuple(updatable_columns)

    def deconstruct(self):
        kwargs = {"model_name": self.model_name}
        if self.updatable_columns:
            kwargs["updatable_columns"] = self.updatable_columns
        return self.__class__.__qualname__, [], kwargs

    def state_forwards(self, app_label, state):
        pass

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if not _is_postgres(schema_editor.connection):
            return
        role = schema_editor.quote_name(settings.DATABASE_APP_ROLE)
        table = schema_editor.quote_name(to_state.apps.get_model(app_label, self.model_name)._meta.db_table)
        schema_editor.execute(f"REVOKE UPDATE, DELETE ON {table} FROM {role}")
        if self.updatable_columns:
            columns = ", ".join(schema_editor.quote_name(column) for column in self.updatable_columns)
            schema_editor.execute(f"GRANT UPDATE ({columns}) ON {table} TO {role}")

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if not _is_postgres(schema_editor.connection):
            return
        role = schema_editor.quote_name(settings.DATABASE_APP_ROLE)
        table = schema_editor.quote_name(from_state.apps.get_model(app_label, self.model_name)._meta.db_table)
        schema_editor.execute(f"GRANT UPDATE, DELETE ON {table} TO {role}")

    def describe(self):
        return f"Make {self.model_name} append-only for the application role"
