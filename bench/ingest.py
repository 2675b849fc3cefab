"""Deal ingestion at scale: upserting 1,000,000 deals from a CSV file, against a raw COPY of the same file.

Run: ``DATABASE_URL=postgres://... .venv/bin/python bench/ingest.py`` (or ``make bench-ingest``).
PostgreSQL only: it creates a throwaway database next to the one DATABASE_URL names, loads one
tenant with 20,000 partners (each with a Salesforce account id) and a file data source, writes a
CSV file of 1,000,000 deals (5 % of them naming an account no partner has, so they stay
unmatched), then measures, as the application role under forced row-level security:

- upsert: ``deals_copy_upsert`` of the file into an empty deal table: COPY into a scratch table,
  the row checks in one pass, and one ``INSERT`` that matches partners and writes every deal
  with its indexes (key, unique source id, partner, unmatched queue);
- floor: in the same run and session, a raw ``COPY`` of the same file into an unindexed table
  with the same typed columns;
- bound (printed, not part of the ratio): a raw ``COPY`` of the file, as the owner, into a
  durable twin of the deal table with its indexes and no row-level security: the least any
  write that keeps those indexes can cost on the server;
- rerun: the same file again, which must change nothing; then the deals stored more than once.

The last line is ``ingest: ratio=<upsert/copy> rows=<n> duplicates_after_rerun=<n>``. Targets:
ratio <= 2.5, duplicates 0. Options: ``--rows N``, ``--partners N``, ``--runs N``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from scoring import ThrowawayDatabase, peak_rss_mb  # noqa: E402  (the sibling benchmark's helpers)

FLOOR_TABLE = """
CREATE TEMPORARY TABLE bench_copy_floor (
    external_id text, partner text, name text, amount numeric(18, 2), currency text, stage text,
    closed boolean, won boolean, created_on date, close_date date
)
"""


def write_file(path: str, rows: int, accounts: np.ndarray, rng: np.random.Generator) -> None:
    """A deal CSV in the upload template's columns, written in chunks to keep memory flat."""
    import pandas as pd

    chunk = 200_000
    start_day = np.datetime64("2024-01-01")
    with open(path, "w", encoding="utf-8", newline="") as out:
        out.write("external_id,partner,name,amount,currency,stage,closed,won,created_on,close_date\n")
        for first in range(0, rows, chunk):
            size = min(chunk, rows - first)
            numbers = np.arange(first, first + size)
            refs = accounts[rng.integers(0, len(accounts), size=size)].astype(object)
            unknown = rng.random(size) < 0.05
            refs[unknown] = [f"001UNKNOWN{n:08d}" for n in numbers[unknown]]
            created = start_day + rng.integers(0, 900, size=size).astype("timedelta64[D]")
            closed = rng.random(size) < 0.6
            won = closed & (rng.random(size) < 0.45)
            close = created + rng.integers(5, 120, size=size).astype("timedelta64[D]")
            frame = pd.DataFrame(
                {
                    "external_id": [f"006BENCH{n:09d}" for n in numbers],
                    "partner": refs,
                    "name": [f"Deal {n}" for n in numbers],
                    "amount": (rng.gamma(2.0, 9000.0, size=size)).round(2),
                    "currency": "USD",
                    "stage": np.where(won, "Closed Won", np.where(closed, "Closed Lost", "Negotiation")),
                    "closed": np.where(closed, "true", "false"),
                    "won": np.where(won, "true", "false"),
                    "created_on": pd.to_datetime(created).strftime("%Y-%m-%d"),
                    "close_date": np.where(closed, pd.to_datetime(close).strftime("%Y-%m-%d"), ""),
                }
            )
            frame.to_csv(out, index=False, header=False)


def floor_seconds(path: str) -> float:
    from django.db import connection, transaction

    with transaction.atomic(), connection.cursor() as cursor:
        raw = cursor.cursor
        raw.execute(FLOOR_TABLE)
        began = time.perf_counter()
        with open(path, "rb") as file:
            raw.copy_expert("COPY bench_copy_floor FROM STDIN WITH (FORMAT csv, HEADER true)", file)
        seconds = time.perf_counter() - began
        raw.execute("DROP TABLE bench_copy_floor")
    return seconds


def indexed_copy_seconds(path: str, deals: str) -> float:
    """A raw COPY of the file into a durable twin of the deal table with its indexes, as the owner.

    Not the floor the ratio is taken against: the least any write that keeps the deal table's
    indexes can cost on this server, with no row-level security, no checks, no partner matching.
    """
    from django.db import connection, transaction

    columns = "external_id, partner_ref, name, amount, currency, stage, closed, won, created_on, close_date"
    with transaction.atomic(), connection.cursor() as cursor:
        raw = cursor.cursor
        raw.execute(f"CREATE TABLE bench_copy_indexed (LIKE {deals} INCLUDING ALL)")
        raw.execute(
            "ALTER TABLE bench_copy_indexed ALTER COLUMN tenant_id SET DEFAULT 1, "
            "ALTER COLUMN source_id SET DEFAULT 1, ALTER COLUMN modified_at SET DEFAULT now(), "
            "ALTER COLUMN first_seen_at SET DEFAULT now(), ALTER COLUMN updated_at SET DEFAULT now()"
        )
        began = time.perf_counter()
        with open(path, "rb") as file:
            raw.copy_expert(f"COPY bench_copy_indexed ({columns}) FROM STDIN WITH (FORMAT csv, HEADER true)", file)
        seconds = time.perf_counter() - began
        raw.execute("DROP TABLE bench_copy_indexed")
    return seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--partners", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()

    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://")):
        print(
            "bench/ingest.py measures PostgreSQL (COPY, row-level security): set DATABASE_URL to a PostgreSQL "
            "server, e.g. DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres make bench-ingest",
            file=sys.stderr,
        )
        return 2
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "partnerhub.settings")
    os.environ["REDIS_URL"] = ""
    rng = np.random.default_rng(1_000_000)
    with ThrowawayDatabase(url), tempfile.TemporaryDirectory() as scratch:
        import django

        django.setup()
        from django.core.management import call_command
        from django.db import connection

        from partnerhub.integrations.deal_copy import deals_copy_upsert
        from partnerhub.integrations.source_models import DataSource, Deal, PartnerMatch, SourceKind
        from partnerhub.partners.models import Partner, PartnerType
        from partnerhub.tenancy import rls
        from partnerhub.tenancy.context import tenant_scope
        from partnerhub.tenancy.services import tenant_create

        began = time.perf_counter()
        call_command("migrate", verbosity=0)
        tenant = tenant_create(name="Bench", slug="bench")
        with tenant_scope(tenant):
            types = list(PartnerType.objects.all())
            accounts = np.array([f"001BENCH{n:010d}" for n in range(args.partners)], dtype=object)
            Partner.objects.bulk_create(
                [
                    Partner(
                        tenant=tenant,
                        name=f"Bench Partner {n:05d}",
                        partner_type=types[n % len(types)],
                        salesforce_account_id=accounts[n],
                    )
                    for n in range(args.partners)
                ],
                batch_size=2000,
            )
            source = DataSource.objects.create(
                name="Deal files", kind=SourceKind.FILE, partner_match=PartnerMatch.SALESFORCE_ACCOUNT_ID
            )
        path = os.path.join(scratch, "deals.csv")
        write_file(path, args.rows, accounts, rng)
        size_mb = os.path.getsize(path) / (1024 * 1024)
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE")
        setup = time.perf_counter() - began

        upserts, floors = [], []
        indexed = indexed_copy_seconds(path, Deal._meta.db_table)
        rls.assume_app_role()  # from here on: the application role, under forced row-level security
        with tenant_scope(tenant):
            for _ in range(args.runs):
                rls.release_app_role()
                with connection.cursor() as cursor:
                    cursor.execute(f"TRUNCATE {Deal._meta.db_table}")
                rls.assume_app_role()
                floors.append(floor_seconds(path))
                began = time.perf_counter()
                with open(path, "rb") as file:
                    result = deals_copy_upsert(file=file, source=source)
                upserts.append(time.perf_counter() - began)
                assert not result.errors, result.errors[:3]
                assert result.created == args.rows, result
            began = time.perf_counter()
            with open(path, "rb") as file:
                again = deals_copy_upsert(file=file, source=source)
            rerun = time.perf_counter() - began
            assert (again.created, again.updated) == (0, 0), again
            with connection.cursor() as cursor:
                cursor.execute(
                    f"SELECT count(*) - count(DISTINCT external_id) FROM {Deal._meta.db_table} WHERE source_id = %s",  # noqa: S608
                    [source.pk],
                )
                duplicates = cursor.fetchone()[0]
                cursor.execute(f"SELECT count(*) FROM {Deal._meta.db_table} WHERE partner_id IS NULL")  # noqa: S608
                unmatched = cursor.fetchone()[0]
        rls.release_app_role()

        upsert, floor = statistics.median(upserts), statistics.median(floors)
        print(
            f"\nIngest benchmark — PostgreSQL, {args.rows:,} deals ({size_mb:.0f} MB CSV), {args.partners:,} partners"
        )
        print(f"setup {setup:.1f}s")
        print(f"upsert into an empty deal table: {', '.join(f'{s:.2f}' for s in upserts)} s (median {upsert:.2f})")
        print(f"raw COPY into an unindexed table: {', '.join(f'{s:.2f}' for s in floors)} s (median {floor:.2f})")
        print(
            f"raw COPY into a twin of the deal table with its indexes (owner, no row-level security, no checks): "
            f"{indexed:.2f} s, {indexed / floor:.2f} times the floor: the least a write keeping those indexes costs"
        )
        print(f"the same file again: {rerun:.2f} s, {again.unchanged:,} unchanged, nothing written")
        print(f"unmatched deals kept for mapping: {unmatched:,}; peak RSS {peak_rss_mb()} MB")
        print(f"ingest: ratio={upsert / floor:.2f} rows={result.rows} duplicates_after_rerun={duplicates}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
