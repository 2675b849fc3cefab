"""Writing score rows in bulk, for the recompute service.

At 20,000 partners a quarter's scores carry about 100 MB of JSON (components and explanations).
Building it with dicts and ``json.dumps`` and inserting with the ORM took longer than the rest of
the recompute together, so the JSON text is written directly from the engine's columns (one
formatting pass per row, no intermediate dicts) and, on PostgreSQL, the rows are COPYed into a
temporary table and moved with one ``INSERT ... SELECT`` per batch (COPY cannot write into a table
under row-level security; the INSERT is checked by its policy like any other).

Numbers in the JSON are the shortest text that reads back as the engine's double (``repr``), so
the stored JSON of a recompute is the same, number for number, every time.
"""

from __future__ import annotations

import datetime
import io
import json
from collections.abc import Sequence
from itertools import repeat

import numpy as np
import pandas as pd
from django.db import connection

from scorecards.models import Score

# The score table's columns, in order, except the primary key.
COLUMNS = [field.column for field in Score._meta.concrete_fields if not field.primary_key]
JSON_COLUMNS = ("components", "explanation")


def _texts(values: pd.Series) -> list[str]:
    """Each float as JSON: its shortest exact text (``repr``), ``null`` for NaN (the engine's "no value")."""
    array = values.to_numpy(dtype=np.float64)
    texts = list(map(repr, array.tolist()))
    for position in np.flatnonzero(np.isnan(array)).tolist():
        texts[position] = "null"
    return texts


def components_text(components: pd.DataFrame, names: dict[str, str]) -> dict[int, str]:
    """The components JSON array of each partner in ``components`` (the engine's frame, sorted by
    partner, then item). What is the same for every partner (item, metric, weight) is formatted once."""
    if components.empty:
        return {}
    items = components.drop_duplicates("item_id")
    heads = {
        item_id: json.dumps(
            {"item_id": item_id, "metric_key": key, "metric": names.get(key, key), "weight": weight},
            separators=(",", ":"),
        )[:-1]
        + ',"raw":'
        for item_id, key, weight in zip(
            items["item_id"].tolist(), items["metric_key"].tolist(), items["weight"].tolist(), strict=True
        )
    }
    present = np.where(components["present"].to_numpy(dtype=bool), ',"present":true}', ',"present":false}')
    pieces = list(
        map(
            "".join,
            zip(
                [heads[item_id] for item_id in components["item_id"].tolist()],
                _texts(components["raw"]),
                repeat(',"normalized":'),
                _texts(components["normalized"]),
                repeat(',"points":'),
                _texts(components["points"]),
                repeat(',"effective_weight":'),
                _texts(components["effective_weight"]),
                repeat(',"contribution":'),
                _texts(components["contribution"]),
                present.tolist(),
            ),
        )
    )
    return _grouped(components["partner_id"].to_numpy(), pieces)


def terms_text(change: pd.DataFrame) -> dict[int, str]:
    """The explanation's terms array of each partner in ``change`` (``explain_change``'s frame)."""
    if change.empty:
        return {}
    pieces = [
        f'{{"term":"{term}","metric_key":{"null" if key is None else json.dumps(key)},"delta":{delta}}}'
        for term, key, delta in zip(
            change["term"].tolist(), change["metric_key"].tolist(), _texts(change["delta"]), strict=True
        )
    ]
    return _grouped(change["partner_id"].to_numpy(), pieces)


def _grouped(partner_ids: np.ndarray, pieces: list[str]) -> dict[int, str]:
    """JSON arrays of consecutive pieces that share a partner."""
    edges = np.flatnonzero(np.r_[True, partner_ids[1:] != partner_ids[:-1], True])
    return {
        int(partner_ids[start]): "[" + ",".join(pieces[start:end]) + "]"
        for start, end in zip(edges[:-1].tolist(), edges[1:].tolist(), strict=True)
    }


def explanation_text(*, previous_period: str, previous_total, previous_version, basis: str, terms: str) -> str:
    return (
        f'{{"previous_period":{json.dumps(previous_period)},'
        f'"previous_total":{"null" if previous_total is None else json.dumps(str(previous_total))},'
        f'"previous_version":{"null" if previous_version is None else int(previous_version)},'
        f'"basis":"{basis}","terms":{terms}}}'
    )


def insert_scores(rows: Sequence[Sequence]) -> None:
    """Insert score rows: tuples in ``COLUMNS`` order, JSON columns as text, numbers as Decimals."""
    if not rows:
        return
    if connection.vendor == "postgresql":
        _copy_insert(rows)
    else:
        _executemany(rows)


def _copy_value(value) -> str:
    """A value in COPY's text format."""
    if value is None:
        return "\\N"
    if value is True or value is False:
        return "t" if value else "f"
    if isinstance(value, datetime.datetime):
        return value.isoformat()
    text = str(value)
    if "\\" in text:  # JSON escapes; COPY would read them as its own
        text = text.replace("\\", "\\\\")
    return text


def _copy_insert(rows: Sequence[Sequence]) -> None:
    table = Score._meta.db_table
    columns = ", ".join(connection.ops.quote_name(column) for column in COLUMNS)
    # Tabs, newlines and carriage returns cannot occur: JSON escapes them, the other columns are keys.
    buffer = io.StringIO("".join("\t".join(map(_copy_value, row)) + "\n" for row in rows))
    with connection.cursor() as cursor:
        raw = cursor.cursor
        # The temporary table lives as long as the session; each batch empties it.
        raw.execute(f"CREATE TEMP TABLE IF NOT EXISTS score_batch AS SELECT {columns} FROM {table} WITH NO DATA")  # noqa: S608
        raw.execute("TRUNCATE score_batch")
        raw.copy_expert(f"COPY score_batch ({columns}) FROM STDIN", buffer)
        raw.execute(f"INSERT INTO {table} ({columns}) SELECT {columns} FROM score_batch")  # noqa: S608
        raw.execute("TRUNCATE score_batch")


def _executemany(rows: Sequence[Sequence]) -> None:
    fields = [field for field in Score._meta.concrete_fields if not field.primary_key]
    prepared = [
        tuple(
            value if field.column in JSON_COLUMNS or value is None else field.get_db_prep_save(value, connection)
            for field, value in zip(fields, row, strict=True)
        )
        for row in rows
    ]
    table = connection.ops.quote_name(Score._meta.db_table)
    columns = ", ".join(connection.ops.quote_name(column) for column in COLUMNS)
    placeholders = ", ".join(["%s"] * len(COLUMNS))
    with connection.cursor() as cursor:
        cursor.executemany(f"INSERT INTO {table} ({columns}) VALUES ({placeholders})", prepared)  # noqa: S608
