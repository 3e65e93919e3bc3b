"""Profiles: the committed ones validate; broken ones fail with file, field and allowed values."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from xlt_helpers.models import MODELS
from xlt_helpers.profiles import (ProfileError, apply_overrides, available_profiles, load_profile,
                                  validate_profile)
from xlt_helpers.tasks import TASKS

BASE = {
    "name": "t",
    "models": ["tiny-xlmr", "tiny-mt5"],
    "intermediate_tasks": ["none", "sst2", "udpos"],
    "seq2seq_intermediate_tasks": ["none", "sst2"],
    "targets": ["xnli", "mlqa"],
    "seeds": [0, 1],
    "intermediate": {"train_n": 64, "dev_n": 32, "epochs": 1, "max_steps": 4, "batch_size": 8,
                     "learning_rate": None, "max_length": 128, "warmup_ratio": 0.1},
    "target": {
        "xnli": {"train_n": 64, "eval_n": 32, "eval_langs": "all", "epochs": 1, "max_steps": 4, "batch_size": 8,
                 "learning_rate": None, "max_length": 128, "warmup_ratio": 0.1},
        "mlqa": {"train_n": 32, "eval_n": 16, "eval_langs": "all", "epochs": 1, "max_steps": 4, "batch_size": 8,
                 "learning_rate": None, "max_length": 192, "doc_stride": 64, "warmup_ratio": 0.1},
    },
    "trim_vocab": True,
    "resources": {"num_cpus": 1, "num_gpus": 0},
}


def write(tmp_path: Path, raw: dict, name: str = "p.yml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def edited(**changes) -> dict:
    """BASE with dotted-path changes applied (value None deletes nothing: use a sentinel to delete)."""
    return apply_overrides(BASE, [f"{k.replace('__', '.')}={yaml.safe_dump(v, default_flow_style=True).strip()}"
                                  for k, v in changes.items()])


def error_of(tmp_path: Path, raw: dict) -> str:
    path = write(tmp_path, raw)
    with pytest.raises(ProfileError) as e:
        load_profile(path)
    msg = str(e.value)
    assert str(path) in msg, msg     # every message names the file
    return msg


@pytest.mark.parametrize("name", ["smoke", "cpu", "full", "gpu"])
def test_committed_profiles_validate(name):
    p = load_profile(name)
    assert p.name == name
    assert all(m in MODELS for m in p.models)
    assert set(p.seq2seq_intermediate_tasks) <= set(p.intermediate_tasks)
    assert name in available_profiles()


def test_committed_profiles_follow_the_brief():
    cpu, full, smoke = load_profile("cpu"), load_profile("full"), load_profile("smoke")
    # issue 4's breadth for the cpu profile as issue 16's floors narrowed it: both offline ladders with
    # >= 2 sizes each counting those dropped with a measured reason (study.dropped), a baseline + >= 5
    # intermediate tasks, both targets, >= 2 seeds, results exported (the study runs in sittings)
    tried = dict.fromkeys([*cpu.models, *(d.model for d in cpu.study.dropped)])
    fams = [MODELS[m].family for m in tried]
    assert fams.count("encoder") >= 3 and fams.count("encoder-decoder") >= 2
    assert {MODELS[m].source for m in cpu.models} == {"e5"} and all(d.reason.strip() for d in cpu.study.dropped)
    assert cpu.intermediate_tasks[0] == "none" and len(cpu.intermediate_tasks) >= 6
    assert set(cpu.seq2seq_intermediate_tasks) <= set(cpu.intermediate_tasks) and "none" in cpu.seq2seq_intermediate_tasks
    assert set(cpu.targets) == {"xnli", "mlqa"} and len(cpu.seeds) >= 2 and cpu.export_results
    assert not smoke.export_results, "the smoke grid never writes into the committed results/"
    assert {MODELS[m].source for m in smoke.models} == {"tiny"}
    assert full.intermediate.train_n is None and len(full.seeds) == 3 and full.resources.num_gpus == 1
    assert full.target["mlqa"].max_length == 384 and full.target["mlqa"].doc_stride == 128
    assert full.intermediate.for_task("squad")["max_length"] == 384
    assert full.intermediate.for_task("mnli")["max_length"] == 256


def test_full_profile_carries_the_x_stilts_recipe():
    """Phang et al. 2020 v1, Appendix A (../shared/published/README.md): target lr 3e-6, XNLI 4/2, MLQA 16/2;
    intermediate batch / epochs per task; mT5 keeps models.py's learning rates (the recipe is XLM-R's)."""
    from xlt_helpers.grid import intermediate_params, target_params
    full = load_profile("full")
    recipe = {"anli": (24, 2), "qqp": (24, 3), "squad": (8, 3), "commonsenseqa": (4, 10), "cosmosqa": (4, 15),
              "hellaswag": (24, 7)}
    for task, (batch, epochs) in recipe.items():
        s = full.intermediate.for_task(task)
        assert (s["batch_size"], s["epochs"], s["warmup_ratio"]) == (batch, epochs, 0.1), task
    for model in ("xlmr-base", "xlmr-large"):
        assert intermediate_params(full, model, "hellaswag", 0)["learning_rate"] == 1e-5
        xnli = target_params(full, model, "none", "xnli", 0)
        mlqa = target_params(full, model, "none", "mlqa", 0)
        assert (xnli["learning_rate"], xnli["batch_size"], xnli["epochs"]) == (3e-6, 4, 2)
        assert (mlqa["learning_rate"], mlqa["batch_size"], mlqa["epochs"]) == (3e-6, 16, 2)
    assert target_params(full, "mt5-small", "none", "xnli", 0)["learning_rate"] == MODELS["mt5-small"].learning_rate
    assert target_params(full, "mt5-xl", "none", "mlqa", 0)["learning_rate"] == MODELS["mt5-xl"].learning_rate


def test_gpu_profile_is_the_e5_ladders_on_full_data_and_never_a_default():
    gpu = load_profile("gpu")
    assert set(gpu.models) == {"e5-L3", "e5-L6", "e5-L12", "e5ed-L3", "e5ed-L6"} and len(gpu.seeds) == 3
    assert gpu.intermediate.train_n is None and all(t.train_n is None and t.eval_n is None
                                                    for t in gpu.target.values())
    assert gpu.target["xnli"].eval_langs == TASKS["xnli"].langs_for("dev")
    assert not gpu.export_results, "exports only where the script says (results/gpu), never into results/"
    from xlt_helpers.paths import repo_root
    make = (repo_root() / "Makefile").read_text()
    assert "PROFILE ?= cpu" in make and "gpu" not in make.split("PROFILE ?=")[1].splitlines()[0]


def test_valid_profile_resolves_all_langs(tmp_path):
    p = load_profile(write(tmp_path, BASE))
    assert p.target["xnli"].eval_langs == TASKS["xnli"].langs_for("dev")
    assert p.target["mlqa"].doc_stride == 64
    assert p.intermediate_tasks_for("tiny-mt5") == ("none", "sst2")
    assert p.intermediate_tasks_for("tiny-xlmr") == ("none", "sst2", "udpos")


def test_unknown_model_names_field_and_allowed(tmp_path):
    msg = error_of(tmp_path, edited(models=["tiny-xlmr", "xlmr-huge"]))
    assert "models[1]" in msg and "'xlmr-huge'" in msg
    assert "tiny-xlmr" in msg and "e5-L3" in msg          # the allowed values are listed


def test_unknown_key_top_level_and_nested(tmp_path):
    raw = dict(BASE, epochz=3)
    msg = error_of(tmp_path, raw)
    assert "field epochz" in msg and "allowed keys" in msg and "intermediate_tasks" in msg
    msg = error_of(tmp_path, edited(intermediate__lr=0.1))
    assert "field intermediate.lr" in msg and "learning_rate" in msg
    # doc_stride belongs to extractive-QA targets only
    msg = error_of(tmp_path, edited(target__xnli__doc_stride=64))
    assert "field target.xnli.doc_stride" in msg


def test_wrong_types(tmp_path):
    msg = error_of(tmp_path, edited(intermediate__batch_size="eight"))
    assert "field intermediate.batch_size" in msg and "integer" in msg and "'eight'" in msg
    msg = error_of(tmp_path, edited(seeds=0))
    assert "field seeds" in msg and "list" in msg
    msg = error_of(tmp_path, edited(trim_vocab="yes please"))
    assert "field trim_vocab" in msg and "true or false" in msg
    msg = error_of(tmp_path, edited(target__mlqa__warmup_ratio=1.5))
    assert "field target.mlqa.warmup_ratio" in msg and "<= 1" in msg
    msg = error_of(tmp_path, edited(intermediate__train_n=True))   # bools are not counts
    assert "field intermediate.train_n" in msg and "null" in msg


def test_unknown_language(tmp_path):
    msg = error_of(tmp_path, edited(target__mlqa__eval_langs=["en", "bg"]))   # bg is XNLI-only
    assert "field target.mlqa.eval_langs[1]" in msg and "'bg'" in msg
    for lang in TASKS["mlqa"].langs_for("dev"):
        assert lang in msg


def test_unknown_tasks_and_subsets(tmp_path):
    msg = error_of(tmp_path, edited(intermediate_tasks=["none", "xquad"]))     # xquad has no train split
    assert "intermediate_tasks[1]" in msg and "'xquad'" in msg and "sst2" in msg
    msg = error_of(tmp_path, edited(targets=["xnli", "sst2"]))                # sst2 is not a target
    assert "targets[1]" in msg and "mlqa" in msg
    msg = error_of(tmp_path, edited(seq2seq_intermediate_tasks=["none", "hellaswag"]))
    assert "seq2seq_intermediate_tasks[1]" in msg and "subset of intermediate_tasks" in msg
    msg = error_of(tmp_path, edited(model_intermediate_tasks={"tiny-xlmr": ["none", "hellaswag"]}))
    assert "model_intermediate_tasks.tiny-xlmr[1]" in msg and "'hellaswag'" in msg and "udpos" in msg
    msg = error_of(tmp_path, edited(model_intermediate_tasks={"e5-L12": ["none"]}))
    assert "model_intermediate_tasks.e5-L12" in msg and "tiny-mt5" in msg
    raw = apply_overrides(BASE, [])
    del raw["target"]["mlqa"]
    msg = error_of(tmp_path, raw)
    assert "field target" in msg and "mlqa" in msg and "missing" in msg


def test_model_intermediate_tasks_narrow_one_model_only(tmp_path):
    from xlt_helpers.grid import build_grid
    p = load_profile(write(tmp_path, edited(model_intermediate_tasks={"tiny-xlmr": ["none", "udpos"]})))
    assert p.intermediate_tasks_for("tiny-xlmr") == ("none", "udpos")
    assert p.intermediate_tasks_for("tiny-mt5") == ("none", "sst2")          # the seq2seq subset still applies
    tasks = {(n.params["model"], n.params["intermediate"]) for n in build_grid(p) if n.phase == "target"}
    assert tasks == {("tiny-xlmr", "none"), ("tiny-xlmr", "udpos"), ("tiny-mt5", "none"), ("tiny-mt5", "sst2")}


def test_yaml_float_strings_are_numbers(tmp_path):
    path = tmp_path / "p.yml"
    path.write_text(yaml.safe_dump(BASE).replace("learning_rate: null", "learning_rate: 1e-5", 1))
    p = load_profile(path)
    rates = [p.intermediate.learning_rate, p.target["mlqa"].learning_rate, p.target["xnli"].learning_rate]
    assert 1e-5 in rates


def test_set_overrides_are_applied_and_revalidated(tmp_path):
    path = write(tmp_path, BASE)
    p = load_profile(path, ["seeds=[0]", "target.xnli.train_n=500", "target.xnli.eval_langs=[de, en]",
                            "intermediate.per_task.udpos.max_length=64"])
    assert p.seeds == (0,)
    assert p.target["xnli"].train_n == 500 and p.target["xnli"].eval_langs == ("de", "en")
    assert p.intermediate.for_task("udpos")["max_length"] == 64
    assert p.intermediate.for_task("sst2")["max_length"] == 128
    assert BASE["seeds"] == [0, 1]                        # the raw mapping is not mutated
    with pytest.raises(ProfileError) as e:
        load_profile(path, ["target.xnli.train_n=lots"])
    assert "target.xnli.train_n" in str(e.value) and "--set" in str(e.value)
    with pytest.raises(ProfileError, match="key=value"):
        load_profile(path, ["seeds"])
    with pytest.raises(ProfileError, match="not a mapping"):
        load_profile(path, ["seeds.first=1"])


def test_unknown_profile_name_lists_available():
    with pytest.raises(ProfileError) as e:
        load_profile("no-such-profile")
    assert "smoke" in str(e.value) and "cpu" in str(e.value)


def test_validate_profile_rejects_non_mapping():
    with pytest.raises(ProfileError, match="src.yml: top level"):
        validate_profile(["not", "a", "mapping"], "src.yml")


def test_model_targets_narrow_one_model_only(tmp_path):
    from xlt_helpers.grid import build_grid
    p = load_profile(write(tmp_path, edited(model_targets={"tiny-mt5": ["xnli"]})))
    assert p.targets_for("tiny-mt5") == ("xnli",) and p.targets_for("tiny-xlmr") == p.targets
    pairs = {(n.params["model"], n.params["target"]) for n in build_grid(p) if n.phase == "target"}
    assert ("tiny-mt5", "mlqa") not in pairs and {("tiny-mt5", "xnli"), ("tiny-xlmr", "mlqa")} <= pairs
    msg = error_of(tmp_path, edited(model_targets={"tiny-mt5": ["xquad"]}))
    assert "model_targets.tiny-mt5[0]" in msg and "'xquad'" in msg and "mlqa" in msg
    msg = error_of(tmp_path, edited(model_targets={"e5-L12": ["xnli"]}))
    assert "model_targets.e5-L12" in msg and "tiny-mt5" in msg


def test_target_per_model_overrides_move_only_that_models_runs(tmp_path):
    from xlt_helpers.grid import build_grid
    plain = {n.id: n for n in build_grid(load_profile(write(tmp_path, BASE)))}
    p = load_profile(write(tmp_path, edited(target__xnli__per_model={"tiny-mt5": {"learning_rate": 1e-4}})))
    assert p.target["xnli"].for_model("tiny-mt5")["learning_rate"] == 1e-4
    assert p.target["xnli"].for_model("tiny-xlmr") == p.target["xnli"].for_model("not-listed")
    grid = build_grid(p)
    moved = {n.id for n in grid if n.id not in plain}
    assert moved and all(n.params["model"] == "tiny-mt5" and n.params["target"] == "xnli"
                         and n.params["learning_rate"] == 1e-4 for n in grid if n.id in moved)
    assert all(n.id in plain for n in grid if not (n.params["model"] == "tiny-mt5" and n.params.get("target") == "xnli"))
    msg = error_of(tmp_path, edited(target__xnli__per_model={"e5-L12": {"learning_rate": 1e-4}}))
    assert "target.xnli.per_model.e5-L12" in msg and "tiny-mt5" in msg
    msg = error_of(tmp_path, edited(target__xnli__per_model={"tiny-mt5": {"eval_langs": ["en"]}}))
    assert "eval_langs" in msg
    msg = error_of(tmp_path, edited(target__xnli__per_model={"tiny-mt5": {"learning_rate": -1}}))
    assert "target.xnli.per_model.tiny-mt5.learning_rate" in msg


def test_precisions_are_validated_with_the_allowed_values(tmp_path):
    msg = error_of(tmp_path, edited(target__xnli__precision="fp16"))
    assert "field target.xnli.precision" in msg and "'fp16'" in msg and "fp32, bf16" in msg
    msg = error_of(tmp_path, edited(intermediate__eval_precision="int4"))
    assert "field intermediate.eval_precision" in msg and "fp32, bf16, bf16-fp32head, int8" in msg


def test_precision_lists_are_the_trainers():
    """The allowed values are listed once, in hparams (torch-free); the trainer checks the same lists."""
    from xlt_helpers import hparams, train
    assert train.PRECISIONS is hparams.PRECISIONS == ("fp32", "bf16")
    assert train.EVAL_PRECISIONS is hparams.EVAL_PRECISIONS == ("fp32", "bf16", "bf16-fp32head", "int8")


def test_memory_levers_default_off_and_are_checked(tmp_path):
    p = load_profile(write(tmp_path, BASE))
    assert p.intermediate.for_task("sst2")["gradient_accumulation_steps"] == 1
    assert p.target["xnli"].for_model("tiny-xlmr")["gradient_checkpointing"] is False
    p = load_profile(write(tmp_path, edited(intermediate__gradient_accumulation_steps=4,
                                            target__mlqa__per_model={"tiny-mt5": {"gradient_checkpointing": True}})))
    assert p.intermediate.for_task("udpos")["gradient_accumulation_steps"] == 4
    assert p.target["mlqa"].for_model("tiny-mt5")["gradient_checkpointing"] is True
    assert p.target["mlqa"].for_model("tiny-xlmr")["gradient_checkpointing"] is False
    msg = error_of(tmp_path, edited(intermediate__gradient_accumulation_steps=0))
    assert "field intermediate.gradient_accumulation_steps" in msg and ">= 1" in msg
    msg = error_of(tmp_path, edited(target__xnli__gradient_checkpointing="yes"))
    assert "field target.xnli.gradient_checkpointing" in msg and "true or false" in msg


def test_intermediate_per_model_overrides_move_only_that_models_phase1_runs(tmp_path):
    from xlt_helpers.grid import build_grid
    plain = {n.id for n in build_grid(load_profile(write(tmp_path, BASE)))}
    p = load_profile(write(tmp_path, edited(intermediate__per_model={"tiny-mt5": {"gradient_checkpointing": True}})))
    assert p.intermediate.for_task("sst2", "tiny-mt5")["gradient_checkpointing"] is True
    assert p.intermediate.for_task("sst2", "tiny-xlmr")["gradient_checkpointing"] is False
    moved = [n for n in build_grid(p) if n.id not in plain]
    assert moved and all(n.params["model"] == "tiny-mt5" and (n.phase == "intermediate" or n.deps) for n in moved)
    msg = error_of(tmp_path, edited(intermediate__per_model={"e5-L12": {"batch_size": 4}}))
    assert "intermediate.per_model.e5-L12" in msg and "tiny-mt5" in msg
    msg = error_of(tmp_path, edited(intermediate__per_model={"tiny-mt5": {"dev_n": 4}}))
    assert "intermediate.per_model.tiny-mt5.dev_n" in msg


# ------------------------------------------------------------------ max_length vs the model's positions
def test_max_positions_come_from_the_models_configs():
    """e5-small is a BERT with 512 positions; XLM-R's 514-row table starts position ids at padding_idx + 1 = 2."""
    from xlt_helpers.backbones import tiny_xlmr_config
    cfg = tiny_xlmr_config()
    assert MODELS["tiny-xlmr"].max_positions == cfg.max_position_embeddings - (cfg.pad_token_id + 1) == 514 - 2
    assert MODELS["tiny-mt5"].max_positions is None and MODELS["mt5-base"].max_positions is None  # relative buckets
    assert MODELS["xlmr-base"].max_positions == 512
    try:
        from xlt_helpers.e5_offline import e5_bin_file, read_e5_bin
        header = read_e5_bin(e5_bin_file()).header
    except (FileNotFoundError, ImportError, ModuleNotFoundError) as e:
        pytest.skip(f"offline e5 weights not installed ({e})")
    assert all(MODELS[m].max_positions == header.max_positions == 512
               for m in MODELS if MODELS[m].source == "e5")


def test_max_length_beyond_the_models_positions_is_a_profile_error(tmp_path):
    msg = error_of(tmp_path, edited(intermediate__max_length=600))
    assert "field intermediate.max_length: 600 is more than the 512 token positions of model 'tiny-xlmr'" in msg
    assert "use at most 512" in msg
    msg = error_of(tmp_path, edited(target__mlqa__per_model={"tiny-xlmr": {"max_length": 513}}))
    assert "field target.mlqa.per_model.tiny-xlmr.max_length: 513 is more than the 512" in msg
    msg = error_of(tmp_path, edited(intermediate__per_task={"udpos": {"max_length": 1024}}))
    assert "field intermediate.per_task.udpos.max_length: 1024" in msg
    msg = error_of(tmp_path, edited(intermediate__per_model={"tiny-xlmr": {"max_length": 520}}))
    assert "field intermediate.per_model.tiny-xlmr.max_length: 520 is more than the 512" in msg
    # exactly the table fits; a model with relative positions (mT5) has no limit
    assert validate_profile(edited(intermediate__max_length=512, target__xnli__max_length=512))
    only_mt5 = edited(models=["tiny-mt5"], intermediate__max_length=2048, target__xnli__max_length=1024,
                      target__mlqa__max_length=1024)
    assert validate_profile(only_mt5).intermediate.max_length == 2048


def test_every_trainconfig_field_is_a_profile_setting_with_its_default(tmp_path):
    """The phase settings are TrainConfig's fields (hparams.PHASE_HPARAMS): a field the file does not
    name takes TrainConfig's default, one it names is checked by the same checker the notebooks use."""
    from xlt_helpers.hparams import TrainConfig

    p = load_profile(write(tmp_path, BASE))
    assert (p.intermediate.weight_decay, p.intermediate.freeze_word_embeddings, p.intermediate.eval_batch_size,
            p.target["mlqa"].max_answer_length) == (0.0, True, 32, 30) == (
        TrainConfig.weight_decay, TrainConfig.freeze_word_embeddings, TrainConfig.eval_batch_size,
        TrainConfig.max_answer_length)
    p = load_profile(write(tmp_path, edited(intermediate__weight_decay=0.01, target__mlqa__max_answer_length=20,
                                            target__xnli__per_model={"tiny-xlmr": {"freeze_word_embeddings": False}})))
    assert p.intermediate.for_task("sst2")["weight_decay"] == 0.01
    assert p.target["mlqa"].for_model("tiny-xlmr")["max_answer_length"] == 20
    assert p.target["xnli"].for_model("tiny-xlmr")["freeze_word_embeddings"] is False
    msg = error_of(tmp_path, edited(intermediate__weight_decay=-1))
    assert "field intermediate.weight_decay" in msg and "expected a number >= 0, got -1" in msg
    msg = error_of(tmp_path, edited(target__xnli__eval_batch_size=0))
    assert "field target.xnli.eval_batch_size" in msg and "integer >= 1" in msg
    msg = error_of(tmp_path, edited(target__xnli__max_answer_length=20))     # extractive QA only
    assert "field target.xnli.max_answer_length" in msg and "unknown key" in msg


def test_cpu_follows_issue_16():
    """The decisive study's shape (issue 16): >= 2 encoder sizes with >= 5 intermediate tasks each, X-STILTs'
    four shared tasks among them, the other sizes >= 3; full evaluation sets; three seeds; exported."""
    p = load_profile("cpu")
    tasks = {m: [t for t in p.intermediate_tasks_for(m) if t != "none"] for m in p.models}
    encoders = [m for m in p.models if MODELS[m].family == "encoder" and len(tasks[m]) >= 5]
    assert len(encoders) >= 2 and all(len(t) >= 3 for t in tasks.values())
    for m in encoders:
        assert {"squad", "hellaswag", "commonsenseqa", "cosmosqa"} <= set(tasks[m])
    assert all(p.target[t].eval_n is None for t in p.targets), "full dev sets"
    assert tuple(p.seeds) == (0, 1, 2) and p.export_results
    # issue 16's floors and budget are the profile's, and every (model, target) out of the grid says why
    assert p.study.floors == {"xnli": 55, "mlqa": 35} and p.study.budget_hours == 12
    dropped = {(d.model, t) for d in p.study.dropped for t in d.targets}
    assert {("e5-L3", "xnli"), ("e5ed-L3", "xnli"), ("e5-L6", "mlqa"), ("e5ed-L6", "mlqa")} <= dropped


def test_study_terms_are_checked_and_leave_run_ids_alone(tmp_path):
    from xlt_helpers.grid import build_grid
    terms = {"budget_hours": 2.5, "floors": {"xnli": 55, "mlqa": 35},
             "dropped": [{"model": "e5-L3", "targets": ["xnli"], "reason": "English 51.0 on the whole split"}]}
    p = load_profile(write(tmp_path, {**BASE, "study": terms}))
    assert p.study.budget_hours == 2.5 and p.study.floors == {"xnli": 55.0, "mlqa": 35.0}
    assert [(d.model, d.targets, d.reason) for d in p.study.dropped] == [("e5-L3", ("xnli",), "English 51.0 on the whole split")]
    plain = load_profile(write(tmp_path, BASE, "plain.yml"))
    assert plain.study.floors == {} and plain.study.dropped == () and plain.study.budget_hours is None
    assert [n.id for n in build_grid(p)] == [n.id for n in build_grid(plain)]
    msg = error_of(tmp_path, {**BASE, "study": {**terms, "floors": {"xquad": 50}}})
    assert "study.floors.xquad" in msg and "xnli, mlqa" in msg
    msg = error_of(tmp_path, {**BASE, "study": {**terms, "floors": {"xnli": 155}}})
    assert "study.floors.xnli" in msg and "155" in msg
    msg = error_of(tmp_path, {**BASE, "study": {**terms, "dropped": [{"model": "tiny-mt5", "targets": ["mlqa"],
                                                                     "reason": "no"}]}})
    assert "study.dropped[0]" in msg and "tiny-mt5 x mlqa is in the grid" in msg
    msg = error_of(tmp_path, {**BASE, "study": {**terms, "dropped": [{"model": "e5-L3", "targets": ["xnli"],
                                                                     "reason": "  "}]}})
    assert "study.dropped[0].reason" in msg and "empty" in msg
    msg = error_of(tmp_path, {**BASE, "study": {**terms, "dropped": [{"model": "e5-L99", "targets": ["xnli"],
                                                                     "reason": "x"}]}})
    assert "study.dropped[0].model" in msg and "e5-L99" in msg
    # time spent on nodes since replaced: counted by the budget, checked like the rest
    spent = {**terms, "retired": [{"nodes": 6, "machine_hours": 0.56, "reason": "trained on too few questions"}]}
    r = load_profile(write(tmp_path, {**BASE, "study": spent}, "spent.yml"))
    assert [(x.nodes, x.machine_hours, x.reason) for x in r.study.retired] == [(6, 0.56, "trained on too few questions")]
    assert [n.id for n in build_grid(r)] == [n.id for n in build_grid(plain)] and plain.study.retired == ()
    msg = error_of(tmp_path, {**BASE, "study": {**terms, "retired": [{"nodes": 0, "machine_hours": 1, "reason": "x"}]}})
    assert "study.retired[0].nodes" in msg and "got 0" in msg
    msg = error_of(tmp_path, {**BASE, "study": {**terms, "retired": [{"nodes": 2, "machine_hours": -1, "reason": "x"}]}})
    assert "study.retired[0].machine_hours" in msg and "-1" in msg
    msg = error_of(tmp_path, {**BASE, "study": {**terms, "retired": [{"nodes": 2, "machine_hours": 1, "reason": ""}]}})
    assert "study.retired[0].reason" in msg and "why the nodes were replaced" in msg
