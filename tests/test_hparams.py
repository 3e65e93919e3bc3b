"""One list of hyperparameters (TrainConfig) and the one check of notebook parameters."""
from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path

import nbformat
import pytest

from xlt_helpers import hparams
from xlt_helpers.hparams import (HPARAMS, PHASE_HPARAMS, ParameterError, TrainConfig, injected_names,
                                 notebook_param_names, notebook_params, resolve_learning_rate, validate_params)
from xlt_helpers.profiles import load_profile

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
PHASE_NOTEBOOK = {"intermediate": "01_intermediate.ipynb", "target": "02_target.ipynb"}


def parameters_cell(phase: str) -> dict:
    """name -> default of the notebook's ``parameters`` cell, executed as papermill would."""
    nb = nbformat.read(NOTEBOOKS / PHASE_NOTEBOOK[phase], as_version=4)
    (cell,) = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    ns: dict = {}
    exec(cell.source, ns)
    return {k: v for k, v in ns.items() if not k.startswith("__")}


def first_code_cell(phase: str) -> str:
    nb = nbformat.read(NOTEBOOKS / PHASE_NOTEBOOK[phase], as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    return code[1].source


# ------------------------------------------------------------------ one list
def test_trainconfig_is_the_only_list_of_hyperparameters():
    assert list(HPARAMS) == [f.name for f in fields(TrainConfig)]
    assert set(PHASE_HPARAMS) == set(HPARAMS) - {"seed", "trim_vocab"}
    smoke = load_profile("smoke")
    # profiles take every phase hyperparameter, defaults from TrainConfig where the file names none
    assert set(smoke.intermediate.hparams) == set(PHASE_HPARAMS)
    assert set(smoke.target["mlqa"].hparams) == set(PHASE_HPARAMS)
    assert set(smoke.target["xnli"].hparams) == set(PHASE_HPARAMS) - {"doc_stride", "max_answer_length"}
    assert smoke.intermediate.weight_decay == TrainConfig().weight_decay == 0.0
    assert smoke.target["xnli"].eval_batch_size == TrainConfig().eval_batch_size == 32


@pytest.mark.parametrize("phase", ["intermediate", "target"])
def test_notebooks_list_every_parameter_and_take_them_through_the_helper(phase):
    defaults = parameters_cell(phase)
    assert list(defaults) == notebook_param_names(phase)         # every parameter, with a runnable default
    assert validate_params(phase, defaults) == defaults         # the defaults pass their own check
    src = first_code_cell(phase)
    assert f'params = notebook_params("{phase}", globals())' in src
    assert "hparams = dict(" not in src and "learning_rate=" not in src   # no retyped list of names


def test_null_learning_rate_is_resolved_in_one_place():
    assert resolve_learning_rate(None, "e5-L3") == 2e-4 and resolve_learning_rate(3e-5, "e5-L3") == 3e-5
    assert TrainConfig.from_params({"learning_rate": None, "batch_size": 4, "train_n": 9}) == TrainConfig(batch_size=4)


# ------------------------------------------------------------------ validation
GOOD = {"model": "tiny-xlmr", "task": "sst2", "seed": 0, "train_n": 64, "dev_n": 32, "init_from": "",
        "out_dir": "x", "epochs": 1.0, "max_steps": 4, "batch_size": 8, "learning_rate": None}


@pytest.mark.parametrize("name, value, says", [
    ("batch_size", 0, "expected an integer >= 1, got 0"),
    ("epochs", -1, "expected a number > 0, got -1"),
    ("max_steps", -3, "expected an integer >= 1, got -3 (or null for no step cap)"),
    ("learning_rate", "fast", "expected a number, got 'fast' (str)"),
    ("seed", 1.5, "expected an integer >= 0, got 1.5 (float)"),
    ("freeze_word_embeddings", "yes", "expected true or false"),
    ("weight_decay", -0.1, "expected a number >= 0, got -0.1"),
    ("model", "xlmr-huge", "unknown model 'xlmr-huge'; allowed: "),
    ("task", "xquad", "unknown intermediate task 'xquad'"),     # xquad has no train split
])
def test_bad_values_name_the_parameter(name, value, says):
    with pytest.raises(ParameterError) as e:
        validate_params("intermediate", {**GOOD, name: value})
    assert str(e.value).startswith(f"parameter {name}: ") and says in str(e.value), str(e.value)


def test_unknown_parameter_is_an_error_listing_the_allowed_ones():
    with pytest.raises(ParameterError) as e:
        validate_params("target", {"model": "tiny-xlmr", "bacth_size": 4})
    msg = str(e.value)
    assert "'bacth_size'" in msg and "batch_size" in msg and "eval_langs" in msg
    with pytest.raises(ParameterError, match="'eval_n'"):          # phase 1 takes dev_n, not eval_n
        validate_params("intermediate", {"eval_n": 4})
    assert validate_params("target", {"learning_rate": "1e-5"}) == {"learning_rate": 1e-5}   # as profiles read YAML


def test_injected_names_reads_papermills_parameters_cell():
    history = ["", "model = 'tiny-xlmr'\nseed = 0", "# Parameters\nseed = 1\nbacth_size = 4\n", "params = 1"]
    assert injected_names(history) == ["seed", "bacth_size"]
    assert injected_names(["model = 1"]) == []                   # Run All in JupyterLab: nothing injected


def test_notebook_params_from_a_namespace():
    ns = {**parameters_cell("intermediate"), "In": ["...", "# Parameters\nbatch_size = 2\n"], "get_model": print}
    ns["batch_size"] = 2
    out = notebook_params("intermediate", ns)
    assert out["batch_size"] == 2 and "init_from" not in out and out["model"] == "tiny-xlmr"
    ns["In"].append("# Parameters\nbatch_size = 2\nbacth_size = 4\n")
    ns["bacth_size"] = 4
    with pytest.raises(ParameterError, match="unknown parameter.*'bacth_size'"):
        notebook_params("intermediate", ns)


# ------------------------------------------------------------------ through papermill
def _papermill(phase: str, out: Path, **parameters):
    import papermill as pm

    return pm.execute_notebook(str(NOTEBOOKS / PHASE_NOTEBOOK[phase]), str(out), parameters=parameters,
                               progress_bar=False, kernel_name="python3")


@pytest.mark.parametrize("phase, parameters, says", [
    ("intermediate", {"bacth_size": 4}, "unknown parameter(s) 'bacth_size'"),
    ("target", {"batch_size": 0}, "parameter batch_size: expected an integer >= 1, got 0"),
])
def test_papermill_stops_on_a_bad_parameter_naming_it(tmp_path, phase, parameters, says):
    from papermill.exceptions import PapermillExecutionError

    with pytest.raises(PapermillExecutionError) as e:
        _papermill(phase, tmp_path / "out.ipynb", out_dir=str(tmp_path / "run"), **parameters)
    assert e.value.ename == "ParameterError" and says in e.value.evalue, e.value.evalue
    assert not (tmp_path / "run" / "metrics.json").exists()          # stopped before training


@pytest.mark.slow
@pytest.mark.shared_data
def test_papermill_runs_a_tiny_node_with_validated_parameters(tmp_path):
    _papermill("intermediate", tmp_path / "out.ipynb", out_dir=str(tmp_path / "run"), max_steps=2,
               weight_decay=0.01, learning_rate="2e-3")
    m = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert m["config"]["weight_decay"] == 0.01 and m["config"]["learning_rate"] == 0.002
    assert m["train"]["steps"] == 2 and m["data_files"] == ["english/sst2/train.jsonl", "english/sst2/dev.jsonl"]
