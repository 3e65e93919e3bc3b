"""The committed results store: export finished nodes, build the tidy tables, restore into runs/."""
from __future__ import annotations

import errno
import gzip
import json
from pathlib import Path

import pandas as pd
import pytest

from xlt_helpers import results as store
from xlt_helpers.pipeline import run_intermediate, run_target
from xlt_helpers.robustness import summary_table
from xlt_helpers.files import write_json_atomic
from xlt_helpers.runs import DONE_FILE, NODE_FILE

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
    wide = pd.read_csv(res / "per_example.csv.gz")    # written wide: a row per example, a column per run
    assert list(wide.columns) == ["lang", "example_id", "metric", "p2-none", "p2-sst2"] and len(wide) == 3 * 6
    pe = store.per_example_long(wide, res / "per_example.csv.gz")
    assert len(pe) == 2 * 3 * 6 and set(pe["value"]) <= {0.0, 100.0}, "accuracy per example: 0 or 100 points"
    # the corpus score equals the mean of the per-example values: one scale
    for (rid, lang), g in pe.groupby(["run_id", "lang"]):
        s = scores[(scores.run_id == rid) & (scores.lang == lang)]["score"].item()
        assert s == pytest.approx(g["value"].mean())
    inter = pd.read_csv(res / "intermediate.csv")
    assert inter.loc[0, "intermediate"] == "sst2" and inter.loc[0, "chance"] == pytest.approx(50.0)
    meta = json.loads((res / "meta.json").read_text())
    assert meta["nodes"] == 3 and meta["devices"] and meta["devices"][0].startswith("CPU")
    assert meta["devices_by_model"] == {"tiny-xlmr": meta["devices"]}, "each model labelled with what trained it"
    assert meta["precision_by_model"] == {"tiny-xlmr": {"training": ["fp32"], "evaluation": ["fp32"]}}
    # the robustness functions read the tables as they are
    table = summary_table(scores, pe.merge(scores[["run_id", "family", "model", "size", "intermediate", "target",
                                                  "seed"]].drop_duplicates("run_id"), on="run_id"))
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
    from xlt_helpers.paths import repo_root
    from xlt_helpers.grid import build_grid, framework_versions
    from xlt_helpers.profiles import load_profile

    results = repo_root() / "results"
    assert store.version_mismatch(results, "cpu", framework_versions()) == {}
    missing = [n.id for n in build_grid(load_profile("cpu")) if not (results / "nodes" / n.id / DONE_FILE).is_file()]
    assert missing == [], f"{len(missing)} cpu-profile nodes have no committed result, e.g. {missing[:3]}"
    assert json.loads((results / "meta.json").read_text())["nodes"] == len(build_grid(load_profile("cpu")))


def test_committed_per_example_values_average_to_the_scores():
    """One scale, 0..100 points, from evaluate to the book: for every committed node and language the
    mean of its per-example values (predictions.jsonl.gz) is its score in metrics.json (a target's
    scores, an intermediate task's English dev score; not a tagging task's, which counts words rather
    than sentences), and the tidy per_example.csv.gz averages to scores.csv the same way. A value on
    another scale (0..1 F1, 0/1 accuracy) is off here by a factor of 100."""
    from xlt_helpers.paths import repo_root

    results = repo_root() / "results"
    checked = _check_per_example_means(results)
    assert checked >= 972, checked   # 66 phase-2 nodes: 48 XNLI x 15 languages + 18 MLQA x 7 x 2 metrics
    res = store.load_results(results)
    tidy = res.per_example.groupby(["run_id", "lang", "metric"])["value"].mean()
    scores = res.scores.set_index(["run_id", "lang", "metric"])["score"]
    assert len(tidy) == len(scores) and tidy.to_dict() == pytest.approx(scores.loc[tidy.index].to_dict(), abs=1e-9)


def _check_per_example_means(results: Path) -> int:
    """Assert, for every node of the store ``results``, that the per-example values average to its scores;
    return how many (language, metric) pairs were checked."""
    from xlt_helpers.tasks import get_task

    checked = 0
    for d in sorted((results / "nodes").glob("*/")):
        m = json.loads((d / "metrics.json").read_text())
        if m["phase"] == "intermediate":
            if get_task(m["task"]).kind == "token-tagging":
                continue
            expected = {("en", metric): v for metric, v in m["dev"].items()}
        else:
            expected = {(lang, metric): v for lang, vals in m["scores"].items() for metric, v in vals.items()
                        if metric != "n"}
        with gzip.open(d / "predictions.jsonl.gz", "rt", encoding="utf-8") as f:
            rows = pd.DataFrame([json.loads(line) for line in f])
        means = rows.groupby(["lang", "metric"])["value"].mean().to_dict()
        assert means == pytest.approx(expected, abs=1e-9), d.name
        checked += len(expected)
    return checked


# ------------------------------------------------------------------ a store that names its files
def _node(results: Path, rid: str, lang_scores: dict[str, float], records: bool = False) -> Path:
    """A committed target node as export writes it (legacy DONE.json unless ``records``)."""
    from xlt_helpers.runs import PREDICTIONS_FILE, RECORDS_KEY, file_records
    d = results / "nodes" / rid
    d.mkdir(parents=True)
    write_json_atomic(d / NODE_FILE, {"id": rid, "phase": "target", "notebook": "02.ipynb", "params": {}})
    write_json_atomic(d / "metrics.json", {
        "phase": "target", "family": "encoder", "model": "tiny-xlmr", "intermediate": "none", "target": "xnli",
        "seed": 0, "train": {"params_total": 10}, "device": "CPU: test",
        "scores": {lang: {"accuracy": v, "n": 2} for lang, v in lang_scores.items()}})
    rows = [{"lang": lang, "example_id": i, "metric": "accuracy", "value": 100.0 * (i < v / 50)}
            for lang, v in lang_scores.items() for i in range(2)]
    (d / PREDICTIONS_FILE).write_bytes(gzip.compress("".join(json.dumps(r) + "\n" for r in rows).encode()))
    done = {"id": rid, "wall_s": 2.0}
    if records:
        done[RECORDS_KEY] = file_records(d)
    write_json_atomic(d / DONE_FILE, done)
    return d


def test_restore_refuses_a_bad_committed_node_by_name_and_restores_the_rest(tmp_path):
    res = tmp_path / "results"
    good = _node(res, "p2-good", {"en": 50.0})
    bad = _node(res, "p2-bad", {"en": 100.0})
    (bad / "metrics.json").write_text('{"phase": "target", "scores": ')       # cut mid-file
    cut = _node(res, "p2-cut", {"en": 0.0})
    gz = cut / "predictions.jsonl.gz"
    gz.write_bytes(gz.read_bytes()[:-8])
    refused: list = []
    assert store.restore(res, tmp_path / "runs", refused) == ["p2-good"]
    assert [(rid, why.split(" (")[0]) for rid, why in refused] == [
        ("p2-bad", "metrics.json: not valid JSON"), ("p2-cut", "predictions.jsonl.gz: not a whole gzip file")]
    assert not (tmp_path / "runs" / "p2-bad").exists() and (tmp_path / "runs" / good.name / DONE_FILE).is_file()


def test_every_read_of_the_store_names_its_file(tmp_path):
    res = tmp_path / "results"
    _node(res, "p2-a", {"en": 50.0, "de": 0.0})
    store.write_tables(res, "test")
    assert json.loads((res / "meta.json").read_text())["nodes"] == 1
    (res / "meta.json").write_text("{not json")
    with pytest.raises(store.ResultsError, match=r"meta.json: cannot read it as JSON \(JSONDecodeError"):
        store.version_mismatch(res, "test", {"torch": "2.13"})
    m = res / "nodes" / "p2-a" / "metrics.json"
    m.write_text('{"phase": "target"}')                            # parses, but is not a node's metrics
    with pytest.raises(store.ResultsError, match=rf"{m}: not the metrics of a phase node \(KeyError"):
        store.write_tables(res, "test")
    m.write_bytes(b"\xff\xfe")
    with pytest.raises(store.ResultsError, match=rf"{m}: cannot read it as JSON \(UnicodeDecodeError"):
        store.tidy_tables(res)
    (res / "scores.csv").write_bytes(b"\x1f\x8b garbage")
    from xlt_helpers.results import load_results
    with pytest.raises(store.ResultsError, match=rf"{res / 'scores.csv'}: cannot read it as a table"):
        load_results(res)


def test_a_failed_write_names_the_file_and_keeps_its_errno(tmp_path, monkeypatch):
    res = tmp_path / "results"
    _node(res, "p2-a", {"en": 50.0})

    def full(path, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(store, "write_bytes_atomic", full)
    with pytest.raises(OSError) as e:
        store.write_tables(res, "test")
    assert e.value.errno == errno.ENOSPC and str(e.value) == (
        f"[Errno 28] No space left on device (writing {res / 'scores.csv'})")


def test_export_replaces_a_committed_copy_that_does_not_verify(tmp_path):
    runs, res = tmp_path / "runs", tmp_path / "results"
    src = _node(runs / "x", "p2-a", {"en": 50.0}, records=True)   # a finished node in a runs folder
    src.rename(runs / "p2-a")
    assert store.export(runs, res) == ["p2-a"] and store.export(runs, res) == []
    (res / "nodes" / "p2-a" / "metrics.json").write_text("garbage")
    assert store.export(runs, res) == ["p2-a"]
    assert (res / "nodes" / "p2-a" / "metrics.json").read_bytes() == (runs / "p2-a" / "metrics.json").read_bytes()
    # a folder moved aside by verification, or a damaged one, is never exported
    import shutil
    shutil.copytree(runs / "p2-a", runs / "p2-a.bad-20261130T000000Z")
    shutil.copytree(runs / "p2-a", runs / "p2-b")
    (runs / "p2-b" / "metrics.json").write_text("{}")
    assert store.export(runs, res) == [] and sorted(p.name for p in (res / "nodes").iterdir()) == ["p2-a"]


def test_record_hashes_upgrades_legacy_done_json_without_touching_anything_else(tmp_path):
    from xlt_helpers.runs import RECORDS_KEY
    res = tmp_path / "results"
    d = _node(res, "p2-a", {"en": 50.0})
    before = json.loads((d / DONE_FILE).read_text())
    files = {p.name: p.read_bytes() for p in d.iterdir() if p.name != DONE_FILE}
    assert store.record_hashes(res) == ["p2-a"] and store.record_hashes(res) == []
    after = json.loads((d / DONE_FILE).read_text())
    assert {k: v for k, v in after.items() if k != RECORDS_KEY} == before
    assert sorted(after[RECORDS_KEY]) == ["metrics.json", "node.json", "predictions.jsonl.gz"]
    assert {p.name: p.read_bytes() for p in d.iterdir() if p.name != DONE_FILE} == files
    # from now on a same-size edit of a committed file is refused on restore
    m = d / "metrics.json"
    m.write_bytes(m.read_bytes().replace(b"50.0", b"90.0"))
    refused: list = []
    assert store.restore(res, tmp_path / "runs", refused) == []
    assert refused == [("p2-a", "metrics.json: sha256 differs from DONE.json's record (changed after the node finished)")]
    # a node that does not verify is never blessed
    with pytest.raises(store.ResultsError, match="p2-a: metrics.json: sha256 differs"):
        store.record_hashes(res)


def test_the_committed_store_verifies_byte_for_byte():
    """Every committed node's DONE.json records its files (xlt results --record-hashes) and they match."""
    from xlt_helpers.paths import repo_root
    from xlt_helpers.runs import RECORDS_KEY
    results = repo_root() / "results"
    good, bad = store.verify_store(results)
    assert bad == [] and len(good) >= 105
    assert all(RECORDS_KEY in json.loads((results / "nodes" / rid / DONE_FILE).read_text()) for rid in good)


# ------------------------------------------------------------------ reading the tidy tables back
def test_load_results_joins_run_keys_and_rejects_foreign_runs(tmp_path, synthetic_results):
    results = synthetic_results(tmp_path / "r", n_examples=3, seeds=(0,), with_runs=False)
    res = store.load_results(results)
    assert {"family", "model", "intermediate", "target", "seed"} <= set(res.per_example.columns)
    assert res.per_example["model"].notna().all() and res.runs == ()
    pe = pd.read_csv(results / "per_example.csv.gz")
    pe = pe.rename(columns={pe.columns[3]: "p2-ghost-run"})
    pe.to_csv(results / "per_example.csv.gz", index=False)
    with pytest.raises(ValueError, match="p2-ghost-run"):
        store.load_results(results)


def test_per_example_is_written_wide_and_read_back_long_unchanged(tmp_path):
    """Two runs share three keys; run b lacks de/2. Wide: 3 rows x (3 keys + 2 runs), b's missing cell empty;
    long again: the same 5 rows in the same order (run by run), nothing dropped but the empty cell."""
    long = pd.DataFrame({"run_id": ["a", "a", "a", "b", "b"], "lang": ["de", "de", "en", "de", "en"],
                         "example_id": ["1", "2", "1", "1", "1"], "metric": "accuracy",
                         "value": [100.0, 0.0, 100.0, 0.0, 66.66666666666667]})
    wide = store.per_example_wide(long)
    assert list(wide.columns) == ["lang", "example_id", "metric", "a", "b"]
    assert wide["a"].tolist() == [100.0, 0.0, 100.0] and wide["b"].isna().tolist() == [False, True, False]
    path = tmp_path / "per_example.csv.gz"
    wide.to_csv(path, index=False)
    back = store.per_example_long(pd.read_csv(path, dtype={"example_id": str}), path)
    assert back.astype({"example_id": str}).equals(long.astype({"example_id": str})), back
    # a file written before the wide format (one row per run and example) still reads, as it is
    long.to_csv(path, index=False)
    assert len(store.per_example_long(pd.read_csv(path), path)) == 5
    # what would not survive the round trip is refused, naming the run and the key
    with pytest.raises(store.ResultsError, match=r"run a has more than one value for \(lang=de, example_id=1"):
        store.per_example_wide(pd.concat([long, long.iloc[:1]]), "nodes/")
    with pytest.raises(store.ResultsError, match=r"run b has no value for \(lang=de, example_id=1.*1 such rows"):
        store.per_example_wide(long.assign(value=[1.0, 1.0, 1.0, None, 1.0]))
    with pytest.raises(store.ResultsError, match=r"run column\(s\) \['b'\] hold non-numbers"):
        store.per_example_long(wide.assign(b="x"), path)


def test_committed_tables_stay_small():
    """The tables are rewritten at every node commit: each stays under 5 MB (the wide per_example.csv.gz of the
    105-node study is 0.6 MB; long, it was 7.5 MB), so the repository does not grow by megabytes a node."""
    from xlt_helpers.paths import repo_root
    sizes = {p.name: p.stat().st_size for p in (repo_root() / "results").glob("*.*")}
    assert "per_example.csv.gz" in sizes and max(sizes.values()) < 5_000_000, sizes


def test_load_results_missing_and_malformed(tmp_path):
    assert store.load_results(tmp_path) is None
    pd.DataFrame({"run_id": ["x"], "score": [1.0]}).to_csv(tmp_path / "scores.csv", index=False)
    with pytest.raises(ValueError, match=r"lacks column\(s\).*family"):
        store.load_results(tmp_path)


def test_load_results_lists_only_the_notebooks_of_the_runs_its_tables_hold(tmp_path, synthetic_results):
    """results/runs keeps the notebooks of nodes of an older profile version; the book shows the study's only."""
    results = synthetic_results(tmp_path / "r", n_examples=3, seeds=(0,), with_runs=True)
    (shown,) = (results / "runs").glob("*.ipynb")
    (results / "runs" / "p2-older-version-of-a-node.ipynb").write_text(shown.read_text())
    (results / "runs" / "p1-e5-L3-sst2-s0.ipynb").write_text(shown.read_text())   # a phase-1 run of intermediate.csv
    assert [p.name for p in store.load_results(results).runs] == ["p1-e5-L3-sst2-s0.ipynb", shown.name]


def test_node_times_and_budget_table_by_hand(tmp_path):
    """Measured hours are DONE.json's wall times; the rest is extrapolated at each group's median, NaN for a
    group with no finished node, and a complete study has nothing left to extrapolate."""
    nodes = tmp_path / "nodes"
    def node(rid, phase, model, wall, **params):
        d = nodes / rid
        d.mkdir(parents=True)
        write_json_atomic(d / NODE_FILE, {"id": rid, "phase": phase, "params": {"model": model, "seed": 0, **params}})
        write_json_atomic(d / DONE_FILE, {"id": rid, "wall_s": wall, "finished_at": "2026-11-30T15:00:00+00:00"})
        write_json_atomic(d / "metrics.json", {"device": "CPU: test, 1 threads"})
    node("p1-a", "intermediate", "m", 60.0, task="sst2")
    node("p1-b", "intermediate", "m", 180.0, task="squad")
    node("p2-a", "target", "m", 720.0, target="xnli", intermediate="none")
    (nodes / "p2-unfinished").mkdir()                      # no DONE.json: not a finished node
    node("other", "target", "m", 1.0, target="xnli", intermediate="sst2")   # not asked for
    times = store.node_times(tmp_path, ["p1-a", "p1-b", "p2-a", "p2-unfinished"])
    assert list(times.columns) == store.NODE_TIME_COLUMNS and sorted(times["id"]) == ["p1-a", "p1-b", "p2-a"]
    t = times.set_index("id")
    assert t.loc["p1-b", "intermediate"] == "squad" and t.loc["p2-a", "target"] == "xnli"
    assert t.loc["p2-a", "device"] == "CPU: test, 1 threads" and pd.isna(t.loc["p1-a", "target"])

    planned = pd.DataFrame([("p1-a", "m", "intermediate", None), ("p1-b", "m", "intermediate", None),
                            ("p1-c", "m", "intermediate", None), ("p2-a", "m", "target", "xnli"),
                            ("p2-b", "m", "target", "xnli"), ("p2-c", "m", "target", "mlqa")],
                           columns=["id", "model", "phase", "target"])
    b = store.budget_table(planned, times, budget_hours=2.0).set_index(["phase", "target"])
    # every node ran on 1 thread of the 2 cores: a machine-hour is two node-hours
    p1 = b.loc[("intermediate", "–")]       # (60 + 180) / 2 machine-s, median node 120 s, one left: 60 s more
    assert (p1["nodes"], p1["done"]) == (3, 2)
    assert p1["measured_h"] == pytest.approx(120 / 3600) and p1["median_node_min"] == pytest.approx(2.0)
    assert p1["rest_h_extrapolated"] == pytest.approx(60 / 3600)
    x = b.loc[("target", "xnli")]
    assert (x["done"], x["median_node_min"], x["rest_h_extrapolated"]) == (1, 12.0, pytest.approx(0.1))
    assert pd.isna(b.loc[("target", "mlqa"), "rest_h_extrapolated"])      # nothing finished to extrapolate from
    total = b.loc[("", "")]
    assert (total["model"], total["nodes"], total["done"], total["budget_h"]) == ("total", 6, 3, 2.0)
    assert total["measured_h"] == pytest.approx(480 / 3600) and pd.isna(total["rest_h_extrapolated"])
    # a node on both cores (or one whose device names no thread count) costs its whole wall time
    both = times.assign(device=["CPU: test, 2 threads", "CPU: x86_64", "CPU: test, 1 threads"])
    assert store.budget_table(planned, both).iloc[-1]["measured_h"] == pytest.approx((60 + 180 + 360) / 3600)
    assert [store.threads_of(d) for d in ("CPU: a, 1 threads", "CPU: b, 16 threads", "cuda: H200")] == [1, 16, None]
    # nodes run and then replaced: a row of their own, in the total's hours but not in its node counts
    from xlt_helpers.profiles import Retired
    r = store.budget_table(planned, times, 2.0, retired=[Retired(2, 0.25, "re-run")])
    assert r.iloc[-2][["model", "phase", "nodes", "done", "measured_h"]].tolist() == ["retired", "replaced", 2, 2, 0.25]
    assert (r.iloc[-1]["nodes"], r.iloc[-1]["done"]) == (6, 3)
    assert r.iloc[-1]["measured_h"] == pytest.approx(480 / 3600 + 0.25)
    done = store.budget_table(planned[planned["id"].isin(times["id"])], times, None)
    assert done["rest_h_extrapolated"].tolist() == [0.0, 0.0, 0.0] and pd.isna(done["budget_h"].iloc[-1])
