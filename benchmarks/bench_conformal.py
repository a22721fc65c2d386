"""Conformal prediction sets: coverage, set size and speed against MAPIE.

Claims under test (issue 20), same run, same threads:

* coverage within the split-conformal bound ``[1 - alpha, 1 - alpha + 1/(n+1)]``
  (on digits: the mean over random calibration/test splits, with its standard
  error; on the synthetic set: one split of 10,000 test rows, with its binomial
  standard error);
* mean set size no larger than MAPIE's for the same score and the same kind
  of set: softmaxkit's randomised APS/RAPS (its default) against MAPIE's
  ``include_last_label="randomized"``, and softmaxkit's ``randomized=False``
  against MAPIE's default ``include_last_label=True`` (both deterministic,
  coverage only bounded below; the rules differ: softmaxkit's score leaves the
  true class's own probability out, MAPIE's keeps it in);
* calibration + prediction at 50,000 x 1000 at least 5x faster than MAPIE 1.6's
  ``SplitConformalClassifier`` (prefit), on the same pairs, for the scores
  whose timings are like for like: LAC and APS (RAPS: see below).

Each goal compares like with like (audit: randomised sets were compared with
MAPIE's deterministic ones, which are larger by construction). The last line
is ``goals met: N/M``, which ``softmaxkit bench`` reports.

Both libraries get the same probabilities: MAPIE through a prefit pass-through
classifier whose ``predict_proba`` returns its input, softmaxkit with
``input="probs"``. Times are medians over rounds that run the implementations
of one score in turn, so the load of a shared machine hits them alike, after
one untimed warm-up round at full size (numba compiles or loads each kernel on
first use, and a warm-up on a few rows does not reach every kernel the timed
calls run).

RAPS: MAPIE picks ``k_star`` and ``lambda_star`` itself on 10% of the
calibration rows, which it then leaves out of the threshold; softmaxkit's RAPS
takes ``k_reg`` and ``lambda_`` as given. The softmaxkit row uses MAPIE's
chosen values (printed), so both rows are the same score; the tuning is part
of MAPIE's time and not of ours, and softmaxkit has no such search to time. So
the RAPS ratio is marked "incl. MAPIE's tuning" and is not a speed goal (audit:
it read 18.3x where APS, the same machinery without the search, read 7.0x).

Usage::

    python benchmarks/bench_conformal.py            # digits + 50,000 x 1000 synthetic, 3 rounds (9 for LAC)
    python benchmarks/bench_conformal.py --quick    # digits (fewer splits) + 5,000 x 200
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
import warnings

import numpy as np

ALPHA = 0.1


def softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def synthetic(n: int, c: int, *, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities of an over-confident model (float64) and labels drawn from the true ones.

    Each row has a hidden class whose logit gets a boost of 7 to 14 over
    standard-normal noise (easy and hard rows, so adaptive sets have something
    to adapt to); the label is drawn from ``softmax(z)`` and the model reports
    ``softmax(1.5 z)`` (top-1 accuracy about 86% at 1000 classes).
    """
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((n, c), dtype=np.float32)
    z[np.arange(n), rng.integers(0, c, n)] += rng.uniform(7.0, 14.0, n).astype(np.float32)
    cdf = np.cumsum(softmax(z), axis=1)
    y = np.minimum((rng.random(n, dtype=np.float32)[:, None] > cdf).sum(axis=1), c - 1)  # y ~ softmax(z)
    return softmax(1.5 * z.astype(np.float64)), y


def digits_probs(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Out-of-sample probabilities of a logistic regression on half of digits, for the other half."""
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split

    X, y = load_digits(return_X_y=True)
    X_tr, X_rest, y_tr, y_rest = train_test_split(X, y, test_size=0.5, stratify=y, random_state=seed)
    model = LogisticRegression(max_iter=5000).fit(X_tr / 16, y_tr)
    return model.predict_proba(X_rest / 16), y_rest


def _passthrough(probs: np.ndarray):
    """A prefit scikit-learn classifier whose features are its probabilities (MAPIE takes an estimator)."""
    from softmaxkit._precomputed import PrecomputedScores

    return PrecomputedScores(kind="probs").fit(probs)


def run_mapie(score: str, pc, yc, pt, *, last: object = True, seed: int = 0):
    """MAPIE conformalize + predict_set; returns (sets (n, C), k_star, lambda_star)."""
    from mapie.classification import SplitConformalClassifier

    mp = SplitConformalClassifier(estimator=_passthrough(pc), confidence_level=1 - ALPHA,
                                  conformity_score=score, prefit=True, random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mp.conformalize(pc, yc)
        sets = mp.predict_set(pt, conformity_score_params={"include_last_label": last})[1][:, :, 0]
    fn = mp._mapie_classifier.conformity_score_function_
    return sets, getattr(fn, "k_star", None), getattr(fn, "lambda_star", None)


def run_ours(score: str, pc, yc, pt, *, seed: int = 0, **options):
    from softmaxkit.conformal import ConformalClassifier

    cp = ConformalClassifier(score=score, input="probs", random_state=seed, **options).fit(pc, yc)
    return cp.predict_sets(pt, alpha=ALPHA)


def interleaved_medians(impls, repeats: int) -> tuple[dict, dict, dict]:
    """``(median seconds, last output, rounds)`` per ``(score, name)``, timed in interleaved rounds.

    Each round runs every implementation of one score once, so a change in the
    load of the (shared) machine hits all of them alike instead of one
    implementation's repeats. A score whose first round takes under a second
    gets 3x the rounds: its medians are the noisiest and rounds are cheap.
    """
    samples: dict = {}
    outs: dict = {}
    rounds: dict = {}
    for score in dict.fromkeys(s for s, _, _ in impls):
        group = [(name, fn) for s, name, fn in impls if s == score]
        rounds[score] = repeats
        r = 0
        while r < rounds[score]:
            spent = 0.0
            for name, fn in group:
                t0 = time.perf_counter()
                outs[(score, name)] = fn()
                dt = time.perf_counter() - t0
                samples.setdefault((score, name), []).append(dt)
                spent += dt
            if r == 0 and spent < 1.0:
                rounds[score] = 3 * repeats
            r += 1
    return {k: statistics.median(v) for k, v in samples.items()}, outs, rounds


#: Scores whose MAPIE time includes work softmaxkit is spared (RAPS: MAPIE's k_star/lambda_star
#: search), so their speed ratio is shown but not checked against the goal.
TUNED_BY_MAPIE = {"raps": "incl. MAPIE's tuning"}

MAPIE_DEFAULT = "MAPIE (default: last label kept)"
MAPIE_RANDOMIZED = "MAPIE randomized"
DETERMINISTIC = "randomized=False"


def variants(pc, yc, pt, seed: int = 0):
    """(score, name, callable) for every compared implementation; RAPS gets MAPIE's k_star/lambda_star."""
    _, k_star, lam_star = run_mapie("raps", pc, yc, pt, seed=seed)
    k_star, lam_star = int(np.ravel(k_star)[0]), float(np.ravel(lam_star)[0])
    raps = {"k_reg": k_star, "lambda_": lam_star}
    return [
        ("lac", "MAPIE", lambda: run_mapie("lac", pc, yc, pt, seed=seed)[0]),
        ("lac", "softmaxkit", lambda: run_ours("lac", pc, yc, pt, seed=seed)),
        ("aps", MAPIE_DEFAULT, lambda: run_mapie("aps", pc, yc, pt, seed=seed)[0]),
        ("aps", MAPIE_RANDOMIZED, lambda: run_mapie("aps", pc, yc, pt, last="randomized", seed=seed)[0]),
        ("aps", "softmaxkit (randomized)", lambda: run_ours("aps", pc, yc, pt, seed=seed)),
        ("aps", f"softmaxkit {DETERMINISTIC}", lambda: run_ours("aps", pc, yc, pt, seed=seed, randomized=False)),
        ("raps", MAPIE_DEFAULT, lambda: run_mapie("raps", pc, yc, pt, seed=seed)[0]),
        ("raps", MAPIE_RANDOMIZED, lambda: run_mapie("raps", pc, yc, pt, last="randomized", seed=seed)[0]),
        ("raps", "softmaxkit (randomized; k_reg, lambda_ = MAPIE's)",
         lambda: run_ours("raps", pc, yc, pt, seed=seed, **raps)),
        ("raps", f"softmaxkit {DETERMINISTIC} (k_reg, lambda_ = MAPIE's)",
         lambda: run_ours("raps", pc, yc, pt, seed=seed, randomized=False, **raps)),
    ], (k_star, lam_star)


def mapie_peer(score: str, name: str) -> str | None:
    """The MAPIE row a softmaxkit row is compared with: the same kind of set; None for MAPIE's rows.

    Randomised sets against randomised sets, deterministic against
    deterministic: randomised sets are smaller by construction, so comparing
    them with MAPIE's deterministic default flatters softmaxkit.
    """
    if not name.startswith("softmaxkit"):
        return None
    if score == "lac":  # deterministic in both libraries
        return "MAPIE"
    return MAPIE_DEFAULT if DETERMINISTIC in name else MAPIE_RANDOMIZED


def is_ours(name: str) -> bool:
    """softmaxkit with its default options (randomised APS/RAPS), whose coverage the goals bound on both sides."""
    return name.startswith("softmaxkit") and DETERMINISTIC not in name


def print_table(title: str, rows: list[list[str]], cols: list[str]) -> None:
    widths = [max(len(c), *(len(r[i]) for r in rows)) for i, c in enumerate(cols)]
    print(f"\n{title}")
    print("  ".join(c.ljust(w) for c, w in zip(cols, widths)))
    print("  ".join("-" * w for w in widths))
    for r in rows:
        print("  ".join(v.ljust(w) for v, w in zip(r, widths)))


def bench_digits(n_splits: int, checks: list) -> None:
    """Coverage and size averaged over random calibration/test halves of digits' held-out half."""
    from softmaxkit.conformal import coverage, mean_set_size

    probs, y = digits_probs()
    rng = np.random.default_rng(1)
    n_cal = len(y) // 2
    results: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for split in range(n_splits):
        rows = rng.permutation(len(y))
        cal, test = rows[:n_cal], rows[n_cal:]
        # a fresh seed per split: the mean over splits must also average over the uniforms
        impls, _ = variants(probs[cal], y[cal], probs[test], seed=split)
        for score, name, fn in impls:
            sets = fn()
            results.setdefault((score, name), []).append((coverage(y[test], sets), mean_set_size(sets)))
    hi = 1 - ALPHA + 1 / (n_cal + 1)
    table = []
    for (score, name), vals in results.items():
        cov = np.array([v[0] for v in vals])
        size = np.array([v[1] for v in vals])
        se = cov.std(ddof=1) / math.sqrt(len(cov))
        table.append([score, name, f"{cov.mean():.4f} +- {se:.4f}", f"{size.mean():.3f}"])
        if is_ours(name):
            checks.append(coverage_check(f"digits {score}: mean coverage", cov.mean(), se=se, hi=hi))
    size_of = {key: np.mean([v[1] for v in vals]) for key, vals in results.items()}
    for (score, name), ours in size_of.items():
        peer = mapie_peer(score, name)
        if peer is not None:
            theirs = size_of[(score, peer)]
            checks.append((f"digits {score} {name}: mean size {ours:.3f} <= {peer}'s {theirs:.3f}",
                           ours <= theirs + 1e-12))
    print_table(f"digits: logistic regression, {n_cal} calibration / {len(y) - n_cal} test rows, "
                f"alpha = {ALPHA}, mean over {n_splits} random splits (bound [{1 - ALPHA:.2f}, {hi:.4f}])",
                table, ["score", "implementation", "coverage +- se", "mean size"])


def coverage_check(what: str, cov: float, *, se: float, hi: float) -> tuple[str, bool]:
    """A goal line and its outcome: coverage within split conformal's bound ``[1 - ALPHA, hi]`` widened by
    3 standard errors of its estimate, the interval actually tested printed (it printed the bound alone,
    and a coverage of 0.8871 read "[PASS] ... in [0.90, 0.9022]": audit BS)."""
    lo, up = 1 - ALPHA - 3 * se, hi + 3 * se
    return (f"{what} {cov:.4f} in [{lo:.4f}, {up:.4f}], the bound [{1 - ALPHA:.2f}, {hi:.4f}] +- 3 se "
            f"({3 * se:.4f})", lo <= cov <= up)


def bench_synthetic(n_cal: int, n_test: int, c: int, repeats: int, checks: list, *, speed_goal: bool) -> None:
    from softmaxkit.conformal import coverage, mean_set_size

    probs, y = synthetic(n_cal + n_test, c)
    pc, yc, pt, yt = probs[:n_cal], y[:n_cal], probs[n_cal:], y[n_cal:]
    impls, (k_star, lam_star) = variants(pc, yc, pt)
    for _, _, fn in impls:
        # Untimed, at full size, for every row (audit: a warm-up of APS and LAC on 100 rows left
        # kernels to compile inside the timed calls: LAC's first round took 1.9 s for 0.01 s of work).
        fn()
    hi = 1 - ALPHA + 1 / (n_cal + 1)
    table, sizes = [], {}
    times, outputs, rounds = interleaved_medians(impls, repeats)
    for score, name, _ in impls:
        sets = outputs[(score, name)]
        cov = coverage(yt, sets)
        se = math.sqrt(cov * (1 - cov) / n_test)
        sizes[(score, name)] = mean_set_size(sets)
        table.append([score, name, f"{cov:.4f} +- {se:.4f}", f"{sizes[(score, name)]:.2f}",
                      f"{times[(score, name)]:.3f}", str(rounds[score])])
        if is_ours(name):
            checks.append(coverage_check(f"{c} classes {score}: coverage", cov, se=se, hi=hi))
    for row in table:
        peer = mapie_peer(row[0], row[1])
        note = f" ({TUNED_BY_MAPIE[row[0]]})" if row[0] in TUNED_BY_MAPIE else ""
        row.append("" if peer is None else f"{times[(row[0], peer)] / times[(row[0], row[1])]:.1f}x{note}")
    for score, name, _ in impls:
        peer = mapie_peer(score, name)
        if peer is None:
            continue
        ratio = times[(score, peer)] / times[(score, name)]
        # The goal is set at 50,000 x 1000 (smaller runs only show the ratio), like for like only.
        if speed_goal and score not in TUNED_BY_MAPIE:
            checks.append((f"{n_cal:,} x {c} {score} {name}: {ratio:.1f}x faster than {peer} (goal >= 5x)",
                           ratio >= 5))
        checks.append((f"{c} classes {score} {name}: mean size {sizes[(score, name)]:.2f} <= "
                       f"{peer}'s {sizes[(score, peer)]:.2f}", sizes[(score, name)] <= sizes[(score, peer)] + 1e-12))
    print_table(f"synthetic: {n_cal:,} calibration + {n_test:,} test rows x {c} classes (float64 probabilities), "
                f"alpha = {ALPHA}; time = fit + predict, median over interleaved rounds; RAPS k_star = {k_star}, "
                f"lambda_star = {lam_star:g} (MAPIE's choice, found by a search inside MAPIE's timed RAPS rows: "
                f"their ratios are not a speed goal)",
                table, ["score", "implementation", "coverage +- se", "mean size", "seconds", "rounds",
                 "same-kind MAPIE / this"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes and fewer splits (a smoke run)")
    args = parser.parse_args()
    import numba
    import mapie

    print(f"mapie {mapie.__version__}, numba threads {numba.get_num_threads()}")
    checks: list[tuple[str, bool]] = []
    bench_digits(n_splits=5 if args.quick else 30, checks=checks)
    if args.quick:
        bench_synthetic(5_000, 2_000, 200, repeats=1, checks=checks, speed_goal=False)
    else:
        bench_synthetic(50_000, 10_000, 1000, repeats=3, checks=checks, speed_goal=True)
    print("\nGoal check:")
    for text, ok in checks:
        print(f"  [{'PASS' if ok else 'FAIL'}] {text}")
    # The line `softmaxkit bench` reads into its summary (a goal not met is a result, not a crash).
    print(f"\ngoals met: {sum(ok for _, ok in checks)}/{len(checks)}")


if __name__ == "__main__":
    main()
