"""The benchmark suite (`xlt bench`, issue 6): its arithmetic, its page, and the fast run end to end.

The pure parts (FLOP count, linear fit, verdicts, planned work, results page, figure) are pinned with
hand-computed values; the measuring parts run in the fast suite (tiny model, a few steps). The numbers
of the fast suite are meaningless by design: only that every section is produced and self-consistent
is checked here (the full suite's numbers are in bench/results.md).
"""
from __future__ import annotations

import json
import re

import math
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from xlt_helpers import bench, bench_measure, bench_report, bench_workers, figures
from xlt_helpers.cli import _parser


# ------------------------------------------------------------------ pure functions
def test_training_flops_counts_weights_per_token_and_attention_per_length_squared():
    # 6 N per token: 6*10*(2+4) = 360; attention 12 * layers * hidden * sum(L^2) = 12*2*3*(4+16) = 1440
    assert bench.training_flops([2, 4], 10, 2, 3) == pytest.approx(1800.0)
    # same tokens packed into one sequence: weight FLOPs equal, attention grows (36 > 20)
    assert bench.training_flops([6], 10, 2, 3) == pytest.approx(360 + 12 * 2 * 3 * 36)
    with pytest.raises(ValueError, match="lengths"):
        bench.training_flops([], 10, 2, 3)


def test_linear_fit_recovers_a_line_and_flags_curvature():
    x = np.array([1000, 2000, 4000, 8000])
    fit = bench.linear_fit(x, 3.0 + 0.002 * x)
    assert fit["slope"] == pytest.approx(0.002) and fit["intercept"] == pytest.approx(3.0)
    assert fit["r2"] == pytest.approx(1.0)
    curved = bench.linear_fit(x, (x / 1000.0) ** 3)
    assert curved["r2"] < 0.95
    assert math.isnan(bench.linear_fit([1], [2])["r2"]), "one point has no fit"


def test_linear_fit_is_ols_with_r2_hand_worked():
    # x 0,1,2; y 1,2,4: Sxy = 3, Sxx = 2 -> slope 1.5, intercept 7/3 - 1.5; residuals 1/6, -1/3, 1/6
    # -> SSres = 1/6, SStot = 42/9 -> R² = 1 - (1/6)/(42/9) = 27/28
    fit = bench.linear_fit([0, 1, 2], [1, 2, 4])
    assert fit == pytest.approx({"slope": 1.5, "intercept": 7 / 3 - 1.5, "r2": 27 / 28, "n": 3})
    assert math.isnan(bench.linear_fit([1, 2], [3])["slope"]), "x and y of different lengths have no fit"
    assert math.isnan(bench.linear_fit([1, 2, 3], [5, 5, 5])["r2"]), "a constant y has no R²"


def test_pooled_and_smallest_slope_hand_worked():
    assert bench.pooled([{"train_wall_s": 2.0, "train_tokens": 100}, {"train_wall_s": 3.0, "train_tokens": 400}]) == \
        {"train_wall_s": 5.0, "train_tokens": 500, "tokens_per_s": 100.0}
    df = pd.DataFrame({"sweep": ["train_n", "train_n", "layers"], "train_n": [100, 200, 100],
                       "train_wall_s": [1.0, 2.0, 50.0]})
    # 0.01 s per example over a quarter epoch -> 0.04 s per example-epoch; the depth sweep is left out
    assert bench.smallest_slope(df, bench.FAST) == pytest.approx(0.01 / 0.25)
    assert math.isnan(bench.smallest_slope(None, bench.FAST))


def test_verdict_directions_and_missing_values():
    assert bench.verdict(4.2, 4.0) == "met" and bench.verdict(3.2, 4.0) == "not met"
    assert bench.verdict(2.5, 3.0, at_most=True) == "met" and bench.verdict(3.5, 3.0, at_most=True) == "not met"
    assert bench.verdict(float("nan"), 1.0) == "n/a"


def test_planned_examples_uses_epochs_or_max_steps():
    nodes = [SimpleNamespace(params={"train_n": 1000, "epochs": 2, "batch_size": 16, "max_steps": None}),
             SimpleNamespace(params={"train_n": 1000, "epochs": 2, "batch_size": 16, "max_steps": 10})]
    assert bench.planned_examples(nodes) == 2000 + 160


def test_cpu_profile_total_counts_the_real_grid_and_says_planned(tmp_path, monkeypatch):
    from xlt_helpers.grid import build_grid
    from xlt_helpers.profiles import load_profile
    monkeypatch.setenv("XLT_RUNS_DIR", str(tmp_path / "runs"))          # no node done there ...
    monkeypatch.setenv("XLT_RESULTS_DIR", str(tmp_path / "results"))    # ... nor exported
    n, total, kind = bench_measure.cpu_profile_total(0.5)
    nodes = build_grid(load_profile("cpu"))
    assert n == len(nodes) and kind.startswith("planned")
    assert total == pytest.approx(0.5 * bench.planned_examples(nodes))
    for node, wall in ((nodes[0], 100.0), (nodes[-1], 300.0)):          # one in runs/, one exported
        where = tmp_path / ("runs" if wall == 100.0 else "results/nodes") / node.id
        where.mkdir(parents=True)
        (where / "DONE.json").write_text(json.dumps({"wall_s": wall}))
    n, total, kind = bench_measure.cpu_profile_total(0.5)
    assert kind.startswith("extrapolated from 2 finished") and total == pytest.approx(200.0 * n)


def test_results_page_has_machine_targets_commands_and_status():
    machine = {"cpu_model": "Test CPU (avx2)", "cores": 2, "torch": "9.9", "transformers": "8.8", "threads": 2,
               "python": "3.11", "loadavg": "1.00 / 2.00 / 3.00", "time": "t0"}
    end = {**machine, "loadavg": "4.00 / 5.00 / 6.00", "time": "t1"}
    s = bench_report.Section("1. Training throughput", "xlt bench", [("speed-up", "4.5×")], "≥ 4×", "met",
                      "a note", pd.DataFrame({"side": ["ours"], "tokens_per_s": [123.0]}), "Per side:")
    md = bench_report.render_results([s], machine, end, "full")
    for text in ("Test CPU (avx2)", "1.00 / 2.00 / 3.00", "4.00 / 5.00 / 6.00", "| torch threads | 2 |",
                 "```bash\nxlt bench\n```", "| speed-up | 4.5× |", "**Target:** ≥ 4×. **Status: met.**",
                 "| 1. Training throughput | ≥ 4× | met |", "a note", "Per side:", "tokens_per_s"):
        assert text in md, text


def _points(depth_wall: list[float]) -> pd.DataFrame:
    """Scaling points: node wall 2 s + 10 s per 1k examples, training 8 s per 1k, RSS 800 MB + 100 MB per 1k;
    depth sweep at layers 3, 6, 12 with the given walls and RSS 700 MB + 200/3 MB per layer."""
    n, layers = [1000, 2000, 4000], [3, 6, 12]
    return pd.DataFrame({"sweep": ["train_n"] * 3 + ["layers"] * 3, "model": ["m"] * 6, "train_n": n + [1000] * 3,
                         "layers": [3] * 3 + layers, "node_wall_s": [2 + 0.01 * x for x in n] + depth_wall,
                         "train_wall_s": [0.008 * x for x in n] + [5.0] * 3, "eval_wall_s": 1.0, "tokens_per_s": 1.0,
                         "vocab_size": 9, "peak_rss_mb": [800 + 0.1 * x for x in n] + [700 + 200 / 3 * x for x in layers],
                         "process_wall_s": 1.0})


def test_scaling_section_reports_the_fits_hand_worked():
    s = bench_report.scaling_section(bench.FULL, _points([1 + 3 * x for x in (3, 6, 12)]), "xlt bench")
    rows = dict(s.rows)
    assert rows["node wall vs training examples (e5-L3)"] == "slope 10 s per 1k examples, intercept 2 s, R² 1"
    assert rows["of which training wall vs examples"] == "slope 8 s per 1k, R² 1"
    assert rows["node wall vs layers (n=1000)"] == "slope 3 s per layer, intercept 1 s, R² 1"
    assert rows["peak RSS vs training examples"] == "slope 100 MB per 1k, R² 1"
    assert rows["peak RSS vs layers"] == "slope 66.7 MB per layer, R² 1"
    assert s.status == "met" and len(s.table) == 6
    # depth walls 10, 10, 40 at layers 3, 6, 12: Sxx = 42, Sxy = 150, SStot = 600 -> slope 150/42 = 3.57,
    # intercept 20 - 7 × 150/42 = -5, R² = 150² / (42 × 600) = 25/28 = 0.8929 < 0.95
    curved = bench_report.scaling_section(bench.FULL, _points([10.0, 10.0, 40.0]), "xlt bench")
    assert curved.status == "not met"
    assert dict(curved.rows)["node wall vs layers (n=1000)"] == "slope 3.57 s per layer, intercept -5 s, R² 0.8929"


def _orc(overhead_s: float) -> dict:
    return {"direct_s": 5.0, "forked_s": 5.0 + overhead_s, "overhead_s": overhead_s, "fresh_s": 9.0,
            "overhead_fresh_s": 4.0, "import_papermill_s": 1.5, "import_rfc3987_syntax_s": 1.0, "kernel_s": 0.8,
            "table": pd.DataFrame({"rep": [0]})}


def test_orchestration_section_judges_per_node_and_share_hand_worked():
    # 1 s × 92 nodes / 9200 s = 1% of the profile (target ≤ 2%) and 1 s ≤ 3 s per node
    s = bench_report.orchestration_section(bench.FULL, "xlt bench", _orc(1.0), 92, 9200.0, "measured")
    rows = dict(s.rows)
    assert s.status == "met" and rows["local-executor overhead × nodes / total"] == "0.01"
    assert rows["cpu profile total (measured)"] == "2.56 h" and rows["nodes in configs/cpu.yml"] == "92"
    assert "sum of the DONE.json wall times" in s.notes
    assert bench_report.orchestration_section(bench.FULL, "c", _orc(4.0), 92, 9200.0, "measured").status == "not met"
    planned = bench_report.orchestration_section(bench.FULL, "c", _orc(1.0), 92, 0.0, "planned (lower bound)")
    assert planned.status == "n/a" and "upper bound" in planned.notes


def test_training_and_efficiency_sections_hand_worked():
    side = {"train_tokens": 1000, "vocab_size": 9, "params_trained": 12345}
    s = bench_report.training_section(bench.FULL, "c", {**side, "tokens_per_s": 900.0},
                               {**side, "tokens_per_s": 200.0, "padded_tokens": 20480}, ("1.00", "2.00"), pd.DataFrame())
    rows = dict(s.rows)
    assert rows["speed-up (ours / recipe)"] == "4.5×" and s.status == "met"          # 900 / 200 ≥ 4
    assert rows["ours: vocabulary / trained params"] == "9 / 12,345" and "160 XNLI-en pairs" in s.notes
    b = bench_report.training_section(bench.FULL, "c", {**side, "tokens_per_s": 900.0},
                                      {**side, "tokens_per_s": 200.0, "padded_tokens": 20480}, ("1.00", "2.00"),
                                      pd.DataFrame(), {"node_pairs": 4000, "node_padding": 0.018,
                                                       "node_mean_len": 42.1, "chosen_mean_len": 42.5,
                                                       "chosen_padding": 0.02, "self_grouped_padding": 0.27})
    rows = dict(b.rows)
    assert rows["ours: padding share of the trained batches (of the node's whole epoch)"] == "0.02 (0.018)"
    assert rows["mean non-padding length of the trained pairs (of the node's pairs)"] == "42.5 (42.1)"
    assert "over the node's 4000 training pairs" in b.notes and "sequential sampler" in b.notes
    prof = pd.DataFrame({"where": ["matmul (linear layers)", "other torch ops"], "share_of_wall": [0.4, 0.6]})
    info = {"profiled_steps": 6, "profiled_wall_s": 3.0, "matmul_flops_per_s": 1e11, "hidden": 384, "top_other": ""}
    # 2 TFLOP in 10 s = 200 GFLOP/s over the better matmul peak 400 GFLOP/s = 0.5 < 0.6
    e = bench_report.efficiency_section(bench.FULL, "c", flops=2e12, train_wall_s=10.0, peaks=(2.5e11, 4e11),
                                 lengths=[10, 30], non_embedding_params=21_000_000, prof_df=prof, prof_info=info)
    rows = dict(e.rows)
    assert rows["achieved model FLOP/s"] == "200 GFLOP/s" and rows["efficiency (achieved / best matmul)"] == "0.5"
    assert rows["profiled matmul ops: share of wall"] == "0.4" and rows["mean non-padding length (tokens)"] == "20"
    assert e.status == "not met" and "top 'other' ops: none" in e.notes


def test_the_driver_runs_each_section_once_in_dependency_order():
    order = list(bench.builders())
    assert sorted(order) == sorted(bench.SECTIONS)
    assert order.index("train") < order.index("eval") and order.index("scaling") < order.index("orchestration")
    assert order.index("train") < order.index("ceiling"), "the ceiling prices the batches train ran and reads its profile"
    assert bench.selected(("eval",)) == {"eval", "train"} and bench.selected(None) == set(bench.SECTIONS)


def test_tiling_load_task_repeats_a_short_training_set():
    from datasets import Dataset
    calls = []

    def load(task, split, lang="en", *, n=None, seed=0):
        calls.append((split, n))
        ds = Dataset.from_dict({"i": [0, 1, 2]})
        return ds if n is None else ds.select(range(min(n, 3)))

    tiled = bench_workers.tiling_load_task(load)
    assert tiled("xnli", "train", "en", n=7)["i"] == [0, 1, 2, 0, 1, 2, 0]
    assert tiled("xnli", "train", "en", n=2)["i"] == [0, 1], "a set the file holds is served as it is"
    assert tiled("xnli", "dev", "de", n=7)["i"] == [0, 1, 2], "evaluation sets are never repeated"


def test_train_phase_refuses_a_trainer_class_the_family_cannot_use(tmp_path):
    from transformers import Trainer
    from xlt_helpers.train import TrainConfig, train_phase

    class NotSeq2Seq(Trainer):
        pass

    with pytest.raises(TypeError, match="NotSeq2Seq does not subclass Seq2SeqTrainer.*tiny-mt5"):
        train_phase("tiny-mt5", "xnli", None, TrainConfig(), tmp_path, trainer_cls=NotSeq2Seq)


@pytest.mark.shared_data
def test_run_target_reads_its_data_through_load(tmp_path, shared_data):
    """The scaling sweep's repeating loader reaches run_target as a parameter: nothing is patched."""
    from xlt_helpers import pipeline

    class Read(Exception):
        pass

    def load(task, split, lang="en", *, n=None, seed=0):
        raise Read(task, split, lang, n)

    with pytest.raises(Read) as got:
        pipeline.run_target(**bench_workers.node_params("tiny-xlmr", 8000, 4, ("en",)), out_dir=str(tmp_path),
                            load=load)
    assert got.value.args == ("xnli", "train", "en", 8000)
    assert pipeline.load_task.__module__ == "xlt_helpers.data"


def test_machine_description_and_peak_rss_are_read_from_this_machine():
    m = bench_measure.machine_description()
    assert m["cores"] >= 1 and m["threads"] >= 1 and m["torch"]
    assert bench_workers.vmhwm_mb() > 10
    assert bench_measure.matmul_flops(64, repeats=2) > 1e6     # machine.matmul_flops, as the bench uses it
    from xlt_helpers.machine import gemm_flops                   # the ceiling's shapes: views and bmm build and time
    assert gemm_flops(8, 4, 6, batch=3, ta=True, tb=True, repeats=2, min_s=0.001) > 1e5


def test_cli_has_bench_with_fast_and_only():
    args = _parser().parse_args(["bench", "--fast", "--only", "eval", "--out", "x"])
    assert args.command == "bench" and args.fast and args.only == ["eval"] and args.out == "x"
    with pytest.raises(SystemExit):
        _parser().parse_args(["bench", "--only", "nonsense"])
    only = next(a for a in _parser()._subparsers._group_actions[0].choices["bench"]._actions if a.dest == "only")
    assert tuple(only.choices) == bench.SECTIONS, "the CLI offers exactly the sections run_bench knows"


def test_run_bench_rejects_unknown_sections(tmp_path):
    with pytest.raises(ValueError, match="nonsense"):
        bench.run_bench(fast=True, out_dir=tmp_path, sections=("nonsense",))


# ------------------------------------------------------------------ figure
def _scaling_df() -> pd.DataFrame:
    return pd.DataFrame({"sweep": ["train_n"] * 3 + ["layers"] * 2, "model": ["e5-L3"] * 3 + ["e5-L3", "e5-L6"],
                         "train_n": [1000, 2000, 4000, 1000, 1000], "layers": [3, 3, 3, 3, 6],
                         "node_wall_s": [10.0, 18.0, 35.0, 10.0, 19.0], "peak_rss_mb": [900, 950, 1000, 900, 1100]})


def test_scaling_figure_draws_wall_and_rss_for_both_sweeps():
    fig = figures.scaling_figure(_scaling_df())
    assert len(fig.data) == 4
    walls = [t for t in fig.data if "wall" in t.name]
    assert sorted(list(walls[0].x)) == [1000, 2000, 4000] and list(walls[1].x) == [3, 6]
    one = figures.scaling_figure(_scaling_df().query("sweep == 'train_n'"))
    assert len(one.data) == 2


def test_scaling_figure_names_bad_input():
    with pytest.raises(KeyError, match="peak_rss_mb"):
        figures.scaling_figure(_scaling_df().drop(columns="peak_rss_mb"))
    with pytest.raises(ValueError, match="train_n"):
        figures.scaling_figure(_scaling_df().assign(sweep="other"))


# ------------------------------------------------------------------ evaluation order flag
def test_predict_encoder_sort_flag_changes_order_not_outputs():
    import torch
    from datasets import Dataset
    from xlt_helpers import backbones
    from xlt_helpers.evaluate import predict_encoder
    from xlt_helpers.heads import EncoderWithHead
    from xlt_helpers.models import get_model

    body = backbones.load_encoder(get_model("tiny-xlmr"))
    model = EncoderWithHead(body, "classification", 3, "cls")
    rng = np.random.default_rng(0)
    ids = [[0, *rng.integers(5, 500, size=n).tolist(), 2] for n in (30, 3, 17, 8, 25, 1, 12)]
    feats = Dataset.from_dict({"input_ids": ids, "attention_mask": [[1] * len(x) for x in ids]})
    a = predict_encoder(model, feats, 1, 2, sort_by_length=True)["logits"]
    b = predict_encoder(model, feats, 1, 2, sort_by_length=False)["logits"]
    assert len(a) == len(ids)
    for x, y in zip(a, b):
        np.testing.assert_allclose(x, y, atol=1e-5)
    assert torch.is_grad_enabled()


# ------------------------------------------------------------------ the fast suite
@pytest.mark.shared_data
def test_fast_training_and_eval_sections(tmp_path, shared_data):
    """Items 1-3 of the fast suite (~20 s): same tokens on both sides, positive throughputs, a profile."""
    path = bench.run_bench(fast=True, out_dir=tmp_path, sections=("eval", "ceiling"))
    md = path.read_text()
    for title in ("1. Training throughput", "2. Hardware efficiency", "2c. Ceiling", "3. Evaluation throughput",
                  "## Machine"):
        assert title in md, title
    # the ceiling priced the batches section 1 trained, with the profile section 2 measured in the same run
    assert "section 1's run:" in md and "section 2's profile in this run" in md
    tr = pd.read_csv(tmp_path / "training.csv")
    assert tr["train_tokens"].nunique() == 1, "both sides must see exactly the same non-padding tokens"
    assert (tr["tokens_per_s"] > 0).all() and (tr["steps"] == bench.FAST.steps).all()
    assert tr.loc[0, "vocab_size"] < tr.loc[1, "vocab_size"], "ours trims the vocabulary, the recipe does not"
    prof = pd.read_csv(tmp_path / "profile.csv")
    assert prof["share_of_wall"].between(0, 1.5).all() and prof["share_of_wall"].sum() == pytest.approx(1.0, abs=0.3)
    ev = pd.read_csv(tmp_path / "eval.csv")
    assert ev.loc[0, "speedup"] == pytest.approx(ev.loc[0, "unsorted_s"] / ev.loc[0, "sorted_s"])


@pytest.mark.slow
@pytest.mark.shared_data
def test_fast_suite_end_to_end(tmp_path, shared_data):
    """Every section (1-5 of issue 6, 2b, 2c and 6-8 of issue 15), with fresh processes for the node runs;
    each section states its status once (skipped ones say why)."""
    path = bench.run_bench(fast=True, out_dir=tmp_path)
    md = path.read_text()
    headings = re.findall(r"\n## (\d+[bc]?)\. ", md)
    assert sorted(headings) == sorted(["1", "2", "2b", "2c", "3", "4", "5", "6", "7", "8"]), headings
    assert md.count("**Status:") == len(headings)
    sc = pd.read_csv(tmp_path / "scaling.csv")
    assert list(sc["train_n"]) == list(bench.FAST.scaling_sizes)
    assert (sc["peak_rss_mb"] > 100).all() and (sc["node_wall_s"] > 0).all()
    orc = pd.read_csv(tmp_path / "orchestration.csv")
    assert (orc["fresh_runner_s"] > 0).all() and (orc["forked_s"] > 0).all() and (orc["direct_s"] > 0).all()
    assert "rfc3987_syntax" in md and "padding bound" in md


def test_padded_tokens_counts_each_batch_at_its_longest():
    lengths = [5, 1, 4, 2]
    assert bench.padded_tokens(lengths, 2, sort=False) == 2 * 5 + 2 * 4
    assert bench.padded_tokens(lengths, 2, sort=True) == 2 * 2 + 2 * 5
    assert bench.padded_tokens(lengths, 3, sort=True) == 3 * 4 + 1 * 5     # a short last batch


# ------------------------------------------------------------------ issue 15: precision sections
def test_precision_helpers_hand_worked():
    assert bench.agreement([0, 1, 2, 2], [0, 1, 1, 2]) == 0.75
    with pytest.raises(ValueError, match="one length"):
        bench.agreement([0], [0, 1])
    assert bench.extrapolate(3.0, 150, 37350) == pytest.approx(747.0)     # 20 ms per example × 37,350
    with pytest.raises(ValueError, match="measured must be > 0"):
        bench.extrapolate(1.0, 0, 10)
    assert bench.abba(["fp32", "bf16"]) == ["fp32", "bf16", "bf16", "fp32"]
    assert bench.abba(["a", "b", "c"]) == ["a", "b", "c", "c", "b", "a"]


def _runs(*pairs, ends=(0.5, 1.0)):
    return [{"train_tokens": t, "train_wall_s": w, "tokens_per_s": t / w, "steps": len(ends), "step_ends": list(ends)}
            for t, w in pairs]


def test_levers_section_hand_worked():
    runs = {"baseline": _runs((100, 1.0), (100, 1.0)), "batch 24": _runs((100, 0.5), (100, 0.5)),
            "foreach": _runs((100, 2.0), (100, 2.0))}
    s = bench_report.levers_section(bench.FAST, "c", runs, ("1.00", "2.00"))
    rows = dict(s.rows)       # 200 tokens / 2 s = 100 tokens/s; 200 / 1 s = 200 (2×); 200 / 4 s = 50 (0.5×)
    assert rows["baseline: tokens/s (× baseline)"] == "100 (1×)"
    assert rows["batch 24: tokens/s (× baseline)"] == "200 (2×)" and rows["foreach: tokens/s (× baseline)"] == "50 (0.5×)"
    assert len(s.table) == 6 and "order A B C C B A" in s.notes and s.status == "measured"
    # the baseline's two runs end their 5 steps at (1, 2, 2.4, 3.4, 3.8) and (1, 2, 2.6, 3.6, 4.2): mean ends
    # 1, 2, 2.5, 3.5, 4 -> gaps 1, 0.5, 1, 0.5 (long and short batches alternate); later half (1, 0.5): 0.75 s.
    # Cold: 3, 5, 5.5, 6.5, 7 -> gaps 2, 0.5, 1, 0.5 -> later half 0.75 s, no faster (a median of the later
    # half against the baseline's mean step would have said otherwise); compiling = 5 - 2 = 3 s; never pays.
    # Warm: 1.5, 2.5, 2.75, 3.25, 3.5 -> later gaps 0.5, 0.25: 0.375 s, 2x; compiling = 2.5 - 2 = 0.5 s;
    # 0.375 s saved per step -> pays after 1.33 steps
    base = {"baseline": _runs((100, 3.8), ends=(1, 2, 2.4, 3.4, 3.8)) + _runs((100, 4.2), ends=(1, 2, 2.6, 3.6, 4.2)),
            "foreach": _runs((100, 2.0), (100, 2.0))}
    c = bench_report.levers_section(bench.FAST, "c", base, ("1.00", "2.00"),
                                    {"cold cache": {"stats": _runs((100, 7.0))[0], "step_ends": [3.0, 5.0, 5.5, 6.5, 7.0]},
                                     "warm cache": {"stats": _runs((100, 3.5))[0], "step_ends": [1.5, 2.5, 2.75, 3.25, 3.5]}},
                                    node_steps=500)
    rows = dict(c.rows)
    assert rows["torch.compile, cold cache: compiling (first two steps, compiled less uncompiled)"] == "3 s"
    assert rows["torch.compile, cold cache: later steps, compiled / uncompiled, same batches (× faster)"] == \
        "0.75 s / 0.75 s (1×)"
    assert rows["torch.compile, cold cache: steps until compiling pays (a cpu-profile XNLI node runs 500)"] == \
        "never (no faster)"
    assert rows["torch.compile, warm cache: compiling (first two steps, compiled less uncompiled)"] == "0.5 s"
    assert rows["torch.compile, warm cache: later steps, compiled / uncompiled, same batches (× faster)"] == \
        "0.375 s / 0.75 s (2×)"
    assert rows["torch.compile, warm cache: steps until compiling pays (a cpu-profile XNLI node runs 500)"] == "1.33 steps"
    assert list(c.table["lever"])[-2:] == ["torch.compile (cold cache)", "torch.compile (warm cache)"]


def test_compile_cost_hand_worked():
    # compiled ends 4, 5, 5.4, 6, 6.5, 7 against uncompiled 1, 2, 2.8, 3.8, 4.6, 5.6 over the same batches:
    # gaps 1, 0.4, 0.6, 0.5, 0.5 vs 1, 0.8, 1, 0.8, 1 -> later half (gaps 2-4): 0.533 vs 0.933 s, 1.75x;
    # compiling = 5 - 2 = 3 s; 0.4 s saved per step -> 7.5 steps
    c = bench.compile_cost([4.0, 5.0, 5.4, 6.0, 6.5, 7.0], [1.0, 2.0, 2.8, 3.8, 4.6, 5.6])
    assert c["steady_s"] == pytest.approx(1.6 / 3) and c["base_s"] == pytest.approx(2.8 / 3)
    assert c["gain"] == pytest.approx(1.75) and c["compile_s"] == pytest.approx(3.0)
    assert c["break_even_steps"] == pytest.approx(7.5)
    # alternating long and short batches: a median of the later compiled steps (0.5) against the uncompiled mean
    # step (0.92) would claim 1.84x; batch for batch the later steps are equal and compiling never pays
    alt = [1.0, 1.5, 2.5, 3.0, 4.0, 4.5, 5.5]
    same = bench.compile_cost([x + 3 for x in alt], alt)
    assert same["gain"] == pytest.approx(1.0) and same["break_even_steps"] == float("inf")
    assert np.isnan(bench.compile_cost([1.0, 2.0], [1.0, 2.0])["steady_s"])       # too few steps to tell
    with pytest.raises(ValueError, match="same steps"):
        bench.compile_cost([1.0, 2.0, 3.0, 4.0], [1.0, 2.0, 3.0])


def test_pick_batches_and_padding_share_hand_worked():
    # order 0..8 in batches of 2: [0 1] [2 3] [4 5] [6 7], 8 left over; padded lengths (longest) 10, 40, 20, 30.
    # Ranked 10 (b0), 20 (b2), 30 (b3), 40 (b1); 2 steps take the midpoints of 2 slices: ranks int(0.5 x 4 / 2) = 1
    # and int(1.5 x 4 / 2) = 3, i.e. b2 (20) and b1 (40), each batch whole, in a shuffled order
    lengths = [10, 5, 40, 1, 20, 20, 30, 2, 99]
    got = bench.pick_batches(range(9), lengths, 2, 2, seed=0)
    assert sorted([got[:2], got[2:]]) == [[2, 3], [4, 5]] and 8 not in got     # whole batches; never the partial one
    assert sorted(bench.pick_batches(range(9), lengths, 2, 4)) == list(range(8))   # all 4: every whole batch
    with pytest.raises(ValueError, match="4 whole batches"):
        bench.pick_batches(range(9), lengths, 2, 5)
    # lengths 10, 2 | 5, 5: padded 2 x 10 + 2 x 5 = 30, non-padding 22 -> 8/30 padding
    assert bench.padding_share([10, 2, 5, 5], 2) == pytest.approx(8 / 30)
    assert bench.padding_share([5, 5, 3, 3], 2) == 0.0


def _node(bf16_en: float) -> pd.DataFrame:
    return pd.DataFrame({"precision": ["fp32", "bf16", "fp32"], "seed": [0, 0, 1], "train_wall_s": 1.0,
                         "en": [50.0, bf16_en, 53.0], "de": [40.0, 38.0, 41.0]})


def test_bf16_section_hand_worked():
    measured = {"peaks": {"fp32": 1e11, "bf16": 2.5e11}, "pooled": {"fp32": 100.0, "bf16": 350.0},
                "node": _node(51.0), "load": ("1.00", "2.00")}
    s = bench_report.bf16_section(bench.FAST, "c", "CPU flags amx_bf16", measured)
    rows = dict(s.rows)
    assert rows["256² matmul: fp32 / bf16"] == "100 / 250 GFLOP/s (2.5×)"
    assert rows["speed-up bf16 / fp32 (end to end, `trainer.train()`)"] == "3.5×"           # 350 / 100 ≥ 3
    # |51 - 50|, |38 - 40| = 1, 2 (mean 1.5) against seed noise |53 - 50|, |41 - 40| = 3, 1 (mean 2)
    assert rows["fixed node: |accuracy bf16 − fp32| per language, seed 0 (en, de)"] == "1.0, 2.0 (mean 1.50)"
    assert rows["seed noise: |accuracy seed 1 − seed 0| at fp32"] == "3.0, 1.0 (mean 2.00)"
    assert s.status == "met" and rows["bf16 difference within seed noise (mean over languages)"] == "yes"
    worse = bench_report.bf16_section(bench.FAST, "c", "x", {**measured, "node": _node(45.0)})   # mean 3.5 > 2
    assert worse.status == "met (speed); scores: see note" and "larger than this one seed-to-seed" in worse.notes
    # under the cpu profile's floor (fp32 en 50 < 55) the scores say nothing: not judged, speed still reported
    low = bench_report.bf16_section(bench.FAST, "c", "x", measured, {"xnli": 55.0})
    assert low.status == "met (speed); scores: not judged" and "stayed under the floor (XNLI en 50.0 < floor 55)" in low.notes
    assert dict(low.rows)["bf16 difference within seed noise (mean over languages)"] == \
        "not judged: the fp32 node did not learn (XNLI en 50.0 < floor 55)"
    assert bench_report.bf16_section(bench.FAST, "c", "x", measured, {"xnli": 50.0}).status == "met"  # 50 ≥ 50
    skipped = bench_report.bf16_section(bench.FAST, "c", "no native bf16", None)
    assert skipped.status == "skipped" and skipped.notes == "Skipped: no native bf16."


def test_evalprec_section_hand_worked():
    ag = pd.DataFrame([
        # int8: XNLI agreement (100 × 1.0 + 300 × 0.98) / 400 = 0.985 < 0.99: fails
        {"target": "xnli", "precision": "int8", "lang": "en", "n": 100, "agreement": 1.0, "delta_vs_fp32": 0.0},
        {"target": "xnli", "precision": "int8", "lang": "de", "n": 300, "agreement": 0.98, "delta_vs_fp32": -1.0},
        {"target": "mlqa", "precision": "int8", "lang": "en", "n": 6, "agreement": 0.5, "delta_vs_fp32": 0.3},
        {"target": "mlqa", "precision": "int8", "lang": "de", "n": 6, "agreement": 0.5, "delta_vs_fp32": -0.4},
        # bf16: agreement 1, max |ΔF1| 0.2 ≤ 0.5, speed-ups 2.2 and 2.0 ≥ 2: passes
        {"target": "xnli", "precision": "bf16", "lang": "en", "n": 100, "agreement": 1.0, "delta_vs_fp32": 0.0},
        {"target": "mlqa", "precision": "bf16", "lang": "en", "n": 6, "agreement": 1.0, "delta_vs_fp32": -0.2}])
    sp = pd.DataFrame({"target": ["xnli", "mlqa"] * 2, "precision": ["int8", "int8", "bf16", "bf16"],
                       "speedup_vs_fp32": [2.5, 2.1, 2.2, 2.0]})
    s = bench_report.evalprec_section(bench.FAST, "c", ("fp32", "bf16", "int8"), ag, sp)
    rows = dict(s.rows)
    assert rows["int8: XNLI prediction agreement with fp32"] == "0.985" and rows["int8: meets all three"] == "no"
    assert rows["int8: MLQA max |ΔF1| per language"] == "0.4 points"
    assert rows["bf16: meets all three"] == "yes" and s.status == "met" and "Passing precision(s): bf16;" in s.notes
    assert bench_report.evalprec_section(bench.FAST, "c", ("fp32", "int8"), ag, sp).status == "not met"
    # fp32 English scores 36 (XNLI) and 12 (MLQA): under floors 55 and 35, bf16's agreement of 1 is not judged
    fp32 = pd.DataFrame([{"target": "xnli", "precision": "fp32", "lang": "en", "n": 100, "agreement": 1.0,
                          "delta_vs_fp32": 0.0, "score": 36.0},
                         {"target": "mlqa", "precision": "fp32", "lang": "en", "n": 6, "agreement": 1.0,
                          "delta_vs_fp32": 0.0, "score": 12.0}])
    low = bench_report.evalprec_section(bench.FAST, "c", ("fp32", "bf16"), pd.concat([fp32, ag]), sp,
                                        {"xnli": 55.0, "mlqa": 35.0})
    assert low.status == "not judged (fixed node under the floor: XNLI en 36.0 < floor 55; MLQA en 12.0 < floor 35)"
    assert dict(low.rows)["bf16: meets all three"].startswith("not judged: fixed node under the floor")
    cleared = bench_report.evalprec_section(bench.FAST, "c", ("fp32", "bf16"), pd.concat([fp32, ag]), sp,
                                            {"xnli": 30.0, "mlqa": 10.0})
    assert cleared.status == "met"


def test_evalcost_section_hand_worked():
    df = pd.DataFrame({"model": ["m", "m"], "target": ["xnli", "xnli"], "precision": ["fp32", "int8"],
                       "full_set_s_extrapolated": [120.0, 30.0]})
    s = bench_report.evalcost_section(bench.FAST, "c", ("fp32", "int8"), df, {"xnli": 37350, "mlqa": 4199})
    rows = dict(s.rows)
    assert rows["full XNLI dev (all languages), counted from the data"] == "37,350 pairs (expected 37,350)"
    assert rows["m xnli: full set at fp32 (extrapolated)"] == "2 min" and "m xnli: full set at int8" not in str(rows)
    assert "order fp32 int8 int8 fp32" in s.notes and s.status == "measured"


def test_bf16_section_is_skipped_saying_why_without_native_bf16(monkeypatch, tmp_path):
    import torch

    from xlt_helpers import bench_speed as bp, machine
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(machine, "cpu_flags", lambda: {"avx2"})
    [s] = bp.build_bf16(bench.BenchRun(bench.FAST, tmp_path, tmp_path, "xlt bench --only bf16"))
    assert s.status == "skipped" and "avx512_bf16" in s.notes and "emulated" in s.notes
    assert bp.eval_precisions_here() == ("fp32", "int8")


@pytest.mark.shared_data
def test_fast_precision_sections(tmp_path, shared_data):
    """Sections 2b and 6-8 of the fast suite with the tiny models: tables written, full-set sizes counted."""
    path = bench.run_bench(fast=True, out_dir=tmp_path, sections=("levers", "bf16", "evalprec", "evalcost"))
    md = path.read_text()
    lev = pd.read_csv(tmp_path / "levers.csv")
    assert lev.groupby("lever")["train_tokens"].nunique().eq(1).all() and lev["train_tokens"].nunique() == 1, \
        "every lever trains the same examples"
    for title in ("2b. Training levers", "6. bf16 training", "7. Evaluation precision", "8. Cost of full evaluation sets", "Extrapolated"):
        assert title in md, title
    cost = pd.read_csv(tmp_path / "full_eval_cost.csv")
    assert set(cost["target"]) == {"xnli", "mlqa"} and (cost["s_per_example"] > 0).all()
    np.testing.assert_allclose(cost["full_set_s_extrapolated"],
                               cost["copy_s"] + cost["s_per_example"] * cost["full_examples"])
    assert (cost.loc[cost["precision"] == "fp32", "copy_s"] < 0.01).all(), "fp32 evaluates the model itself"
    assert set(cost.loc[cost["target"] == "xnli", "full_examples"]) == {15 * 2490}
    assert set(cost.loc[cost["target"] == "mlqa", "full_examples"]) == {4199}
    ag = pd.read_csv(tmp_path / "eval_precision_agreement.csv")
    assert (ag.loc[ag["precision"] == "fp32", "agreement"] == 1.0).all()
    assert ag["agreement"].between(0, 1).all()


def test_evalprec_section_reports_each_thread_count():
    """bf16 at 2 threads per node 1.5× / 1.7× (misses 2×), at 1 thread 2.2× / 2.1× (meets): the precision
    passes, and the page says at which thread count, showing both."""
    ag = pd.DataFrame([
        {"target": "xnli", "precision": "bf16", "lang": "en", "n": 100, "agreement": 1.0, "delta_vs_fp32": 0.0},
        {"target": "mlqa", "precision": "bf16", "lang": "en", "n": 6, "agreement": 1.0, "delta_vs_fp32": 0.1}])
    sp = pd.DataFrame({"target": ["xnli", "mlqa"] * 2, "precision": ["bf16"] * 4, "threads": [2, 2, 1, 1],
                       "speedup_vs_fp32": [1.5, 1.7, 2.2, 2.1]})
    s = bench_report.evalprec_section(bench.FAST, "c", ("fp32", "bf16"), ag, sp)
    rows = dict(s.rows)
    m = bench.FAST.model
    assert rows[f"bf16: speed-up over fp32 (sorted, {m} model time at 2 threads per node), XNLI / MLQA"] == "1.5× / 1.7×"
    assert rows[f"bf16: speed-up over fp32 (sorted, {m} model time at 1 thread per node), XNLI / MLQA"] == "2.2× / 2.1×"
    assert rows["bf16: meets all three"] == "yes (speed at 1 thread)" and s.status == "met"
    slow = sp.assign(speedup_vs_fp32=[1.5, 1.7, 2.2, 1.9])      # 1 thread: MLQA 1.9 < 2 -> no thread count passes
    assert bench_report.evalprec_section(bench.FAST, "c", ("fp32", "bf16"), ag, slow).status == "not met"


# ------------------------------------------------------------------ issue 15 item 1: the GEMM ceiling (section 2c)
def test_layer_gemms_hand_worked_and_equal_to_the_model_flops():
    """hidden 4, FFN 8, 2 heads (width 2), M = 6 tokens in sequences of L = 3 (2 sequences × 2 heads = batch 4).

    Q, K, V, O (count 4): forward (6×4)(4×4)ᵀ, input-grad (6×4)(4×4), weight-grad (6×4)ᵀ(6×4):
    2·6·4·4·4 = 768 FLOPs each. FFN in (4 → 8): forward m,k,n = 6,4,8, input-grad 6,8,4, weight-grad 8,6,4;
    FFN out (8 → 4): 6,8,4 / 6,4,8 / 4,6,8: 2·6·4·8 = 384 each. Linear total 3·768 + 6·384 = 4608
    = 6 · N · M with N = 4·4² + 2·4·8 = 128 weights. Attention: six bmm of 4 × (3×2)(2×3) or (3×3)(3×2),
    2·3·2·3·4 = 144 each, 864 = 12 · hidden · L² · sequences = 12·4·9·2. Sum 5472 = training_flops([3, 3], 128, 1, 4).
    Distinct shapes: 9 linear + 3 attention (scores forward = dP, dQ = context forward, dK = dV)."""
    gs = bench.layer_gemms(4, 8, 2, 6, 3)
    by = {(g.op, g.kind): g for g in gs}
    assert by[("Q, K, V, O projections", "forward")].flops == 768
    assert by[("FFN in", "weight-grad")] == bench.Gemm("FFN in", "weight-grad", 8, 6, 4, ta=True)
    assert bench.shape_label(by[("FFN in", "weight-grad")].shape) == "(6×8)ᵀ(6×4)"
    assert bench.shape_label(by[("FFN out", "forward")].shape) == "(6×8)(4×8)ᵀ"
    scores = by[("attention scores Q Kᵀ", "forward")]
    assert (scores.m, scores.k, scores.n, scores.batch, scores.flops) == (3, 2, 3, 4, 144)
    assert bench.shape_label(scores.shape) == "4 × (3×2)(3×2)ᵀ"
    assert sum(g.flops for g in gs if not g.op.startswith("attention")) == 4608
    assert sum(g.flops for g in gs if g.op.startswith("attention")) == 864
    assert sum(g.flops for g in gs) == bench.training_flops([3, 3], 128, 1, 4) == 5472
    assert len({g.shape for g in gs}) == 12
    assert bench.sequences_per_batch(1100, 43.2) == 25 and bench.sequences_per_batch(5, 9) == 1
    with pytest.raises(ValueError, match="divisible by heads"):
        bench.layer_gemms(4, 8, 3, 6, 3)
    with pytest.raises(ValueError, match="seq_len <= tokens"):
        bench.layer_gemms(4, 8, 2, 6, 7)


def _two_gemms() -> list:
    """A: 2·10·5·6 = 600 FLOPs; B: 2·10·5·2 = 200 FLOPs (shares 0.75 / 0.25)."""
    return [bench.Gemm("a", "forward", 10, 5, 6), bench.Gemm("b", "forward", 10, 5, 2)]


def test_gemm_ceiling_weights_each_shape_by_its_time_hand_worked():
    """A at 300 FLOP/s takes 2 s, B at 50 FLOP/s takes 4 s: 800 FLOPs in 6 s = 133.3 FLOP/s, over a
    400 FLOP/s peak = 1/3. (The FLOP-weighted mean of the rates, 0.75·300 + 0.25·50 = 237.5, would
    hide that the small slow shape takes two thirds of the time.)"""
    a, b = _two_gemms()
    c = bench.gemm_ceiling([a, b], {a.shape: 300.0, b.shape: 50.0}, 400.0)
    assert c == pytest.approx({"flops": 800.0, "seconds": 6.0, "achievable": 800 / 6, "ceiling": 1 / 3})
    with pytest.raises(ValueError, match="missing"):
        bench.gemm_ceiling([a, b], {a.shape: 300.0}, 400.0)


def test_combined_ceiling_and_allowed_share_hand_worked():
    """GEMM ceiling 0.75 and GEMMs 60% of the wall: 0.6 · 0.75 = 0.45. Reaching 0.6 needs s · 0.75 >= 0.6,
    s >= 0.8: non-GEMM ops at most 20% of the wall; a ceiling of 0.5 allows none (1 − 0.6/0.5 = −0.2)."""
    assert bench.combined_ceiling(0.75, 0.6) == pytest.approx(0.45)
    assert bench.allowed_other_share(0.75, 0.6) == pytest.approx(0.2)
    assert bench.allowed_other_share(0.5, 0.6) == pytest.approx(-0.2)
    with pytest.raises(ValueError, match="share of wall"):
        bench.combined_ceiling(0.5, 1.2)
    prof = pd.DataFrame({"where": ["matmul (linear layers)", "GELU / LayerNorm / dropout"], "share_of_wall": [0.6, 0.4]})
    assert bench.matmul_share(prof) == pytest.approx(0.6)


def _ceiling_timings(a_rates: tuple[float, float], b_rates: tuple[float, float]) -> pd.DataFrame:
    """Two A B B A passes (GFLOP/s): the peak at 380 then 400, A and B at the given rates per pass."""
    a, b = _two_gemms()
    rows = []
    for p, (pk, ra, rb) in enumerate(zip((380.0, 400.0), a_rates, b_rates)):
        rows += [{"pass": p, "shape": "peak 256²", "is_peak": True, "gflop_per_s": pk, "threads": 2},
                 {"pass": p, "shape": bench.shape_label(a.shape), "is_peak": False, "gflop_per_s": ra, "threads": 2},
                 {"pass": p, "shape": bench.shape_label(b.shape), "is_peak": False, "gflop_per_s": rb, "threads": 2}]
    return pd.DataFrame(rows)


def test_ceiling_section_hand_worked():
    """Best timing per side (of two passes): peak 400, A 300, B 50 GFLOP/s -> achievable 800 / 6 = 133 GFLOP/s, ceiling 1/3 < 0.6:
    not reachable whatever the profile says. With A and B at 360: ceiling 0.9; profile share 0.6 -> 0.54 < 0.6,
    reachable only with non-GEMM ops at ≤ 1 − 0.6/0.9 = 33% of the wall (profile: 40%); share 0.7 -> 0.63: reachable."""
    gs = _two_gemms()
    inputs = {"dims": {"hidden": 4, "intermediate": 8, "heads": 2, "layers": 2}, "tokens": 10.0, "seq_len": 5.0,
              "source": "test", "gemm_share": None, "share_source": "no profile", "loads": ("1.00", "2.00")}
    s = bench_report.ceiling_section(bench.FAST, "c", gs, _ceiling_timings((250.0, 300.0), (50.0, 40.0)), inputs)
    rows = dict(s.rows)
    assert rows["fp32 256² matmul (the peak of section 2), pass 1 / pass 2"] == "380.0 / 400.0 GFLOP/s"
    assert rows["achievable GEMM rate (Σ FLOPs / Σ FLOPs ÷ rate)"] == "133 GFLOP/s"
    assert rows["**ceiling**: achievable / peak (every non-GEMM op free)"] == "0.333"
    assert rows["largest non-GEMM share of wall time that allows 0.6"] == "none (the GEMMs alone stay below 0.6)"
    assert rows["mean sequence length L / sequences per batch (attention bmm)"] == "5 / 2"
    # passes: peak 380 / 400 (1.05×), A 250 / 300 (1.2×), B 50 / 40 (1.25×, the largest)
    assert rows["largest pass-to-pass spread of one side (its best / its worst pass)"] == "1.25× ((10×5)(5×2))"
    assert s.status == "not reachable: these GEMM shapes alone cap it at 0.33"
    assert list(s.table["FLOP share"]) == pytest.approx([0.75, 0.25])
    assert list(s.table["GEMM time share"]) == pytest.approx([1 / 3, 2 / 3])
    assert list(s.table["share of peak"]) == pytest.approx([0.75, 0.125])
    assert list(s.table["GFLOP per step"]) == pytest.approx([1.2e-6, 0.4e-6])        # × 2 layers
    fast = _ceiling_timings((360.0, 360.0), (360.0, 360.0))
    low = bench_report.ceiling_section(bench.FAST, "c", gs, fast, {**inputs, "gemm_share": 0.6, "share_source": "p"})
    assert dict(low.rows)["bound with the profile's non-GEMM share (share × ceiling)"] == "0.54"
    assert low.status == "reachable only if non-GEMM ops fall to ≤ 33% of wall time (profile: 40%)"
    assert "Summary: the target 0.6 is reachable only if" in low.notes
    assert bench_report.ceiling_section(bench.FAST, "c", gs, fast, {**inputs, "gemm_share": 0.7}).status == "reachable"
    assert bench_report.ceiling_section(bench.FAST, "c", gs, fast, inputs).status == \
        "reachable if non-GEMM ops take ≤ 33% of wall time"


@pytest.mark.shared_data
def test_fast_ceiling_section_alone(tmp_path, shared_data):
    """``--only ceiling`` without train: M from the config's batch × the data's mean length; every distinct
    shape timed twice beside the peak (A B … B A: the peak first and last); no profile, so no combined bound."""
    path = bench.run_bench(fast=True, out_dir=tmp_path, sections=("ceiling",))
    md = path.read_text()
    assert "## 2c. Ceiling of fp32 training efficiency" in md and "section 1 did not run" in md
    tm = pd.read_csv(tmp_path / "ceiling_timings.csv")
    assert tm["is_peak"].iloc[0] and tm["is_peak"].iloc[-1] and tm["is_peak"].sum() == 2
    assert (tm.groupby("shape").size() == 2).all() and (tm["gflop_per_s"] > 0).all()
    per = pd.read_csv(tmp_path / "ceiling.csv")
    assert per["FLOP share"].sum() == pytest.approx(1.0) and per["GEMM time share"].sum() == pytest.approx(1.0)
    assert set(per["operands (ᵀ: transposed view)"]) == set(tm.loc[~tm["is_peak"], "shape"])


def test_machine_kind_names_vendor_and_widest_matrix_instructions():
    k = bench_report.machine_kind
    assert k("Intel(R) Xeon(R) Processor (avx2, avx512f, avx512_bf16, avx512_vnni, amx_bf16, amx_int8)") == "intel-amx"
    assert k("AMD EPYC (avx2, avx512f, avx512_bf16, avx512_vnni)") == "amd-avx512-bf16"
    assert k("AMD EPYC (avx2)") == "amd-avx2"
    assert k("Some CPU (no AVX2/AVX-512 flags read)") == "cpu-other"


_PAGE = """## Machine

| field | value |
|---|---|
| CPU | {cpu} |
| started / finished | {day} 09:00:00 UTC / {day} 10:00:00 UTC |

## 1. Training throughput (e5-L12)

| quantity | value |
|---|---|
| speed-up (ours / recipe) | {speed} |
{extra}"""


def test_across_machines_sets_pages_side_by_side():
    new = _PAGE.format(cpu="AMD EPYC (avx2, avx512f, avx512_bf16)", day="2026-12-01", speed="2.9×",
                       extra="\n## 7. Evaluation precision\n\n| quantity | value |\n|---|---|\n"
                             "| bf16: MLQA max |ΔF1| per language | 0.1 points |\n"
                             "| bf16: XNLI prediction agreement with fp32 | 0.995 |\n")
    old = _PAGE.format(cpu="AMD EPYC (avx2)", day="2026-11-24", speed="2.35×", extra="")
    rows = bench_report.page_rows(new)
    assert rows[("7. Evaluation precision", "bf16: MLQA max |ΔF1| per language")] == "0.1 points"   # '|' in a key
    t = bench_report.across_machines({"here": rows, "amd-avx2": bench_report.page_rows(old)}).set_index("quantity")
    assert list(t.columns) == ["here", "amd-avx2"]
    assert t.loc["CPU", "amd-avx2"] == "AMD EPYC (avx2)" and t.loc["started", "here"] == "2026-12-01 09:00:00 UTC"
    assert t.loc["1. speed-up over the run_xnli recipe (target ≥ 4×)"].tolist() == ["2.9×", "2.35×"]
    assert t.loc["7. bf16: XNLI prediction agreement (target ≥ 0.99)"].tolist() == ["0.995", "—"]   # older suite: no 7
    assert t.loc["7. bf16: MLQA max |ΔF1| per language (target ≤ 0.5)", "here"] == "0.1 points"


def test_results_page_has_across_machines_only_with_other_pages():
    start = {"cpu_model": "AMD EPYC (avx2, avx512f, avx512_bf16)", "cores": 2, "torch": "t", "transformers": "x",
             "threads": 2, "python": "3.11", "loadavg": "0 / 0 / 0", "time": "2026-12-01 09:00:00 UTC"}
    sec = bench_report.Section("1. Training throughput (e5-L12)", "xlt bench", [("speed-up (ours / recipe)", "2.9×")],
                               "≥ 4×", "not met")
    alone = bench_report.render_results([sec], start, start, "full")
    assert "## Across machines" not in alone
    other = _PAGE.format(cpu="AMD EPYC (avx2)", day="2026-11-24", speed="2.35×", extra="")
    page = bench_report.render_results([sec], start, start, "full", {"amd-avx2": other})
    assert page.index("## Summary") < page.index("## Across machines") < page.index("## 1. Training")
    assert re.search(r"\| 1\. speed-up over the run_xnli recipe \(target ≥ 4×\) +\| 2\.9× +\| 2\.35× +\|", page)
    assert "this run (amd-avx512-bf16)" in page


def test_masks_verdict_sets_the_mask_change_against_the_seed_change():
    """Hand-worked, two seeds a side. Side means: pcg64 (71, 61), torch (70, 61.5): d_rng = (1 + 0.5) / 2 = 0.75.
    Seed pairs: pcg64 |70-72| = 2, |60-62| = 2; torch |71-69| = 2, |62-61| = 1: d_seed = 7 / 4 = 1.75; within.
    pcg64's de at 57 both times: means (71, 57), d_rng = (1 + 4.5) / 2 = 2.75; pairs 2, 0, 2, 1: d_seed 1.25; not
    within. One seed a side is refused (a single draw of the seed noise)."""
    import pandas as pd

    from xlt_helpers.bench_report import masks_verdict
    rows = [("pcg64", 0, 70.0, 60.0), ("pcg64", 1, 72.0, 62.0), ("torch", 0, 71.0, 62.0), ("torch", 1, 69.0, 61.0)]
    node = pd.DataFrame(rows, columns=["dropout_rng", "seed", "en", "de"])
    assert masks_verdict(node, ["en", "de"], "pcg64") == {"d_rng": 0.75, "d_seed": 1.75, "within": True}
    node.loc[[0, 1], "de"] = 57.0
    assert masks_verdict(node, ["en", "de"], "pcg64") == {"d_rng": 2.75, "d_seed": 1.25, "within": False}
    with pytest.raises(ValueError, match="two seeds or more per side"):
        masks_verdict(node[node["seed"] == 0], ["en", "de"], "pcg64")
