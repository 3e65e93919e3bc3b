"""Figures arrange the numbers they are given: right cells, right order, CIs where given, none invented."""
from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest

from xlt_helpers import figures


def _summary() -> pd.DataFrame:
    """A hand-made summary (robustness.summary_table's columns) for one target and metric."""
    rows = []
    models = [("m-big", "encoder", 300), ("m-small", "encoder", 100), ("s2s", "encoder-decoder", 200)]
    for model, family, size in models:
        for task, gain in (("none", np.nan), ("a", 2.0), ("b", -1.0)):
            g = np.nan if task == "none" else gain * size / 100
            rows.append({"family": family, "model": model, "size": size, "intermediate": task,
                         "target": "xnli", "metric": "accuracy", "gain_avg": g,
                         "gain_avg_lo": g - 0.5, "gain_avg_hi": g + 0.5,
                         "sig_avg": pd.NA if task == "none" else abs(g) > 0.5,
                         "gap": 10.0 - size / 50 + (1.0 if task == "a" else 0.0)})
    out = pd.DataFrame(rows)
    out["sig_avg"] = out["sig_avg"].astype("boolean")
    return out


def test_model_order_is_family_then_size():
    assert figures.model_order(_summary()) == ["m-small", "m-big", "s2s"]


def test_gain_heatmap_cells_marks_and_hover():
    s = _summary()
    fig = figures.gain_heatmap(s)
    hm = fig.data[0]
    assert isinstance(hm, go.Heatmap)
    assert list(hm.x) == ["m-small", "m-big", "s2s"]
    assert list(hm.y) == ["b", "a"]                       # baseline dropped; best mean gain on top (last)
    z = np.asarray(hm.z, dtype=float)
    assert z[1, 1] == pytest.approx(6.0)                   # a on m-big: 2.0 * 300 / 100
    assert z[0, 0] == pytest.approx(-1.0)                  # b on m-small: -1.0 * 100 / 100, CI [-1.5, -0.5]
    text = np.asarray(hm.text)
    assert text[1, 1] == "+6.0*" and text[0, 0] == "-1.0*"
    assert "[+5.50, +6.50]" in hm.customdata[1][1]
    assert hm.zmid == 0 and hm.zmin == -hm.zmax


def test_gain_heatmap_without_ci_says_so_and_does_not_star():
    s = _summary().drop(columns=["gain_avg_lo", "gain_avg_hi", "sig_avg"])
    hm = figures.gain_heatmap(s, lo=None, hi=None, significant=None).data[0]
    assert "*" not in "".join(np.asarray(hm.text).ravel())
    assert "no CI" in hm.customdata[0][0]


def test_gain_heatmap_refuses_mixed_targets():
    s = pd.concat([_summary(), _summary().assign(target="mlqa")])
    with pytest.raises(ValueError, match="one target and one metric"):
        figures.gain_heatmap(s)


def test_missing_columns_are_named():
    with pytest.raises(KeyError, match=r"gain_avg.*summary_table"):
        figures.gain_vs_size(_summary().drop(columns=["gain_avg"]))
    with pytest.raises(ValueError, match="empty"):
        figures.gap_vs_size(_summary().iloc[0:0])


def test_gain_vs_size_panels_log_axis_and_error_bars():
    fig = figures.gain_vs_size(_summary())
    assert fig.layout.xaxis.type == "log" and fig.layout.xaxis2.type == "log"
    enc_a = next(t for t in fig.data if t.name == "a" and t.xaxis == "x")
    assert list(enc_a.x) == [100, 300] and list(enc_a.y) == pytest.approx([2.0, 6.0])
    assert list(enc_a.error_y.array) == pytest.approx([0.5, 0.5])
    assert {t.xaxis for t in fig.data} == {"x", "x2"}       # one panel per family


def test_gap_vs_size_follows_the_baseline():
    fig = figures.gap_vs_size(_summary())
    lines = [t for t in fig.data if t.mode == "lines+markers"]
    assert sorted(t.name for t in lines) == ["encoder (no intermediate task)", "encoder-decoder (no intermediate task)"]
    enc = next(t for t in lines if t.name.startswith("encoder ("))
    assert list(enc.y) == pytest.approx([10 - 100 / 50, 10 - 300 / 50])
    assert enc.error_y.array is None                      # no gap CI given: no error bars drawn
    assert fig.layout.xaxis.type == "log"


def test_gain_vs_difficulty_fits_a_line_per_model():
    rows = [{"model": "m", "intermediate": t, "difficulty": d, "gain_avg": 1.0 + 4.0 * d}
            for t, d in (("a", 0.1), ("b", 0.5), ("c", 0.9))]
    rows += [{"model": "n", "intermediate": "a", "difficulty": 0.2, "gain_avg": 0.0}]
    fig = figures.gain_vs_difficulty(pd.DataFrame(rows), lo=None, hi=None)
    fit = [t for t in fig.data if t.mode == "lines"]
    assert len(fit) == 1                                   # model n has one task: no line
    assert list(fit[0].y) == pytest.approx([1.4, 4.6])     # exact line through the planted points


def test_language_bars_mean_over_seeds_english_first():
    scores = pd.DataFrame({"model": ["m"] * 4 + ["k"] * 2, "lang": ["de", "en", "de", "en", "en", "de"],
                           "seed": [0, 0, 1, 1, 0, 0], "score": [50, 80, 60, 90, 70, 40],
                           "family": "encoder", "size": [1, 1, 1, 1, 2, 2]})
    fig = figures.language_bars(scores, by="model")
    m = next(t for t in fig.data if t.name == "m")
    assert list(m.x) == ["en", "de"] and list(m.y) == pytest.approx([85, 55])
    assert m.error_y.visible is True
    k = next(t for t in fig.data if t.name == "k")
    assert k.error_y.visible is False                      # one seed: no spread to show


def test_seed_spread_puts_every_seed_of_every_run_in_its_models_panel():
    pts = pd.DataFrame({"family": "encoder", "size": [1] * 4 + [2] * 2,
                        "model": ["s"] * 4 + ["l"] * 2, "intermediate": ["sst2", "none", "sst2", "none", "none", "none"],
                        "seed": [0, 0, 1, 1, 0, 1], "score": [30.0, 47.0, 48.0, 48.0, 60.0, 61.0]})
    fig = figures.seed_spread(pts)
    assert [a.text for a in fig.layout.annotations] == ["s", "l"]          # smaller model first
    s0 = next(t for t in fig.data if t.name == "seed 0" and t.xaxis == "x")
    assert list(s0.x) == ["none", "sst2"] and list(s0.y) == [47.0, 30.0]   # the baseline first
    mean_s = next(t for t in fig.data if t.name == "mean over seeds" and t.xaxis == "x")
    assert list(mean_s.y) == pytest.approx([47.5, 39.0])
    assert list(fig.layout.xaxis.categoryarray) == ["none", "sst2"]
    l1 = next(t for t in fig.data if t.name == "seed 1" and t.xaxis == "x2")
    assert list(l1.x) == ["none"] and list(l1.y) == [61.0] and l1.showlegend is False
    with pytest.raises(KeyError, match="seed_spread: input table lacks column"):
        figures.seed_spread(pts.drop(columns=["seed"]))


def test_show_embeds_no_plotly_library(monkeypatch):
    shown = []
    monkeypatch.setattr("IPython.display.display", lambda obj, **kw: shown.append((obj, kw)))
    html = figures.show(figures.gain_heatmap(_summary())).data
    assert shown and 'class="plotly-graph-div"' in html and "Plotly.newPlot" in html
    bundle, kw = shown[0]
    assert kw.get("raw") and bundle["text/html"] == html, "the book renders the HTML of the bundle"
    assert bundle["application/vnd.plotly.v1+json"]["data"], "JupyterLab renders plotly's own mimetype"
    assert "<script src" not in html and "cdn.plot.ly" not in html
    assert len(html) < 100_000                               # the 3 MB library is not inlined


def test_partial_results_give_self_explaining_empty_figures():
    """A study in progress may hold only baselines: every gain figure must still draw, saying why it is empty."""
    only_baseline = _summary()
    only_baseline = only_baseline[only_baseline["intermediate"] == "none"]
    for fig in (figures.gain_heatmap(only_baseline), figures.gain_vs_size(only_baseline)):
        assert not fig.data and fig.layout.annotations[0].text == figures.NO_GAINS
    no_gain = pd.DataFrame({"difficulty": [0.4], "gain_avg": [np.nan], "model": ["m"], "intermediate": ["sst2"]})
    assert "dev score" in figures.gain_vs_difficulty(no_gain).layout.annotations[0].text


# ---- full-scale figures ------------------------------------------------------------------------

def _gaps() -> pd.DataFrame:
    return pd.DataFrame([
        dict(family="encoder", paper="P1", model="e-s", gap=10.0, total=300e6, non_embedding=100e6),
        dict(family="encoder", paper="P1", model="e-l", gap=8.0, total=600e6, non_embedding=1e9),
        dict(family="encoder", paper="P2", model="e-l2", gap=9.0, total=600e6, non_embedding=1e9),
        dict(family="encoder-decoder", paper="P3", model="d-s", gap=12.0, total=300e6, non_embedding=10e6),
        dict(family="encoder-decoder", paper="P3", model="d-l", gap=6.0, total=13e9, non_embedding=10e9)])


def _fits() -> pd.DataFrame:
    return pd.DataFrame([dict(family="encoder", models="e-s, e-l", slope=-2.0, slope_lo=-3.0, slope_hi=-1.0,
                              intercept=26.0),
                         dict(family="encoder-decoder", models="d-s, d-l", slope=-2.0, slope_lo=-2.5, slope_hi=-1.5,
                              intercept=26.0)])


def test_gap_vs_params_points_fits_hover_and_log_axis():
    ref = pd.DataFrame(dict(model=["d-s", "d-l"], gap_tt=[7.0, 5.0], non_embedding=[10e6, 10e9]))
    fig = figures.gap_vs_params(_gaps(), _fits(), reference=ref)
    assert fig.layout.xaxis.type == "log"
    names = [t.name for t in fig.data]
    assert names[:3] == ["encoder: P1", "encoder: P2", "encoder-decoder: P3"]
    p1 = fig.data[0]
    assert list(p1.y) == [10.0, 8.0] and list(p1.x) == [100e6, 1e9]
    assert p1.customdata[0][1] == "300M" and p1.customdata[1][2] == "1.00B"     # total and non-embedding in hover
    assert fig.data[1].marker.color == "white"                                   # P2's point is not in the fit
    line = fig.data[3]
    assert "slope -2.00 [-3.00, -1.00]" in line.name
    assert line.y[0] == pytest.approx(26.0 - 2.0 * 8) and line.y[-1] == pytest.approx(26.0 - 2.0 * 9)
    assert fig.data[-1].line.dash == "dot" and list(fig.data[-1].y) == [7.0, 5.0]


def test_language_gap_heatmap_cells_and_order():
    t = pd.DataFrame(dict(model=["s", "s", "l", "l"], lang=["de", "sw", "de", "sw"], gap=[10.0, 20.0, 5.0, 12.0]))
    hm = figures.language_gap_heatmap(t, models=["s", "l"]).data[0]
    assert list(hm.x) == ["s", "l"] and list(hm.y) == ["de", "sw"]     # largest mean gap last (top)
    assert np.asarray(hm.z, float)[1, 1] == 12.0


def test_catch_up_scatter_in_percent_on_log_share():
    t = pd.DataFrame(dict(lang=["de", "sw", "fr"], share=[3.0, 0.5, np.nan], closed=[0.5, 0.25, 0.1]))
    fig = figures.catch_up_scatter(t)
    assert fig.layout.xaxis.type == "log"
    assert list(fig.data[0].text) == ["de", "sw"] and list(fig.data[0].y) == [50.0, 25.0]


def test_task_target_heatmap_cells_and_refuses_duplicates():
    t = pd.DataFrame(dict(intermediate=["A", "A", "B", "B"], target=["xnli", "mlqa", "xnli", "mlqa"],
                          gain=[1.0, -2.0, 3.0, 0.5]))
    hm = figures.task_target_heatmap(t, targets=["xnli", "mlqa"]).data[0]
    assert list(hm.x) == ["xnli", "mlqa"] and list(hm.y) == ["A", "B"]   # B has the larger mean gain: on top
    assert np.asarray(hm.z, float)[0, 1] == -2.0 and hm.zmid == 0
    with pytest.raises(ValueError, match="several rows"):
        figures.task_target_heatmap(pd.concat([t, t]))


def test_xstilts_vs_reference_one_trace_per_model_and_target_with_intervals():
    comp = pd.DataFrame(dict(model=["e5-L6", "e5-L6", "e5-L12", "e5-L12"], size=[6, 6, 12, 12],
                             target=["xnli"] * 3 + ["mlqa"],
                             task=["squad", "hellaswag", "squad", "squad"], xstilts_gain=[2.0, 1.0, 2.0, 3.0],
                             reference_gain=[-0.5, 0.3, 0.2, -1.0], reference_lo=[-1.0, -0.2, -0.3, -2.0],
                             reference_hi=[0.0, 0.8, 0.7, 0.0]))
    fig = figures.xstilts_vs_reference(comp)
    names = [t.name for t in fig.data]
    assert names == ["e5-L6 on XNLI", "e5-L12 on MLQA", "e5-L12 on XNLI"]
    first = fig.data[0]
    assert list(first.text) == ["squad", "hellaswag"] and list(first.x) == [2.0, 1.0]
    assert list(first.error_y.array) == pytest.approx([0.5, 0.5]) and list(first.error_y.arrayminus) == pytest.approx([0.5, 0.5])
    assert fig.data[1].marker.symbol != fig.data[2].marker.symbol            # one symbol per target
    assert "shares no intermediate task" in str(figures.xstilts_vs_reference(comp.iloc[:0]).layout.annotations[0].text)


def test_learning_curve_one_line_per_size_in_examples_seen():
    pts = [{"train_n": 1000, "loss_curve": [[7, 10.0], [14, 8.0]], "score": 1.3},
           {"train_n": 250, "loss_curve": [[7, 10.2]], "score": 0.0}]
    fig = figures.learning_curve(pts, batch_size=16)
    assert [t.name for t in fig.data] == ["250 questions: English F1 0.0", "1,000 questions: English F1 1.3"]
    assert list(fig.data[1].x) == [112, 224] and list(fig.data[1].y) == [10.0, 8.0]
