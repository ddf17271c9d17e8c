"""What ``tune`` leaves behind: ``tune.json`` (every trial), ``best.yaml`` (the best trial's
config, for ``train --config``) and ``optimization_history.png``."""

from __future__ import annotations

from pathlib import Path

from ..atomic import write_text_atomic
from ..checkpoint import write_json_atomic
from ..config import load_config
from ..runs.layout import RunDir

TUNE_JSON, BEST_YAML, HISTORY_PNG = "tune.json", "best.yaml", "optimization_history.png"


def counted(study) -> int:
    """Trials that count towards ``--trials``: completed or pruned."""
    from optuna.trial import TrialState

    return len(study.get_trials(deepcopy=False,
                                states=(TrialState.COMPLETE, TrialState.PRUNED)))


def trial_record(trial) -> dict:
    """One trial as JSON: number, state, params, value, seconds, the settings it trained."""
    duration = trial.duration
    return {"number": trial.number, "state": trial.state.name, "params": trial.params,
            "value": trial.value, "seconds": round(duration.total_seconds(), 2)
            if duration else None,
            "epochs_reported": {str(k): v for k, v in sorted(trial.intermediate_values.items())},
            "settings": trial.user_attrs.get("settings"),
            "retry_of": trial.user_attrs.get("retry_of")}


def write_results(study, job, storage: str) -> dict:
    """Write the three files into ``job.output`` and return the summary (``tune.json``)."""
    from optuna.trial import TrialState

    objective = job.task.objective
    records = [trial_record(t) for t in study.get_trials(deepcopy=False)]
    complete = [r for r in records if r["state"] == TrialState.COMPLETE.name]
    summary = {"study": study.study_name, "storage": storage, "task": job.task.name,
               "metric": objective.metric,
               "direction": "maximize" if objective.higher_is_better else "minimize",
               "trials_counted": counted(study), "best": None, "trials": records}
    if complete:
        best = study.best_trial
        path = job.output / BEST_YAML
        write_best_config(job, best, path)
        summary["best"] = {"number": best.number, "value": best.value, "params": best.params,
                           "config": str(path), "run": str(job.trial_folder(best.number))}
    plot_history(records, objective, job.output / HISTORY_PNG)
    write_json_atomic(summary, job.output / TUNE_JSON)
    return summary


def write_best_config(job, best, path: Path) -> None:
    """The best trial's own resolved ``config.yaml``, without its output folder."""
    cfg = load_config(RunDir(job.trial_folder(best.number)).config)
    cfg.output = None
    header = (f"# dialogtune tune: trial {best.number}, validation {job.task.objective.metric} "
              f"{best.value:.4f}\n# dialogtune train --config {path.name} --data TRAIN "
              "--output RUN\n")
    write_text_atomic(path, header + cfg.to_yaml())


def plot_history(records: list[dict], objective, path: Path) -> None:
    """Each finished trial's value, pruned trials at their last reported epoch, and the
    best value so far."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.5))
    done = [(r["number"], r["value"]) for r in records if r["value"] is not None]
    pruned = [(r["number"], list(r["epochs_reported"].values())[-1]) for r in records
              if r["state"] == "PRUNED" and r["epochs_reported"]]
    if done:
        ax.plot(*zip(*done), "o", color="tab:blue", label="trial (best epoch)")
        pick = max if objective.higher_is_better else min
        best, so_far = [], None
        for _, value in done:
            so_far = value if so_far is None else pick(so_far, value)
            best.append(so_far)
        ax.step([n for n, _ in done], best, where="post", color="tab:orange",
                label="best so far")
    if pruned:
        ax.plot(*zip(*pruned), "x", color="tab:red", label="pruned (last epoch)")
    ax.set_xlabel("trial")
    ax.set_ylabel(f"validation {objective.metric}")
    ax.set_title("Optimization history")
    if done or pruned:
        ax.legend(loc="best")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
