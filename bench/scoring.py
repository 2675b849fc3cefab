"""Scoring at scale: a full recompute of one quarter for 20,000 partners x 24 metrics, against its I/O floor.

Run: ``DATABASE_URL=postgres://... .venv/bin/python bench/scoring.py`` (or ``make bench-scoring``).
PostgreSQL only: it creates a throwaway database next to the one DATABASE_URL names, loads one
tenant with 20,000 partners (six segments), a 24-item scorecard and 8 quarters of observations
(bulk loaded with COPY), scores the first seven quarters, then measures as the application role,
under forced row-level security, as in production:

- recompute: ``recompute_period`` of the eighth quarter, from nothing stored to every score
  written (reading observations and the previous quarters' scores, computing, storing 20,000 score
  revisions with components, explanations and flags, and the segment benchmarks);
- floor: in the same run and session, the I/O that work cannot avoid: reading the same observation
  rows with ``COPY (SELECT ...) TO STDOUT`` and writing the same number of score rows, with the
  very bytes the recompute stored, with ``COPY ... FROM STDIN`` into a table shaped like the score
  table (same columns, types and indexes);
- peak RSS of the process (``ru_maxrss``), setup included;
- one partner after a correction: a superseding observation, then ``recompute_partner``
  (median of several partners).

The last line is ``scoring: ratio=<recompute/floor> peak_rss_mb=<n> single_partner_ms=<n>``.
Targets: ratio <= 3, peak RSS <= 1024 MB, single partner <= 200 ms. Options: ``--partners N``,
``--runs N`` (recompute repetitions; the median is reported).
"""

from __future__ import annotations

import argparse
import io
import os
import resource
import statistics
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

QUARTERS = [f"FY{year}-Q{quarter}" for year in (2025, 2026) for quarter in (1, 2, 3, 4)]
METRICS = 24
MISSING_SHARE = 0.03  # share of (partner, metric, quarter) values never reported


class ThrowawayDatabase:
    """A fresh PostgreSQL database on the server DATABASE_URL names, dropped at the end."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.name = f"ph_bench_{uuid.uuid4().hex[:10]}"

    def _maintenance(self):
        import psycopg2

        connection = psycopg2.connect(urlunsplit(urlsplit(self.url)._replace(path="/postgres")))
        connection.autocommit = True
        return connection

    def __enter__(self) -> ThrowawayDatabase:
        admin = self._maintenance()
        with admin.cursor() as cursor:
            cursor.execute(f'CREATE DATABASE "{self.name}"')
        admin.close()
        os.environ["DATABASE_URL"] = urlunsplit(urlsplit(self.url)._replace(path=f"/{self.name}"))
        return self

    def __exit__(self, *exc) -> None:
        from django.db import connections

        connections.close_all()
        admin = self._maintenance()
        with admin.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
        admin.close()


# --- Data -----------------------------------------------------------------------------------------


def build_rules(tenant):
    """24 metrics and an active version over every segment: linear, banded, per size and attainment items."""
    from decimal import Decimal

    from partnerhub.partners.models import PartnerType
    from scorecards.models import Metric, Normalization, RubricKind, Scorecard, ScorecardItem, ScorecardVersion

    segments = list(PartnerType.objects.order_by("position").values_list("key", flat=True))
    scorecard = Scorecard.objects.create(name="Bench scorecard")
    version = ScorecardVersion.objects.create(
        scorecard=scorecard,
        number=1,
        status="draft",  # put in force once its items are in: a published version's items never change
        partner_types=segments,
        effective_from=QUARTERS[0],
        rationale="Benchmark rules.",
    )
    for n in range(METRICS):
        metric = Metric.objects.create(
            key=f"bench_metric_{n:02d}",
            name=f"Bench metric {n:02d}",
            definition="A benchmark metric.",
            direction="lower" if n % 6 == 5 else "higher",
        )
        fields = {"floor": Decimal(0), "target": Decimal(100)}
        if n % 6 == 5:
            fields = {"floor": Decimal(100), "target": Decimal(10)}
        if n % 4 == 1:
            fields = {
                "rubric": RubricKind.BANDED,
                "bands": [
                    {"at_least": 25, "points": 40},
                    {"at_least": 50, "points": 70},
                    {"at_least": 80, "points": 100},
                ],
            }
        if n % 8 == 2:
            fields = {"normalization": Normalization.PER_SIZE, "floor": Decimal(0), "target": Decimal(2)}
        if n % 8 == 6:
            fields = {
                "normalization": Normalization.TARGET_ATTAINMENT,
                "segment_targets": {segment: 40 + 5 * i for i, segment in enumerate(segments)},
                "floor": Decimal("0.5"),
                "target": Decimal("1.2"),
            }
        ScorecardItem.objects.create(
            version=version,
            metric=metric,
            weight=Decimal(100) / METRICS,
            applies_to=[] if n < 20 else segments[n % 2 :: 2],  # four plug-in items for half the segments
            position=n,
            **fields,
        )
    version.status = "active"
    version.save(update_fields=["status"])
    return version


def build_partners(count: int, rng: np.random.Generator) -> None:
    from decimal import Decimal

    from partnerhub.partners.models import Partner, PartnerType
    from partnerhub.tenancy.context import current_tenant_id

    types = list(PartnerType.objects.all())
    tenant_id = current_tenant_id()
    sizes = rng.integers(1, 400, size=count)
    rows = [
        Partner(
            tenant_id=tenant_id,
            name=f"Bench Partner {n:05d}",
            partner_type=types[int(rng.integers(0, len(types)))],
            size=None if n % 10 == 0 else Decimal(int(sizes[n])),
        )
        for n in range(count)
    ]
    Partner.objects.bulk_create(rows, batch_size=2000)


def load_observations(rng: np.random.Generator) -> int:
    """Every quarter's observations, COPYed in (as the owner, one quarter at a time to keep memory low)."""
    import pandas as pd
    from django.db import connection

    from partnerhub.partners.models import Partner
    from partnerhub.tenancy.context import current_tenant_id
    from scorecards.models import Metric, MetricObservation

    tenant_id = current_tenant_id()
    partner_ids = np.array(Partner.objects.order_by("pk").values_list("pk", flat=True), dtype=np.int64)
    metric_ids = np.array(
        Metric.objects.filter(key__startswith="bench_").order_by("key").values_list("pk", flat=True), dtype=np.int64
    )
    level = rng.uniform(0.3, 1.3, size=len(partner_ids))  # each partner's own level, drifting by quarter
    table = MetricObservation._meta.db_table
    columns = "tenant_id, partner_id, metric_id, period, value, source, source_ref, recorded_at"
    total = 0
    for q, period in enumerate(QUARTERS):
        level = level * rng.uniform(0.93, 1.08, size=len(level))
        values = (level[:, None] * rng.uniform(20, 110, size=(len(partner_ids), len(metric_ids)))).round(2)
        present = rng.random(values.shape) >= MISSING_SHARE
        rows, cols = np.nonzero(present)
        frame = pd.DataFrame(
            {
                "tenant_id": tenant_id,
                "partner_id": partner_ids[rows],
                "metric_id": metric_ids[cols],
                "period": period,
                "value": values[rows, cols],
                "source": "upload",
                "source_ref": f"bench-{q}",
                "recorded_at": "2026-01-01T00:00:00Z",
            }
        )
        buffer = io.StringIO()
        frame.to_csv(buffer, index=False, header=False)
        buffer.seek(0)
        with connection.cursor() as cursor:
            cursor.cursor.copy_expert(f"COPY {table} ({columns}) FROM STDIN WITH (FORMAT csv)", buffer)
        total += len(frame)
    return total


def correct(partner, period: str, value: float) -> None:
    """An approved correction: recorded like any observation, it supersedes the value in force."""
    from scorecards.models import Metric, ObservationSource
    from scorecards.services.observations import observation_record

    metric = Metric.objects.get(key="bench_metric_00")
    observation_record(
        partner=partner, metric=metric, period=period, value=value, source=ObservationSource.CORRECTION, by=None
    )


# --- Measuring ------------------------------------------------------------------------------------


def floor_seconds(version, period: str, stored: bytes) -> tuple[float, int, int]:
    """The I/O floor: COPY the period's observations out, COPY the stored score rows into a twin table."""
    from django.db import connection, transaction

    from scorecards.models import MetricObservation, ScorecardItem

    metric_ids = list(ScorecardItem.objects.filter(version=version).values_list("metric_id", flat=True))
    reading = (
        MetricObservation.objects.current()
        .filter(period=period, metric_id__in=metric_ids)
        .order_by()
        .values_list("partner_id", "metric_id", "value")
    )
    sql, params = reading.query.sql_with_params()
    with transaction.atomic(), connection.cursor() as cursor:
        raw = cursor.cursor
        statement = raw.mogrify(f"COPY ({sql}) TO STDOUT WITH (FORMAT csv)", params).decode()
        began = time.perf_counter()
        out = io.StringIO()
        raw.copy_expert(statement, out)
        read = time.perf_counter() - began
        began = time.perf_counter()
        raw.copy_expert("COPY bench_floor_scores FROM STDIN", io.BytesIO(stored))
        written = time.perf_counter() - began
        raw.execute("SELECT count(*) FROM bench_floor_scores")
        rows = raw.fetchone()[0]
        raw.execute("DELETE FROM bench_floor_scores")
    return read + written, out.getvalue().count("\n"), rows


def stored_rows(period: str) -> bytes:
    from django.db import connection

    from partnerhub.tenancy.context import current_tenant_id
    from scorecards.models import Score

    buffer = io.BytesIO()
    with connection.cursor() as cursor:
        cursor.cursor.copy_expert(
            cursor.cursor.mogrify(
                f"COPY (SELECT * FROM {Score._meta.db_table} WHERE tenant_id = %s AND period = %s AND is_current) "  # noqa: S608
                "TO STDOUT",
                [current_tenant_id(), period],
            ).decode(),
            buffer,
        )
    return buffer.getvalue()


def peak_rss_mb() -> int:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)  # kilobytes on Linux


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--partners", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--singles", type=int, default=7, help="partners corrected one by one")
    args = parser.parse_args()

    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://")):
        print(
            "bench/scoring.py measures PostgreSQL (COPY, row-level security): set DATABASE_URL to a PostgreSQL "
            "server, e.g. DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres make bench-scoring",
            file=sys.stderr,
        )
        return 2
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "partnerhub.settings")
    # Recording a correction queues a (coalesced) recompute of its period, as in production. Here
    # the queue is an in-memory broker with no worker, so those runs stay queued: the bench times
    # the synchronous one-partner path, and nothing reaches a worker of another database.
    os.environ["REDIS_URL"] = ""
    os.environ["CELERY_TASK_ALWAYS_EAGER"] = "false"
    rng = np.random.default_rng(20_000)
    with ThrowawayDatabase(url):
        import django

        django.setup()
        from partnerhub.celery import app as celery_app

        celery_app.conf.broker_url = "memory://localhost/"
        from django.core.management import call_command
        from django.db import connection

        from partnerhub.partners.models import Partner
        from partnerhub.tenancy import rls
        from partnerhub.tenancy.context import tenant_scope
        from partnerhub.tenancy.services import tenant_create
        from scorecards.models import Score, SegmentBenchmark
        from scorecards.services.recompute import recompute_partner, recompute_period

        began = time.perf_counter()
        call_command("migrate", verbosity=0)
        tenant = tenant_create(name="Bench", slug="bench")
        with tenant_scope(tenant):
            version = build_rules(tenant)
            build_partners(args.partners, rng)
            observations = load_observations(rng)
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE")
            cursor.execute(f"CREATE TABLE bench_floor_scores (LIKE {Score._meta.db_table} INCLUDING ALL)")
        rls.assume_app_role()  # from here on: the application role, under forced row-level security
        setup = time.perf_counter() - began

        target = QUARTERS[-1]
        with tenant_scope(tenant):
            began = time.perf_counter()
            for period in QUARTERS[:-1]:
                recompute_period(version=version, period=period)
            history = time.perf_counter() - began
            rls.release_app_role()
            with connection.cursor() as cursor:
                cursor.execute("VACUUM ANALYZE")
            rls.assume_app_role()

            recomputes, floors = [], []
            for _ in range(args.runs):
                # From nothing stored for the quarter: every score is written.
                Score.objects.filter(period=target).delete()
                SegmentBenchmark.objects.filter(period=target).delete()
                began = time.perf_counter()
                summary = recompute_period(version=version, period=target)
                recomputes.append(time.perf_counter() - began)
                assert summary.written == args.partners, summary
                seconds, rows_read, rows_written = floor_seconds(version, target, stored_rows(target))
                floors.append(seconds)
                assert rows_written == args.partners
            began = time.perf_counter()
            again = recompute_period(version=version, period=target)
            unchanged = time.perf_counter() - began
            assert again.written == 0

            step = args.partners // args.singles
            partners = list(Partner.objects.select_related("partner_type").order_by("pk")[::step])
            singles = []
            for n, partner in enumerate(partners[: args.singles]):
                correct(partner, target, 55.5 + n)
                began = time.perf_counter()
                result = recompute_partner(partner=partner, period=target)
                singles.append((time.perf_counter() - began) * 1000)
                assert result.written == 1, result
            # With a percentile item the one-partner path recomputes the partner's whole segment.
            partner = partners[-1]
            correct(partner, target, 44.4)
            began = time.perf_counter()
            segment_run = recompute_period(version=version, period=target, partner_ids=[partner.pk])
            segment_seconds = time.perf_counter() - began

        recompute, floor = statistics.median(recomputes), statistics.median(floors)
        single = statistics.median(singles)
        rss = peak_rss_mb()
        size = f"{args.partners:,} partners x {METRICS} metrics x {len(QUARTERS)} quarters"
        print(f"\nScoring benchmark — PostgreSQL, {size}")
        print(f"setup {setup:.1f}s ({observations:,} observations); seven quarters scored in {history:.1f}s")
        print(f"full recompute of {target}: {', '.join(f'{s:.2f}' for s in recomputes)} s (median {recompute:.2f})")
        print(f"I/O floor (COPY {rows_read:,} observation rows out, {rows_written:,} score rows in): "
              f"{', '.join(f'{s:.2f}' for s in floors)} s (median {floor:.2f})")  # fmt: skip
        print(f"recompute with nothing changed: {unchanged:.2f} s")
        print(f"one partner after a correction: {', '.join(f'{s:.0f}' for s in singles)} ms (median {single:.0f})")
        print(
            f"its segment instead (the path with percentile items): {segment_seconds:.2f} s for "
            f"{segment_run.partners:,} partners, {segment_run.written} revised"
        )
        print(f"scoring: ratio={recompute / floor:.2f} peak_rss_mb={rss} single_partner_ms={single:.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
