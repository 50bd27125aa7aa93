"""What to watch next: the value of a reading, against brute force and Monte Carlo.

The reference for a discrete reading enumerates every report it could be (every sequence of
answers, not the counts the library reduces them to), adds each to the readings, and updates by
brute force (:func:`scenariocast.testing.brute_force`): the report's probability is the ratio of
the evidence with and without it, and the outcome's probability after it is brute force's.
The reference for a continuous reading draws readings by importance sampling, with the
predictive density and the probabilities after each draw from the exact engine's forecasts.
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
from collections.abc import Sequence

import numpy as np
import pytest
import yaml

from scenariocast.analysis.watch import (
    entropy_bits,
    reading_step,
    t_report_log_density,
    usual_source,
    watch,
)
from scenariocast.engines.exact import ExactModel
from scenariocast.errors import QueryError
from scenariocast.evidence.likelihood import report_log_likelihood
from scenariocast.evidence.readings import ObservedDate, Reading
from scenariocast.spec.tree import CompiledIndicator, Tree
from scenariocast.testing import (
    brute_force,
    random_dynamic_tree,
    random_readings,
    random_tree,
    tree_from_dict,
)
from tests.conftest import EXAMPLE, reading


def _day(tree: Tree, as_of: dt.date) -> dt.date:
    """A day in the step a new reading is taken in (the as-of date itself for a static tree)."""
    step = reading_step(tree, as_of)
    if step is None or tree.steps is None:
        return as_of
    return tree.steps.first_day(step) + dt.timedelta(days=2)


def _new(
    tree: Tree, indicator: str, values: Sequence[str], source: str, day: dt.date, start: int
) -> list[Reading]:
    """One report: ``values`` of ``indicator`` from ``source`` on ``day``, one per city."""
    return [
        Reading(
            id=start + k,
            indicator=indicator,
            value=v,
            observed=ObservedDate.parse(day.isoformat()),
            source=source,
            location=f"city{k}" if len(values) > 1 else None,
        )
        for k, v in enumerate(values)
    ]


def _answers(ind: CompiledIndicator) -> list[str]:
    kind = ind.spec.kind
    if kind == "binary":
        return ["yes", "no"]
    if kind == "categorical":
        return list(ind.spec.categories or [])
    top = float(np.max(ind.params["rate"]))
    return [str(k) for k in range(int(top + 12 * math.sqrt(top) + 40))]


def brute_gain(
    tree: Tree,
    readings: Sequence[Reading],
    as_of: dt.date,
    indicator: str,
    source: str,
    n: int,
    chance_tree: Tree | None = None,
) -> dict[str, tuple[float, float, float]]:
    """(gain, expected change, largest change) of each outcome, by enumeration.

    Each report's chance is the ratio of the evidence with and without it in ``chance_tree``
    (default ``tree``): a tree where it adds to the readings rather than replacing one.
    """
    base = brute_force(tree, readings, as_of=as_of)
    base_chance = brute_force(chance_tree or tree, readings, as_of=as_of)
    day = _day(tree, as_of)
    ind = tree.indicators[indicator]
    out_p: list[dict[str, float]] = []
    chances: list[float] = []
    for seq in itertools.product(_answers(ind), repeat=n):
        new = _new(tree, indicator, seq, source, day, start=10_000)
        bf = brute_force(tree, [*readings, *new], as_of=day)
        added = (
            bf if chance_tree is None else brute_force(chance_tree, [*readings, *new], as_of=day)
        )
        chance = math.exp(added.log_evidence - base_chance.log_evidence)
        if chance < 1e-300:
            continue
        chances.append(chance)
        out_p.append(bf.outcomes)
    total = math.fsum(chances)
    assert total == pytest.approx(1.0, abs=1e-12)
    result = {}
    for o, p0 in base.outcomes.items():
        h_after = math.fsum(c * entropy_bits(p[o]) for c, p in zip(chances, out_p, strict=True))
        change = math.fsum(c * abs(p[o] - p0) for c, p in zip(chances, out_p, strict=True))
        largest = max(abs(p[o] - p0) for p in out_p)
        result[o] = (entropy_bits(p0) - h_after, change, largest)
    return result


def _discrete_indicators(tree: Tree) -> list[str]:
    return [
        n for n, i in tree.indicators.items() if i.spec.kind in ("binary", "categorical", "count")
    ]


@pytest.mark.parametrize("seed", range(6))
def test_discrete_gain_equals_brute_force_on_random_static_trees(seed: int) -> None:
    tree = random_tree(seed, 5, n_indicators=6, max_indicator_nodes=2)
    readings = random_readings(tree, 8, seed)
    as_of = dt.date(2026, 12, 31)
    model = ExactModel(tree)
    for name in _discrete_indicators(tree):
        for source in tree.sources:
            result = watch(model, readings, as_of=as_of, source=source, indicators=[name])
            (cand,) = result.indicators
            ref = brute_gain(tree, readings, as_of, name, source, 1)
            for o, (gain, change, largest) in ref.items():
                v = cand.values[o]
                assert v.gain == pytest.approx(gain, abs=1e-9), (name, source, o)
                assert v.expected_change == pytest.approx(change, abs=1e-9)
                if tree.indicators[name].spec.kind == "count":  # counts run further out here
                    assert v.largest_change >= largest - 1e-9
                else:
                    assert v.largest_change == pytest.approx(largest, abs=1e-9)


@pytest.mark.parametrize("seed", range(4))
def test_discrete_gain_equals_brute_force_on_random_dynamic_trees(seed: int) -> None:
    tree = random_dynamic_tree(seed, 3, n_steps=3, n_indicators=6)
    assert tree.steps is not None
    as_of = tree.steps.first_day(1) + dt.timedelta(days=9)
    readings = [r for r in random_readings(tree, 10, seed) if r.observed.end <= as_of]
    model = ExactModel(tree)
    for name in _discrete_indicators(tree):
        if tree.indicators[name].spec.kind == "count":  # counts: on the static trees above
            continue
        source = list(tree.sources)[seed % len(tree.sources)]
        (cand,) = watch(model, readings, as_of=as_of, source=source, indicators=[name]).indicators
        ref = brute_gain(tree, readings, as_of, name, source, 1)
        for o, (gain, change, _) in ref.items():
            assert cand.values[o].gain == pytest.approx(gain, abs=1e-9), (name, o)
            assert cand.values[o].expected_change == pytest.approx(change, abs=1e-9)


@pytest.mark.parametrize("seed", range(3))
def test_a_report_of_two_readings_equals_brute_force_over_every_pair(seed: int) -> None:
    """Two answers in one report: every ordered pair enumerated, against the library's counts."""
    tree = random_dynamic_tree(seed + 10, 3, n_steps=3, n_indicators=6)
    assert tree.steps is not None
    as_of = tree.steps.first_day(0) + dt.timedelta(days=20)
    readings = [r for r in random_readings(tree, 8, seed) if r.observed.end <= as_of]
    model = ExactModel(tree)
    for name, ind in tree.indicators.items():
        if ind.spec.kind not in ("binary", "categorical"):
            continue
        source = "src1"  # reliability 0.8
        (cand,) = watch(
            model, readings, as_of=as_of, source=source, indicators=[name], readings_per_report=2
        ).indicators
        ref = brute_gain(tree, readings, as_of, name, source, 2)
        for o, (gain, change, _) in ref.items():
            assert cand.values[o].gain == pytest.approx(gain, abs=1e-9), (name, o)
            assert cand.values[o].expected_change == pytest.approx(change, abs=1e-9)


def test_a_reading_that_replaces_a_counted_one_is_worth_its_net_effect() -> None:
    """market_mood counts the latest reading per source: a new one supersedes the old."""
    spec = yaml.safe_load(EXAMPLE.read_text())
    spec["indicators"]["market_mood"] = {
        "kind": "categorical",
        "categories": ["calm", "tense", "panic"],
        "depends_on": ["harvest"],
        "combine": {"rule": "latest", "per": ["source"]},
        "params": [
            {"when": {"harvest": "adequate"}, "then": {"calm": 0.7, "tense": 0.25, "panic": 0.05}},
            {"when": {"harvest": "short"}, "then": {"calm": 0.2, "tense": 0.5, "panic": 0.3}},
        ],
    }
    tree = tree_from_dict(spec)
    readings = [
        reading(1, "market_mood", "panic", on="2026-03-01", source="wire"),
        reading(2, "distribution_report", "yes", on="2026-03-02", source="wire"),
    ]
    as_of = dt.date(2026, 4, 1)
    model = ExactModel(tree)
    (cand,) = watch(
        model, readings, as_of=as_of, source="wire", indicators=["market_mood"]
    ).indicators
    assert cand.replaces == (1,)
    spec["indicators"]["market_mood"]["combine"] = {"rule": "all"}
    adding = tree_from_dict(spec)  # the same evidence, where a new reading adds to the old
    ref = brute_gain(tree, readings, as_of, "market_mood", "wire", 1, chance_tree=adding)
    for o, (gain, change, largest) in ref.items():
        assert cand.values[o].gain == pytest.approx(gain, abs=1e-9)
        assert cand.values[o].expected_change == pytest.approx(change, abs=1e-9)
        assert cand.values[o].largest_change == pytest.approx(largest, abs=1e-9)
    # from another source it adds to the evidence instead
    (other,) = watch(
        model, readings, as_of=as_of, source="rumour", indicators=["market_mood"]
    ).indicators
    assert other.replaces == ()
    ref = brute_gain(tree, readings, as_of, "market_mood", "rumour", 1)
    for o, (gain, _, _) in ref.items():
        assert other.values[o].gain == pytest.approx(gain, abs=1e-9)


def _mvt_logpdf(x: np.ndarray, mean: np.ndarray, cov: np.ndarray, df: float) -> float:
    d = len(x)
    diff = x - mean
    _, log_det = np.linalg.slogdet(cov)
    maha = float(diff @ np.linalg.solve(cov, diff))
    return (
        math.lgamma((df + d) / 2)
        - math.lgamma(df / 2)
        - 0.5 * d * math.log(df * math.pi)
        - 0.5 * log_det
        - 0.5 * (df + d) * math.log1p(maha / df)
    )


def _importance_reference(
    tree: Tree,
    model: ExactModel,
    readings: Sequence[Reading],
    as_of: dt.date,
    indicator: str,
    source: str,
    n: int,
    draws: int,
    rng: np.random.Generator,
) -> dict[str, tuple[float, float]]:
    """The gain by importance sampling, with the engine's predictive density.

    Reports are drawn from an equal mixture over the indicator's rows of multivariate Student-t
    distributions (3 degrees of freedom, wider than any row's readings, on the scale the
    indicator reads); each draw's weight is the engine's predictive density of the report (the
    ratio of the evidence with and without it) over the proposal's, and the probabilities after
    it are the engine's forecast. Returns each outcome's gain and its standard error.
    """
    ind = tree.indicators[indicator]
    kind = ind.spec.kind
    base = model.forecast(readings, as_of=as_of, top=0)
    day = _day(tree, as_of)
    mus, sigmas = ind.params["mu"].ravel(), ind.params["sigma"].ravel()
    covs = [s**2 * (1.5**2 * np.ones((n, n)) + np.eye(n)) for s in sigmas]
    df = 3.0
    h_vals: dict[str, list[float]] = {o: [] for o in tree.outcomes}
    weights: list[float] = []
    for _ in range(draws):
        k = int(rng.integers(len(mus)))
        chol = np.linalg.cholesky(covs[k])
        x = mus[k] + chol @ rng.standard_normal(n) / math.sqrt(rng.chisquare(df) / df)
        log_g = float(
            np.logaddexp.reduce(
                [_mvt_logpdf(x, np.full(n, m), c, df) for m, c in zip(mus, covs, strict=True)]
            )
        ) - math.log(len(mus))
        values = np.exp(x) if kind == "lognormal" else x
        new = _new(tree, indicator, [repr(float(v)) for v in values], source, day, start=10_000)
        after = model.forecast([*readings, *new], as_of=day, top=0)
        log_m = after.log_evidence - base.log_evidence
        if kind == "lognormal":  # the engine's density is of the value as reported
            log_m += float(np.sum(x))
        weights.append(math.exp(log_m - log_g))
        for o in tree.outcomes:
            h_vals[o].append(entropy_bits(after.outcomes[o].probability))
    w = np.array(weights)
    assert np.mean(w) == pytest.approx(1.0, rel=0.1)  # the predictive density integrates to 1
    out = {}
    for o in tree.outcomes:
        h0 = entropy_bits(base.outcomes[o].probability)
        h = np.array(h_vals[o])
        est = float(np.sum(w * h) / np.sum(w))
        resid = w * (h - est)
        se = float(np.sqrt(np.sum(resid**2)) / np.sum(w))
        out[o] = (h0 - est, se)
    return out


@pytest.mark.parametrize(
    ("kind", "n"),
    [("normal", 1), ("lognormal", 1), ("student_t", 1), ("normal", 3), ("student_t", 3)],
)
def test_continuous_gain_equals_monte_carlo_within_its_standard_error(kind: str, n: int) -> None:
    seed = {"normal": 3, "lognormal": 4, "student_t": 5}[kind]
    tree = random_tree(seed, 4, n_indicators=6, max_indicator_nodes=1, reliabilities=(0.8,))
    name = next(k for k, i in tree.indicators.items() if i.spec.kind == kind)
    readings = random_readings(tree, 6, seed)
    as_of = dt.date(2026, 12, 31)
    model = ExactModel(tree)
    (cand,) = watch(
        model, readings, as_of=as_of, source="src0", indicators=[name], readings_per_report=n
    ).indicators
    ref = _importance_reference(
        tree, model, readings, as_of, name, "src0", n, 1500, np.random.default_rng(seed)
    )
    assert any(gain > 0.005 for gain, _ in ref.values())  # something to measure
    for o, (gain, se) in ref.items():
        ours = cand.values[o]
        both = math.hypot(se, ours.se or 0.0)
        assert abs(ours.gain - gain) < 4 * both + 1e-9, (o, ours.gain, gain, both)


def test_student_t_report_density_is_the_engines() -> None:
    tree = random_tree(5, 4, n_indicators=6, max_indicator_nodes=2)
    ind = next(i for i in tree.indicators.values() if i.spec.kind == "student_t")
    rng = np.random.default_rng(0)
    x = rng.normal(0, 2, size=(7, 3))
    mu, sigma, nu = (ind.params[k].ravel() for k in ("mu", "sigma", "nu"))
    for rho in (0.0, 0.5, 0.93):
        ours = t_report_log_density(x, mu, sigma, nu, rho)
        for j in range(len(x)):
            ref = report_log_likelihood(ind, x[j], rho).ravel()
            np.testing.assert_allclose(ours[:, j], ref, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("seed", range(8))
def test_gain_is_never_negative_nor_above_the_entropy(seed: int) -> None:
    dynamic = seed % 2 == 1
    tree = random_dynamic_tree(seed, 3, n_steps=4) if dynamic else random_tree(seed, 6)
    as_of = tree.steps.first_day(1) if dynamic and tree.steps else dt.date(2026, 12, 31)
    readings = random_readings(tree, 12, seed)
    result = watch(ExactModel(tree), readings, as_of=as_of, explain=0)
    for cand in result.candidates:
        for o, v in cand.values.items():
            h = result.outcomes[o].entropy
            assert -1e-15 <= v.gain <= h + 1e-12, (cand.name, o, v.gain, h)
            assert 0.0 <= v.expected_change <= v.largest_change + 1e-12


def test_a_source_never_genuine_is_worth_nothing() -> None:
    tree = random_tree(2, 5, n_indicators=6, reliabilities=(0.0, 0.9))
    readings = random_readings(tree, 10, 2)
    result = watch(ExactModel(tree), readings, as_of=dt.date(2026, 12, 31), source="src0")
    for cand in result.indicators:
        for v in cand.values.values():
            assert v.gain == 0.0 and v.expected_change == 0.0 and v.largest_change == 0.0
    more = watch(ExactModel(tree), readings, as_of=dt.date(2026, 12, 31), source="src1")
    assert any(v.gain > 0 for c in more.indicators for v in c.values.values())


def test_knowing_a_node_is_worth_at_least_any_reading_of_it_alone() -> None:
    for seed in range(4):
        tree = random_tree(seed, 5, n_indicators=8, max_indicator_nodes=1)
        result = watch(
            ExactModel(tree), random_readings(tree, 6, seed), as_of=dt.date(2026, 12, 31)
        )
        ceilings = {c.name: c for c in result.nodes}
        for cand in result.indicators:
            (node,) = tree.indicators[cand.name].scope
            for o, v in cand.values.items():
                assert v.gain <= ceilings[node].values[o].gain + 1e-12


def test_a_second_reading_in_one_report_is_worth_less_than_the_first() -> None:
    """Gains grow with the readings of one report, by less each time (within-report error)."""
    tree = tree_from_dict(
        {
            "sources": {"survey": {"reliability": 0.8}},
            "nodes": {
                "shock": {
                    "states": ["calm", "crisis"],
                    "probabilities": {"calm": 0.6, "crisis": 0.4},
                }
            },
            "outcomes": {
                "crisis": {
                    "question": "Crisis?",
                    "node": "shock",
                    "states": "crisis",
                    "resolve_by": "2026-12-31",
                    "resolution": "By construction.",
                }
            },
            "indicators": {
                "price": {
                    "kind": "normal",
                    "depends_on": ["shock"],
                    "within_report_correlation": 0.5,
                    "params": [
                        {"when": {"shock": "calm"}, "then": {"mu": 0.0, "sigma": 1.0}},
                        {"when": {"shock": "crisis"}, "then": {"mu": 1.0, "sigma": 1.0}},
                    ],
                }
            },
        }
    )
    model = ExactModel(tree)
    gains = [
        watch(model, [], as_of=dt.date(2026, 6, 1), readings_per_report=n)
        .indicators[0]
        .values["crisis"]
        .gain
        for n in (1, 2, 3, 4)
    ]
    steps = np.diff([0.0, *gains])
    assert np.all(steps > 0) and np.all(np.diff(steps) < 0), gains
    # the comparison the explanation shows: one reading against a report of three
    cand = watch(model, [], as_of=dt.date(2026, 6, 1)).indicators[0]
    assert cand.larger_size == 3 and cand.larger["crisis"].gain == pytest.approx(gains[2])
    assert cand.effective == pytest.approx(3 / 2)


def test_the_reading_is_taken_in_the_step_after_the_as_of_date() -> None:
    tree = random_dynamic_tree(1, 3, n_steps=6)
    assert tree.steps is not None
    result = watch(ExactModel(tree), [], as_of=tree.steps.first_day(2) + dt.timedelta(days=3))
    assert result.step == 3 and result.step_label == tree.steps.label(3)
    timed = [c for c in result.indicators if tree.varies(tree.indicators[c.name].scope)]
    assert timed and all(c.step == 3 for c in timed)


def test_the_usual_source_is_the_most_frequent_then_the_most_reliable() -> None:
    from scenariocast.spec.load import load_tree

    tree = load_tree(EXAMPLE)
    day = dt.date(2026, 6, 1)
    readings = [
        reading(1, "crackdowns", "2", source="rumour"),
        reading(2, "crackdowns", "1", on="2026-03-02", source="rumour"),
        reading(3, "crackdowns", "0", on="2026-03-03", source="wire"),
        reading(4, "crackdowns", "3", on="2026-07-01", source="wire"),  # after the as-of date
        reading(5, "crackdowns", "3", on="2026-03-04", source="wire", retracted=True),
    ]
    assert usual_source(tree, readings, "crackdowns", day)[0] == "rumour"
    assert usual_source(tree, readings, "rice_price", day) == (
        "wire",
        "no readings yet: the tree's most reliable source",
    )
    spec = yaml.safe_load(EXAMPLE.read_text())
    spec["indicators"]["crackdowns"]["source"] = "market_survey"
    declared = tree_from_dict(spec)
    assert usual_source(declared, readings, "crackdowns", day) == (
        "market_survey",
        "the indicator's source in the tree",
    )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"outcomes": ["rationing_return"]}, "no outcome 'rationing_return' (did you mean"),
        ({"source": "wires"}, "no source 'wires' (did you mean 'wire'?)"),
        ({"indicators": ["rice"]}, "no indicator 'rice'"),
        ({"readings_per_report": 0}, "at least 1"),
    ],
)
def test_bad_questions_are_refused_with_the_name(kwargs: dict[str, object], message: str) -> None:
    from scenariocast.spec.load import load_tree

    model = ExactModel(load_tree(EXAMPLE))
    with pytest.raises(
        QueryError, match=message.replace("(", r"\(").replace(")", r"\)").replace("?", r"\?")
    ):
        watch(model, [], as_of=dt.date(2026, 6, 1), **kwargs)  # type: ignore[arg-type]
