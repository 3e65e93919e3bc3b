"""load_task end to end: real data counts and schemas, errors on broken data
folders, subsampling, hold-outs and the leakage check."""
from __future__ import annotations

import csv
import json
import random
from pathlib import Path

import pytest
from datasets import Dataset

from xlt_helpers import data as data_mod
from xlt_helpers import readers
from xlt_helpers.data import (DataError, DataFileMissing, LeakageError, MalformedRecord, assert_disjoint,
                              load_task, local_paths, subsample)
from xlt_helpers.paths import cache_dir, data_dir, repo_root
from xlt_helpers.schema import COLUMNS, features_for
from xlt_helpers.tasks import KINDS, MLQA_LANGS, TASKS, XNLI_LANGS


# ------------------------------------------------------------------ helpers
def registry_files(root: Path) -> dict[Path, tuple[str, str]]:
    """Every local file the task registry points to -> (fmt, task), incl. all 49 MLQA pairs."""
    out: dict[Path, tuple[str, str]] = {}
    for name, spec in TASKS.items():
        for split, src in spec.splits.items():
            if not src.local:
                continue
            langs = list(spec.langs_for(split))
            if (name, split) == ("mlqa", "dev"):
                langs += [f"{c}.{q}" for c in MLQA_LANGS for q in MLQA_LANGS]
            for lang in langs:
                for path in local_paths(name, split, lang, data_dir=root):
                    out.setdefault(path, (src.fmt, name))
    return out


def counts(root: Path) -> dict[str, int]:
    with open(root / "COUNTS.tsv", encoding="utf-8", newline="") as f:
        return {row["file"]: int(row["count"]) for row in csv.DictReader(f, delimiter="\t")}


def write(path: Path, text: str, newline: str = "\n") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.replace("\n", newline).encode("utf-8"))
    return path


def tiny_dataset(task: str, texts: list[tuple[str, str]], ids: list[str]) -> Dataset:
    spec = TASKS[task]
    return Dataset.from_dict({"id": ids, "lang": ["en"] * len(ids), "text_a": [a for a, _ in texts],
                              "text_b": [b for _, b in texts], "label": [0] * len(ids)},
                             features=features_for(spec))


# ------------------------------------------------------------------ real data
@pytest.mark.shared_data
def test_readme_snippet():
    from xlt_helpers.data import load_task
    ds = load_task("xnli", "dev", "de")
    assert len(ds) == 2490


def test_every_local_file_matches_counts_tsv(shared_data):
    expected = counts(shared_data)
    files = registry_files(shared_data)
    rels = {p.relative_to(shared_data).as_posix(): v for p, v in files.items()}
    assert sum(r.startswith("mlqa/") for r in rels) == 49
    unknown = sorted(set(rels) - set(expected))
    assert not unknown, f"registry files missing from COUNTS.tsv: {unknown}"
    wrong = {}
    for rel, (fmt, task) in rels.items():
        cols = readers.read(fmt, shared_data / rel, labels=TASKS[task].labels, id_prefix=f"{task}-x")
        if len(cols["id"]) != expected[rel]:
            wrong[rel] = (len(cols["id"]), expected[rel])
    assert not wrong, f"(read, COUNTS.tsv) differ: {wrong}"


def test_all_49_mlqa_files_load_through_the_pair_option(shared_data):
    expected = counts(shared_data)
    for c in MLQA_LANGS:
        for q in MLQA_LANGS:
            ds = load_task("mlqa", "dev", f"{c}.{q}", data_dir=shared_data)
            assert len(ds) == expected[f"mlqa/MLQA_V1/dev/dev-context-{c}-question-{q}.json"], (c, q)
            assert ds[0]["lang"] == f"{c}.{q}"
    # a same-language code is the same file as the pair c.c
    assert load_task("mlqa", "dev", "hi")["id"][:] == load_task("mlqa", "dev", "hi.hi")["id"][:]


@pytest.mark.parametrize("kind", KINDS)
def test_one_schema_per_kind(shared_data, kind):
    for name, spec in TASKS.items():
        if spec.kind != kind or not any(src.local for src in spec.splits.values()):
            continue
        split = next(s for s, src in spec.splits.items() if src.local)
        lang = spec.langs_for(split)[-1]
        ds = load_task(name, split, lang, n=50, source="local")
        assert ds.features == features_for(spec), name
        assert ds.column_names == list(COLUMNS[kind]), name
        assert set(ds["lang"]) == {lang}
        assert all(isinstance(i, str) and i for i in ds["id"][:])


def test_full_splits_have_unique_ids_and_the_documented_sizes(shared_data):
    sizes = {("xnli", "train", "en"): 5010, ("sst2", "train", "en"): 67349, ("udpos", "train", "en"): 21253,
             ("mlqa", "train", "en"): 10570 + 3696, ("siqa", "train", "en"): 2224, ("pawsx", "test", "zh"): 2000}
    for (task, split, lang), size in sizes.items():
        ds = load_task(task, split, lang, source="local")
        assert len(ds) == size == len(set(ds["id"][:])), task


def test_xnli_train_keeps_the_documented_duplicate_pair(shared_data):
    ds = load_task("xnli", "train")
    a, b = ds[2901], ds[2902]                                 # file rows 2902 and 2903
    assert (a["text_a"], a["text_b"]) == (b["text_a"], b["text_b"]) and a["label"] != b["label"]
    assert (a["id"], b["id"]) == ("xnli-test-en-02902", "xnli-test-en-02903")


# ------------------------------------------------------------------ hold-outs
@pytest.mark.parametrize("task", [t for t, s in TASKS.items() if s.holdout > 0])
def test_holdout_partitions_the_file_without_straddling_groups(shared_data, task):
    spec = TASKS[task]
    train, dev = load_task(task, "train"), load_task(task, "dev")
    total = counts(shared_data)[spec.splits["train"].local[0]]
    assert len(train) + len(dev) == total
    assert not set(train["id"][:]) & set(dev["id"][:])
    key = spec.holdout_key
    assert not set(train[key][:]) & set(dev[key][:]), f"{task}: {key} groups straddle the split"
    n_groups = len(set(train[key][:]) | set(dev[key][:]))
    assert len(set(dev[key][:])) == max(1, round(spec.holdout * n_groups))
    assert_disjoint(train, [dev], task=task)
    # fixed, independent of the seed argument
    assert load_task(task, "dev", seed=123)["id"][:] == dev["id"][:]


def test_squad_holdout_is_whole_articles(shared_data):
    train, dev = load_task("squad", "train"), load_task("squad", "dev")
    assert len(set(dev["title"][:])) == 5 and len(set(train["title"][:])) == 43   # 10% of the 48 articles
    assert not set(train["context"][:]) & set(dev["context"][:])


def test_holdout_on_a_small_file(tmp_path):
    rows = [{"activity_label": "A", "ctx": f"c{i // 2}", "endings": ["a", "b", "c", "d"], "label": i % 4}
            for i in range(40)]                                  # every context used twice
    write(tmp_path / "english/hellaswag/val.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
    train = load_task("hellaswag", "train", data_dir=tmp_path)
    dev = load_task("hellaswag", "dev", data_dir=tmp_path)
    assert len(dev) == 8 and len(train) == 32                     # 20% of 20 contexts, 2 rows each
    assert not set(train["context"][:]) & set(dev["context"][:])


def cosmosqa_rows() -> list[dict]:
    """19 CosmosQA items on 10 passages; passage i has (i % 3) + 1 items, passage 4 asks one question twice
    with other answers (as the real file does)."""
    rows = []
    for i in range(10):
        for j in range(i % 3 + 1):
            rows.append({"id": f"cos-{i}-{j}", "context": f"passage {i}", "question": "Why?" if i == 4 else f"q{j}",
                         "answer0": f"a{j}", "answer1": "b", "answer2": "c", "answer3": "d", "label": (i + j) % 4})
    return rows


def test_cosmosqa_split_is_by_passage_hash_whatever_the_file_order(tmp_path):
    # Hand-computed from the rule: sha256("xlt-holdout-v1:passage i") hex starts 8660ee… (i=3), 868032… (4),
    # 89b717… (7), a76ea3… (8), b4fa3c… (5), bf7d45… (1), db32d7… (0), dc7e6c… (9), eff166… (2), f1a274… (6).
    # 20% of 10 passages = 2 -> dev = passages 3 (1 item) and 4 (2 items) = 3 items; train = the other 16.
    rows = cosmosqa_rows()
    assert len(rows) == 19
    write(tmp_path / "a/english/cosmosqa/valid.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
    shuffled = rows[:]
    random.Random(7).shuffle(shuffled)
    assert shuffled != rows
    write(tmp_path / "b/english/cosmosqa/valid.jsonl", "".join(json.dumps(r) + "\n" for r in shuffled))
    split = {}
    for folder in ("a", "b"):
        train = load_task("cosmosqa", "train", data_dir=tmp_path / folder)
        dev = load_task("cosmosqa", "dev", data_dir=tmp_path / folder)
        split[folder] = (sorted(train["id"][:]), sorted(dev["id"][:]))
    assert split["a"] == split["b"]                                      # file order plays no part
    train_ids, dev_ids = split["a"]
    assert dev_ids == ["cos-3-0", "cos-4-0", "cos-4-1"]
    assert len(train_ids) == 16 and not set(train_ids) & set(dev_ids)
    assert sorted(train_ids + dev_ids) == sorted(r["id"] for r in rows)   # a partition: nothing dropped
    # n and seed subsample inside a side: they never move an item across the split
    for seed in (0, 1, 2):
        assert set(load_task("cosmosqa", "dev", n=2, seed=seed, data_dir=tmp_path / "a")["id"][:]) < set(dev_ids)
        assert set(load_task("cosmosqa", "train", n=5, seed=seed, data_dir=tmp_path / "a")["id"][:]) < set(train_ids)


def test_cosmosqa_split_sizes_on_the_real_file(shared_data):
    train, dev = load_task("cosmosqa", "train", source="local"), load_task("cosmosqa", "dev", source="local")
    assert (len(train), len(dev)) == (2386, 599)                          # 2,985 items (COUNTS.tsv)
    assert (len(set(train["context"][:])), len(set(dev["context"][:]))) == (1956, 489)   # 20% of 2,445 passages
    assert not set(train["context"][:]) & set(dev["context"][:])
    assert_disjoint(train, [dev], task="cosmosqa")
    assert len(dev[0]["choices"]) == 4 and 0 <= dev[0]["label"] < 4


def test_holdout_split_is_a_pure_function_of_the_groups():
    cols = {"id": [f"i{k}" for k in range(100)], "x": list(range(100))}
    dev = data_mod.holdout_split(cols, fraction=0.2, key="id", part="dev")
    train = data_mod.holdout_split(cols, fraction=0.2, key="id", part="train")
    assert len(dev["id"]) == 20 and sorted(dev["x"] + train["x"]) == cols["x"]
    shuffled = {"id": cols["id"][::-1], "x": cols["x"][::-1]}
    assert set(data_mod.holdout_split(shuffled, fraction=0.2, key="id", part="dev")["id"]) == set(dev["id"][:])


def test_same_file_train_and_dev_without_holdout_is_refused(monkeypatch, tmp_path):
    import dataclasses
    spec = dataclasses.replace(TASKS["hellaswag"], holdout=0.0)
    monkeypatch.setitem(TASKS, "hellaswag", spec)
    write(tmp_path / "english/hellaswag/val.jsonl",
          json.dumps({"activity_label": "A", "ctx": "c", "endings": ["a", "b", "c", "d"], "label": 0}) + "\n")
    with pytest.raises(DataError, match="same file.*set holdout"):
        load_task("hellaswag", "dev", data_dir=tmp_path)


# ------------------------------------------------------------------ subsampling
def test_subsample_is_deterministic_and_explicit():
    ds = tiny_dataset("xnli", [(f"p{i}", "h") for i in range(50)], [f"id{i}" for i in range(50)])
    a, b, c = subsample(ds, 10, 0), subsample(ds, 10, 0), subsample(ds, 10, 1)
    assert a["id"] == b["id"] and a["id"] != c["id"] and len(set(a["id"][:])) == 10
    assert subsample(ds, None, 0) is ds
    with pytest.raises(DataError, match=r"n=51 .* only 50"):
        subsample(ds, 51, 0)
    with pytest.raises(DataError, match="non-negative"):
        subsample(ds, -1, 0)


def test_load_task_n_and_seed(shared_data):
    a = load_task("xnli", "dev", "fr", n=100, seed=7)
    assert len(a) == 100 and a["id"] == load_task("xnli", "dev", "fr", n=100, seed=7)["id"]
    assert a["id"] != load_task("xnli", "dev", "fr", n=100, seed=8)["id"]
    with pytest.raises(DataError, match="n=9999 .* only 2490"):
        load_task("xnli", "dev", "fr", n=9999)


# ------------------------------------------------------------------ leakage
def test_assert_disjoint_catches_shared_ids_and_shared_texts():
    train = tiny_dataset("xnli", [("p1", "h1"), ("p2", "h2")], ["t1", "t2"])
    assert_disjoint(train, [tiny_dataset("xnli", [("p3", "h3")], ["e1"])], task="xnli")
    same_text = tiny_dataset("xnli", [("p9", "h9"), ("p2", "h2")], ["e1", "e2"])       # re-id'd copy
    with pytest.raises(LeakageError, match=r"eval set 1 .*0 shared ids.*1 shared texts.*p2 \| h2"):
        assert_disjoint(train, [tiny_dataset("xnli", [("p3", "h3")], ["e0"]), same_text], task="xnli")
    same_id = tiny_dataset("xnli", [("other", "text")], ["t1"])
    with pytest.raises(LeakageError, match=r"1 shared ids \(e.g. \['t1'\]\)"):
        assert_disjoint(train, [same_id], task="xnli")


def test_xnli_train_is_disjoint_from_every_dev_language(shared_data):
    train = load_task("xnli", "train")
    assert_disjoint(train, [load_task("xnli", "dev", lang) for lang in XNLI_LANGS], task="xnli")


def test_leakage_check_finds_xquad_inside_mlqa_local_training_data(shared_data):
    # documented in the data README: XQuAD is a translation of part of SQuAD v1.1 dev
    with pytest.raises(LeakageError, match="1190 shared ids"):
        assert_disjoint(load_task("mlqa", "train"), [load_task("xquad", "dev", "en")], task="mlqa")


# ------------------------------------------------------------------ errors on broken data folders
def test_missing_local_file_names_path_env_var_and_hub_id(tmp_path):
    with pytest.raises(DataFileMissing) as e:
        load_task("xnli", "dev", "de", source="local", data_dir=tmp_path)
    msg = str(e.value)
    assert str(tmp_path / "xnli" / "dev-de.tsv") in msg
    assert "XLT_DATA_DIR" in msg and "source='hub'" in msg and "facebook/xnli" in msg and "'de'" in msg
    assert isinstance(e.value, FileNotFoundError)


def test_missing_data_folder_names_both_ways(tmp_path, monkeypatch):
    monkeypatch.setenv("XLT_DATA_DIR", str(tmp_path / "nowhere"))
    with pytest.raises(DataFileMissing) as e:
        load_task("sst2", "train", source="local")
    msg = str(e.value)
    assert str(tmp_path / "nowhere") in msg and "$XLT_DATA_DIR" in msg
    assert "source='hub'" in msg and "nyu-mll/glue" in msg


def test_auto_falls_back_to_the_hub_and_reports_both_when_that_fails(tmp_path, monkeypatch):
    import datasets
    served = Dataset.from_dict({"sentence": ["fine"], "label": [1], "idx": [0]})
    monkeypatch.setattr(datasets, "load_dataset", lambda *a, **k: served)
    assert load_task("sst2", "dev", data_dir=tmp_path)["text_a"] == ["fine"]      # file absent -> hub

    def offline(*a, **k):
        raise ConnectionError("no network")
    monkeypatch.setattr(datasets, "load_dataset", offline)
    with pytest.raises(DataFileMissing, match=r"english/sst2/dev.jsonl.*XLT_DATA_DIR.*hub fallback failed.*no network"):
        load_task("sst2", "dev", data_dir=tmp_path)


def test_hub_only_tasks_say_so(tmp_path):
    for task, hub_id in (("mnli", "nyu-mll/glue"), ("anli", "facebook/anli"), ("qqp", "nyu-mll/glue")):
        with pytest.raises(DataError, match=rf"hub-only.*{hub_id}"):
            load_task(task, "train", source="local", data_dir=tmp_path)


def test_malformed_line_in_a_data_folder_names_file_and_line(tmp_path):
    write(tmp_path / "xnli/dev-fr.tsv", "a\tb\tneutral\nbroken line without tabs\n", "\r\n")
    with pytest.raises(MalformedRecord, match=r"xnli/dev-fr.tsv:2: expected 3"):
        load_task("xnli", "dev", "fr", data_dir=tmp_path)
    write(tmp_path / "xnli/dev-es.tsv", "a\tb\tneutral\nc\td\tunsure\n", "\r\n")
    with pytest.raises(MalformedRecord, match=r"xnli/dev-es.tsv:2: label 'unsure' is not in the task's label set"):
        load_task("xnli", "dev", "es", data_dir=tmp_path)
    write(tmp_path / "english/siqa/dev.jsonl", '{"context": "c", "question": "q"}\n')
    with pytest.raises(MalformedRecord, match=r"siqa/dev.jsonl:1: missing key 'answerA'"):
        load_task("siqa", "dev", data_dir=tmp_path)


def test_duplicate_ids_are_refused(tmp_path):
    row = {"answerKey": "A", "id": "same", "question": {"stem": "s", "choices": [
        {"label": letter, "text": letter} for letter in "ABCDE"]}}
    write(tmp_path / "english/commonsenseqa/dev.jsonl", (json.dumps(row) + "\n") * 2)
    with pytest.raises(DataError, match=r"duplicated ids, e.g. \['same'\]"):
        load_task("commonsenseqa", "dev", data_dir=tmp_path)


@pytest.mark.parametrize("args,listed", [
    (("xnlii", "dev", "de"), "valid tasks: anli, commonsenseqa"),
    (("xnli", "test", "de"), "valid splits: train, dev"),
    (("xnli", "dev", "ja"), "valid languages: ar, bg, de"),
    (("xnli", "train", "de"), "valid languages: en"),
    (("mlqa", "dev", "ar.ja"), "must be among ar, de, en, es, hi, vi, zh"),
    (("mlqa", "train", "ar.de"), "pairs exist only for mlqa dev"),
    (("xnli", "dev", "ar.de"), "pairs exist only for mlqa dev"),
    (("mlqa", "dev", "ja"), "or a context.question pair"),
])
def test_unknown_task_split_or_language_lists_the_valid_ones(tmp_path, args, listed):
    with pytest.raises(DataError, match=listed.replace(".", r"\.")):
        load_task(*args, data_dir=tmp_path)


def test_bad_source_name(tmp_path):
    with pytest.raises(DataError, match="'auto', 'local' or 'hub'"):
        load_task("xnli", "dev", "de", source="disk", data_dir=tmp_path)


# ------------------------------------------------------------------ paths
def test_paths_resolution(tmp_path, monkeypatch):
    assert (repo_root() / "xlt_helpers" / "data.py").is_file()
    assert data_dir(tmp_path) == tmp_path.resolve()                  # explicit wins over the env var
    monkeypatch.setenv("XLT_DATA_DIR", str(tmp_path))
    assert data_dir() == tmp_path.resolve()
    with pytest.raises(DataFileMissing, match="the data_dir argument"):
        data_dir(tmp_path / "missing")
    monkeypatch.setenv("XLT_CACHE_DIR", str(tmp_path / "cache"))
    assert cache_dir() == (tmp_path / "cache").resolve() and cache_dir().is_dir()
