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
                "metric": "accuracy", "value": v.ravel()}))
    return pd.concat(parts, ignore_index=True)


def test_per_example_path_matches_array_path_and_fills_summary():
    rng = np.random.default_rng(6)
    treat, base = _paired_data(rng, 0.1)
    pe = _per_example(treat, base).sample(frac=1, random_state=0)   # order must not matter
    from_df = R.paired_bootstrap(pe, "encoder", "m", "xnli", "accuracy", "mnli", n_boot=300, seed=3)
    direct = R.bootstrap_gain(treat, base, n_boot=300, seed=3,
                              key=("encoder", "m", "xnli", "accuracy", "mnli"))
    np.testing.assert_allclose(from_df["boot_avg"], direct["boot_avg"], rtol=1e-6)
    # the scores table computed from the same per-example data; its interval is the calibrated one
    g = pe.groupby(["intermediate", "seed", "lang"])["value"].mean().reset_index()
    scores = g.rename(columns={"value": "score"}).assign(
        family="encoder", model="m", size=1, target="xnli", metric="accuracy", n=400)
    t, b = ("encoder", "m", "xnli", "accuracy", "mnli"), ("encoder", "m", "xnli", "accuracy", "none")
    cells = {t: treat, b: base}
    coef = R.gain_coefficients(t, b, ["de", "en"])
    # the book's default: the calibrated interval, the seed shift both runs share cancelling in the gain
    book_row = _row(R.summary_table(scores, pe), "mnli")
    assert book_row["gain_avg"] == pytest.approx(direct["gain_avg"]) and book_row["gain_method"] == "calibrated"
    sv = R.seed_variances(R.variance_components(pe))[("encoder", "m", "xnli", "accuracy")]
    ref = R.linear_contrast(cells, coef, {t: sv, b: sv})
    assert (book_row["gain_avg_lo"], book_row["gain_avg_hi"]) == pytest.approx((ref["lo"], ref["hi"]))
    # asked for (min_paired_seeds=3), both runs having seeds 0, 1, 2: the seed-paired interval, its seed
    # spread from this one gain
    summ = R.summary_table(scores, pe, min_paired_seeds=R.MIN_PAIRED_SEEDS)
    row = _row(summ, "mnli")
    assert row["gain_avg"] == pytest.approx(direct["gain_avg"])
    ref = R.seed_paired_contrast(cells, coef, R.paired_seed_spread([(cells, coef)], "m"))
    assert row["gain_method"] == "seed-paired" and row["seed_var_source"] == "m avg gains, seed-paired: 2.0 effective seed df (2 over 1 contrast(s))"
    assert (row["gain_avg_lo"], row["gain_avg_hi"]) == pytest.approx((ref["lo"], ref["hi"]))
    assert row["gain_avg_hw"] == pytest.approx(ref["half_width"]) and row["gain_avg_mde"] == pytest.approx(ref["mde"])
    assert bool(row["sig_avg"]) is True
    # the English gain uses English alone
    coef_en = R.gain_coefficients(t, b, ["de", "en"], "en")
    ref_en = R.seed_paired_contrast(cells, coef_en, R.paired_seed_spread([(cells, coef_en)], "m"))
    assert row["gain_en_lo"] == pytest.approx(ref_en["lo"])
    # fewer seeds than pairing needs (R.MIN_PAIRED_SEEDS = 3; here 4 asked for): the calibrated interval
    row4 = _row(R.summary_table(scores, pe, min_paired_seeds=4), "mnli")
    assert row4["gain_method"] == "calibrated (3 seed(s), pairing needs 4: runs not seed-paired)"
    assert row4["seed_var_source"] == "m: 4 seed df"       # 2 runs x (3 - 1) seeds, the runs' own components
    # the intermediate run lacks seed 2: not seed-paired, the calibrated interval (runs independent) instead
    short = pe[~((pe["intermediate"] == "mnli") & (pe["seed"] == 2))]
    row = _row(R.summary_table(scores[~((scores["intermediate"] == "mnli") & (scores["seed"] == 2))], short,
                               min_paired_seeds=R.MIN_PAIRED_SEEDS), "mnli")
    sv = R.seed_variances(R.variance_components(short))[("encoder", "m", "xnli", "accuracy")]
    assert sv.df == 2 + 1 and row["seed_var_source"] == "m: 3 seed df"      # (3 - 1) + (2 - 1) seeds
    assert row["gain_method"] == "calibrated (seeds [0, 1] vs baseline [0, 1, 2]: runs not seed-paired)"
    ref = R.linear_contrast({t: {k: v[:2] for k, v in treat.items()}, b: base}, coef, {t: sv, b: sv})
    assert (row["gain_avg_lo"], row["gain_avg_hi"]) == pytest.approx((ref["lo"], ref["hi"]))


def test_per_example_mismatched_ids_raise():
    rng = np.random.default_rng(7)
    treat, base = _paired_data(rng, 0.0)
    pe = _per_example(treat, base)
    pe.loc[(pe["intermediate"] == "none") & (pe["example_id"] == "de-000"), "example_id"] = "de-999"
    with pytest.raises(ValueError, match="language 'de'.*same examples"):
        R.paired_bootstrap(pe, "encoder", "m", "xnli", "accuracy", "mnli")
    # per-example values share the scores' 0..100 scale: a 0..1 or an out-of-range column is refused
    with pytest.raises(ValueError, match=r"'accuracy' values span 0.0..1.0; .*multiply 0..1 values by 100"):
        R.paired_bootstrap(pe.assign(value=pe["value"] / 100), "encoder", "m", "xnli", "accuracy", "mnli")
    with pytest.raises(ValueError, match=r"'accuracy' values span 0.0..10000.0"):
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
    c = R.size_contrast(pe, "encoder", "mlqa", "f1", "s", "l", ["t"])
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
    c = R.model_contrast(pe, "mlqa", "f1", ("encoder", "s"), ("encoder-decoder", "l"), ["t"])
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
    c = R.size_contrast(pd.DataFrame(rows), "encoder", "mlqa", "f1", "s", "l", ["t"])
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


# ------------------------------------------------------- calibrated intervals (issue 16)

def test_t_quantile_and_mde_by_hand():
    # table values of Student's t, 97.5%: df 1 12.706, 2 4.303, 3 3.182, 10 2.228, inf 1.960
    for df, t in ((1, 12.7062), (2, 4.3027), (3, 3.1824), (10, 2.2281), (math.inf, 1.95996)):
        assert R.t_quantile(0.975, df) == pytest.approx(t, abs=1e-3)
    assert R.t_quantile(0.025, 10) == pytest.approx(-2.2281, abs=1e-3)
    assert R.t_cdf(0.0, 5) == pytest.approx(0.5)
    # MDE at 5% two-sided, 80% power: (1.95996 + 0.84162) SE = 2.80158 SE
    assert R.mde(1.0) == pytest.approx(2.80158, abs=1e-4) and R.mde(0.5) == pytest.approx(1.40079, abs=1e-4)
    assert R.mde(1.0, power=0.5) == pytest.approx(1.95996, abs=1e-4)     # 50% power: z_0.5 = 0


def test_components_by_hand():
    # one run, one language, 2 seeds x 2 examples
    # [[0, 2], [2, 0]]: seed means 1, 1; example means 1, 1; residuals +-1 -> SS 4 on 1 df: var_resid 4, no seed effect
    c = R.components_of_runs({"r": {"en": np.array([[0.0, 2.0], [2.0, 0.0]])}})
    assert c["var_resid"] == pytest.approx(4) and c["var_seed"] == 0 and c["df_seed"] == 1
    # [[0, 0], [4, 4]]: no residual; seed means 0 and 4 -> sample variance 8 = var_seed
    c = R.components_of_runs({"r": {"en": np.array([[0.0, 0.0], [4.0, 4.0]])}})
    assert c["var_resid"] == pytest.approx(0) and c["var_seed"] == pytest.approx(8)


def test_components_recover_planted_values():
    from xlt_helpers.calibration import Design, simulate_study

    planted = {"var_lang": 25.0, "var_example": 400.0, "var_run_example": 300.0, "var_seed": 4.0,
               "var_seed_lang": 2.0, "var_resid": 900.0}
    cells, _ = simulate_study(np.random.default_rng(0), Design(n_langs=6, n_examples=400, n_seeds=4, n_tasks=5,
                                                              n_models=1), planted)
    c = R.components_of_runs(cells)
    assert c["df_seed"] == 6 * 3                      # 6 runs x (4 - 1) seeds
    assert c["var_resid"] == pytest.approx(900, rel=0.03)
    assert c["var_run_example"] == pytest.approx(300, rel=0.1)
    assert c["var_example"] == pytest.approx(400, rel=0.15)
    # 18 seed df: the SE of a variance estimate is ~ var * sqrt(2 / 18) = 1/3 of it, so only the order
    assert 1 < c["var_seed"] < 10 and c["var_seed_lang"] < 6


def test_linear_contrast_by_hand():
    # one language, 4 examples, 1 seed: z = treat - base = [1, 2, 3, 4]
    cells = {"t": {"en": np.array([[1.0, 2.0, 3.0, 4.0]])}, "b": {"en": np.zeros((1, 4))}}
    coef = R.gain_coefficients("t", "b", ["en"])
    none = R.SeedVariance(0.0, 0.0, math.inf, "none")
    r = R.linear_contrast(cells, coef, {"t": none, "b": none})
    # mean 2.5; var(ddof=1) = 5/3, / 4 examples = 0.41667; df = 3, t = 3.1824
    assert r["estimate"] == pytest.approx(2.5) and r["se"] == pytest.approx(math.sqrt(5 / 12))
    assert r["df"] == pytest.approx(3) and r["half_width"] == pytest.approx(3.1824 * math.sqrt(5 / 12), rel=1e-4)
    assert r["mde"] == pytest.approx(2.80158 * math.sqrt(5 / 12), rel=1e-4)
    # a run-level seed variance 1 (df 2) in each arm, 1 seed: V_seeds = 1 + 1 = 2
    sv = R.SeedVariance(1.0, 0.0, 2.0, "m")
    r = R.linear_contrast(cells, coef, {"t": sv, "b": sv})
    v = 5 / 12 + 2
    assert r["se"] == pytest.approx(math.sqrt(v)) and r["se_seeds"] == pytest.approx(math.sqrt(2))
    assert r["df"] == pytest.approx(v ** 2 / ((5 / 12) ** 2 / 3 + 2 ** 2 / 2))      # Satterthwaite: 2.838
    # a gap (English +1, the others -1/2) leaves the run-level shift out: only the seed x language part counts
    cells3 = {"b": {lang: np.zeros((2, 4)) + np.arange(4) for lang in ("en", "de", "sw")}}
    gap = {"b": {"en": 1.0, "de": -0.5, "sw": -0.5}}
    r = R.linear_contrast(cells3, gap, {"b": R.SeedVariance(9.0, 1.0, 5.0, "m")})
    assert r["se_seeds"] == pytest.approx(math.sqrt((1 + 0.25 + 0.25) * 1.0 / 2))
    with pytest.raises(ValueError, match="run 'b' has 4 examples, others 3"):
        R.linear_contrast({"t": {"en": np.ones((1, 3))}, "b": {"en": np.ones((1, 4))}}, coef, {"t": none, "b": none})


def test_examples_needed_for_a_half_width_round_trip():
    comp = {"var_run_example": 600.0, "var_resid": 400.0, "var_seed": 0.05, "var_seed_lang": 0.5}
    hw = R.half_width_for_examples(200, comp, n_langs=15, n_seeds=2)
    # V = (2*600 + 2*400/2) / (200*15) + 2 * (0.05 + 0.5/15) / 2 = 0.53333 + 0.08333 = 0.61667
    assert hw == pytest.approx(1.95996 * math.sqrt(0.61667), rel=1e-4)
    assert R.examples_for_half_width(hw, comp, 15, 2) == pytest.approx(200, rel=1e-6)
    assert R.examples_for_half_width(0.5, comp, 15, 2) == math.inf    # the seed term alone is 0.57 wide


def test_seeds_needed_for_a_half_width_round_trip():
    comp = {"var_run_example": 600.0, "var_resid": 400.0, "var_seed": 0.05, "var_seed_lang": 0.5}
    # V(S) = A + B / S at 200 examples x 15 languages: A = 2*600/3000 = 0.4, B = 2*400/3000 + 2*(0.05 + 0.5/15)
    # = 0.43333; the 2-seed half-width has (hw/z)^2 = 0.61667, so S = 0.43333 / 0.21667 = 2 exactly
    hw = R.half_width_for_examples(200, comp, n_langs=15, n_seeds=2)
    assert R.seeds_for_half_width(hw, comp, 15, 200) == 2
    assert R.seeds_for_half_width(1.5, comp, 15, 200) == 3           # (1.5/1.96)^2 - 0.4 = 0.1857: 2.33 -> 3
    assert R.seeds_for_half_width(1.0, comp, 15, 200) == math.inf    # (1/1.96)^2 = 0.260 < A: seeds cannot help
    assert R.seeds_for_half_width(50.0, comp, 15, 200) == 1


def test_bartlett_by_hand():
    # two runs of 3 seeds, variances 1 and 4: pooled 2.5, C = 1 + (1/2 + 1/2 - 1/4) / 3 = 1.25,
    # T = (4 ln 2.5 - 2 ln 1 - 2 ln 4) / 1.25 = 0.71406 on 1 df; p = 2 (1 - Phi(sqrt 0.71406)) = 0.39807
    r = R.bartlett([3, 3], [1.0, 4.0])
    assert r["stat"] == pytest.approx(0.714059, rel=1e-5) and r["df"] == 1 and r["groups"] == 2
    assert r["p"] == pytest.approx(0.39807, abs=2e-4)
    # equal variances: T = 0, p = 1; a single-seed group carries no variance and is left out
    same = R.bartlett([3, 3, 1], [2.0, 2.0, np.nan])
    assert same["stat"] == pytest.approx(0.0, abs=1e-12) and same["p"] == pytest.approx(1.0) and same["groups"] == 2
    # one run ~100x the others' seed variance (the MLQA pattern: SD 9.5 against 0.7-0.9): clearly unequal
    assert R.bartlett([3, 3, 3, 3], [0.5, 0.8, 30.0, 90.0])["p"] < 0.05
    assert np.isnan(R.bartlett([3], [1.0])["p"])


def test_chi2_sf_by_hand():
    # df 2: e^(-x/2); df 1: 2 (1 - Phi(sqrt x)); df 3 at x = 7.8147 (the 95% point): 0.05; df 4 at 2: 3 e^-1
    assert R.chi2_sf(2.0, 2) == pytest.approx(math.exp(-1.0))
    assert R.chi2_sf(3.841459, 1) == pytest.approx(0.05, abs=1e-6)
    assert R.chi2_sf(7.814728, 3) == pytest.approx(0.05, abs=1e-6)
    assert R.chi2_sf(2.0, 4) == pytest.approx(2 * math.exp(-1.0))
    assert R.chi2_sf(0.0, 5) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="whole number of degrees of freedom"):
        R.chi2_sf(1.0, 2.5)


def test_calibrated_interval_covers_95_percent_in_a_simulated_study():
    """The study's design with the variance components measured in results/ (XNLI accuracy); 120 simulated
    studies x (6 gains + 2 contrasts) at one and at three seeds. With 120 independent intervals the MC SE of
    95% coverage is 2.0 points; the 720 gain intervals share baselines and seed estimates within a study, so
    their SE lies between 0.8 and 2.0. Accepted: gains 90-99 (at least 2.5 of the larger SEs), each
    contrast >= 88 (3.5 SEs), for the book's interval of each statistic (the calibrated one, which cancels
    the seed shift a model's runs share: results/, XNLI, 1.28 of var_seed 1.67 squared points). At 3 seeds
    it is also narrower than the seed-paired comparison (300 studies: 1.63 against 2.01)."""
    from xlt_helpers.results import load_results
    from xlt_helpers.calibration import Design, coverage

    res = load_results()
    assert res is not None and res.per_example is not None, "the committed study (results/) is missing"
    pe = res.per_example[(res.per_example["target"] == "xnli") & (res.per_example["metric"] == "accuracy")]
    comp = R.pooled_components(R.variance_components(pe)).iloc[0].to_dict()
    for seeds in (1, 3):
        d = Design(n_langs=int(comp["n_langs"]), n_examples=int(comp["n_examples"]), n_seeds=seeds)
        cov = coverage(d, comp, reps=120, seed=seeds, methods=("seed-paired", "calibrated"))
        book = cov[cov["book"]].set_index("statistic")["coverage"]
        assert book["gap change"] >= 88 and book["gain change"] >= 88, cov
        assert 90 <= book["gain"] <= 99, cov
        gain = cov[cov["statistic"] == "gain"].set_index("method")
        assert (cov[cov["book"]]["method"] == "calibrated").all()
        if seeds >= R.MIN_PAIRED_SEEDS:
            assert gain.loc["calibrated", "mean_half_width"] < gain.loc["seed-paired", "mean_half_width"], cov


def test_slope_change_recovers_a_planted_difference_and_says_when_it_cannot():
    rng = np.random.default_rng(0)
    hits, reps = 0, 400
    x = np.linspace(0, 1, 6)
    for _ in range(reps):                        # slope 2 at the small size, 5 at the large: change +3
        r = R.slope_change(x, 2 * x + rng.normal(0, 0.5, 6), x, 5 * x + rng.normal(0, 0.5, 6))
        hits += r["lo"] <= 3 <= r["hi"]
    # the t interval is exact for normal scatter; 400 reps: MC SE 1.1 points
    assert 0.915 <= hits / reps <= 0.985
    assert r["status"] == "ok" and r["k_small"] == r["k_large"] == 6
    # by hand: exact lines, slopes 2 and 5 -> change 3 with zero SE
    exact = R.slope_change([0, 0.5, 1], [0, 1, 2], [0, 0.5, 1], [1, 3.5, 6])
    assert exact["slope_change"] == pytest.approx(3) and exact["se"] == pytest.approx(0)
    assert exact["status"].startswith("wide: 3 tasks")
    two = R.slope_change([0, 1], [0, 1], [0, 0.5, 1], [0, 1, 3])
    assert math.isnan(two["lo"]) and two["status"].startswith("undefined: small model has 2 task(s)")


def test_coverage_summary_pivots_and_flags_stale_components(tmp_path):
    from xlt_helpers.calibration import coverage_summary, stale_components

    comp = {c: 1.0 for c in R.VC_COLUMNS}
    rows = [{"target": "xnli", "metric": "accuracy", "n_seeds": s, "statistic": "gain", "method": m,
             "coverage": cov, "mc_se": 0.7, "mean_half_width": 1.25, "reps": 10, **comp}
            for s in (1, 3) for m, cov in (("calibrated", 95.0), ("crossed bootstrap (old)", 60.0))]
    path = tmp_path / "coverage.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    measured = pd.DataFrame([{"target": "xnli", "metric": "accuracy", **comp}])
    html = coverage_summary(path, measured)
    assert "95.0 (±1.25)" in html and "60.0 (±1.25)" in html and "Out of date" not in html
    assert html.index("calibrated") < html.index("crossed bootstrap (old)")
    changed = measured.assign(var_seed=2.0)
    assert stale_components(pd.DataFrame(rows), changed) == ["xnli/accuracy"]
    assert "Out of date" in coverage_summary(path, changed)
    assert "No coverage table" in coverage_summary(tmp_path / "missing.csv")
    # a table written before var_seed_shared was measured did not plant it: stale, and says why
    old = pd.DataFrame(rows).drop(columns=["var_seed_shared"])
    assert stale_components(old, measured) == ["xnli/accuracy (the table predates var_seed_shared: not planted)"]
    old.to_csv(path, index=False)
    html = coverage_summary(path, measured)
    assert "95.0 (±1.25)" in html and "predates var_seed_shared" in html and " *" not in html
    # a new table marks the book's interval per statistic
    new = pd.DataFrame([{**r, "method": "seed-paired" if r["method"] == "calibrated" else r["method"],
                         "book": r["method"] == "calibrated"} for r in rows])
    new.to_csv(path, index=False)
    html = coverage_summary(path, measured)
    assert "95.0 (±1.25) *" in html and "60.0 (±1.25) *" not in html and "Out of date" not in html
    assert html.index("seed-paired") < html.index("crossed bootstrap (old)")


def test_coverage_table_is_the_same_in_parallel(tmp_path, synthetic_results, capsys):
    """`--jobs 2` splits the (target, seeds) blocks over processes; each block has its own seed, so the
    table is identical to the serial one (the switch of the study regenerates it on both cores). Each block
    is reported as it ends (at 1,000 studies a block takes minutes), in whatever order they end."""
    from xlt_helpers.calibration import coverage_table
    from xlt_helpers.results import load_results

    res = load_results(synthetic_results(tmp_path / "r", n_examples=10, with_runs=False))
    comp = R.variance_components(res.per_example)
    serial = coverage_table(comp, reps=3, methods=("calibrated",))
    capsys.readouterr()
    parallel = coverage_table(comp, reps=3, methods=("calibrated",), jobs=2, progress=True)
    lines = capsys.readouterr().out.splitlines()
    assert sorted(line.split(":")[0] for line in lines) == ["mlqa/f1, 1 seed(s)", "mlqa/f1, 3 seed(s)",
                                                            "xnli/accuracy, 1 seed(s)", "xnli/accuracy, 3 seed(s)"]
    assert all(" 3 studies in " in line for line in lines), lines
    assert len(serial) == 2 * 2 * 3          # 2 targets x 2 seed counts x 3 statistics
    pd.testing.assert_frame_equal(serial, parallel)


def test_committed_coverage_table_matches_the_results_and_the_calibrated_interval_is_on_target():
    """book/_static/coverage.csv is written by `python -m xlt_helpers.calibration` from results/: its planted
    components must be the ones measured now on the runs the book's intervals use (failed run seeds left
    out), and the rows of the book's interval (calibrated) must lie in 93-97% (issue 16)."""
    from xlt_helpers.analysis import analysed_results
    from xlt_helpers.calibration import COVERAGE_PATH, stale_components
    from xlt_helpers.results import load_results

    table = pd.read_csv(COVERAGE_PATH)
    res = load_results()
    per_example = analysed_results(res)[0].per_example       # the runs the book's intervals use
    assert stale_components(table, R.pooled_components(R.variance_components(per_example))) == []
    cal = table[table["book"]]       # the book's interval for each statistic
    assert set(cal["n_seeds"]) == {1, 3} and set(cal["target"]) == {"xnli", "mlqa"}
    assert set(cal["statistic"]) == {"gain", "gap change", "gain change"}
    assert cal["coverage"].between(93, 97).all(), cal


def test_seed_pairing_sees_runs_that_share_a_seed():
    # the intermediate run repeats its baseline seed for seed: same-seed correlation 1, different seeds ~0
    rng = np.random.default_rng(8)
    base = {"en": (rng.random((2, 300)) < 0.5) * 100.0, "de": (rng.random((2, 300)) < 0.5) * 100.0}
    out = R.seed_pairing(_per_example(base, base)).iloc[0]
    assert out["tasks"] == 1 and out["same_seed_corr"] == pytest.approx(1.0)
    assert abs(out["cross_seed_corr"]) < 0.15          # independent 0/1 columns of 300: SE of r ~ 0.06


# ------------------------------------------------------- seed-paired intervals of gains (issue 16)

def test_components_measure_the_seed_shift_shared_by_a_models_runs_by_hand():
    # two runs, one language, 2 seeds x 2 examples, no per-example noise
    # run a: seed means 0, 4; run b: 2, 6 -> table [[0, 4], [2, 6]]: seed means 1, 5, grand 3, no interaction;
    # MS_seed = 2 runs x ((1-3)^2 + (5-3)^2) / 1 = 16, MS_int = 0 -> var_seed_shared = (16 - 0) / 2 = 8 = var_seed
    a = {"en": np.array([[0.0, 0.0], [4.0, 4.0]])}
    c = R.components_of_runs({"a": a, "b": {"en": np.array([[2.0, 2.0], [6.0, 6.0]])}})
    assert c["var_seed"] == pytest.approx(8) and c["var_seed_shared"] == pytest.approx(8) and c["df_seed_shared"] == 1
    # run b moves the other way: [[0, 4], [4, 0]]: seed means 2, 2 -> MS_seed 0; residuals +-2 -> MS_int 16;
    # (0 - 16) / 2 < 0 -> clipped at 0: nothing shared
    c = R.components_of_runs({"a": a, "b": {"en": np.array([[4.0, 4.0], [0.0, 0.0]])}})
    assert c["var_seed"] == pytest.approx(8) and c["var_seed_shared"] == 0
    # the runs' seed numbers differ: no two runs share their seeds, so the shared part cannot be measured
    c = R.components_of_runs({"a": a, "b": {"en": np.array([[2.0, 2.0], [6.0, 6.0]])}}, seeds={"a": (0, 1), "b": (0, 2)})
    assert math.isnan(c["var_seed_shared"]) and c["df_seed_shared"] == 0


def test_per_seed_contrast_and_seed_paired_interval_by_hand():
    # one language, 2 seeds x 2 examples
    # t = [[2, 4], [4, 6]], b = [[1, 1], [1, 1]] -> z = t - b = [[1, 3], [3, 5]]: per-seed gains g = [2, 4],
    # z has no seed x example interaction -> noise 0
    cells = {"t": {"en": np.array([[2.0, 4.0], [4.0, 6.0]])}, "b": {"en": np.ones((2, 2))}}
    coef = R.gain_coefficients("t", "b", ["en"])
    g, noise = R.per_seed_contrast(cells, coef)
    np.testing.assert_allclose(g, [2, 4]) and noise == pytest.approx(0)
    # alone: var(g) = 2 on 1 df; V = V_examples (seed-mean z = [2, 4]: 2 / 2 = 1, df 1) + 2 / 2 seeds = 2;
    # Satterthwaite df = 2^2 / (1^2 / 1 + 1^2 / 1) = 2 -> half-width t_{2} sqrt(2) = 4.3027 x 1.41421
    spread = R.paired_seed_spread([(cells, coef)], "m")
    assert (spread.var, spread.noise, spread.df) == pytest.approx((2, 0, 1))
    r = R.seed_paired_contrast(cells, coef, spread)
    assert r["estimate"] == pytest.approx(3) and r["se"] == pytest.approx(math.sqrt(2))
    assert r["df"] == pytest.approx(2) and r["half_width"] == pytest.approx(4.3027 * math.sqrt(2), rel=1e-4)
    assert r["method"] == "seed-paired"
    # pooled with a second gain over the same baseline whose per-seed gains are [0, 0]: var (2 + 0) / 2 = 1;
    # the two gains share the baseline (run weights +1, -1 and +1, -1 on one common run: rho = 1/2), so the
    # effective df = (1 + 1)^2 / (1 + 1 + 2 x 1/4) = 1.6, not 2
    cells2 = {**cells, "u": {"en": np.ones((2, 2))}}
    pooled = R.paired_seed_spread([(cells, coef), (cells2, R.gain_coefficients("u", "b", ["en"]))], "m")
    assert pooled.var == pytest.approx(1) and pooled.df == pytest.approx(1.6)
    # two gains with no run in common are independent: df 1 + 1 = 2
    apart = {"u": cells2["u"], "v": cells2["u"]}
    assert R.paired_seed_spread([(cells, coef), (apart, R.gain_coefficients("u", "v", ["en"]))], "m").df == pytest.approx(2)
    # per-example noise: t = [[1, 3], [3, 5]], b = [[0, 0], [2, 0]] -> z = [[1, 3], [1, 5]], g = [2, 3];
    # interaction residuals +-0.5 -> MS 1 on 1 df, / 2 examples -> noise 0.5 = var(g): no seed part left
    noisy = {"t": {"en": np.array([[1.0, 3.0], [3.0, 5.0]])}, "b": {"en": np.array([[0.0, 0.0], [2.0, 0.0]])}}
    g, noise = R.per_seed_contrast(noisy, coef)
    np.testing.assert_allclose(g, [2, 3])
    assert noise == pytest.approx(0.5)
    r = R.seed_paired_contrast(noisy, coef, R.paired_seed_spread([(noisy, coef)], "m"))
    assert r["se_seeds"] == 0 and r["se"] == pytest.approx(math.sqrt(4.5 / 2))   # seed-mean z = [1, 4]


def test_a_seed_shift_shared_by_both_runs_cancels_in_both_gain_intervals():
    # both runs move by [0, 10] with the seed; the treated run is 1 point better on every example
    b = np.array([[0.0, 2.0, 4.0], [10.0, 12.0, 14.0]])
    cells = {"t": {"en": b + 1}, "b": {"en": b}}
    coef = R.gain_coefficients("t", "b", ["en"])
    r = R.seed_paired_contrast(cells, coef, R.paired_seed_spread([(cells, coef)], "m"))
    assert r["estimate"] == pytest.approx(1) and r["se"] == pytest.approx(0)   # g = [1, 1]: no spread at all
    sv = R.seed_variance(R.components_of_runs({"t": cells["t"], "b": cells["b"]}), "m")
    # within each run the seed moves 10 points (var 50), and all of it is shared by the two runs: run x seed
    # means [[3, 13], [2, 12]], MS_seed 2 x (25 + 25) = 100, MS_interaction 0 -> shared (100 - 0) / 2 = 50
    assert sv.var_seed == pytest.approx(50) and sv.var_seed_shared == pytest.approx(50)
    assert R.linear_contrast(cells, coef, {"t": sv, "b": sv})["se"] == pytest.approx(0, abs=1e-9)
    independent = R.SeedVariance(sv.var_seed, sv.var_seed_lang, sv.df, "m", sv.noise, sv.df_lang)
    assert R.linear_contrast(cells, coef, {"t": independent, "b": independent})["se"] > 7   # 2 x 50 / 2 = 50
    # a run with fewer seeds: the shift no longer cancels, each run's whole seed variance counts
    short = {"t": {"en": b[:1] + 1}, "b": {"en": b}}
    assert R.linear_contrast(short, coef, {"t": sv, "b": sv})["se"] > 7
    with pytest.raises(ValueError, match=r"runs \['t', 'b'\] have \[1, 2\] seeds"):
        R.seed_paired_contrast(short, coef, R.paired_seed_spread([(cells, coef)], "m"))
    with pytest.raises(ValueError, match="0.0 df"):
        R.seed_paired_contrast(cells, coef, R.paired_seed_spread([], "m"))


# e5-L6 on XNLI in the study's committed results (15 languages x 2,490 examples, 5 intermediate tasks,
# 3 seeds): R.pooled_components(R.variance_components(load_results().per_example)), rounded
CPU_NEXT_XNLI = {"var_lang": 8.02, "var_example": 1632.5, "var_run_example": 0.0, "var_resid": 810.4,
                 "var_seed": 1.29, "var_seed_lang": 0.19, "var_seed_shared": 0.48}


def test_calibrated_intervals_cover_95_percent_at_the_three_seed_studys_components():
    """The study's design and its measured components with the shared seed planted, 200 simulated studies x
    10 gains (and a gap change and a gain change) at 3 seeds. For speed 400 examples per language stand in
    for 2,490, with the per-example variances scaled by 400 / 2,490 so the example part of a gain's variance
    is the study's. MC error: the 2,000 gain intervals give a binomial SE of 0.5 points, but the gains of one
    study share a baseline, so the honest SE lies between 0.5 and 1.5: gains accepted in 93-97; the 200
    contrasts of each kind (SE 1.5) in 91-99. Measured (seed 0): calibrated gains 94.9% (mean half-width
    1.60), gain change 94.5%, gap change 95.0%; the seed-paired comparison 95.5% at 1.83."""
    from xlt_helpers.calibration import Design, coverage

    scale = 400 / 2490
    comp = {**CPU_NEXT_XNLI, "var_example": CPU_NEXT_XNLI["var_example"] * scale,
            "var_resid": CPU_NEXT_XNLI["var_resid"] * scale}
    cov = coverage(Design(n_langs=15, n_examples=400, n_seeds=3, n_tasks=5), comp, reps=200, seed=0,
                   methods=("seed-paired", "calibrated"))
    book = cov[cov["book"]].set_index("statistic")
    assert (book["method"] == "calibrated").all() and set(book.index) == {"gain", "gap change", "gain change"}
    assert 93 <= book.loc["gain", "coverage"] <= 97, cov
    assert 91 <= book.loc["gap change", "coverage"] <= 99 and 91 <= book.loc["gain change", "coverage"] <= 99, cov
    gain = cov[cov["statistic"] == "gain"].set_index("method")
    assert gain.loc["calibrated", "mean_half_width"] < gain.loc["seed-paired", "mean_half_width"], cov
    assert "seed-paired" not in set(cov[cov["statistic"] != "gain"]["method"])


def test_simulated_shared_seed_is_measured_back():
    from xlt_helpers.calibration import Design, simulate_study

    planted = {"var_lang": 25.0, "var_example": 400.0, "var_run_example": 0.0, "var_seed": 4.0,
               "var_seed_lang": 0.0, "var_resid": 100.0, "var_seed_shared": 3.0}
    cells, _ = simulate_study(np.random.default_rng(1), Design(n_langs=4, n_examples=200, n_seeds=30, n_tasks=3,
                                                              n_models=1), planted)
    c = R.components_of_runs(cells)
    # 30 seeds: the shared part on 29 df (SE ~ 3 x sqrt(2 / 29) = 0.8), the run's whole seed variance on 116
    assert c["df_seed_shared"] == 29 and 1.5 < c["var_seed_shared"] < 4.5
    assert c["var_seed"] == pytest.approx(4.0, rel=0.35)


def test_pooled_shared_seed_uses_the_seed_df_weights_and_old_tables_plant_none():
    # two models, seed df 2 and 6: var_seed (2 x 2 + 6 x 4) / 8 = 3.5; shared (2 x 1 + 6 x 3) / 8 = 2.5, so the
    # pooled run-specific part 3.5 - 2.5 = 1.0 is the same pool of each model's (1 and 1)
    vc = pd.DataFrame([dict(target="xnli", metric="accuracy", n_langs=2, n_examples=10, n_runs=3, df_seed=d,
                            var_lang=0.0, var_example=0.0, var_run_example=0.0, var_resid=0.0, var_seed=v,
                            var_seed_lang=0.0, var_seed_shared=sh, df_seed_shared=1.0)
                       for d, v, sh in ((2.0, 2.0, 1.0), (6.0, 4.0, 3.0))])
    p = R.pooled_components(vc).iloc[0]
    assert (p["var_seed"], p["var_seed_shared"], p["df_seed_shared"]) == pytest.approx((3.5, 2.5, 2.0))
    old = R.pooled_components(vc.drop(columns=["var_seed_shared", "df_seed_shared"])).iloc[0]
    assert old["var_seed_shared"] == 0 and old["var_seed"] == pytest.approx(3.5)


def test_a_one_seed_model_borrows_the_pooled_seed_components_with_their_shared_part():
    """Hand-worked pool: models a (4 seed df) and b (2 seed df) of the same target; c has one seed per run.
    var_seed = (4*3 + 2*6) / 6 = 4, the shared part (4*1 + 2*4) / 6 = 2 -- a gain of c, in which the shared
    part cancels, is not charged for it -- var_seed_lang (4*0.5 + 2*2) / 6 = 1, df 6, df_lang 6*(3-1) = 12."""
    def comp(model: str, df: float, vs: float, sh: float, vl: float) -> dict:
        return {"family": "encoder", "model": model, "target": "xnli", "metric": "accuracy", "df_seed": df,
                "var_seed": vs, "var_seed_shared": sh, "var_seed_lang": vl, "noise_seed_mean": 0.0, "n_langs": 3}
    table = pd.DataFrame([comp("a", 4, 3.0, 1.0, 0.5), comp("b", 2, 6.0, 4.0, 2.0), comp("c", 0, np.nan, np.nan, np.nan)])
    sv = R.seed_variances(table)[("encoder", "c", "xnli", "accuracy")]
    assert (sv.var_seed, sv.var_seed_shared, sv.var_seed_lang, sv.df, sv.df_lang) == pytest.approx((4, 2, 1, 6, 12))
    assert sv.source == "pooled from a, b (one seed per run)"
    # the shared part never exceeds the whole seed variance; an empty pool omits the seed term and says so
    assert R.borrowed_seed_variance(pd.DataFrame([comp("a", 2, 1.0, 3.0, 0.0)]), "x").var_seed_shared == 1.0
    none = R.borrowed_seed_variance(table[table["df_seed"] > 10], "x")
    assert none.var_seed == 0 and none.source.startswith("omitted")
