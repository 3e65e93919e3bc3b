"""The committed results store: export finished nodes, build the tidy tables, restore into runs/."""
from __future__ import annotations

import json

import pandas as pd
import pytest

from xlt_helpers import results as store
from xlt_helpers.pipeline import run_intermediate, run_target
from xlt_helpers.robustness import summary_table
from xlt_helpers.runs import DONE_FILE, NODE_FILE, write_json_atomic

pytestmark = pytest.mark.shared_data
CFG = dict(max_steps=2, batch_size=4, max_length=64, doc_stride=32, eval_batch_size=8)


@pytest.fixture(scope="module")
def runs(tmp_path_factory, shared_data):
    """Three real (tiny) nodes: a phase-1 node and two phase-2 nodes (baseline, with intermediate)."""
    runs = tmp_path_factory.mktemp("runs")
    def node(rid, fn, **kw):
        d = runs / rid
        fn(out_dir=str(d), **kw, **CFG)
        write_json_atomic(d / NODE_FILE, {"id": rid, "params": kw})
        write_json_atomic(d / DONE_FILE, {"id": rid, "wall_s": 1.0})
    node("p1", run_intermediate, model="tiny-xlmr", task="sst2", seed=0, train_n=8, dev_n=4)
    node("p2-none", run_target, model="tiny-xlmr", target="xnli", intermediate="none", seed=0, train_n=8,
         eval_n=6, eval_langs=["en", "de", "sw"])
    node("p2-sst2", run_target, model="tiny-xlmr", target="xnli", intermediate="sst2", seed=0, train_n=8,
         eval_n=6, eval_langs=["en", "de", "sw"], init_from=str(runs / "p1" / "checkpoint"))
    (runs / "unfinished").mkdir()  # no DONE.json: never exported
    return runs


def test_export_tables_restore_roundtrip(runs, tmp_path):
    res = tmp_path / "results"
    assert sorted(store.export(runs, res)) == ["p1", "p2-none", "p2-sst2"]
    assert store.export(runs, res) == [], "export is idempotent"
    assert not (res / "nodes" / "p1" / "checkpoint").exists(), "checkpoints stay out of the committed store"
    counts = store.write_tables(res, "test")
    scores = pd.read_csv(res / "scores.csv")
    assert counts["scores"] == len(scores) == 2 * 3  # 2 target runs x 3 languages x accuracy
    assert set(scores["intermediate"]) == {"none", "sst2"} and (scores["size"] > 0).all()
    pe = pd.read_csv(res / "per_example.csv.gz")
    assert len(pe) == 2 * 3 * 6 and set(pe["value"]) <= {0.0, 1.0}, "accuracy per example on the 0/1 scale"
    # the corpus score equals the mean of the per-example values
    for (rid, lang), g in pe.groupby(["run_id", "lang"]):
        s = scores[(scores.run_id == rid) & (scores.lang == lang)]["score"].item()
        assert s == pytest.approx(100 * g["value"].mean())
    inter = pd.read_csv(res / "intermediate.csv")
    assert inter.loc[0, "intermediate"] == "sst2" and inter.loc[0, "chance"] == pytest.approx(50.0)
    meta = json.loads((res / "meta.json").read_text())
    assert meta["nodes"] == 3 and meta["devices"] and meta["devices"][0].startswith("CPU")
    assert meta["devices_by_model"] == {"tiny-xlmr": meta["devices"]}, "each model labelled with what trained it"
    # the robustness functions read the tables as they are
    table = summary_table(scores, pe.merge(scores[["run_id", "family", "model", "size", "intermediate", "target",
                                                  "seed"]].drop_duplicates("run_id"), on="run_id"), n_boot=50)
    assert set(table["intermediate"]) == {"none", "sst2"}

    fresh = tmp_path / "fresh-runs"
    assert sorted(store.restore(res, fresh)) == ["p1", "p2-none", "p2-sst2"]
    assert (fresh / "p2-sst2" / DONE_FILE).is_file() and (fresh / "p2-sst2" / "metrics.json").is_file()
    assert store.restore(res, fresh) == [], "restore does not overwrite finished nodes"


def test_version_mismatch_compares_major_minor_of_the_profile_that_wrote_the_tables(tmp_path):
    assert store.version_mismatch(tmp_path, "cpu", {"transformers": "5.24"}) == {}      # no meta.json
    (tmp_path / "meta.json").write_text(json.dumps({"profile": "cpu", "torch": "2.13.0+cpu", "transformers": "5.23.0"}))
    assert store.version_mismatch(tmp_path, "cpu", {"torch": "2.13", "transformers": "5.23"}) == {}
    assert store.version_mismatch(tmp_path, "cpu", {"torch": "2.13", "transformers": "5.24"}) == {
        "transformers": ("5.23", "5.24")}
    assert store.version_mismatch(tmp_path, "cpu", {"torch": "2.14", "transformers": "5.23"}) == {"torch": ("2.13", "2.14")}
    assert store.version_mismatch(tmp_path, "full", {"transformers": "5.24"}) == {}     # another profile's tables


def test_committed_study_is_complete_under_the_installed_versions():
    """What makes `make study` on a fresh clone train nothing: every node of the cpu profile, with the
    run ids this environment computes (they hash parameters, code version and torch/transformers
    major.minor), is a finished node in the committed results/. Fails when constraints.txt drifts from
    the versions results/ was made with, or when a profile change leaves nodes unrun."""
    from xlt_helpers.book import REPO_ROOT
    from xlt_helpers.grid import build_grid, framework_versions
    from xlt_helpers.profiles import load_profile

    results = REPO_ROOT / "results"
    assert store.version_mismatch(results, "cpu", framework_versions()) == {}
    missing = [n.id for n in build_grid(load_profile("cpu")) if not (results / "nodes" / n.id / DONE_FILE).is_file()]
    assert missing == [], f"{len(missing)} cpu-profile nodes have no committed result, e.g. {missing[:3]}"
    assert json.loads((results / "meta.json").read_text())["nodes"] == len(build_grid(load_profile("cpu")))
