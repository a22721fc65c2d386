"""What ``softmaxkit fit`` trains on a raw file, next to what a scikit-learn user would fit.

A file holds raw features. A scikit-learn user puts a ``StandardScaler`` in
front of the model; ``softmaxkit fit`` passes the raw columns to a
``SoftmaxClassifier(standardize=True)``, whose penalty falls on the
standardised features' weights (and, with ``--hidden`` and ``--alpha auto``,
trains the network by L-BFGS). Claims under test, side by side in one process
on the same splits:

* ``fit``'s linear model is within noise of (or better than) the scikit-learn
  pipelines ``StandardScaler + LogisticRegression()`` and ``StandardScaler +
  LogisticRegressionCV(scoring="neg_log_loss")``, and well ahead of the same
  estimator penalising the raw weights (``--no-standardize``, which is also
  ``SoftmaxClassifier()`` on the raw file);
* ``fit --hidden 100`` beats ``StandardScaler + MLPClassifier()`` and the
  Adam-trained network it replaced.

The models are built by the command line's own ``_adapters.new_classifier``,
so this measures exactly what ``fit`` trains. Test log-loss (from
``predict_log_proba``, exact), median over ``--repeats`` stratified 75/25
splits of the bundled sets; fit time is the median wall time of one fit.

Usage::

    python benchmarks/bench_cli_defaults.py              # 30 splits (about 6 minutes)
    python benchmarks/bench_cli_defaults.py --quick      # 3 splits, linear models only

30 splits, because these sets are small: with the same split seed, the
fit / fit --no-std ratio was 1.06 on wine and 1.42 on iris over the first 10
splits, and 0.76 and 0.99 over 40.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import warnings

import numpy as np


def models(quick: bool):
    """``(label, factory)``: what fit builds, and the peers on the same raw file."""
    from sklearn.linear_model import LogisticRegression, LogisticRegressionCV
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from softmaxkit.cli._adapters import new_classifier

    def fit_cli(hidden=(), standardize=True, solver=None):
        def make():
            model = new_classifier(hidden=hidden, alpha="auto", max_iter=200, random_state=0, verbose=False,
                                   standardize=standardize)
            return model if solver is None else model.set_params(solver=solver)
        return make

    out = [
        ("fit", fit_cli()),
        ("fit --no-std", fit_cli(standardize=False)),
        ("SS+LR()", lambda: make_pipeline(StandardScaler(), LogisticRegression())),
        ("SS+LRCV", lambda: make_pipeline(StandardScaler(), LogisticRegressionCV(scoring="neg_log_loss"))),
    ]
    if not quick:
        out += [
            ("fit --hidden", fit_cli(hidden=(100,))),
            ("adam --hidden", fit_cli(hidden=(100,), solver="adam")),
            ("SS+MLP()", lambda: make_pipeline(StandardScaler(), MLPClassifier(random_state=0))),
        ]
    return out


def datasets():
    from sklearn.datasets import load_breast_cancer, load_digits, load_iris, load_wine

    for name, load in [("iris", load_iris), ("wine", load_wine), ("breast_cancer", load_breast_cancer),
                       ("digits", load_digits)]:  # fmt: skip
        yield (name, *load(return_X_y=True))


def run(quick: bool, repeats: int) -> tuple[dict, list[str]]:
    from sklearn.model_selection import StratifiedShuffleSplit

    from softmaxkit.metrics import log_loss

    model_list = models(quick)
    results: dict[tuple[str, str], dict[str, list[float]]] = {}
    for name, X, y in datasets():
        for split, (tr, te) in enumerate(StratifiedShuffleSplit(n_splits=repeats, test_size=0.25,
                                                                random_state=0).split(X, y)):
            for label, make in model_list:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # ConvergenceWarning at default max_iter
                    model = make()
                    start = time.perf_counter()
                    model.fit(X[tr], y[tr])
                    seconds = time.perf_counter() - start
                    log_p = model.predict_log_proba(X[te]).astype(np.float64)
                row = results.setdefault((name, label), {"log_loss": [], "fit_s": []})
                row["log_loss"].append(log_loss(y[te], logits=log_p))
                row["fit_s"].append(seconds)
            print(f"  {name}: split {split + 1}/{repeats} done", file=sys.stderr, flush=True)
    return results, [label for label, _ in model_list]


def print_tables(results: dict, labels: list[str]) -> None:
    names = list(dict.fromkeys(name for name, _ in results))
    ratios = [("fit", "SS+LR()"), ("fit", "SS+LRCV"), ("fit", "fit --no-std")]
    if "fit --hidden" in labels:
        ratios += [("fit --hidden", "SS+MLP()"), ("fit --hidden", "adam --hidden")]
    for key, title, fmt in (("log_loss", "Test log-loss", "{:.4f}"), ("fit_s", "Fit time [s]", "{:.3f}")):
        n = len(results[(names[0], labels[0])][key])
        print(f"\n{title}, median of {n} splits (raw features; SS+ = StandardScaler pipeline)")
        head = f"{'set':<15}" + "".join(f"{label:>15}" for label in labels)
        head += "".join(f"{a + ' / ' + b:>30}" for a, b in ratios)
        print(head)
        print("-" * len(head))
        for name in names:
            med = {label: statistics.median(results[(name, label)][key]) for label in labels}
            line = f"{name:<15}" + "".join(f"{fmt.format(med[label]):>15}" for label in labels)
            line += "".join(f"{med[a] / med[b]:>30.3f}" for a, b in ratios)
            print(line)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="3 splits, linear models only")
    parser.add_argument("--repeats", type=int, default=None, help="stratified splits per set (default 30, quick 3)")
    args = parser.parse_args(argv)
    import sklearn

    import softmaxkit

    print(f"softmaxkit {softmaxkit.__version__}, scikit-learn {sklearn.__version__}, numpy {np.__version__}")
    results, labels = run(args.quick, args.repeats or (3 if args.quick else 30))
    print_tables(results, labels)
    return 0


if __name__ == "__main__":
    sys.exit(main())
