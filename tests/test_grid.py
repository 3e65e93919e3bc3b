"""The grid DAG: shape, resolved params, stable content-addressed ids, --only selection."""
from __future__ import annotations

import json
import re

import pytest

from xlt_helpers import grid
from xlt_helpers.grid import Node, build_grid, dependents, run_id, select
from xlt_helpers.models import MODELS
from xlt_helpers.profiles import load_profile
from xlt_helpers.tasks import TASKS

ID_RE = re.compile(r"^p[12]-[A-Za-z0-9._-]+-s\d+-[0-9a-f]{10}$")


@pytest.fixture(scope="module")
def smoke_like():
    # the committed smoke profile with two seeds, so seeds matter in the shape
    return load_profile("smoke", ["seeds=[0, 1]"])


def test_shape_and_dependencies(smoke_like):
    nodes = build_grid(smoke_like, "/nb")
    p1 = [n for n in nodes if n.phase == "intermediate"]
    p2 = [n for n in nodes if n.phase == "target"]
    n_seeds, n_targets = len(smoke_like.seeds), len(smoke_like.targets)
    expect_p1 = sum(len([t for t in smoke_like.intermediate_tasks_for(m) if t != "none"]) for m in smoke_like.models)
    expect_p2 = sum(len(smoke_like.intermediate_tasks_for(m)) for m in smoke_like.models) * n_targets
    assert len(p1) == expect_p1 * n_seeds and len(p2) == expect_p2 * n_seeds
    assert nodes[: len(p1)] == p1                        # phase 1 first
    ids = {n.id for n in nodes}
    assert len(ids) == len(nodes)
    by_id = {n.id: n for n in nodes}
    for n in p2:
        if n.params["intermediate"] == "none":
            assert n.deps == []
        else:
            (dep,) = n.deps
            d = by_id[dep].params
            assert (d["model"], d["task"], d["seed"]) == (n.params["model"], n.params["intermediate"],
                                                          n.params["seed"])
    # encoder-decoders get the seq2seq subset only
    assert not [n for n in nodes if n.params["model"] == "tiny-mt5" and n.params.get("task") == "udpos"]
    assert all(n.notebook == "/nb/01_intermediate.ipynb" for n in p1)
    assert all(n.notebook == "/nb/02_target.ipynb" for n in p2)
    assert sorted(dependents(nodes)[p1[0].id]) == sorted(n.id for n in p2 if n.deps == [p1[0].id])


def test_params_are_resolved_and_json_able(smoke_like):
    nodes = build_grid(smoke_like)
    for n in nodes:
        assert ID_RE.match(n.id), n.id
        assert json.loads(json.dumps(n.to_json())) == n.to_json()
        assert Node.from_json(n.to_json()) == n
        p = n.params
        assert p["learning_rate"] == MODELS[p["model"]].learning_rate   # null -> the model's default
        assert p["trim_vocab"] is True
        if n.phase == "target":
            assert p["eval_langs"] == list(TASKS[p["target"]].langs_for("dev"))
            assert ("doc_stride" in p) == (p["target"] == "mlqa")
            assert {"train_n", "eval_n", "epochs", "max_steps", "batch_size", "max_length",
                    "warmup_ratio"} <= set(p)
        else:
            assert "doc_stride" not in p      # only extractive-QA tasks have one
            assert {"train_n", "dev_n", "epochs", "max_steps", "batch_size", "max_length", "warmup_ratio"} <= set(p)
    slug = {n.id.rsplit("-", 1)[0] for n in nodes}
    assert "p1-tiny-xlmr-sst2-s1" in slug and "p2-tiny-mt5-none-mlqa-s0" in slug


def test_ids_stable_and_shared_between_profiles(smoke_like):
    a = [n.id for n in build_grid(smoke_like)]
    b = [n.id for n in build_grid(load_profile("smoke", ["seeds=[0, 1]", "name=another",
                                                         "description=renamed"]))]
    assert a == b                                # same params -> same ids; the profile name is not hashed
    c = [n.id for n in build_grid(smoke_like, "/elsewhere")]
    assert a == c                                # the notebook location is not a result-changing param


def test_ids_change_with_any_param(smoke_like):
    base = {n.id: n for n in build_grid(smoke_like)}

    def changed(*overrides: str) -> set[str]:
        ids = {n.id for n in build_grid(load_profile("smoke", ["seeds=[0, 1]", *overrides]))}
        return set(base) - ids

    xnli_p2 = {i for i, n in base.items() if n.params.get("target") == "xnli"}
    assert changed("target.xnli.train_n=65") == xnli_p2
    assert changed("target.xnli.eval_langs=[en, de]") == xnli_p2
    # a phase-1 change re-ids phase 1 and every dependent, but not the no-intermediate baselines
    moved = changed("intermediate.warmup_ratio=0.2")
    assert moved == {i for i, n in base.items() if n.phase == "intermediate" or n.deps}
    assert changed("trim_vocab=false") == set(base)
    # null resolves to the model's default (1e-3 for the tiny models): writing it out changes nothing
    assert changed("intermediate.learning_rate=0.001") == set()
    assert changed("intermediate.learning_rate=0.002") == moved


def test_code_version_and_framework_versions_are_hashed(monkeypatch):
    params = {"model": "tiny-xlmr", "task": "sst2", "seed": 0}
    first = run_id("intermediate", params)
    assert run_id("intermediate", dict(params)) == first
    monkeypatch.setattr(grid, "CODE_VERSION", grid.CODE_VERSION + 1)
    assert run_id("intermediate", params) != first
    monkeypatch.undo()
    monkeypatch.setattr(grid, "framework_versions", lambda: {"torch": "9.9", "transformers": "9.9"})
    assert run_id("intermediate", params) != first
    with pytest.raises(ValueError, match="unknown phase"):
        run_id("pretraining", params)


def test_select_filters_and_includes_dependencies(smoke_like):
    nodes = build_grid(smoke_like)
    one = select(nodes, ["model=tiny-xlmr", "intermediate=sst2", "target=xnli", "seed=0"])
    assert [n.phase for n in one] == ["intermediate", "target"]           # its phase-1 dependency comes along
    assert one[0].id in one[1].deps
    globbed = select(nodes, ["p2-tiny-mt5-*-mlqa-s1-*"])
    assert {n.params.get("intermediate") for n in globbed if n.phase == "target"} == {"none", "sst2"}
    assert len([n for n in globbed if n.phase == "intermediate"]) == 1
    sub = select(nodes, ["udpos"])
    assert sub and all("udpos" in n.id for n in sub)
    assert select(nodes, []) == nodes
    assert select(nodes, ["model=nope"]) == []
    assert all(n.params["seed"] == 1 for n in select(nodes, ["seed=1"]))


def test_weight_recipe_is_hashed_only_where_a_model_has_one(monkeypatch):
    import dataclasses

    ed = {"model": "e5ed-L3", "task": "sst2", "seed": 0}
    enc = {"model": "e5-L3", "task": "sst2", "seed": 0}
    assert MODELS["e5ed-L3"].weight_recipe() == {"cross_attention_gain": 10.0}
    assert MODELS["e5-L3"].weight_recipe() == {}          # encoders' ids (and finished results) unchanged
    before_ed, before_enc = run_id("intermediate", ed), run_id("intermediate", enc)
    monkeypatch.setitem(MODELS, "e5ed-L3", dataclasses.replace(MODELS["e5ed-L3"], cross_attention_gain=5.0))
    assert run_id("intermediate", ed) != before_ed
    monkeypatch.setitem(MODELS, "e5ed-L3", dataclasses.replace(MODELS["e5ed-L3"], cross_attention_gain=None))
    assert run_id("intermediate", ed) not in {before_ed, run_id("intermediate", {**ed, "model": "e5ed-L6"})}
    assert run_id("intermediate", enc) == before_enc


def test_new_fields_at_their_historical_value_keep_committed_ids(smoke_like):
    """precision / eval_precision (issue 15) join the node params; at fp32 (what every committed node
    did) they are left out of the hash, so ids stay; any other value is hashed and moves the ids."""
    base = {n.id: n for n in build_grid(smoke_like)}
    assert all(n.params["precision"] == "fp32" and n.params["eval_precision"] == "fp32" for n in base.values())
    without = {k: v for k, v in next(iter(base.values())).params.items() if k not in grid.HASH_OMIT_DEFAULTS}
    node = next(iter(base.values()))
    assert run_id(node.phase, without, node.deps) == node.id, "the fp32 entries are not hashed"

    def changed(*overrides: str) -> set[str]:
        return set(base) - {n.id for n in build_grid(load_profile("smoke", ["seeds=[0, 1]", *overrides]))}

    xnli_p2 = {i for i, n in base.items() if n.params.get("target") == "xnli"}
    assert changed("target.xnli.precision=fp32", "target.xnli.eval_precision=fp32") == set()
    assert changed("target.xnli.precision=bf16") == xnli_p2
    assert changed("target.xnli.eval_precision=int8") == xnli_p2
    assert changed("intermediate.precision=bf16") == {i for i, n in base.items() if n.phase == "intermediate" or n.deps}


def test_memory_levers_enter_run_ids_only_when_not_at_their_historical_default(smoke_like):
    """gradient_accumulation_steps / gradient_checkpointing (grid.HASH_OMIT_DEFAULTS): at 1 / false a
    node keeps the id it had before the fields existed; any other value is a new node."""
    params = {"model": "tiny-xlmr", "task": "sst2", "seed": 0, "batch_size": 8}
    before = run_id("intermediate", params)
    assert run_id("intermediate", {**params, "gradient_accumulation_steps": 1,
                                   "gradient_checkpointing": False}) == before
    assert run_id("intermediate", {**params, "gradient_accumulation_steps": 4}) != before
    assert run_id("intermediate", {**params, "gradient_checkpointing": True}) != before
    base = build_grid(smoke_like)
    assert all(n.params["gradient_accumulation_steps"] == 1 and n.params["gradient_checkpointing"] is False
               for n in base)                    # papermill injects them, so the notebooks receive them
    accum = {n.id for n in build_grid(load_profile("smoke", ["seeds=[0, 1]",
                                                              "target.xnli.gradient_accumulation_steps=2"]))}
    xnli = {n.id for n in base if n.params.get("target") == "xnli"}
    assert {n.id for n in base} - accum == xnli


def test_torch_compile_enters_run_ids_only_when_set():
    """torch_compile (grid.HASH_OMIT_DEFAULTS): false keeps the id every committed node has; true is a new node
    (fused kernels round differently)."""
    params = {"model": "tiny-xlmr", "intermediate": "none", "target": "xnli", "seed": 0, "batch_size": 8}
    before = run_id("target", params)
    assert run_id("target", {**params, "torch_compile": False}) == before
    assert run_id("target", {**params, "torch_compile": True}) != before


def test_dropout_rng_enters_run_ids_only_when_not_torch():
    """dropout_rng (grid.HASH_OMIT_DEFAULTS): torch's masks keep the id every committed node has; pcg64's are
    other draws, so a new node."""
    params = {"model": "tiny-xlmr", "intermediate": "none", "target": "xnli", "seed": 0, "batch_size": 8}
    before = run_id("target", params)
    assert run_id("target", {**params, "dropout_rng": "torch"}) == before
    assert run_id("target", {**params, "dropout_rng": "pcg64"}) != before


# ------------------------------------------------------------------ every field hashed, committed ids kept
def _another(name, value):
    """A valid value of hyperparameter ``name`` different from ``value`` (its current one)."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, str):            # precision / eval_precision: fp32 -> bf16; torch -> pcg64
        return {"precision": "bf16", "eval_precision": "bf16", "dropout_rng": "pcg64"}[name]
    if value is None:                     # max_steps / learning_rate: null -> a number
        return 7 if name == "max_steps" else 0.0123
    return value + 1 if isinstance(value, int) else round(value + 0.01, 6)


def test_every_training_field_moves_the_run_id(smoke_like):
    """Each TrainConfig field in turn, changed in the profile, gives new ids to exactly the nodes it
    reaches; none is left out of the hash (issue 13.5)."""
    from xlt_helpers.hparams import HPARAMS, PHASE_HPARAMS, applies

    base = {n.id: n for n in build_grid(smoke_like)}
    mlqa = {i for i, n in base.items() if n.params.get("target") == "mlqa"}
    p1_and_deps = {i for i, n in base.items() if n.phase == "intermediate" or n.deps}
    for name in PHASE_HPARAMS:
        new = _another(name, smoke_like.target["mlqa"].hparams[name])
        ids = {n.id for n in build_grid(load_profile("smoke", ["seeds=[0, 1]", f"target.mlqa.{name}={new}"]))}
        assert set(base) - ids == mlqa, (name, new)
        if applies(name, "classification"):                       # the smoke grid's phase 1 is sst2/udpos
            new = _another(name, smoke_like.intermediate.hparams[name])
            ids = {n.id for n in build_grid(load_profile("smoke", ["seeds=[0, 1]", f"intermediate.{name}={new}"]))}
            assert set(base) - ids == p1_and_deps, (name, new)
    # the node-level fields of TrainConfig: seed is in the slug, trim_vocab a profile switch
    assert set(HPARAMS) - set(PHASE_HPARAMS) == {"seed", "trim_vocab"}
    assert {n.id for n in build_grid(load_profile("smoke", ["seeds=[0, 1]", "trim_vocab=false"]))}.isdisjoint(base)


def test_historical_defaults_are_left_out_of_the_hash():
    from xlt_helpers.grid import HASH_OMIT_DEFAULTS

    params = {"model": "tiny-xlmr", "task": "sst2", "seed": 0, "batch_size": 8}
    before = run_id("intermediate", params)            # a node made before these fields were passed
    assert run_id("intermediate", {**params, **HASH_OMIT_DEFAULTS}) == before
    assert run_id("intermediate", {**params, "weight_decay": 0}) == before          # 0 is 0.0
    assert run_id("intermediate", {**params, "freeze_word_embeddings": 1}) != before  # 1 is not True
    for name, value in HASH_OMIT_DEFAULTS.items():
        other = (not value) if isinstance(value, bool) else "bf16" if isinstance(value, str) else value + 1
        assert run_id("intermediate", {**params, name: other}) != before, name


def test_historical_defaults_are_what_every_committed_node_ran_with():
    """HASH_OMIT_DEFAULTS holds the values the committed nodes ran with (their metrics.json config),
    and they are TrainConfig's defaults, so a profile that names none of them keeps the committed ids."""
    from pathlib import Path

    from xlt_helpers.grid import HASH_OMIT_DEFAULTS
    from xlt_helpers.hparams import TrainConfig

    # added after the two-seed study, whose nodes did not record them (they stepped the optimizer once per
    # batch, kept their activations and ran fp32: transformers' own defaults); the committed decisive study
    # records them (bf16 by its profile), so here they are held to TrainConfig's defaults only; torch_compile
    # came after both studies (no node records it; every one trained uncompiled); so did dropout_rng (torch's masks)
    after_study = {"gradient_accumulation_steps", "gradient_checkpointing", "precision", "eval_precision",
                   "torch_compile", "dropout_rng"}
    nodes = sorted((Path(__file__).resolve().parents[1] / "results" / "nodes").glob("*/metrics.json"))
    assert len(nodes) >= 105
    for path in nodes:
        config = json.loads(path.read_text())["config"]
        assert {k: config[k] for k in HASH_OMIT_DEFAULTS if k not in after_study} == {
            k: v for k, v in HASH_OMIT_DEFAULTS.items() if k not in after_study}, path.parent.name
    assert {k: HASH_OMIT_DEFAULTS[k] for k in after_study} == {"gradient_accumulation_steps": 1,
                                                                 "gradient_checkpointing": False,
                                                                 "precision": "fp32", "eval_precision": "fp32",
                                                                 "torch_compile": False, "dropout_rng": "torch"}
    assert {k: getattr(TrainConfig(), k) for k in HASH_OMIT_DEFAULTS} == HASH_OMIT_DEFAULTS


def test_data_manifest_entries_enter_the_id_only_when_changed(smoke_like, tmp_path, monkeypatch):
    """Nodes reading the data the committed study was made with keep their ids (the snapshot adds
    nothing); a changed manifest entry moves exactly the nodes that read that file (issue 13.4)."""
    from xlt_helpers import manifest

    snap = manifest.SNAPSHOT.read_text()
    monkeypatch.setenv("XLT_DATA_DIR", str(tmp_path))
    (tmp_path / "MANIFEST.sha256").write_text(snap)
    same = {n.id: n for n in build_grid(smoke_like)}
    monkeypatch.setenv("XLT_DATA_DIR", str(tmp_path / "absent"))
    assert set(same) == {n.id for n in build_grid(smoke_like)}       # no data folder: nothing added either
    monkeypatch.setenv("XLT_DATA_DIR", str(tmp_path))
    old = manifest.snapshot()["xnli/dev-de.tsv"]
    (tmp_path / "MANIFEST.sha256").write_text(snap.replace(old, "0" * 64))
    moved = set(same) - {n.id for n in build_grid(smoke_like)}
    assert moved and moved == {i for i, n in same.items()
                               if n.params.get("target") == "xnli" and "de" in n.params["eval_langs"]}



def test_weight_recipe_follows_whether_the_node_generates_its_targets():
    """Warm-started encoder-decoders keep their cross-attention recipe for ranked targets (XNLI, SST-2:
    the committed nodes' ids are unchanged) and start generated ones (MLQA, UD-POS) without it."""
    spec = MODELS["e5ed-L3"]
    assert spec.weight_recipe(generated_targets=False) == {"cross_attention_gain": 10.0}
    assert spec.weight_recipe(generated_targets=True) == {}
    mlqa = {"model": "e5ed-L3", "intermediate": "none", "target": "mlqa", "seed": 0}
    xnli = {**mlqa, "target": "xnli"}
    assert MODELS["mt5-small"].weight_recipe(generated_targets=False) == {}
    import hashlib  # the payload run_id hashes, rebuilt by hand

    from xlt_helpers.grid import CODE_VERSION, HASH_CHARS, canonical_json, framework_versions

    def digest(params, recipe):
        payload = {"phase": "target", "params": params, "deps": [], "code_version": CODE_VERSION,
                   "versions": framework_versions(), **({"weight_recipe": recipe} if recipe else {})}
        return hashlib.sha256(canonical_json(payload).encode()).hexdigest()[:HASH_CHARS]

    assert run_id("target", xnli).endswith(digest(xnli, {"cross_attention_gain": 10.0}))
    assert run_id("target", mlqa).endswith(digest(mlqa, {}))
