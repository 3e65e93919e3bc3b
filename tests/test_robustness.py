"""Robustness statistics on small tables whose answers are worked out by hand in comments."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from xlt_helpers import robustness as R


def _scores(rows):
    """rows: (intermediate, seed, lang, score) for one encoder model on XNLI."""
    return pd.DataFrame([dict(family="encoder", model="m", size=100, intermediate=i, target="xnli",
                              seed=s, lang=l, metric="accuracy", score=v, n=400)
                         for i, s, l, v in rows])


# baseline ("none"), two seeds, three languages
#   seed 0: en 80, de 70, sw 60      seed 1: en 82, de 68, sw 58
#   seed means: en 81, de 69, sw 59
# mnli
#   seed 0: en 84, de 68, sw 61      seed 1: en 84, de 66, sw 61
#   seed means: en 84, de 67, sw 61
TABLE = _scores([
    ("none", 0, "en", 80), ("none", 0, "de", 70), ("none", 0, "sw", 60),
    ("none", 1, "en", 82), ("none", 1, "de", 68), ("none", 1, "sw", 58),
    ("mnli", 0, "en", 84), ("mnli", 0, "de", 68), ("mnli", 0, "sw", 61),
    ("mnli", 1, "en", 84), ("mnli", 1, "de", 66), ("mnli", 1, "sw", 61),
])


def _row(df, inter):
    return df[df["intermediate"] == inter].iloc[0]


def test_language_stats_by_hand():
    base = _row(R.language_stats(TABLE), "none")
    assert base["en"] == 81
    assert base["avg"] == pytest.approx((81 + 69 + 59) / 3)          # 69.667, English included
    assert base["others_mean"] == pytest.approx(64)                  # (69 + 59) / 2
    assert base["gap"] == pytest.approx(17)                          # 81 - 64
    assert base["rel_gap"] == pytest.approx(17 / 81)
    assert base["worst_lang"] == "sw" and base["worst_score"] == 59
    # population std of [81, 69, 59]: mean 69.667, squared deviations 128.44 + 0.44 + 113.78
    assert base["std_langs"] == pytest.approx(math.sqrt((128.4444 + 0.4444 + 113.7778) / 3), abs=1e-3)
    # per-seed cross-language means: 70 and 69.333 -> sample std = 0.6667 / sqrt(2)
    assert base["std_seeds"] == pytest.approx((70 - 208 / 3) / math.sqrt(2))
    assert base["n_seeds"] == 2 and base["n_langs"] == 3


def test_negative_transfer_and_gains_by_hand():
    summ = R.summary_table(TABLE)
    mnli, none = _row(summ, "mnli"), _row(summ, "none")
    # de: 67 < 69 (hurt); sw: 61 > 59 (helped)  -> 1 of 2 non-English languages
    assert mnli["neg_transfer_share"] == 0.5 and mnli["n_neg_langs"] == 1
    assert mnli["gain_en"] == pytest.approx(3)                       # 84 - 81
    assert mnli["gain_avg"] == pytest.approx(212 / 3 - 209 / 3)      # 70.667 - 69.667 = 1
    assert math.isnan(none["gain_avg"]) and math.isnan(none["neg_transfer_share"])
    # no per-example data: CI columns NaN, significance unknown
    assert math.isnan(mnli["gain_avg_lo"]) and pd.isna(mnli["sig_avg"])


def test_equal_score_is_not_negative_transfer():
    # intermediate equals the baseline in every language: nothing was hurt
    t = pd.concat([TABLE[TABLE["intermediate"] == "none"],
                   TABLE[TABLE["intermediate"] == "none"].assign(intermediate="same")])
    assert _row(R.negative_transfer(t), "same")["neg_transfer_share"] == 0


def test_std_seeds_nan_with_one_seed_and_missing_seed_language_raises():
    one = TABLE[TABLE["seed"] == 0]
    assert math.isnan(_row(R.language_stats(one), "none")["std_seeds"])
    gap = TABLE.drop(index=TABLE.index[(TABLE["seed"] == 1) & (TABLE["lang"] == "sw")
                                       & (TABLE["intermediate"] == "none")])
    with pytest.raises(ValueError, match=r"seed 1 lacks language\(s\) \['sw'\]"):
        R.language_stats(gap)


def test_bad_scores_are_named():
    with pytest.raises(ValueError, match=r"lacks column\(s\) \['lang'\]"):
        R.language_stats(TABLE.drop(columns="lang"))
    with pytest.raises(ValueError, match="outside 0..100"):
        R.language_stats(TABLE.assign(score=TABLE["score"] / 100 + 200))
    with pytest.raises(ValueError, match="repeating a \\(run, language\\)"):
        R.language_stats(pd.concat([TABLE, TABLE.iloc[[0]]]))


# ------------------------------------------------------------------ bootstrap

def _paired_data(rng, delta, n=400, seeds=3, langs=("en", "de")):
    """Each example has a latent probability p ~ U(0.3, 0.9) of being right; the intermediate
    model's is p + delta. True gain = 100 * delta points in every language."""
    treat, base = {}, {}
    for lang in langs:
        p = rng.uniform(0.3, 0.9, n)
        base[lang] = (rng.random((seeds, n)) < p).astype(float) * 100
        treat[lang] = (rng.random((seeds, n)) < p + delta).astype(float) * 100
    return treat, base


def test_bootstrap_ci_covers_truth_most_of_the_time():
    rng = np.random.default_rng(1)
    hits = 0
    reps = 60
    for r in range(reps):
        treat, base = _paired_data(rng, 0.1)
        lo, hi = R.bootstrap_gain(treat, base, n_boot=300, seed=r)["ci_avg"]
        hits += lo <= 10 <= hi
    assert hits / reps >= 0.85   # nominal 95%; 60 replicates leave room for noise


def test_bootstrap_large_effect_excludes_zero_no_effect_includes_it():
    rng = np.random.default_rng(2)
    res = R.bootstrap_gain(*_paired_data(rng, 0.1), n_boot=1000, seed=0)
    assert res["ci_avg"][0] > 0 and res["ci_en"][0] > 0
    assert res["gain_avg"] == pytest.approx(10, abs=3)
    null = R.bootstrap_gain(*_paired_data(rng, 0.0), n_boot=1000, seed=0)
    assert null["ci_avg"][0] < 0 < null["ci_avg"][1]


def test_pairing_narrows_the_interval():
    # treat = base with 5% of examples flipped to right: the paired CI is far tighter than
    # the spread of either arm alone (the shared example difficulty cancels)
    rng = np.random.default_rng(3)
    base = {"en": (rng.random((1, 400)) < 0.6).astype(float) * 100}
    treat = {"en": np.maximum(base["en"], (rng.random((1, 400)) < 0.05) * 100.0)}
    lo, hi = R.bootstrap_gain(treat, base, n_boot=1000, seed=0)["ci_en"]
    # unpaired 95% half-width ~ 1.96 * sqrt(2 * 60 * 40 / 400) = 6.8 points
    assert hi - lo < 5
    assert lo > 0


def test_bootstrap_is_deterministic_given_seed():
    rng = np.random.default_rng(4)
    treat, base = _paired_data(rng, 0.05)
    a = R.bootstrap_gain(treat, base, n_boot=200, seed=7)
    b = R.bootstrap_gain(treat, base, n_boot=200, seed=7)
    c = R.bootstrap_gain(treat, base, n_boot=200, seed=8)
    np.testing.assert_array_equal(a["boot_avg"], b["boot_avg"])
    assert not np.array_equal(a["boot_avg"], c["boot_avg"])


def test_bootstrap_rejects_unpaired_inputs():
    rng = np.random.default_rng(5)
    treat, base = _paired_data(rng, 0.0)
    base["en"] = base["en"][:, :399]
    with pytest.raises(ValueError, match="'en' has 400 treated vs 399 baseline"):
        R.bootstrap_gain(treat, base)


def _per_example(treat, base, inter="mnli"):
    parts = []
    for name, arm in ((inter, treat), ("none", base)):
        for lang, v in arm.items():
            s, n = v.shape
            parts.append(pd.DataFrame({
                "family": "encoder", "model": "m", "intermediate": name, "target": "xnli",
                "seed": np.repeat(np.arange(s), n), "lang": lang,
                "example_id": np.tile([f"{lang}-{i:03d}" for i in range(n)], s),
                "metric": "accuracy", "value": v.ravel() / 100}))
    return pd.concat(parts, ignore_index=True)


def test_per_example_path_matches_array_path_and_fills_summary():
    rng = np.random.default_rng(6)
    treat, base = _paired_data(rng, 0.1)
    pe = _per_example(treat, base).sample(frac=1, random_state=0)   # order must not matter
    from_df = R.paired_bootstrap(pe, "encoder", "m", "xnli", "accuracy", "mnli", n_boot=300, seed=3)
    direct = R.bootstrap_gain(treat, base, n_boot=300, seed=3,
                              key=("encoder", "m", "xnli", "accuracy", "mnli"))
    np.testing.assert_allclose(from_df["boot_avg"], direct["boot_avg"], rtol=1e-6)
    # the scores table computed from the same per-example data
    g = pe.groupby(["intermediate", "seed", "lang"])["value"].mean().mul(100).reset_index()
    scores = g.rename(columns={"value": "score"}).assign(
        family="encoder", model="m", size=1, target="xnli", metric="accuracy", n=400)
    summ = R.summary_table(scores, pe, n_boot=300, seed=3)
    row = _row(summ, "mnli")
    assert row["gain_avg"] == pytest.approx(direct["gain_avg"])
    assert (row["gain_avg_lo"], row["gain_avg_hi"]) == pytest.approx(direct["ci_avg"], rel=1e-6)
    assert bool(row["sig_avg"]) is True


def test_per_example_mismatched_ids_raise():
    rng = np.random.default_rng(7)
    treat, base = _paired_data(rng, 0.0)
    pe = _per_example(treat, base)
    pe.loc[(pe["intermediate"] == "none") & (pe["example_id"] == "de-000"), "example_id"] = "de-999"
    with pytest.raises(ValueError, match="language 'de'.*same examples"):
        R.paired_bootstrap(pe, "encoder", "m", "xnli", "accuracy", "mnli")
    with pytest.raises(ValueError, match="store them as 0/1"):
        R.paired_bootstrap(pe.assign(value=pe["value"] * 100), "encoder", "m", "xnli", "accuracy", "mnli")


# ----------------------------------------------------------------- difficulty

def test_task_difficulty_formula():
    assert R.task_difficulty(90, 50) == pytest.approx(0.2)   # 1 - (90-50)/(100-50)
    assert R.task_difficulty(25, 25) == 1.0                  # at chance
    assert R.task_difficulty(20, 25) == 1.0                  # below chance clips
    assert R.task_difficulty(100, 100 / 3) == 0.0
    np.testing.assert_allclose(R.task_difficulty(np.array([60.0, 80.0]), np.array([20.0, 50.0])),
                               [0.5, 0.4])                   # 1-40/80, 1-30/50
    with pytest.raises(ValueError, match="multiply a 0..1 chance by 100"):
        R.task_difficulty(80, 100)


def test_difficulty_table_fills_chance_from_registry():
    dev = pd.DataFrame({"model": "m", "intermediate": ["hellaswag", "hellaswag", "sst2"],
                        "seed": [0, 1, 0], "metric": "accuracy", "score": [60.0, 65.0, 95.0]})
    t = R.difficulty_table(dev).set_index("intermediate")
    # hellaswag: chance 25 (4-way), seed-mean 62.5 -> 1 - 37.5/75 = 0.5
    assert t.loc["hellaswag", "chance"] == 25 and t.loc["hellaswag", "difficulty"] == pytest.approx(0.5)
    # sst2: chance 50 -> 1 - 45/50 = 0.1
    assert t.loc["sst2", "difficulty"] == pytest.approx(0.1)
    with pytest.raises(ValueError, match="no chance level"):
        R.difficulty_table(dev.assign(intermediate="made-up-task"))


def test_v_information():
    # p_model(y|x) = 0.5, p_null(y) = 0.25 -> log2 0.5 - log2 0.25 = -1 + 2 = 1 bit
    pvi = R.pointwise_v_information(np.log([0.5, 0.25]), np.log([0.25, 0.25]))
    np.testing.assert_allclose(pvi, [1.0, 0.0])
    assert R.v_information([-1.0, -2.0], [-2.0, -2.0], log_base=2) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="must be <= 0"):
        R.pointwise_v_information([0.5], [0.25])


def test_null_log_prior_is_the_smoothed_training_label_frequency():
    # labels 0,0,0,1 over 3 classes, add-one: counts 4,2,1 of 7
    np.testing.assert_allclose(np.exp(R.null_log_prior([0, 0, 0, 1], 3)), [4 / 7, 2 / 7, 1 / 7])
    np.testing.assert_allclose(np.exp(R.null_log_prior([1, 1], 2, smoothing=0.0)), [0.0, 1.0])
    with pytest.raises(ValueError, match="0..1"):
        R.null_log_prior([0, 2], 2)


def test_difficulty_table_averages_v_information_over_the_seeds_that_have_it():
    dev = pd.DataFrame({"model": "m", "intermediate": "sst2", "seed": [0, 1, 2], "metric": "accuracy",
                        "score": [60.0, 70.0, 80.0], "chance": 50.0, "v_info_bits": [0.2, 0.4, np.nan]})
    t = R.difficulty_table(dev).iloc[0]
    assert t["v_info_bits"] == pytest.approx(0.3) and t["n_seeds_v_info"] == 2 and t["n_seeds"] == 3
    assert np.isnan(R.difficulty_table(dev.drop(columns="v_info_bits")).iloc[0]["v_info_bits"])


# --------------------------------------------------------------- correlation

def test_spearman_ties_by_hand():
    # ranks x = [1, 2.5, 2.5, 4], y = [1, 2, 3, 4]: cov 4.5, sxx 4.5, syy 5 -> 4.5/sqrt(22.5)
    assert R.spearman([1, 2, 2, 3], [10, 20, 30, 40]) == pytest.approx(4.5 / math.sqrt(22.5))
    assert R.pearson([1, 2, 3], [2, 4, 6]) == pytest.approx(1.0)
    assert math.isnan(R.pearson([1, 1, 1], [1, 2, 3]))


def test_correlation_recovers_planted_line():
    rng = np.random.default_rng(8)
    x = np.linspace(0.1, 0.9, 8)
    y = 2 + 3 * x + rng.normal(0, 0.1, 8)
    c = R.correlate(x, y, n_boot=1000, seed=0)
    assert c["pearson_r"] > 0.95 and c["spearman_rho"] > 0.9
    assert c["slope_lo"] < 3 < c["slope_hi"] and c["slope_lo"] > 0
    assert c["pearson_r_lo"] > 0
    assert c["slope"] == pytest.approx(3, abs=0.5)
    flat = R.correlate(x, rng.normal(0, 1, 8), n_boot=1000, seed=0)
    assert flat["pearson_r_lo"] < 0 < flat["pearson_r_hi"]


def test_gain_vs_difficulty_per_model():
    tasks = [f"t{i}" for i in range(6)]
    diff = pd.DataFrame({"model": np.repeat(["a", "b"], 6), "intermediate": tasks * 2,
                         "difficulty": np.tile(np.linspace(0, 1, 6), 2)})
    gain = diff.assign(target="xnli", metric="accuracy",
                       gain_avg=np.where(diff["model"] == "a", 4 * diff["difficulty"], -2 * diff["difficulty"]))
    gain = gain.drop(columns="difficulty")
    out = R.gain_vs_difficulty(gain, diff, n_boot=200).set_index("model")
    assert out.loc["a", "slope"] == pytest.approx(4) and out.loc["b", "slope"] == pytest.approx(-2)
    assert out.loc["a", "pearson_r"] == pytest.approx(1) and out.loc["b", "spearman_rho"] == pytest.approx(-1)
    assert out.loc["a", "n"] == 6


# --------------------------------------------------------------- size contrasts

def _pe_rows(model: str, inter: str, by_lang: dict, n: int = 20, seeds=(0, 1), noise: float = 0.0, rng=None):
    rows = []
    for seed in seeds:
        for lang, v in by_lang.items():
            vals = np.full(n, float(v)) if noise == 0 else np.clip(v + rng.normal(0, noise, n), 0, 100)
            rows += [{"family": "encoder", "model": model, "intermediate": inter, "target": "mlqa", "seed": seed,
                      "lang": lang, "example_id": f"{lang}-{i}", "metric": "f1", "value": x} for i, x in enumerate(vals)]
    return rows


def test_size_contrast_by_hand_on_constant_scores():
    # small: gap 80 - (60+50)/2 = 25; gain of t = mean(2, 1, 3) = 2
    # large: gap 90 - (80+76)/2 = 12; gain of t = mean(0, 1, 0) = 1/3
    pe = pd.DataFrame(_pe_rows("s", "none", {"en": 80, "de": 60, "sw": 50}) + _pe_rows("s", "t", {"en": 82, "de": 61, "sw": 53})
                      + _pe_rows("l", "none", {"en": 90, "de": 80, "sw": 76}) + _pe_rows("l", "t", {"en": 90, "de": 81, "sw": 76}))
    c = R.size_contrast(pe, "encoder", "mlqa", "f1", "s", "l", ["t"], n_boot=200)
    assert (c["gap_small"], c["gap_large"]) == pytest.approx((25, 12))
    assert c["gap_change"] == pytest.approx(-13) and (c["gap_change_lo"], c["gap_change_hi"]) == pytest.approx((-13, -13))
    assert (c["gain_small"], c["gain_large"], c["gain_change"]) == pytest.approx((2, 1 / 3, -5 / 3))
    assert c["gain_change_lo"] == pytest.approx(-5 / 3, abs=1e-4)
    with pytest.raises(ValueError, match="no per-example rows.*'intermediate': 'u'"):
        R.size_contrast(pe, "encoder", "mlqa", "f1", "s", "l", ["u"])


def test_model_contrast_across_families_by_hand():
    # the constant-score tables above, with the second model an encoder-decoder
    pe = pd.DataFrame(_pe_rows("s", "none", {"en": 80, "de": 60, "sw": 50}) + _pe_rows("s", "t", {"en": 82, "de": 61, "sw": 53})
                      + _pe_rows("l", "none", {"en": 90, "de": 80, "sw": 76}) + _pe_rows("l", "t", {"en": 90, "de": 81, "sw": 76}))
    pe.loc[pe["model"] == "l", "family"] = "encoder-decoder"
    c = R.model_contrast(pe, "mlqa", "f1", ("encoder", "s"), ("encoder-decoder", "l"), ["t"], n_boot=200)
    assert c["family"] == "encoder vs encoder-decoder"
    assert (c["gap_small"], c["gap_large"], c["gap_change"]) == pytest.approx((25, 12, -13))
    assert c["gain_change"] == pytest.approx(-5 / 3)
    with pytest.raises(ValueError, match="no per-example rows.*'model': 'l'"):
        R.size_contrast(pe, "encoder", "mlqa", "f1", "s", "l", ["t"])     # l is not an encoder


def test_size_contrast_interval_covers_a_planted_change():
    rng = np.random.default_rng(3)
    rows = []
    for model, en in (("s", 60), ("l", 70)):       # gap 20 -> 30: change +10
        rows += _pe_rows(model, "none", {"en": en, "de": 40, "sw": 40}, n=200, noise=15, rng=rng)
        rows += _pe_rows(model, "t", {"en": en, "de": 41, "sw": 40}, n=200, noise=15, rng=rng)
    c = R.size_contrast(pd.DataFrame(rows), "encoder", "mlqa", "f1", "s", "l", ["t"], n_boot=500)
    assert c["gap_change_lo"] < 10 < c["gap_change_hi"] and c["gap_change_lo"] > 0
    assert c["gain_change_lo"] < 0 < c["gain_change_hi"]      # the same planted gain at both sizes


def test_language_resampled_gap_change_by_hand():
    out = R.language_resampled_gap_change({"en": 80, "de": 60, "fr": 70}, {"en": 90, "de": 85, "fr": 87}, n_boot=500)
    assert (out["gap_small"], out["gap_large"], out["gap_change"]) == pytest.approx((15, 4, -11))
    # the only resampled values are -15 (de, de), -11 (de, fr) and -7 (fr, fr)
    assert -15 <= out["gap_change_lo"] <= -11 <= out["gap_change_hi"] <= -7
    with pytest.raises(ValueError, match="need 'en'"):
        R.language_resampled_gap_change({"de": 1, "fr": 2}, {"en": 1, "de": 1, "fr": 2})


def test_correlation_needs_three_tasks_and_an_interval_five():
    two = R.correlate([0.1, 0.9], [3.0, 1.0], n_boot=200)     # a line through 2 points: slope yes, r/rho no
    assert two["slope"] == pytest.approx(-2.5) and math.isnan(two["pearson_r"]) and math.isnan(two["spearman_rho"])
    c = R.correlate([0.1, 0.5, 0.9], [1.0, 2.0, 3.0], n_boot=200)
    assert c["spearman_rho"] == pytest.approx(1.0) and c["n"] == 3
    assert all(math.isnan(c[f"{n}_{e}"]) for n in ("pearson_r", "spearman_rho", "slope") for e in ("lo", "hi"))
    assert not math.isnan(R.correlate([0.1, 0.3, 0.5, 0.7, 0.9], [1, 3, 2, 5, 4], n_boot=200)["spearman_rho_lo"])
