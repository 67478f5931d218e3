"""A cached grid search: SVC ``C`` x ``gamma`` on scikit-learn's bundled digits data set.

``Data`` loads and splits the digits (bundled with scikit-learn, no download) and
shards the grid values; ``Train`` is a ForEach over ``C`` x ``gamma`` (one task
per pair, the first parameter varying fastest); ``Best`` joins the tasks, picks
the model with the best validation accuracy and prints it.

Run it twice: the second run computes nothing (every layer and task is a cache
hit) and finishes well under a second::

    python examples/grid_search.py            # store next to this script
    python examples/grid_search.py /tmp/gs    # or in a folder of your choice

Change a value in ``C_VALUES`` and rerun: what depends on it trains again: the
module constants a layer reads (numbers, strings, and tuples, lists or dicts of
those) are part of its code version, by value (see ``docs/flow.md``).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from incgraph.flow import Flow, ForEach, Layer, Parameter

C_VALUES = (1.0, 10.0, 100.0)  # tuples: immutable constants are part of the code version
GAMMA_VALUES = (0.01, 0.1, 1.0)


class GridSearch(Flow): ...


@GridSearch.register
class Data(Layer):
    def __call__(self) -> None:
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split

        x, y = load_digits(return_X_y=True)
        split = train_test_split(x / 16.0, y, test_size=0.3, random_state=0, stratify=y)
        self.x_train, self.x_val, self.y_train, self.y_val = split
        self.shard(C=C_VALUES, gamma=GAMMA_VALUES)


@GridSearch.register(
    foreach=ForEach(
        parameters=[
            Parameter(layer=Data, attribute="C"),
            Parameter(layer=Data, attribute="gamma"),
        ]
    )
)
class Train(Layer):
    def __call__(self, data: Data) -> None:
        from sklearn.svm import SVC

        model = SVC(C=data.C, gamma=data.gamma).fit(data.x_train, data.y_train)
        self.C, self.gamma = data.C, data.gamma
        self.accuracy = float(model.score(data.x_val, data.y_val))
        self.model = model


@GridSearch.register
class Best(Layer):
    def __call__(self, train: Train) -> None:
        scores = list(train.accuracy)  # small floats live in the join: no model is loaded
        i = max(range(len(scores)), key=scores.__getitem__)
        self.C, self.gamma, self.accuracy = train.C[i], train.gamma[i], scores[i]
        self.model = train.model[i]  # loads the winning model only
        print(describe(self, len(scores)))


def describe(best: Best, n: int) -> str:
    return (
        f"best of {n} models: SVC(C={best.C}, gamma={best.gamma}), "
        f"validation accuracy {best.accuracy:.4f}"
    )


def main(argv: list[str]) -> None:
    store = Path(argv[1]) if len(argv) > 1 else Path(__file__).with_name(".incgraph-grid-search")
    start = time.perf_counter()
    if flow := GridSearch(store=store):
        execution = flow()
        elapsed = time.perf_counter() - start
        if "Best" in execution.cached:
            print(describe(execution[Best], execution.layers["Train"].tasks or 0), "(cached)")
        computed, cached = len(execution.computed), len(execution.cached)
        print(f"{computed} nodes computed, {cached} cached, in {elapsed:.2f} s")
        if computed == 0:
            print("everything was cached")
        print(f"execution {execution.id} (store: {store})")


if __name__ == "__main__":
    main(sys.argv)
