-- The role web, worker and beat connect as: it may log in, and nothing more. It is not a
-- superuser, cannot bypass row-level security and owns no table (the tables belong to the
-- superuser that runs the migrations), so the FORCEd tenant policies bind every query it makes.
-- The migrations grant it access to the tables (GrantAppRole in partnerhub/tenancy/rls.py).
--
-- Runs once, when the PostgreSQL data volume is first initialized. The password comes from the
-- PARTNERHUB_DB_PASSWORD environment variable of the postgres container (psql 15+ \getenv).
\getenv app_password PARTNERHUB_DB_PASSWORD

CREATE ROLE partnerhub_app
    LOGIN PASSWORD :'app_password'
    NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE NOREPLICATION;
