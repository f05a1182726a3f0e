"""``modeltel show`` on an Optuna study a real app ran: the best iteration is the best trial's number."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from otlp_files import base_env
from reading_data import modeltel

pytest.importorskip("optuna")

APP = """
import optuna
import modeltel
from modeltel import calibration
from modeltel.integrations.optuna import OptunaCallback

optuna.logging.set_verbosity(optuna.logging.ERROR)
modeltel.configure(service_name="study")
values = [5.0, 3.0, 1.0, None, 4.0]  # trial 2 is the best; trial 3 fails


def objective(trial):
    value = values[trial.number]
    if value is None:
        raise ValueError("diverged")
    return value


study = optuna.create_study()
with calibration.job("fit", algorithm="tpe", max_iterations=5) as job:
    study.optimize(objective, n_trials=5, callbacks=[OptunaCallback(job)], catch=(ValueError,))
assert study.best_trial.number == 2
"""


def test_best_iteration_is_the_best_trials_number(tmp_path: Path) -> None:
    data = tmp_path / "data"
    ran = subprocess.run(
        [sys.executable, "-c", APP], env=base_env(data), capture_output=True, text=True, timeout=120
    )
    assert ran.returncode == 0, ran.stderr
    shown = modeltel("show", "--data-dir", str(data))
    assert shown.returncode == 0, shown.stderr
    (job,) = json.loads(modeltel("show", "--data-dir", str(data), "--format", "json").stdout)["jobs"]
    assert job["calibration"]["best_loss"] == 1.0
    assert "best loss 1 at iteration 2, after 3 of 5 iterations (minimize)" in shown.stdout, shown.stdout
