"""How large water's cliques are under other elimination orders, and under pruning per query.

The figures behind docs/interop.md ("What made the difference"). For each evidence case of
tests/data/networks/references.json (none, 3 and 4 observed variables), the total and largest
clique tables (entries) of the tables reduced by the evidence, eliminated in:

- the engine's order (greedy min-fill, ties by the smallest clique table);
- greedy min-weight, and greedy weighted min-fill (each fill edge weighted by the product of its
  ends' cardinalities);
- the best of ``--tries`` greedy orders with random tie-breaking (the three scores in turn);

then, for the evidence cases, the cliques of the problems variable elimination solves when it
prunes per query (each unobserved variable's marginal on the ancestors of it and the evidence),
summed over the queries, and the cliques of pgmpy's own junction tree of the network
(``DiscreteMarkovNetwork.triangulate``, each heuristic; needs pgmpy). Sizes, not times.

    python benchmarks/network_cliques.py [network] [--tries N]
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import json
import math
import random
import sys
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NETWORKS = ROOT / "tests" / "data" / "networks"

Adjacency = list[set[int]]
Score = Callable[[Adjacency, int, Sequence[int]], object]


def cost(order: Sequence[int], adj0: Adjacency, cards: Sequence[int]) -> tuple[int, int]:
    """Total and largest clique table of eliminating ``order``."""
    adj = [set(a) for a in adj0]
    total = largest = 0
    for v in order:
        size = cards[v] * math.prod(cards[u] for u in adj[v])
        total += size
        largest = max(largest, size)
        for a, b in itertools.combinations(adj[v], 2):
            adj[a].add(b)
            adj[b].add(a)
        for u in adj[v]:
            adj[u].discard(v)
        adj[v] = set()
    return total, largest


def greedy(
    adj0: Adjacency, cards: Sequence[int], score: Score, rng: random.Random | None = None
) -> list[int]:
    """A greedy elimination order by ``score`` (ties: lowest index, or at random)."""
    adj = [set(a) for a in adj0]
    left = set(range(len(cards)))
    order: list[int] = []
    while left:
        scores = {v: score(adj, v, cards) for v in left}
        best = min(scores.values())  # type: ignore[type-var]
        ties = sorted(v for v in left if scores[v] == best)
        v = rng.choice(ties) if rng else ties[0]
        for a, b in itertools.combinations(adj[v], 2):
            adj[a].add(b)
            adj[b].add(a)
        for u in adj[v]:
            adj[u].discard(v)
        adj[v] = set()
        left.discard(v)
        order.append(v)
    return order


def _fill(adj: Adjacency, v: int) -> int:
    nb = list(adj[v])
    return sum(1 for i, a in enumerate(nb) for b in nb[i + 1 :] if b not in adj[a])


def _weight(adj: Adjacency, v: int, cards: Sequence[int]) -> int:
    return cards[v] * math.prod(cards[u] for u in adj[v])


def min_fill(adj: Adjacency, v: int, cards: Sequence[int]) -> object:
    return (_fill(adj, v), _weight(adj, v, cards))


def min_weight(adj: Adjacency, v: int, cards: Sequence[int]) -> object:
    return (_weight(adj, v, cards), _fill(adj, v))


def weighted_min_fill(adj: Adjacency, v: int, cards: Sequence[int]) -> object:
    nb = list(adj[v])
    return sum(
        cards[a] * cards[b] for i, a in enumerate(nb) for b in nb[i + 1 :] if b not in adj[a]
    )


def main() -> None:
    """Print the clique sizes of each evidence case."""
    warnings.simplefilter("ignore")
    parser = argparse.ArgumentParser()
    parser.add_argument("network", nargs="?", default="water")
    parser.add_argument("--tries", type=int, default=200)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT / "src"))
    from scenariocast.engines.exact import ExactModel
    from scenariocast.engines.exact.junction import JunctionTree, Reduction
    from scenariocast.evidence.select import select_evidence
    from scenariocast.interop import read_network
    from scenariocast.interop.scenario import to_yaml
    from scenariocast.spec.load import parse_tree

    name = args.network
    references = json.loads((NETWORKS / "references.json").read_text(encoding="utf-8"))
    bn = read_network(NETWORKS / f"{name}.bif")
    tree = parse_tree(to_yaml(bn, tree_id=name), file=f"{name}.yaml")
    ids = {(v.label or v.id): v for v in bn.variables.values()}
    model = ExactModel(tree)
    net = model.network()
    parents = {scope[-1]: set(scope[:-1]) for scope, _ in net.factors}

    def ancestors(start: set[int]) -> set[int]:
        out, stack = set(start), list(start)
        while stack:
            for p in parents[stack.pop()]:
                if p not in out:
                    out.add(p)
                    stack.append(p)
        return out

    print(f"{name}: clique tables (entries), total / largest")
    for case in references["networks"][name]:
        given = {
            ids[v].id: ids[v].states[ids[v].shown_states().index(s)]
            for v, s in case["evidence"].items()
        }
        query = model.query(select_evidence(tree, [], dt.date.today()), given)
        observed = model.observed(query, query.assumptions)
        red = Reduction(tuple(sorted(observed.items())))
        cards = red.cards(net.cards)
        adj: Adjacency = [set() for _ in cards]
        for scope, _ in net.factors:
            for a, b in itertools.combinations(set(red.scope(scope)), 2):
                adj[a].add(b)
                adj[b].add(a)
        jt = JunctionTree(cards, [red.scope(s) for s, _ in net.factors])
        print(f"  given {len(observed)} variables:")
        print("    engine (min-fill)      {:>12,} / {:>12,}".format(*cost(jt.order, adj, cards)))
        for label, score in (
            ("min-weight", min_weight),
            ("weighted min-fill", weighted_min_fill),
        ):
            print(
                f"    {label:<22} {{:>12,}} / {{:>12,}}".format(
                    *cost(greedy(adj, cards, score), adj, cards)
                )
            )
        rng = random.Random(0)
        scores = (min_fill, min_weight, weighted_min_fill)
        best = min(
            cost(greedy(adj, cards, scores[k % 3], rng), adj, cards) for k in range(args.tries)
        )
        label = f"best of {args.tries} random ties"
        print(f"    {label:<22} {best[0]:>12,} / {best[1]:>12,}")
        if not observed:
            continue
        total = largest = 0
        for x in range(len(cards)):
            if x in observed:
                continue
            keep = ancestors({*observed, x})
            scopes = [red.scope(s) for s, _ in net.factors if s[-1] in keep]
            sub = JunctionTree(cards, [s for s in scopes if s])
            sizes = [math.prod(sub.shapes[i]) for i, c in enumerate(sub.cliques) if c[0] in keep]
            total += sum(sizes)
            largest = max(largest, max(sizes))
        print(f"    pruned per query, sum  {total:>12,} / {largest:>12,}")
    try:
        import networkx as nx

        sys.path.insert(0, str(ROOT / "benchmarks"))
        from networks import _pgmpy_model
    except ImportError:
        return
    pg = _pgmpy_model(bn)
    markov = pg.to_markov_model()  # type: ignore[attr-defined]
    print("  pgmpy's junction tree, no evidence:")
    for heuristic in ("H1", "H2", "H3", "H4", "H5", "H6"):
        chordal = markov.triangulate(heuristic=heuristic, inplace=False)
        sizes = [
            math.prod(pg.get_cardinality(v) for v in c)  # type: ignore[attr-defined]
            for c in nx.find_cliques(chordal)
        ]
        print(f"    {heuristic:<22} {sum(sizes):>12,} / {max(sizes):>12,}")


if __name__ == "__main__":
    main()
