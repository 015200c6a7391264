"""Every analytics figure against a plain Python computation over the same generated events,
on real MongoDB, for several sets and windows (rollups inside, raw events at the edges)."""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta

import pytest

from analytics import selectors
from analytics.rollups import period_start, severity_band
from analytics.windows import Filters, Window
from analytics.windows import pieces as window_pieces

pytestmark = pytest.mark.django_db


def amount(document) -> float | None:
    value = (document["payload"] or {}).get("amount")
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def within(documents, window: Window) -> list[dict]:
    return [d for d in documents if window.since <= d["timestamp"] < window.until]


def windows(now: datetime) -> list[Window]:
    return [
        Window.last(timedelta(hours=24), now),
        Window.last(timedelta(minutes=7), now),
        Window(now - timedelta(days=2, hours=5, minutes=3, seconds=7), now - timedelta(hours=3)),
        Window(period_start(now - timedelta(days=1), "1d"), period_start(now, "1d")),
    ]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_summary_matches_python(store_generated, seed):
    documents = store_generated(seed, 1500)
    now = datetime.now(tz=UTC)
    for window in windows(now):
        expected = within(documents, window)
        answer = selectors.summary(window)
        assert answer["total"] == len(expected)
        assert {row["key"]: row["count"] for row in answer["by_type"]} == Counter(
            d["type"] for d in expected
        )
        assert {row["key"]: row["count"] for row in answer["by_source"]} == Counter(
            d["source"] for d in expected
        )
        bands = Counter(severity_band(d["severity"]) for d in expected)
        assert {row["key"]: row["count"] for row in answer["by_severity"] if row["count"]} == bands
        errors = bands["error"] + bands["critical"]
        assert answer["errors"] == errors
        assert answer["error_share"] == pytest.approx(errors / len(expected) if expected else 0)
        amounts = [a for d in expected if (a := amount(d)) is not None]
        assert answer["sum"] == pytest.approx(sum(amounts))
        if amounts:
            assert answer["average"] == pytest.approx(sum(amounts) / len(amounts))
        else:
            assert answer["average"] is None


def test_summary_of_another_field_and_counts_are_ordered(store_generated, mongo_db):
    documents = store_generated(4, 300)
    window = Window.last(timedelta(days=3, minutes=1))
    answer = selectors.summary(window, field="code")
    codes = [
        float(d["payload"]["code"]) for d in documents if isinstance(d["payload"].get("code"), int)
    ]
    assert answer["field"] == "code"
    assert answer["sum"] == pytest.approx(sum(codes))
    assert answer["average"] == pytest.approx(sum(codes) / len(codes))
    counts = [row["count"] for row in answer["by_type"]]
    assert counts == sorted(counts, reverse=True)


@pytest.mark.parametrize("bucket", ["1m", "5m", "1h", "1d"])
def test_timeseries_matches_python(store_generated, bucket):
    documents = store_generated(5, 1200, span=timedelta(hours=30))
    now = datetime.now(tz=UTC)
    span = {"1m": timedelta(minutes=90), "5m": timedelta(hours=6)}.get(bucket, timedelta(hours=30))
    window = Window.last(span, now)
    for filters in [
        Filters(),
        Filters(types=("order.*",)),
        Filters(types=("user.login", "payment.failed"), source="/auth"),
        Filters(subject="alice"),
        Filters(query={"payload.amount": {"$gt": 1}}),
    ]:
        answer = selectors.timeseries(window, bucket, filters)
        widened = Window(answer["window"]["since"], answer["window"]["until"])
        assert widened.since <= window.since and widened.until >= window.until
        expected_counts: dict[datetime, int] = defaultdict(int)
        expected_sums: dict[datetime, float] = defaultdict(float)
        for d in within(documents, widened):
            if filters.types and not any(
                d["type"] == t or (t.endswith(".*") and d["type"].startswith(t[:-1]))
                for t in filters.types
            ):
                continue
            if filters.source and d["source"] != filters.source:
                continue
            if filters.subject and d["user_id"] != filters.subject:
                continue
            if filters.query:
                value = d["payload"].get("amount")
                if not (isinstance(value, int | float) and value > 1):
                    continue
            start = period_start(d["timestamp"], bucket)
            expected_counts[start] += 1
            expected_sums[start] += amount(d) or 0
        points = answer["points"]
        assert [p["start"] for p in points] == sorted(p["start"] for p in points)
        assert {p["start"]: p["count"] for p in points if p["count"]} == dict(expected_counts)
        for point in points:
            assert point["sum"] == pytest.approx(expected_sums.get(point["start"], 0.0))


@pytest.mark.parametrize("seed", [6, 14])
def test_top_errors_match_python(store_generated, seed):
    documents = store_generated(seed, 1500)
    for window in windows(datetime.now(tz=UTC)):
        groups: dict[tuple, list[datetime]] = defaultdict(list)
        for d in within(documents, window):
            if (d["severity"] or 0) >= 7:
                payload = d["payload"]
                code = payload.get("error_code", payload.get("code"))
                groups[(d["type"], d["source"], None if code is None else str(code))].append(
                    d["timestamp"]
                )
        answer = selectors.top_errors(window, limit=1000)
        assert {(r["type"], r["source"], r["code"]): r["count"] for r in answer} == {
            key: len(times) for key, times in groups.items()
        }
        for row in answer:
            times = groups[(row["type"], row["source"], row["code"])]
            assert row["first_seen"] == _ms(min(times)) and row["last_seen"] == _ms(max(times))
        assert [r["count"] for r in selectors.top_errors(window, limit=3)] == sorted(
            (len(t) for t in groups.values()), reverse=True
        )[:3]


def _ms(moment: datetime) -> datetime:
    """A time as MongoDB keeps it (milliseconds)."""
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def test_user_activity_matches_python(store_generated):
    documents = store_generated(7, 1000)
    window = Window.last(timedelta(hours=40))
    per_user: dict[str, list[dict]] = defaultdict(list)
    for d in within(documents, window):
        if d["user_id"] is not None:
            per_user[d["user_id"]].append(d)
    answer = selectors.user_activity(window, limit=100)
    assert {row["subject"]: row["count"] for row in answer} == {
        user: len(events) for user, events in per_user.items()
    }
    for row in answer:
        events = per_user[row["subject"]]
        assert {t["type"]: t["count"] for t in row["types"]} == Counter(e["type"] for e in events)
        assert row["first_seen"] == _ms(min(e["timestamp"] for e in events))
        assert row["last_seen"] == _ms(max(e["timestamp"] for e in events))
    top = selectors.user_activity(window, limit=1)
    assert top[0]["count"] == max(len(e) for e in per_user.values())
    one = selectors.user_activity(window, subject="bob")
    assert [row["subject"] for row in one] == ["bob"]
    assert one[0]["count"] == len(per_user["bob"])


@pytest.mark.parametrize("seed", [8, 9])
def test_funnel_matches_python(store_generated, seed):
    documents = store_generated(seed, 1500)
    window = Window.last(timedelta(hours=60))
    steps = ["user.login", "order.created", "order.paid", "order.shipped"]
    reached: dict[str, int] = defaultdict(int)
    ordered = sorted(within(documents, window), key=lambda d: d["timestamp"])
    for d in ordered:
        user = d["user_id"]
        if user is not None and reached[user] < len(steps) and d["type"] == steps[reached[user]]:
            reached[user] += 1
    answer = selectors.funnel(window, steps)
    expected = [sum(1 for n in reached.values() if n >= i) for i in range(1, len(steps) + 1)]
    assert [step["subjects"] for step in answer["steps"]] == expected
    assert answer["steps"][0]["conversion"] is None
    for before, step in zip(answer["steps"], answer["steps"][1:], strict=False):
        if before["subjects"]:
            assert step["conversion"] == pytest.approx(step["subjects"] / before["subjects"])
        else:
            assert step["conversion"] is None


def test_rollups_of_every_period_hold_every_event(store_generated, mongo_db):
    documents = store_generated(10, 400)
    window = Window.last(timedelta(days=3, minutes=1))
    assert selectors.summary(window)["total"] == len(documents)
    rolled = mongo_db["metrics"].aggregate(
        [
            {"$match": {"metric": "events", "period": "1d"}},
            {"$group": {"_id": None, "n": {"$sum": "$value"}}},
        ]
    )
    assert next(rolled)["n"] == len(documents)


def test_rebuild_recomputes_the_rollups(store_generated, mongo_db):
    from analytics.rollups import rollups_rebuild

    documents = store_generated(11, 300)
    window = Window.last(timedelta(days=3, minutes=1))
    expected = selectors.top_errors(window, limit=1000)
    mongo_db["metrics"].update_many({}, {"$inc": {"value": 5}})  # damaged
    now = datetime.now(tz=UTC)
    assert rollups_rebuild(now - timedelta(days=4), now) == len(documents)
    assert selectors.summary(window)["total"] == len(documents)
    assert selectors.top_errors(window, limit=1000) == expected


def test_the_main_aggregations_use_indexes(store_generated, mongo_db):
    store_generated(12, 300)
    window = Window.last(timedelta(hours=3))
    db = mongo_db
    plans = {
        "window": db.command(
            "explain",
            {"find": "events", "filter": {"timestamp": {"$gte": window.since}}},
            verbosity="queryPlanner",
        ),
        "errors": db.command(
            "explain",
            {
                "find": "events",
                "filter": {"severity": {"$gte": 7}, "timestamp": {"$gte": window.since}},
            },
            verbosity="queryPlanner",
        ),
        "user": db.command(
            "explain",
            {"find": "events", "filter": {"user_id": "bob", "timestamp": {"$gte": window.since}}},
            verbosity="queryPlanner",
        ),
        "rollups": db.command(
            "explain",
            {
                "find": "metrics",
                "filter": {
                    "metric": "events",
                    "$or": [{"period": "1h", "start": {"$gte": window.since}}],
                },
            },
            verbosity="queryPlanner",
        ),
        "retry of a batch": db.command(
            "explain",
            {"find": "events", "filter": {"event_id": {"$in": ["a", "b"]}}},
            verbosity="queryPlanner",
        ),
    }
    for name, plan in plans.items():
        assert "COLLSCAN" not in str(plan["queryPlanner"]["winningPlan"]), name
        assert "IXSCAN" in str(plan["queryPlanner"]["winningPlan"]), name


def test_window_pieces_cover_the_window_once():
    now = datetime(2026, 12, 2, 10, 17, 23, tzinfo=UTC)
    for since, until in [
        (now - timedelta(days=3, seconds=11), now),
        (now - timedelta(minutes=3), now),
        (now - timedelta(days=40), now - timedelta(days=1)),
        (datetime(2026, 12, 1, tzinfo=UTC), datetime(2026, 12, 2, tzinfo=UTC)),
    ]:
        pieces = window_pieces(Window(since, until), now)
        pieces.sort(key=lambda piece: piece[1])
        assert pieces[0][1] == since and pieces[-1][2] == until
        for (_, _, end), (_, start, _) in zip(pieces, pieces[1:], strict=False):
            assert end == start
        assert not any(p[1] > p[2] for p in pieces)
        assert math.isclose(
            sum((p[2] - p[1]).total_seconds() for p in pieces), (until - since).total_seconds()
        )


def test_the_rebuild_command(store_generated, mongo_db):
    from io import StringIO

    from django.core.management import call_command

    documents = store_generated(13, 50)
    mongo_db["metrics"].delete_many({})
    out = StringIO()
    call_command("rebuild_rollups", "--days", "5", stdout=out)
    assert f"from {len(documents)} stored events" in out.getvalue()
    assert selectors.summary(Window.last(timedelta(days=3, minutes=1)))["total"] == len(documents)
