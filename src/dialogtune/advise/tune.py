"""``dialogtune tune``: an Optuna search over the settings that matter (``space.py``).

Each trial is a real training run into ``OUTPUT/trials/<n>/`` through ``pipeline.train_run``;
each epoch's validation value of the task's objective is reported to Optuna, and a trial
the pruner gives up on stops there (``train.StopTraining``). The study lives in its storage
(SQLite by default): running ``tune`` again continues it until ``trials`` trials have
completed or been pruned; trials a killed run left running are marked failed, and every
failed trial is tried once more with its settings. Results: ``best.yaml`` (a config for
``train --config``), ``tune.json`` (every trial) and ``optimization_history.png``.
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

from ..config import DEFAULT_VAL_FRACTION, RunConfig, load_config
from ..errors import ConfigError, DialogtuneError
from ..runs.layout import RunDir
from ..train import EpochEnd, Objective, StopTraining
from . import space
from .tune_report import counted, write_results

log = logging.getLogger("dialogtune")
# No pruning before a trial's second epoch: around the schedule's peak learning rate the
# first epoch's score wobbles (see train._end_epoch), and three finished trials first.
PRUNE_FROM_EPOCH, PRUNER_STARTUP_TRIALS = 2, 3
NO_VALIDATION = ("tune needs a validation score each epoch: give --eval-data or keep "
                 "data.val_fraction above 0")


class PruningReport:
    """A training callback: reports each epoch's objective value to the Optuna trial,
    remembers the best epoch's metrics, and stops the run when the pruner says so."""

    def __init__(self, trial, objective: Objective):
        self.trial, self.objective, self.best = trial, objective, None

    def __call__(self, step: int) -> None:
        """Steps are not reported; only epochs carry a validation value."""

    def epoch_end(self, end: EpochEnd) -> None:
        if not end.metrics:
            raise DialogtuneError(NO_VALIDATION)
        if self.objective.improved(end.metrics, self.best):
            self.best = end.metrics
        self.trial.report(end.metrics[self.objective.metric], end.epoch)
        if self.trial.should_prune():
            raise StopTraining(f"pruned after epoch {end.epoch}")


@dataclass
class TuneJob:
    """What every trial shares: the task, the user's settings, the output folder."""

    task: object
    base: RunConfig
    output: Path
    strategies: list[str]

    def trial_folder(self, number: int) -> Path:
        return self.output / "trials" / str(number)

    def objective(self, trial) -> float:
        """Train one trial's settings; its value is its best epoch's objective metric."""
        import optuna

        from ..pipeline import train_run

        settings = space.suggest(trial, self.base, self.task.model_kind, self.strategies)
        trial.set_user_attr("settings", settings)
        folder = self.trial_folder(trial.number)
        if folder.exists():  # left by an earlier study in this folder (numbers repeat)
            shutil.rmtree(folder)
        report = PruningReport(trial, self.task.objective)
        try:
            train_run(space.apply(self.base, settings, str(folder)), callbacks=[report])
        except StopTraining as exc:
            raise optuna.TrialPruned(str(exc)) from None
        finally:  # optimizer state is only for resuming: a trial is never resumed
            shutil.rmtree(RunDir(folder).checkpoint.path, ignore_errors=True)
        return report.best[self.task.objective.metric]


def tune(task_name: str, data: str, trials: int, output: Path, storage: str | None = None,
         eval_data: str | None = None, strategies: list[str] | None = None,
         study_name: str | None = None, overrides: list[str] = (), seed: int = 42,
         pruner=None) -> dict:
    """Run (or continue) the study until ``trials`` trials completed or were pruned; write
    ``best.yaml``, ``tune.json`` and the history plot into ``output``; return the summary."""
    from ..tasks import get_task

    if trials < 1:
        raise ConfigError("--trials must be at least 1")
    task = get_task(task_name)
    base = load_config(None, list(overrides), task=task_name,
                       **{"data.train": data, "data.eval": eval_data})
    if not base.data.eval and base.resolved().data.val_fraction == 0:
        raise ConfigError(NO_VALIDATION)
    if not base.data.eval and base.data.val_fraction is None:
        # a trial is scored on its validation split, however little the data (intent runs
        # below 8 utterances per intent would otherwise train on everything)
        base.data.val_fraction = DEFAULT_VAL_FRACTION
    output.mkdir(parents=True, exist_ok=True)
    storage = storage or f"sqlite:///{output / 'tune.db'}"
    study = open_study(storage, study_name or output.resolve().name, task.objective, seed,
                       pruner)
    job = TuneJob(task, base, output, strategies or [base.resolved().strategy.name])
    run_trials(study, job, trials)
    return write_results(study, job, storage)


def open_study(storage_url: str, name: str, objective: Objective, seed: int, pruner=None):
    """Create or load the study; interrupted trials are marked failed and queued again."""
    import optuna

    storage = optuna.storages.RDBStorage(storage_url)
    direction = "maximize" if objective.higher_is_better else "minimize"
    study = optuna.create_study(
        storage=storage, study_name=name, load_if_exists=True, direction=direction,
        pruner=pruner or optuna.pruners.MedianPruner(
            n_startup_trials=PRUNER_STARTUP_TRIALS, n_warmup_steps=PRUNE_FROM_EPOCH))
    if study.direction.name.lower() != direction:
        raise ConfigError(f"study '{name}' in {storage_url} was made to "
                          f"{study.direction.name.lower()}, this task's metric to {direction}")
    # TPE's random start would draw the first trials' settings again from the same seed
    study.sampler = optuna.samplers.TPESampler(seed=seed + len(study.trials))
    retry_failed(study, storage)
    return study


def retry_failed(study, storage) -> None:
    """Trials still RUNNING (their process was killed) are marked failed; each failed trial
    that is not itself a retry is queued once more with its settings."""
    from optuna.trial import TrialState

    study_id = storage.get_study_id_from_name(study.study_name)
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, trial.number)
        storage.set_trial_state_values(trial_id, TrialState.FAIL)
    trials = study.get_trials(deepcopy=False)
    retried = {t.user_attrs.get("retry_of") for t in trials}
    for trial in trials:
        if (trial.state == TrialState.FAIL and trial.params and trial.number not in retried
                and "retry_of" not in trial.user_attrs):
            log.info("trial %d failed or was interrupted: queued again", trial.number)
            study.enqueue_trial(trial.params, user_attrs={"retry_of": trial.number})


def run_trials(study, job: TuneJob, trials: int) -> None:
    """One trial at a time until enough count. A failed trial (bad settings) is logged and
    the search goes on, unless none has succeeded yet (bad input fails every trial) or as
    many failed as were asked for."""
    failures = 0
    while counted(study) < trials:
        try:
            study.optimize(job.objective, n_trials=1)
        except DialogtuneError as exc:
            failures += 1
            if not counted(study) or failures >= trials:
                raise
            log.warning("trial failed: %s", exc)
