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
