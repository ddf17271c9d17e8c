"""The learning curve's model: an inverse power law fitted to (examples, metric) points,
and the number of examples it needs to reach a target, with a bootstrap interval.

``m(n) = a - b·n^(-c)`` for metrics that rise with data (accuracy), ``m(n) = a + b·n^(-c)``
for those that fall (perplexity): ``a`` is the ceiling (or floor) the curve approaches,
``b, c > 0``, and ``a ≤ 1`` for a rising metric whose points all lie in [0, 1]. With fewer
than three distinct sizes three parameters are not determined, so ``c`` is then fixed at
0.5 (a typical exponent of learning curves) and said so.
The interval resamples, at every size, that size's points (one per seed) with replacement,
refits, and takes the 2.5 and 97.5 percentiles of the estimates; resamples whose curve never
reaches the target count as "not reached" and leave the upper end open when they are more
than 2.5 % of them.
"""

from __future__ import annotations

import math
import random
import warnings
from collections import defaultdict

import numpy as np

FIXED_EXPONENT = 0.5
BOOTSTRAP_SAMPLES = 200
CONFIDENCE = 0.95


def power_law(n, a: float, b: float, c: float, rising: bool = True):
    sign = 1.0 if rising else -1.0
    return a - sign * b * np.power(np.asarray(n, dtype=float), -c)


def fit_power_law(sizes: list[float], values: list[float], rising: bool = True) -> dict | None:
    """Least-squares ``a, b, c`` (scipy ``curve_fit``, bounded ``b, c ≥ 0``); None when
    the fit fails or there is only one size."""
    from scipy.optimize import curve_fit

    x, y = np.asarray(sizes, dtype=float), np.asarray(values, dtype=float)
    distinct = len(set(sizes))
    if distinct < 2:
        return None
    # a metric read as a share (accuracy, F1: every point in [0, 1]) cannot rise above 1:
    # unbounded, three sizes of the example intents fitted a ceiling of 1.30
    ceiling = 1.0 if rising and 0 <= y.min() and y.max() <= 1 else np.inf
    best = float(min(y.max(), ceiling - 1e-6) if rising else y.min())
    spread = float(max(y.max() - y.min(), 1e-3))
    b0 = spread * float(x.min()) ** FIXED_EXPONENT
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # covariance warnings: the interval is bootstrapped
            if distinct < 3:
                (a, b), _ = curve_fit(lambda n, a, b: power_law(n, a, b, FIXED_EXPONENT, rising),
                                      x, y, p0=[best, b0],
                                      bounds=([-np.inf, 0], [ceiling, np.inf]),
                                      maxfev=20000)
                c, fixed = FIXED_EXPONENT, True
            else:
                (a, b, c), _ = curve_fit(lambda n, a, b, c: power_law(n, a, b, c, rising),
                                         x, y, p0=[best, b0, FIXED_EXPONENT],
                                         bounds=([-np.inf, 0, 1e-3], [ceiling, np.inf, 5]),
                                         maxfev=20000)
                fixed = False
    except (RuntimeError, ValueError):
        return None
    sign = "-" if rising else "+"
    return {"a": float(a), "b": float(b), "c": float(c), "exponent_fixed": fixed,
            "formula": f"{a:.4g} {sign} {b:.4g}·n^-{c:.3g}" + (" (c fixed)" if fixed else "")}


def examples_for(fit: dict, target: float, rising: bool = True) -> float | None:
    """The ``n`` where the fitted curve reaches ``target``; None beyond its ceiling/floor."""
    gap = (fit["a"] - target) if rising else (target - fit["a"])
    if gap <= 0 or fit["b"] <= 0:
        return None
    return (fit["b"] / gap) ** (1 / fit["c"])


def bootstrap_examples(points: list[tuple[float, float]], target: float, rising: bool,
                       samples: int = BOOTSTRAP_SAMPLES, seed: int = 0) -> list[float | None]:
    """The estimate on each resample (points of each size drawn with replacement)."""
    by_size: dict[float, list[float]] = defaultdict(list)
    for size, value in points:
        by_size[size].append(value)
    rng = random.Random(seed)
    estimates: list[float | None] = []
    for _ in range(samples):
        sizes, values = [], []
        for size, group in by_size.items():
            drawn = [rng.choice(group) for _ in group]
            sizes += [size] * len(drawn)
            values += drawn
        fit = fit_power_law(sizes, values, rising)
        estimates.append(examples_for(fit, target, rising) if fit else None)
    return estimates


def estimate(points: list[tuple[float, float]], target: float, rising: bool = True) -> dict:
    """The examples needed to reach ``target``: the fit's point estimate, the bootstrap
    interval, the share of resamples that reach it, and a sentence saying all of it."""
    fit = fit_power_law([p[0] for p in points], [p[1] for p in points], rising)
    point = examples_for(fit, target, rising) if fit else None
    estimates = bootstrap_examples(points, target, rising)
    reached = sorted(e for e in estimates if e is not None)
    share = len(reached) / max(1, len(estimates))
    tail = (1 - CONFIDENCE) / 2
    low = _quantile(estimates, tail)
    high = _quantile(estimates, 1 - tail)
    result = {"target": target, "examples": point and math.ceil(point),
              "interval": [low and math.ceil(low), high and math.ceil(high)],
              "confidence": CONFIDENCE, "bootstrap_samples": len(estimates),
              "reached_share": round(share, 3)}
    result["statement"] = statement(result, fit, rising)
    return result


def _quantile(estimates: list[float | None], q: float) -> float | None:
    """A percentile of the estimates with "not reached" as +infinity (None when there)."""
    values = sorted(math.inf if e is None else e for e in estimates)
    if not values:
        return None
    value = float(np.quantile(values, q, method="lower" if q < 0.5 else "higher"))
    return None if math.isinf(value) else value


def statement(result: dict, fit: dict | None, rising: bool) -> str:
    target = result["target"]
    if fit is None:
        return f"{target}: no curve could be fitted to these points"
    if result["examples"] is None:
        bound = "ceiling" if rising else "floor"
        return (f"{target}: not reached within the fitted curve's {bound} "
                f"({fit['a']:.4g}); {result['reached_share']:.0%} of resamples reach it")
    low, high = result["interval"]
    lower = f"{low:,}" if low is not None else "not reached"
    upper = f"{high:,}" if high is not None else "not reached"
    return (f"{target}: about {result['examples']:,} training examples "
            f"({result['confidence']:.0%} bootstrap interval {lower} – {upper}; "
            f"{result['reached_share']:.0%} of resamples reach it)")
