"""The worked example of docs/scoring.md, computed by the engine.

Inputs and expected numbers are read from the document's ``text example=...`` blocks, so the
method document and the engine cannot drift apart.
"""

from __future__ import annotations

import math
import re
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest

from scorecards.scoring import Rules, compute_period, explain_change, items_frame

DOC = Path(__file__).resolve().parents[2] / "docs" / "scoring.md"
BLOCK = re.compile(r"^```text example=(?P<name>\S+)\n(?P<body>.*?)^```", re.MULTILINE | re.DOTALL)


def doc_blocks() -> dict[str, list[dict[str, str]] | dict[str, str]]:
    blocks = {}
    for match in BLOCK.finditer(DOC.read_text(encoding="utf-8")):
        lines = [line.split() for line in match["body"].splitlines() if line.strip()]
        if match["name"] == "version":
            blocks["version"] = {key: value for key, value in lines}
        else:
            header, *rows = lines
            assert all(len(row) == len(header) for row in rows), f"ragged row in block {match['name']}"
            blocks[match["name"]] = [dict(zip(header, row, strict=True)) for row in rows]
    return blocks


BLOCKS = doc_blocks()


def number(token: str) -> float:
    return math.nan if token == "-" else float(token)


def same_number(value: float, token: str) -> bool:
    """The engine's value is exactly the decimal printed (both missing counts as the same)."""
    if token == "-":
        return math.isnan(value)
    return not math.isnan(value) and Decimal(repr(float(value))) == Decimal(token)


def example_rules() -> Rules:
    items = []
    for row in BLOCKS["items"]:
        items.append(
            {
                "item_id": int(row["item"]),
                "metric_key": row["metric"],
                "weight": float(row["weight"]),
                "applies_to": () if row["applies_to"] == "all" else tuple(row["applies_to"].split(",")),
                "normalization": row["normalization"],
                "segment_targets": {
                    segment: float(target)
                    for segment, target in (
                        pair.split(":") for pair in row["targets"].split(",") if row["targets"] != "-"
                    )
                },
                "rubric": row["rubric"],
                "floor": number(row["floor"]),
                "target": number(row["target"]),
                "cap": float(row["cap"]),
                "bands": tuple(
                    (float(at_least), float(points))
                    for at_least, points in (band.split(":") for band in row["bands"].split(",") if row["bands"] != "-")
                ),
                "direction": row["direction"],
            }
        )
    version = BLOCKS["version"]
    return Rules(
        items=items_frame(items),
        band_excellent=float(version["band_excellent"]),
        band_good=float(version["band_good"]),
        missing_data=version["missing_data"],
        min_completeness=float(version["min_completeness"]),
    )


def example_partners() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "partner_id": [int(row["partner"]) for row in BLOCKS["partners"]],
            "segment": [row["segment"] for row in BLOCKS["partners"]],
            "size": [number(row["size"]) for row in BLOCKS["partners"]],
        }
    )


def example_observations() -> pd.DataFrame:
    rows = []
    for row in BLOCKS["observations"]:
        for metric, token in row.items():
            if metric != "partner" and token != "-":
                rows.append({"partner_id": int(row["partner"]), "metric_key": metric, "value": float(token)})
    return pd.DataFrame(rows)


def next_quarter_observations() -> pd.DataFrame:
    """As told in the document: the same, except that partner 103 reports 26 hours of lead response."""
    late = pd.DataFrame([{"partner_id": 103, "metric_key": "lead_response_hours", "value": 26.0}])
    return pd.concat([example_observations(), late], ignore_index=True)


@pytest.fixture(scope="module")
def result():
    return compute_period(rules=example_rules(), partners=example_partners(), observations=example_observations())


def test_the_document_holds_every_block_of_the_example():
    assert set(BLOCKS) == {
        "version",
        "items",
        "partners",
        "observations",
        "components",
        "scores",
        "benchmarks",
        "next_quarter_change",
    }


def test_the_example_components_are_exactly_those_printed(result):
    expected = BLOCKS["components"]
    actual = result.components.to_dict("records")
    assert len(actual) == len(expected)
    for got, row in zip(actual, expected, strict=True):
        assert (got["partner_id"], got["item_id"], got["metric_key"]) == (
            int(row["partner"]),
            int(row["item"]),
            row["metric"],
        )
        for column in ("raw", "normalized", "points", "weight", "effective_weight", "contribution"):
            assert same_number(got[column], row[column]), (row["partner"], row["metric"], column, got[column])
        assert got["present"] == (row["present"] == "yes")


def test_the_example_scores_are_exactly_those_printed(result):
    expected = BLOCKS["scores"]
    actual = result.scores.to_dict("records")
    assert len(actual) == len(expected)
    for got, row in zip(actual, expected, strict=True):
        assert (got["partner_id"], got["segment"], got["rating"], got["rank"]) == (
            int(row["partner"]),
            row["segment"],
            row["rating"],
            int(row["rank"]),
        )
        for column in ("total", "completeness", "percentile"):
            assert same_number(got[column], row[column]), (row["partner"], column, got[column])


def test_the_example_totals_are_the_sums_of_the_printed_contributions():
    contributions: dict[str, Decimal] = {}
    for row in BLOCKS["components"]:
        contributions[row["partner"]] = contributions.get(row["partner"], Decimal(0)) + Decimal(row["contribution"])
    assert {row["partner"]: Decimal(row["total"]) for row in BLOCKS["scores"]} == contributions


def test_the_example_benchmarks_are_exactly_those_printed(result):
    expected = BLOCKS["benchmarks"]
    actual = result.benchmarks.to_dict("records")
    assert len(actual) == len(expected)
    for got, row in zip(actual, expected, strict=True):
        assert (got["segment"], got["metric_key"], got["partners"]) == (
            row["segment"],
            row["metric"],
            int(row["partners"]),
        )
        for column in ("p25", "median", "p75"):
            assert same_number(got[column], row[column]), (row["segment"], row["metric"], column, got[column])


def test_the_example_change_next_quarter_is_explained_as_printed(result):
    following = compute_period(
        rules=example_rules(), partners=example_partners(), observations=next_quarter_observations()
    )
    change = explain_change(previous=result, current=following)
    partners_shown = {int(row["partner"]) for row in BLOCKS["next_quarter_change"]}
    actual = change[change["partner_id"].isin(partners_shown)].to_dict("records")
    expected = BLOCKS["next_quarter_change"]
    assert len(actual) == len(expected)
    for got, row in zip(actual, expected, strict=True):
        assert (got["partner_id"], got["term"], got["metric_key"]) == (int(row["partner"]), row["term"], row["metric"])
        for column in ("delta", "before", "after"):
            assert same_number(got[column], row[column]), (row["metric"], column, got[column])

    totals = following.scores.set_index("partner_id")["total"]
    assert (totals[103], result.scores.set_index("partner_id")["total"][103]) == (46.0, 45.0)
    assert sum(Decimal(row["delta"]) for row in expected) == Decimal("1.000")
