"""Partner directory at scale: 20,000 partners in a tenant, next to another tenant of 20,000.

Run: ``.venv/bin/python bench/partners.py`` (or ``make bench-partners``). Uses a throwaway SQLite
file, or, when DATABASE_URL points at PostgreSQL, a throwaway database created next to the one it
names and dropped afterwards; requests then run as the application role, under row-level security,
as in production.

Every figure is the median of N requests through the full stack (Django test client, session,
middleware, templates) and is printed as a ratio to a floor measured in the same run: /healthz
through the same client. The script prints figures and exits 0; it exits 1 only if a request fails,
the tenant filter leaks, or the number of queries depends on the page or the filter.

Options: ``--runs N`` (default 15), ``--partners N`` per tenant (default 20000), ``--explain`` to
print the query plans of the two heaviest queries of each case.
"""

from __future__ import annotations

import argparse
import datetime
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from decimal import Decimal
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

REGIONS = [
    f"{area} — {market}"
    for area, markets in {
        "EMEA": ["DACH", "Nordics", "UK & Ireland", "France", "Benelux", "Iberia", "Italy", "CEE"],
        "North America": ["East", "West", "Central", "Canada"],
        "APAC": ["ANZ", "Japan", "India", "ASEAN", "Greater China"],
        "LATAM": ["Brazil", "Mexico", "Southern Cone"],
    }.items()
    for market in markets
]
WORDS = ["Alpine", "Blue", "Cobalt", "Delta", "Evergreen", "Fjord", "Granite", "Harbor", "Iron", "Juniper", "Kestrel"]
STAGES = ["onboarding", "growing", "growing", "mature", "mature", "at_risk", "exiting"]  # weighted
SUFFIXES = ["Systems", "Consulting", "Cloud", "Data", "IT Services", "Solutions", "Networks", "Digital", "Labs"]


# --- A database of its own ------------------------------------------------------------------------


class ThrowawayDatabase:
    """A database for this run only: a temporary SQLite file, or a fresh PostgreSQL database."""

    def __init__(self) -> None:
        self.url = os.environ.get("DATABASE_URL", "")
        self.postgres = self.url.startswith(("postgres://", "postgresql://"))
        self.name = f"ph_bench_{uuid.uuid4().hex[:10]}"
        self.tmpdir: str | None = None

    def __enter__(self) -> ThrowawayDatabase:
        if self.postgres:
            import psycopg2

            admin = psycopg2.connect(self._maintenance_url())
            admin.autocommit = True
            with admin.cursor() as cursor:
                cursor.execute(f'CREATE DATABASE "{self.name}"')
            admin.close()
            os.environ["DATABASE_URL"] = urlunsplit(urlsplit(self.url)._replace(path=f"/{self.name}"))
        else:
            self.tmpdir = tempfile.mkdtemp(prefix="ph-bench-")
            os.environ["DATABASE_URL"] = f"sqlite:///{self.tmpdir}/bench.sqlite3"
        return self

    def _maintenance_url(self) -> str:
        # CREATE/DROP DATABASE run from the server's maintenance database; the database
        # DATABASE_URL names need not exist (test runs create their own from its name).
        return urlunsplit(urlsplit(self.url)._replace(path="/postgres"))

    def __exit__(self, *exc) -> None:
        from django.db import connections

        connections.close_all()
        if self.postgres:
            import psycopg2

            admin = psycopg2.connect(self._maintenance_url())
            admin.autocommit = True
            with admin.cursor() as cursor:
                cursor.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
            admin.close()
        elif self.tmpdir:
            shutil.rmtree(self.tmpdir, ignore_errors=True)


# --- Data -----------------------------------------------------------------------------------------


def build_tenant(slug: str, partners: int, rnd: random.Random):
    """A tenant with internal people and ``partners`` partners, loaded with bulk_create."""
    from partnerhub.partners.models import Partner, PartnerType
    from partnerhub.tenancy.context import tenant_scope
    from partnerhub.tenancy.models import Membership, User
    from partnerhub.tenancy.services import tenant_create

    tenant = tenant_create(name=slug.title(), slug=slug)
    with tenant_scope(tenant):
        managers = []
        for number in range(12):
            user = User.objects.create_user(f"manager{number}@{slug}.bench", None, full_name=f"Manager {number}")
            Membership.objects.create(user=user, role="partner_manager")
            managers.append(user)
        types = list(PartnerType.objects.all())
        start = datetime.date(2015, 1, 1)
        rows = []
        for number in range(partners):
            rows.append(
                Partner(
                    tenant=tenant,  # bulk_create skips save(), which would fill it from the scope
                    name=f"{rnd.choice(WORDS)} {rnd.choice(SUFFIXES)} {number:05d}",
                    partner_type=rnd.choice(types),
                    lifecycle_stage=rnd.choice(STAGES),
                    status=rnd.choice(["active"] * 8 + ["suspended", "terminated"]),
                    region=rnd.choice(REGIONS),
                    product_lines=rnd.sample(["Analytics", "Cloud", "Security", "Edge", "Payments"], rnd.randint(0, 3)),
                    size=None if rnd.random() < 0.1 else Decimal(rnd.randint(1, 400)),
                    hubspot_company_id=str(10_000_000 + number) if rnd.random() < 0.7 else "",
                    manager=rnd.choice([*managers, None]),
                    joined_on=start + datetime.timedelta(days=rnd.randint(0, 3650)),
                )
            )
        Partner.objects.bulk_create(rows, batch_size=2000)
    return tenant, managers[0]


# --- Measuring ------------------------------------------------------------------------------------


class Case:
    def __init__(self, label: str, url: str, *, directory: bool = False) -> None:
        self.label, self.url, self.directory = label, url, directory
        self.samples: list[float] = []
        self.queries: list[dict] = []
        self.body = b""


class QueryTimer:
    """Times every query of one request to the microsecond (the debug cursor rounds to 1 ms)."""

    def __init__(self) -> None:
        self.queries: list[dict] = []

    def __call__(self, execute, sql, params, many, context):
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            self.queries.append({"sql": sql, "params": params, "ms": (time.perf_counter() - started) * 1000})


def measure(client, case: Case, runs: int) -> None:
    from django.db import connection

    for _ in range(2):  # warm caches, connections and the template loader
        client.get(case.url)
    timer = QueryTimer()
    with connection.execute_wrapper(timer):
        response = client.get(case.url)
    if response.status_code != 200:
        raise SystemExit(f"FAIL {case.label}: {case.url} answered {response.status_code}")
    case.queries = timer.queries
    case.body = response.content
    for _ in range(runs):
        started = time.perf_counter()
        client.get(case.url)
        case.samples.append((time.perf_counter() - started) * 1000)


def median(case: Case) -> float:
    return statistics.median(case.samples)


def heavy_share(case: Case) -> str:
    times = sorted((q["ms"] for q in case.queries), reverse=True)
    if not times:
        return "-"
    top, rest = sum(times[:2]), sum(times[2:])
    return f"{top:6.2f} / {rest:5.2f}"


def explain(case: Case) -> None:
    from django.db import connection

    heaviest = sorted(case.queries, key=lambda q: q["ms"], reverse=True)[:2]
    for query in heaviest:
        prefix = "EXPLAIN ANALYZE " if connection.vendor == "postgresql" else "EXPLAIN QUERY PLAN "
        with connection.cursor() as cursor:
            cursor.execute(prefix + query["sql"], query["params"])
            plan = "\n      ".join(" ".join(str(col) for col in row) for row in cursor.fetchall())
        print(f"    {query['ms']:.2f} ms  {query['sql'][:160]}...\n      {plan}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=int(os.environ.get("BENCH_RUNS", 15)))
    parser.add_argument("--partners", type=int, default=20_000)
    parser.add_argument("--explain", action="store_true")
    args = parser.parse_args()

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "partnerhub.settings")
    with ThrowawayDatabase() as database:
        import django

        django.setup()
        from django.core.management import call_command
        from django.db import connection
        from django.test import Client

        from partnerhub.partners.models import Partner
        from partnerhub.tenancy import rls
        from partnerhub.tenancy.context import tenant_scope

        started = time.perf_counter()
        call_command("migrate", verbosity=0)
        rnd = random.Random(20_000)
        tenant_a, manager = build_tenant("bench-a", args.partners, rnd)
        build_tenant("bench-b", args.partners, rnd)
        if database.postgres:
            with connection.cursor() as cursor:
                # What autovacuum does soon after a bulk load: statistics for the planner, and the
                # visibility map that lets counts answer from the index alone.
                cursor.execute("VACUUM ANALYZE")
            # Measure as production runs: the application role, under forced row-level security.
            rls.assume_app_role()
        setup_seconds = time.perf_counter() - started

        with tenant_scope(tenant_a):
            sample = Partner.objects.order_by("pk").values_list("pk", "name", "partner_type__key").first()
        client = Client()
        client.force_login(manager)

        deep = min(300, -(-args.partners // 50))  # page 300 at 20,000 partners; the last page below that
        floor = Case("floor: /healthz", "/healthz")
        cases = [
            Case("directory, first page", "/partners/", directory=True),
            Case("directory, type + stage", f"/partners/?type={sample[2]}&stage=mature", directory=True),
            Case("directory, search", "/partners/?q=Harbor", directory=True),
            Case("directory, search for one partner", f"/partners/?q={quote(sample[1])}", directory=True),
            Case("directory, sorted by size", "/partners/?sort=-size", directory=True),
            Case(f"directory, page {deep}", f"/partners/?page={deep}", directory=True),
            Case(f"directory, page {deep} (htmx)", f"/partners/?page={deep}", directory=True),
            Case("partner detail", f"/partners/{sample[0]}/"),
            Case(f"API list, page {deep}", f"/api/v1/partners/?page={deep}"),
        ]
        measure(client, floor, args.runs)
        for case in cases:
            if "htmx" in case.label:
                client.defaults["HTTP_HX_REQUEST"] = "true"
            measure(client, case, args.runs)
            client.defaults.pop("HTTP_HX_REQUEST", None)

        # A primary-key lookup, for scale: the cheapest query the pages could make.
        with tenant_scope(tenant_a):
            lookups = []
            for _ in range(args.runs * 10):
                begun = time.perf_counter()
                Partner.objects.get(pk=sample[0])
                lookups.append((time.perf_counter() - begun) * 1000)

        base = median(floor)
        print(f"\nPartner directory benchmark — {connection.vendor}, {args.partners:,} partners in each of 2 tenants")
        print(f"setup {setup_seconds:.1f}s; median of {args.runs} requests; floor = /healthz through the same client\n")
        print(f"{'case':34} {'median ms':>10} {'x floor':>8} {'queries':>8}   {'top-2 / other query ms':>22}")
        print(f"{floor.label:34} {base:10.2f} {1:8.1f} {len(floor.queries):8d}   {heavy_share(floor):>22}")
        for case in cases:
            print(
                f"{case.label:34} {median(case):10.2f} {median(case) / base:8.1f} "
                f"{len(case.queries):8d}   {heavy_share(case):>22}"
            )
        print(f"{'(primary-key lookup, no HTTP)':34} {statistics.median(lookups):10.3f}")

        failures = []
        directory_queries = {len(case.queries) for case in cases if case.directory and "htmx" not in case.label}
        # The type filter resolves its key with one lookup; every other directory case is the same.
        if max(directory_queries) - min(directory_queries) > 1:
            failures.append(f"directory query counts differ by page or filter: {sorted(directory_queries)}")
        if f"<strong>{args.partners:,}</strong> partners".encode() not in cases[0].body:
            failures.append("the first page does not count exactly one tenant's partners")
        if f'"count":{args.partners}'.encode() not in cases[-1].body:
            failures.append("the API does not count exactly one tenant's partners")
        if args.explain:
            with tenant_scope(tenant_a):  # row-level security needs the tenant to show real plans
                for case in cases:
                    print(f"\n{case.label}:")
                    explain(case)
        for failure in failures:
            print(f"FAIL {failure}")
        return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
