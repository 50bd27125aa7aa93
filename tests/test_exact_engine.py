"""The exact engine against brute-force enumeration, and the meaning of evidence."""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
import math
import random
from collections.abc import Mapping

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import stats

from scenariocast.engines.exact import ExactModel, forecast_exact
from scenariocast.errors import EvidenceConflictError, QueryError
from scenariocast.evidence.likelihood import log_likelihood, logsumexp
from scenariocast.testing import brute_force, random_readings, random_tree, tree_from_dict
from tests.conftest import FAR_FUTURE, reading

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _close_nodes(
    a: Mapping[str, Mapping[str, float]], b: Mapping[str, Mapping[str, float]], tol: float
) -> None:
    assert a.keys() == b.keys()
    for n in a:
        for s in a[n]:
            assert a[n][s] == pytest.approx(b[n][s], abs=tol), (n, s)


@SETTINGS
@given(
    seed=st.integers(0, 10_000),
    n_nodes=st.integers(1, 6),
    n_readings=st.integers(0, 15),
)
def test_equals_brute_force_enumeration(seed: int, n_nodes: int, n_readings: int) -> None:
    tree = random_tree(seed, n_nodes)
    readings = random_readings(tree, n_readings, seed)
    result = forecast_exact(tree, readings, as_of=FAR_FUTURE)
    ref = brute_force(tree, readings)
    _close_nodes(result.nodes, ref.nodes, 1e-9)
    assert result.log_evidence == pytest.approx(ref.log_evidence, abs=1e-9)
    k = len(result.top_scenarios)
    assert k == min(5, len(ref.scenarios))
    for got, (_, p) in zip(result.top_scenarios, ref.scenarios[:k], strict=True):
        assert got.probability == pytest.approx(p, abs=1e-9)
    # the k-th best probability matches, and every scenario returned has its brute-force value
    lookup = {tuple(s.values()): p for s, p in ref.scenarios}
    for got in result.top_scenarios:
        assert lookup[tuple(got.states.values())] == pytest.approx(got.probability, abs=1e-9)


@SETTINGS
@given(seed=st.integers(0, 10_000), n_readings=st.integers(0, 12))
def test_posteriors_sum_to_one(seed: int, n_readings: int) -> None:
    tree = random_tree(seed, 5)
    result = forecast_exact(tree, random_readings(tree, n_readings, seed), as_of=FAR_FUTURE)
    for states in result.nodes.values():
        assert math.fsum(states.values()) == pytest.approx(1.0, abs=1e-12)
        assert all(0.0 <= p <= 1.0 for p in states.values())
    assert sum(s.probability for s in result.top_scenarios) <= 1.0 + 1e-12


@SETTINGS
@given(seed=st.integers(0, 10_000), n_readings=st.integers(2, 12))
def test_order_of_readings_does_not_matter(seed: int, n_readings: int) -> None:
    tree = random_tree(seed, 5)
    readings = random_readings(tree, n_readings, seed)
    shuffled = readings[:]
    random.Random(seed).shuffle(shuffled)
    a = forecast_exact(tree, readings, as_of=FAR_FUTURE)
    b = forecast_exact(tree, shuffled, as_of=FAR_FUTURE)
    _close_nodes(a.nodes, b.nodes, 1e-12)
    assert a.log_evidence == pytest.approx(b.log_evidence, abs=1e-9)


@SETTINGS
@given(seed=st.integers(0, 10_000), n_readings=st.integers(1, 10))
def test_one_reading_at_a_time_equals_all_at_once(seed: int, n_readings: int) -> None:
    """Sequential Bayes on the enumerated joint: each step multiplies by one reading's
    likelihood and renormalises; after k steps it equals the engine given the first k.

    Each reading is on its own day, so each is a report of its own (readings of one report
    share one genuine-or-not event, checked against enumeration elsewhere)."""
    tree = random_tree(seed, 4)
    # Sequential Bayes per reading describes readings that each are a report of their own and
    # each count: readings of one source on one date would form one report (genuine or not as a
    # whole), and a reading superseded, repeated or linked would count in a prefix but not in
    # the whole. So: each reading its own report id, and only the readings that count in the
    # whole (at most one per combine group, so none drops out of a prefix either).
    readings = [
        dataclasses.replace(r, report=f"own-{r.id}")
        for r in random_readings(tree, n_readings, seed)
    ]
    whole = ExactModel(tree).forecast(readings, as_of=FAR_FUTURE).evidence.observations
    counted = {o.reading.id for o in whole}
    readings = [r for r in readings if r.id in counted]
    names = list(tree.nodes)
    configs = list(itertools.product(*(range(tree.nodes[n].card) for n in names)))
    idx = {n: i for i, n in enumerate(names)}
    prior = np.array(
        [
            math.prod(
                float(tree.nodes[n].cpt[(*(c[idx[p]] for p in tree.nodes[n].parents), c[idx[n]])])
                for n in names
            )
            for c in configs
        ]
    )
    current = prior.copy()
    model = ExactModel(tree)
    ordered = sorted(readings, key=lambda r: (r.observed.end, r.id))
    for k, r in enumerate(ordered, start=1):
        ind = tree.indicators[r.indicator]
        obs = model.forecast([r], as_of=FAR_FUTURE).evidence.observations[0]
        table = np.exp(log_likelihood(ind, np.array([obs.value]))[0])
        per_config = np.array([table[tuple(c[idx[n]] for n in ind.scope)] for c in configs])
        q = float(per_config @ prior)
        current = current * (obs.reliability * per_config + (1 - obs.reliability) * q)
        current = current / current.sum()
        engine = model.forecast(ordered[:k], as_of=FAR_FUTURE)
        for n in names:
            for j, s in enumerate(tree.nodes[n].states):
                expected = current[[c[idx[n]] == j for c in configs]].sum()
                assert engine.nodes[n][s] == pytest.approx(expected, abs=1e-9)


@SETTINGS
@given(seed=st.integers(0, 10_000), n_readings=st.integers(0, 8))
def test_given_equals_brute_force_conditioning(seed: int, n_readings: int) -> None:
    tree = random_tree(seed, 5)
    node = list(tree.nodes)[-1]
    state = tree.nodes[node].states[0]
    readings = random_readings(tree, n_readings, seed)
    result = forecast_exact(tree, readings, given={node: state}, as_of=FAR_FUTURE)
    ref = brute_force(tree, readings, given={node: state})
    _close_nodes(result.nodes, ref.nodes, 1e-9)
    assert result.nodes[node][state] == pytest.approx(1.0)
    assert result.log_evidence == pytest.approx(ref.log_evidence, abs=1e-9)


def test_larger_tree_matches_brute_force() -> None:
    """A denser tree (10 nodes, 3 parents, indicators over 3 nodes) exercises larger cliques."""
    tree = random_tree(7, 10, max_parents=3, n_indicators=8, max_indicator_nodes=3)
    readings = random_readings(tree, 40, 7)
    result = forecast_exact(tree, readings, as_of=FAR_FUTURE)
    ref = brute_force(tree, readings)
    _close_nodes(result.nodes, ref.nodes, 1e-9)
    assert result.log_evidence == pytest.approx(ref.log_evidence, abs=1e-9)


def test_forty_node_tree_stays_normalised() -> None:
    tree = random_tree(11, 40, n_indicators=20)
    result = forecast_exact(tree, random_readings(tree, 300, 11), as_of=FAR_FUTURE)
    assert all(math.fsum(s.values()) == pytest.approx(1.0) for s in result.nodes.values())
    assert len(result.top_scenarios) == 5
    probs = [s.probability for s in result.top_scenarios]
    assert probs == sorted(probs, reverse=True)


# -- likelihoods ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "params", "x", "reference"),
    [
        ("normal", {"mu": 1.0, "sigma": 2.0}, 0.3, stats.norm(1.0, 2.0).logpdf(0.3)),
        (
            "lognormal",
            {"mu": 0.5, "sigma": 0.7},
            2.5,
            stats.lognorm(0.7, scale=math.exp(0.5)).logpdf(2.5),
        ),
        (
            "student_t",
            {"mu": -1.0, "sigma": 0.5, "nu": 3.0},
            0.4,
            stats.t(3.0, -1.0, 0.5).logpdf(0.4),
        ),
        ("count", {"rate": 2.5}, 4.0, stats.poisson(2.5).logpmf(4)),
        ("binary", {"p": 0.3}, 1.0, math.log(0.3)),
        ("binary", {"p": 0.3}, 0.0, math.log(0.7)),
    ],
)
def test_likelihoods_match_scipy(
    kind: str, params: dict[str, float], x: float, reference: float
) -> None:
    spec = {
        "nodes": {"a": {"states": ["x", "y"], "probabilities": {"x": 0.5, "y": 0.5}}},
        "indicators": {
            "i": {
                "kind": kind,
                "depends_on": ["a"],
                "params": [{"when": {"a": s}, "then": params} for s in ("x", "y")],
            }
        },
    }
    ind = tree_from_dict(spec).indicators["i"]
    got = log_likelihood(ind, np.array([x]))
    assert got.shape == (1, 2)
    assert got[0, 0] == pytest.approx(reference, rel=1e-12)


def test_logsumexp_handles_minus_infinity() -> None:
    a = np.array([-np.inf, -np.inf])
    assert logsumexp(a) == -np.inf
    b = np.array([-1000.0, -1000.0])
    assert float(logsumexp(b)) == pytest.approx(-1000.0 + math.log(2.0))


# -- what evidence means -------------------------------------------------------------------


def test_reliability_zero_changes_nothing_and_one_is_plain_bayes(example_tree) -> None:  # type: ignore[no-untyped-def]
    spec = example_tree.spec.model_dump(mode="json", exclude_unset=True)
    spec["sources"] = {"zero": {"reliability": 0.0}, "full": {"reliability": 1.0}}
    tree = tree_from_dict(spec)
    prior = forecast_exact(tree, [], as_of=FAR_FUTURE)
    none = forecast_exact(
        tree, [reading(1, "distribution_report", "yes", source="zero")], as_of=FAR_FUTURE
    )
    _close_nodes(none.nodes, prior.nodes, 1e-12)
    full = forecast_exact(
        tree, [reading(1, "distribution_report", "yes", source="full")], as_of=FAR_FUTURE
    )
    # plain Bayes on the rationing node: P(s | yes) is proportional to P(s) p(yes | s)
    p_yes = {"none": 0.05, "partial": 0.5, "broad": 0.9}
    z = sum(prior.nodes["rationing"][s] * p_yes[s] for s in p_yes)
    for s, p in p_yes.items():
        assert full.nodes["rationing"][s] == pytest.approx(prior.nodes["rationing"][s] * p / z)


def test_partial_reliability_moves_less_than_full(example_tree) -> None:  # type: ignore[no-untyped-def]
    prior = (
        forecast_exact(example_tree, [], as_of=FAR_FUTURE).outcomes["rationing_returns"].probability
    )
    wire = forecast_exact(
        example_tree, [reading(1, "distribution_report", "yes", source="wire")], as_of=FAR_FUTURE
    )
    rumour = forecast_exact(
        example_tree, [reading(1, "distribution_report", "yes", source="rumour")], as_of=FAR_FUTURE
    )
    p_wire = wire.outcomes["rationing_returns"].probability
    p_rumour = rumour.outcomes["rationing_returns"].probability
    assert prior < p_rumour < p_wire


def test_same_price_fifty_times_moves_no_more_than_once(example_tree) -> None:  # type: ignore[no-untyped-def]
    one = [reading(1, "rice_price", "12000", source="market_survey", location="Pyongyang")]
    fifty = [
        reading(k, "rice_price", "12000", source="market_survey", location="Pyongyang")
        for k in range(1, 51)
    ]
    as_of = dt.date(2026, 3, 15)
    a = forecast_exact(example_tree, one, as_of=as_of)
    b = forecast_exact(example_tree, fifty, as_of=as_of)
    _close_nodes(a.nodes, b.nodes, 1e-12)
    assert b.n_observations == 1
    assert len(b.evidence.excluded) == 49


def test_repeated_event_entries_count_once_under_rule_all(example_tree) -> None:  # type: ignore[no-untyped-def]
    one = [reading(1, "distribution_report", "yes", on="2026-04")]
    again = [reading(k, "distribution_report", "yes", on="2026-04") for k in range(1, 21)]
    a = forecast_exact(example_tree, one, as_of=FAR_FUTURE)
    b = forecast_exact(example_tree, again, as_of=FAR_FUTURE)
    _close_nodes(a.nodes, b.nodes, 1e-12)


def test_latest_reading_per_location_supersedes_older(example_tree) -> None:  # type: ignore[no-untyped-def]
    old = reading(
        1, "rice_price", "5000", on="2026-01-10", source="market_survey", location="Pyongyang"
    )
    new = reading(
        2, "rice_price", "14000", on="2026-03-10", source="market_survey", location="Pyongyang"
    )
    both = forecast_exact(example_tree, [old, new], as_of=dt.date(2026, 4, 1))
    only_new = forecast_exact(example_tree, [new], as_of=dt.date(2026, 4, 1))
    _close_nodes(both.nodes, only_new.nodes, 1e-12)
    (excluded,) = both.evidence.excluded
    assert excluded.reading.id == 1 and "superseded by #2" in excluded.reason
    # as of a day before the new reading, the old one is what counts
    earlier = forecast_exact(example_tree, [old, new], as_of=dt.date(2026, 2, 1))
    assert [o.reading.id for o in earlier.evidence.observations] == [1]


def test_window_counts_back_from_the_as_of_date(example_tree) -> None:  # type: ignore[no-untyped-def]
    stale = reading(
        1, "rice_price", "5000", on="2025-06-01", source="market_survey", location="Hyesan"
    )
    fresh = reading(
        2, "rice_price", "14000", on="2026-03-10", source="market_survey", location="Pyongyang"
    )
    result = forecast_exact(example_tree, [stale, fresh], as_of=dt.date(2026, 4, 1))
    assert [o.reading.id for o in result.evidence.observations] == [2]
    (excluded,) = result.evidence.excluded
    assert excluded.kind == "outside_window"
    assert "older than 90 days before the as-of date (2026-04-01)" in excluded.reason
    # when nothing newer arrives, the newest reading stops counting too: the clock alone does
    # not keep old evidence alive, and the forecast returns to the prior
    later = forecast_exact(example_tree, [stale, fresh], as_of=dt.date(2026, 11, 1))
    assert later.evidence.observations == ()
    assert {e.kind for e in later.evidence.excluded} == {"outside_window"}
    prior = forecast_exact(example_tree, [], as_of=dt.date(2026, 11, 1))
    _close_nodes(later.nodes, prior.nodes, 1e-12)
    assert [s.indicator for s in later.stale] == ["rice_price"]
    assert later.stale[0].newest == dt.date(2026, 3, 10) and not later.stale[0].counted


def test_linked_reports_of_one_event_count_once(example_tree) -> None:  # type: ignore[no-untyped-def]
    first = reading(1, "crackdowns", "2", on="2026-05", source="rumour")
    second = reading(2, "crackdowns", "2", on="2026-05", source="wire", links=1)
    linked = forecast_exact(example_tree, [first, second], as_of=FAR_FUTURE)
    alone = forecast_exact(example_tree, [second], as_of=FAR_FUTURE)
    _close_nodes(linked.nodes, alone.nodes, 1e-12)  # counted once, as the more reliable source
    assert linked.evidence.observations[0].ids == (2, 1)
    unlinked = forecast_exact(
        example_tree,
        [first, reading(2, "crackdowns", "2", on="2026-05", source="wire")],
        as_of=FAR_FUTURE,
    )
    assert unlinked.n_observations == 2


def test_retracted_and_future_readings_do_not_count(example_tree) -> None:  # type: ignore[no-untyped-def]
    rs = [
        reading(1, "distribution_report", "yes", retracted=True),
        reading(2, "distribution_report", "yes", on="2026-12-01"),
        reading(3, "unknown_indicator", "1"),
        reading(4, "distribution_report", "yes", source="no_such_source"),
    ]
    result = forecast_exact(example_tree, rs, as_of=dt.date(2026, 11, 1))
    assert result.n_observations == 0
    reasons = [e.reason for e in result.evidence.excluded]
    assert reasons[0].startswith("retracted")
    assert "after the as-of date" in reasons[1]
    assert "no indicator 'unknown_indicator'" in reasons[2]
    assert "does not define source 'no_such_source'" in reasons[3]


def _certain_tree() -> dict[str, object]:
    return {
        "sources": {"sure": {"reliability": 1.0}, "unsure": {"reliability": 0.9}},
        "nodes": {"a": {"states": ["x", "y"], "probabilities": {"x": 0.5, "y": 0.5}}},
        "indicators": {
            "sign": {
                "kind": "binary",
                "depends_on": ["a"],
                "params": [
                    {"when": {"a": "x"}, "then": {"p": 1.0}},
                    {"when": {"a": "y"}, "then": {"p": 0.0}},
                ],
            }
        },
    }


def test_impossible_evidence_is_an_error_naming_readings_not_nan() -> None:
    tree = tree_from_dict(_certain_tree())
    yes = reading(7, "sign", "yes", on="2026-01-01", source="sure")
    no = reading(8, "sign", "no", on="2026-01-02", source="sure")
    with pytest.raises(EvidenceConflictError, match=r"#7.*#8|#8.*#7"):
        forecast_exact(tree, [yes, no], as_of=FAR_FUTURE)
    # with a source below full reliability the same readings are merely in tension
    unsure = reading(8, "sign", "no", on="2026-01-02", source="unsure")
    result = forecast_exact(tree, [yes, unsure], as_of=FAR_FUTURE)
    assert result.nodes["a"]["x"] == pytest.approx(1.0)
    assert not any(math.isnan(p) for p in result.nodes["a"].values())


def test_evidence_against_an_assumption_is_an_error() -> None:
    tree = tree_from_dict(_certain_tree())
    with pytest.raises(EvidenceConflictError, match="assumptions a=y"):
        forecast_exact(
            tree, [reading(1, "sign", "yes", source="sure")], given={"a": "y"}, as_of=FAR_FUTURE
        )


def test_unknown_given_node_or_state_has_a_hint(example_tree) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(QueryError, match="did you mean 'harvest'"):
        forecast_exact(example_tree, [], given={"harvst": "short"})
    with pytest.raises(QueryError, match="did you mean 'short'"):
        forecast_exact(example_tree, [], given={"harvest": "shrt"})


def test_hundred_thousand_readings_do_not_underflow() -> None:
    tree = tree_from_dict(
        {
            "sources": {"s": {"reliability": 0.9}},
            "nodes": {"a": {"states": ["x", "y"], "probabilities": {"x": 0.5, "y": 0.5}}},
            "indicators": {
                "sign": {
                    "kind": "binary",
                    "depends_on": ["a"],
                    "combine": {"rule": "all"},
                    "params": [
                        {"when": {"a": "x"}, "then": {"p": 0.6}},
                        {"when": {"a": "y"}, "then": {"p": 0.4}},
                    ],
                }
            },
        }
    )
    start = dt.date(1800, 1, 1)
    rs = [
        reading(
            k,
            "sign",
            "yes" if k % 3 else "no",
            on=(start + dt.timedelta(days=k)).isoformat(),
            source="s",
        )
        for k in range(100_000)
    ]
    result = forecast_exact(tree, rs, as_of=FAR_FUTURE)
    assert result.n_observations == 100_000
    assert math.isfinite(result.log_evidence) and result.log_evidence < -1000
    assert result.nodes["a"]["x"] == pytest.approx(1.0)
    assert all(math.isfinite(p) for p in result.nodes["a"].values())


def test_max_age_drops_readings_older_than_the_as_of_date_allows(example_tree) -> None:  # type: ignore[no-untyped-def]
    spec = example_tree.spec.model_dump(mode="json", exclude_unset=True)
    spec["indicators"]["distribution_report"]["combine"] = {"rule": "all", "max_age_days": 365}
    tree = tree_from_dict(spec)
    old = reading(1, "distribution_report", "yes", on="2024-06")
    recent = reading(2, "distribution_report", "yes", on="2026-02")
    result = forecast_exact(tree, [old, recent], as_of=dt.date(2026, 6, 1))
    assert [o.reading.id for o in result.evidence.observations] == [2]
    assert "older than 365 days before the as-of date" in result.evidence.excluded[0].reason
    # as of mid-2025 the 2024 report is recent enough and the 2026 one lies in the future
    earlier = forecast_exact(tree, [old, recent], as_of=dt.date(2025, 3, 1))
    assert [o.reading.id for o in earlier.evidence.observations] == [1]


@pytest.mark.parametrize(
    ("shape", "axis"),
    [((7,), None), ((3, 4, 5), 0), ((3, 4, 5), (0, 2)), ((3, 4, 5), -1), ((2, 3, 4, 5), (1, 2))],
)
def test_logsumexp_agrees_with_scipy_on_tables_with_impossible_and_tiny_terms(
    shape: tuple[int, ...], axis: int | tuple[int, ...] | None
) -> None:
    """The engine's logsumexp (contiguous blocks, terms below e^-700 of the largest clamped)."""
    from scipy.special import logsumexp as reference

    from scenariocast.evidence.likelihood import logsumexp

    rng = np.random.default_rng(len(shape))
    a = rng.normal(0, 400, size=shape)  # terms far below their column's largest
    a[rng.random(shape) < 0.3] = -np.inf
    a[(0,) * len(shape)] = -np.inf
    if len(shape) > 1:
        a[..., 0] = -np.inf  # columns with no possible term at all
    want = reference(a, axis=axis)
    got = logsumexp(a, axis=axis)
    assert np.shape(got) == np.shape(want)
    assert np.array_equal(np.isneginf(got), np.isneginf(want))
    finite = np.isfinite(want)
    assert np.allclose(np.asarray(got)[finite], np.asarray(want)[finite], rtol=1e-14, atol=1e-12)
