"""A study's pictures (matplotlib, Agg): quality against cost (``compare.png``) and the
learning curve with its fit (``curve.png``)."""

from __future__ import annotations

from pathlib import Path

from ..atomic import atomic_path


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # headless: no display on servers and CI
    import matplotlib.pyplot as plt

    return plt


def _save(fig, plt, path: Path) -> Path:
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
    return path


def plot_compare(rows: list[dict], metric: str, path: Path) -> Path:
    """Quality against train seconds and against trainable parameters (log x), one
    colour per strategy and one marker per model."""
    plt = _pyplot()
    strategies = sorted({r["strategy"] for r in rows})
    models = sorted({r["model"] for r in rows})
    colours = plt.get_cmap("tab10")
    markers = "osD^vP*Xh<>"
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5), sharey=True)
    for ax, key, label in ((axes[0], "train_seconds", "train seconds"),
                           (axes[1], "trainable_parameters", "trainable parameters")):
        for r in rows:
            ax.scatter(max(r[key], 1e-3), r["metrics"][metric], s=45,
                       color=colours(strategies.index(r["strategy"]) % 10),
                       marker=markers[models.index(r["model"]) % len(markers)])
        ax.set_xscale("log")
        ax.set_xlabel(f"{label} (log)")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel(metric)
    for i, strategy in enumerate(strategies):
        axes[1].scatter([], [], color=colours(i % 10), label=strategy)
    for i, model in enumerate(models):
        axes[1].scatter([], [], color="grey", marker=markers[i % len(markers)], label=model)
    axes[1].legend(fontsize=8, loc="best")
    fig.suptitle(f"{metric} against training cost")
    return _save(fig, plt, path)


def plot_curve(curve: dict, path: Path) -> Path:
    """Every point, the mean ± standard deviation per size, the fitted curve, the target."""
    import numpy as np

    plt = _pyplot()
    metric = curve["metric"]
    fig, ax = plt.subplots(figsize=(8, 4.8))
    ax.scatter([p["size"] for p in curve["points"]], [p["value"] for p in curve["points"]],
               s=14, alpha=0.5, color="tab:blue", label="each seed")
    sizes = [s["size"] for s in curve["sizes"]]
    ax.errorbar(sizes, [s["mean"] for s in curve["sizes"]], [s["std"] for s in curve["sizes"]],
                fmt="o-", color="tab:blue", capsize=4, label="mean ± std")
    fit, estimate = curve.get("fit"), curve.get("estimate")
    if fit:
        # out to the estimate, or far enough past the data to show where the curve levels
        top = max(4 * max(sizes), 1.2 * ((estimate or {}).get("examples") or 0))
        grid = np.geomspace(min(sizes), top, 200)
        sign = 1 if curve["higher_is_better"] else -1
        ax.plot(grid, fit["a"] - sign * fit["b"] * grid ** (-fit["c"]), "--", color="tab:orange",
                label=f"fit {fit['formula']}")
    if estimate:
        ax.axhline(estimate["target"], color="tab:green", lw=1,
                   label=f"target {estimate['target']}")
        if estimate["examples"]:
            ax.axvline(estimate["examples"], color="tab:green", lw=1, ls=":")
    ax.set_xscale("log")
    ax.set_xlabel("training examples (log)")
    ax.set_ylabel(metric)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(f"Learning curve: {metric}")
    return _save(fig, plt, path)
