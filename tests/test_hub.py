"""Hub adapters: tiny in-memory datasets in each hub dataset's real schema, loaded
through ``load_task(source="hub")`` with ``datasets.load_dataset`` monkeypatched,
so the real code path runs without network."""
from __future__ import annotations

import json
import subprocess
import sys

import datasets
import pytest
from datasets import ClassLabel, Dataset, Features, Sequence, Value

from xlt_helpers import hub
from xlt_helpers.data import DataError, load_task
from xlt_helpers.schema import COLUMNS, features_for
from xlt_helpers.tasks import TASKS, UPOS_TAGS

from test_data import cosmosqa_rows, write  # tests/ is on sys.path under pytest's default import mode

NLI_NAMES = ["entailment", "neutral", "contradiction"]
SQUAD_FEATURES = {"id": Value("string"), "context": Value("string"), "question": Value("string"),
                  "answers": Sequence({"text": Value("string"), "answer_start": Value("int32")})}


@pytest.fixture
def fake_hub(monkeypatch):
    """Serve ``{(hub_id, config, split): Dataset}``; record calls; anything else raises like offline."""
    served: dict = {}
    calls: list = []

    def load_dataset(path, name=None, split=None, **kw):
        calls.append((path, name, split))
        try:
            return served[(path, name, split)]
        except KeyError:
            raise ConnectionError(f"offline: {path} {name} {split}") from None

    monkeypatch.setattr(datasets, "load_dataset", load_dataset)
    return served, calls


def check_schema(ds, task):
    spec = TASKS[task]
    assert ds.features == features_for(spec)
    assert ds.column_names == list(COLUMNS[spec.kind])
    assert len(set(ds["id"])) == len(ds)


def test_every_hub_source_has_an_adapter():
    hub_ids = {src.hub[0] for spec in TASKS.values() for src in spec.splits.values() if src.hub}
    assert hub_ids <= set(hub.ADAPTERS), hub_ids - set(hub.ADAPTERS)


def test_importing_the_data_layer_never_calls_the_hub():
    # a fresh interpreter, so the import really runs (no reload of modules other tests hold)
    code = ("import datasets\n"
            "def boom(*a, **k): raise SystemExit('load_dataset called at import')\n"
            "datasets.load_dataset = boom\n"
            "import xlt_helpers.data, xlt_helpers.hub\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]


def test_xnli_maps_classlabel_by_name(fake_hub):
    served, calls = fake_hub
    served[("facebook/xnli", "de", "validation")] = Dataset.from_dict(
        {"premise": ["p1", "p2", "p3"], "hypothesis": ["h1", "h2", "h3"], "label": [0, 1, 2]},
        features=Features({"premise": Value("string"), "hypothesis": Value("string"),
                           "label": ClassLabel(names=NLI_NAMES)}))
    ds = load_task("xnli", "dev", "de", source="hub")
    check_schema(ds, "xnli")
    assert calls == [("facebook/xnli", "de", "validation")]
    assert ds["text_a"] == ["p1", "p2", "p3"] and ds["label"] == [0, 1, 2] and set(ds["lang"]) == {"de"}


def test_label_names_in_another_order_are_mapped_by_name(fake_hub):
    served, _ = fake_hub
    served[("facebook/anli", None, "dev_r1+dev_r2+dev_r3")] = Dataset.from_dict(
        {"uid": ["u1", "u2"], "premise": ["p", "q"], "hypothesis": ["h", "i"], "label": [0, 1], "reason": ["", ""]},
        features=Features({"uid": Value("string"), "premise": Value("string"), "hypothesis": Value("string"),
                           "label": ClassLabel(names=["contradiction", "entailment", "neutral"]),
                           "reason": Value("string")}))
    ds = load_task("anli", "dev", source="hub")
    check_schema(ds, "anli")
    assert ds["label"] == [NLI_NAMES.index("contradiction"), NLI_NAMES.index("entailment")]
    assert ds["id"] == ["anli-dev_r1+dev_r2+dev_r3-u1", "anli-dev_r1+dev_r2+dev_r3-u2"]


@pytest.mark.parametrize("task,config,columns,names", [
    ("sst2", "sst2", {"sentence": ["good", "bad"]}, ["negative", "positive"]),
    ("mnli", "mnli", {"premise": ["p", "q"], "hypothesis": ["h", "i"]}, NLI_NAMES),
    ("qqp", "qqp", {"question1": ["a?", "b?"], "question2": ["c?", "d?"]}, ["not_duplicate", "duplicate"]),
])
def test_glue_configs(fake_hub, task, config, columns, names):
    served, _ = fake_hub
    feats = {c: Value("string") for c in columns} | {"label": ClassLabel(names=names), "idx": Value("int32")}
    split = TASKS[task].splits["train"].hub[2]
    served[("nyu-mll/glue", config, split)] = Dataset.from_dict(
        {**columns, "label": [1, 0], "idx": [7, 8]}, features=Features(feats))
    ds = load_task(task, "train", source="hub")
    check_schema(ds, task)
    first = next(iter(columns.values()))
    assert ds["text_a"] == first and ds["label"] == [1, 0]
    assert ds["text_b"] == (list(columns.values())[1] if len(columns) == 2 else ["", ""])
    assert ds["id"] == [f"{task}-train-7", f"{task}-train-8"]


def test_glue_unlabelled_rows_are_an_error(fake_hub):
    served, _ = fake_hub
    served[("nyu-mll/glue", "mnli", "validation_matched")] = Dataset.from_dict(
        {"premise": ["p"], "hypothesis": ["h"], "label": [-1], "idx": [0]},
        features=Features({"premise": Value("string"), "hypothesis": Value("string"),
                           "label": ClassLabel(names=NLI_NAMES), "idx": Value("int32")}))
    with pytest.raises(DataError, match=r"nyu-mll/glue.*row 0: label -1 is unlabelled"):
        load_task("mnli", "dev", source="hub")


def test_pawsx(fake_hub):
    served, _ = fake_hub
    served[("google-research-datasets/paws-x", "fr", "validation")] = Dataset.from_dict(
        {"id": [1, 2], "sentence1": ["a", "b"], "sentence2": ["c", "d"], "label": [1, 0]},
        features=Features({"id": Value("int32"), "sentence1": Value("string"), "sentence2": Value("string"),
                           "label": ClassLabel(names=["0", "1"])}))
    ds = load_task("pawsx", "dev", "fr", source="hub")
    check_schema(ds, "pawsx")
    assert ds["text_b"] == ["c", "d"] and ds["label"] == [1, 0]


def test_hellaswag_string_labels_and_context(fake_hub):
    served, _ = fake_hub
    served[("Rowan/hellaswag", None, "validation")] = Dataset.from_dict(
        {"ind": [24, 92], "activity_label": ["Canoeing", "Roof"], "ctx_a": ["", ""], "ctx_b": ["", ""],
         "ctx": ["Two women paddle.", "A man sits."], "endings": [["a", "b", "c", "d"], ["e", "f", "g", "h"]],
         "source_id": ["s", "t"], "split": ["val", "val"], "split_type": ["indomain", "zeroshot"], "label": ["3", "0"]})
    ds = load_task("hellaswag", "dev", source="hub")      # hub has a real split: no hold-out
    check_schema(ds, "hellaswag")
    assert ds["context"] == ["Canoeing: Two women paddle.", "Roof: A man sits."]
    assert ds["label"] == [3, 0] and ds["choices"][1] == ["e", "f", "g", "h"] and ds["question"] == ["", ""]


def test_hellaswag_test_split_without_labels_is_an_error(fake_hub):
    served, _ = fake_hub
    served[("Rowan/hellaswag", None, "train")] = Dataset.from_dict(
        {"ind": [1], "activity_label": ["A"], "ctx": ["c"], "endings": [["a", "b", "c", "d"]], "label": [""]})
    with pytest.raises(DataError, match=r"Rowan/hellaswag.*label '' is not one of"):
        load_task("hellaswag", "train", source="hub")


COSMOS_FEATURES = Features({"id": Value("string"), "context": Value("string"), "question": Value("string"),
                            **{f"answer{i}": Value("string") for i in range(4)}, "label": Value("int32")})


def cosmos_hub(rows: list[dict]) -> Dataset:
    return Dataset.from_dict({k: [r[k] for r in rows] for k in COSMOS_FEATURES}, features=COSMOS_FEATURES)


def test_cosmosqa_hub_dev_is_the_same_hash_split_as_the_local_file(fake_hub, tmp_path):
    served, _ = fake_hub
    rows = cosmosqa_rows()                          # 10 passages; the hash puts passages 3 and 4 in dev
    served[("allenai/cosmos_qa", None, "validation")] = cosmos_hub(rows[::-1])
    dev = load_task("cosmosqa", "dev", source="hub")
    check_schema(dev, "cosmosqa")
    assert sorted(dev["id"]) == ["cos-3-0", "cos-4-0", "cos-4-1"]
    assert dev[0]["choices"] == ["a1", "b", "c", "d"] and dev[0]["label"] == 1    # cos-4-1 (hub order reversed)
    write(tmp_path / "english/cosmosqa/valid.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
    assert sorted(load_task("cosmosqa", "dev", source="local", data_dir=tmp_path)["id"][:]) == sorted(dev["id"])
    # hub train is the official train split, whole (the test split's labels are hidden: -1)
    served[("allenai/cosmos_qa", None, "train")] = cosmos_hub(rows[:5])
    assert load_task("cosmosqa", "train", source="hub")["id"] == [r["id"] for r in rows[:5]]
    served[("allenai/cosmos_qa", None, "train")] = cosmos_hub([{**rows[0], "label": -1}])
    with pytest.raises(DataError, match=r"allenai/cosmos_qa.*label -1 outside 0..3"):
        load_task("cosmosqa", "train", source="hub")


def test_hub_holdout_without_a_holdout_fraction_is_refused(fake_hub, monkeypatch):
    import dataclasses

    served, _ = fake_hub
    served[("allenai/cosmos_qa", None, "validation")] = cosmos_hub(
        [{"id": "c1", "context": "p", "question": "q", "answer0": "a", "answer1": "b", "answer2": "c",
          "answer3": "d", "label": 0}])
    monkeypatch.setitem(TASKS, "cosmosqa", dataclasses.replace(TASKS["cosmosqa"], holdout=0.0))
    with pytest.raises(DataError, match=r"'cosmosqa' split 'dev': hub_holdout needs .*holdout=0.0.*tasks.py"):
        load_task("cosmosqa", "dev", source="hub")


def test_commonsenseqa(fake_hub):
    served, _ = fake_hub
    served[("tau/commonsense_qa", None, "validation")] = Dataset.from_dict(
        {"id": ["q1"], "question": ["Where?"], "question_concept": ["x"],
         "choices": [{"label": ["B", "A", "C", "D", "E"], "text": ["tB", "tA", "tC", "tD", "tE"]}],
         "answerKey": ["B"]})
    ds = load_task("commonsenseqa", "dev", source="hub")
    check_schema(ds, "commonsenseqa")
    assert ds[0]["choices"] == ["tA", "tB", "tC", "tD", "tE"] and ds[0]["label"] == 1
    assert ds[0]["question"] == "Where?" and ds[0]["context"] == ""


def test_social_iqa_labels_are_one_based_strings(fake_hub):
    served, _ = fake_hub
    served[("allenai/social_i_qa", None, "validation")] = Dataset.from_dict(
        {"context": ["c1", "c2"], "question": ["q1", "q2"], "answerA": ["a", "d"], "answerB": ["b", "e"],
         "answerC": ["c", "f"], "label": ["1", "3"]})
    ds = load_task("siqa", "dev", source="hub")
    check_schema(ds, "siqa")
    assert ds["label"] == [0, 2] and ds["choices"] == [["a", "b", "c"], ["d", "e", "f"]]


def test_universal_dependencies_maps_upos_by_name_and_drops_multiword_forms(fake_hub):
    served, _ = fake_hub
    hub_names = ["NOUN", "PUNCT", "ADP", "NUM", "SYM", "SCONJ", "ADJ", "PART", "DET", "CCONJ", "PROPN",
                 "PRON", "X", "_", "ADV", "INTJ", "VERB", "AUX"]       # the hub script's order
    upos = ["PRON", "_", "AUX", "PART", "VERB", "PUNCT"]              # "don't" = multiword "_" + do + n't
    served[("universal_dependencies", "en_ewt", "validation")] = Dataset.from_dict(
        {"idx": ["s-0001"], "text": ["I don't go."], "tokens": [["I", "don't", "do", "n't", "go", "."]],
         "upos": [[hub_names.index(u) for u in upos]]},
        features=Features({"idx": Value("string"), "text": Value("string"), "tokens": Sequence(Value("string")),
                           "upos": Sequence(ClassLabel(names=hub_names))}))
    ds = load_task("udpos", "dev", source="hub")
    check_schema(ds, "udpos")
    assert ds[0]["tokens"] == ["I", "do", "n't", "go", "."]
    assert ds[0]["tags"] == [UPOS_TAGS.index(t) for t in ("PRON", "AUX", "PART", "VERB", "PUNCT")]


def squad_like(ids, with_title: bool) -> Dataset:
    n = len(ids)
    cols = {"id": ids, "context": [f"ctx {i}" for i in range(n)], "question": [f"q {i}" for i in range(n)],
            "answers": [{"text": ["ctx"], "answer_start": [0]}] * n}
    feats = dict(SQUAD_FEATURES)
    if with_title:
        cols["title"], feats["title"] = [f"T{i}" for i in range(n)], Value("string")
    return Dataset.from_dict(cols, features=Features(feats))


def test_squad_v1_v2_have_titles(fake_hub):
    served, _ = fake_hub
    served[("rajpurkar/squad", None, "validation")] = squad_like(["a", "b"], with_title=True)
    v2 = squad_like(["c", "d"], with_title=True).to_dict()
    v2["answers"][1] = {"text": [], "answer_start": []}                 # unanswerable
    served[("rajpurkar/squad_v2", None, "train")] = Dataset.from_dict(v2, features=served[
        ("rajpurkar/squad", None, "validation")].features)
    ds = load_task("squad", "dev", source="hub")                        # real split, no hold-out
    check_schema(ds, "squad")
    assert ds["title"] == ["T0", "T1"] and ds[0]["answers"] == {"text": ["ctx"], "answer_start": [0]}
    ds2 = load_task("squad_v2", "train", source="hub")
    assert ds2[1]["answers"] == {"text": [], "answer_start": []}


def test_mlqa_pairs_use_the_pair_config_and_xquad_has_no_title(fake_hub):
    served, calls = fake_hub
    served[("facebook/mlqa", "mlqa.ar.de", "validation")] = squad_like(["m1"], with_title=False)
    served[("google/xquad", "xquad.th", "validation")] = squad_like(["x1", "x2"], with_title=False)
    ds = load_task("mlqa", "dev", "ar.de", source="hub")
    check_schema(ds, "mlqa")
    assert ds["title"] == [""] and ds["lang"] == ["ar.de"]
    assert ("facebook/mlqa", "mlqa.ar.de", "validation") in calls
    assert load_task("xquad", "dev", "th", source="hub")["id"] == ["x1", "x2"]


def test_tydiqa_secondary_task_keeps_the_language_rows(fake_hub):
    served, _ = fake_hub
    served[("google-research-datasets/tydiqa", "secondary_task", "train")] = squad_like(
        ["english-1-0", "korean-2-0", "english-3-1", "swahili-4-0"], with_title=True)
    en = load_task("tydiqa", "train", "en", source="hub")
    check_schema(en, "tydiqa")
    assert en["id"] == ["english-1-0", "english-3-1"] and en["title"] == ["T0", "T2"]
    assert load_task("tydiqa", "train", "sw", source="hub")["id"] == ["swahili-4-0"]


def test_hub_failure_names_the_dataset_and_the_local_option(fake_hub):
    with pytest.raises(DataError, match=r"could not load facebook/xnli \(config 'de', split 'validation'\).*source='local'"):
        load_task("xnli", "dev", "de", source="hub")


@pytest.mark.parametrize("reachable", [False, True])
def test_an_unreachable_hub_is_read_from_the_cache_only(monkeypatch, reachable):
    """Offline without HF_HUB_OFFLINE, huggingface_hub would retry each request five times (1 + 2 + 4 + 8 + 8 s
    of back-off); when the probe fails, both libraries are put in offline mode for the call, and put back after."""
    import datasets.config
    import huggingface_hub.constants

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(hub, "_probe_hub", lambda: reachable)
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    seen = []

    def load_dataset(path, name=None, split=None, **kw):
        seen.append((datasets.config.HF_HUB_OFFLINE, huggingface_hub.constants.HF_HUB_OFFLINE))
        raise ConnectionError("not in the cache")

    monkeypatch.setattr(datasets, "load_dataset", load_dataset)
    message = r"huggingface\.co:443 did not answer, so only the local HF cache was read" if not reachable \
        else r"Offline\? Tasks with local files"
    with pytest.raises(DataError, match=message):
        load_task("xnli", "dev", "de", source="hub")
    assert seen == [(not reachable, not reachable)]
    assert (datasets.config.HF_HUB_OFFLINE, huggingface_hub.constants.HF_HUB_OFFLINE) == (False, False)


def test_hub_reachable_is_false_at_once_under_the_offline_flag(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(hub, "_probe_hub", lambda: pytest.fail("probed the network under HF_HUB_OFFLINE=1"))
    assert hub.hub_reachable() is False


def test_subsample_applies_to_hub_data(fake_hub):
    served, _ = fake_hub
    served[("facebook/xnli", "en", "train")] = Dataset.from_dict(
        {"premise": [f"p{i}" for i in range(20)], "hypothesis": ["h"] * 20, "label": [i % 3 for i in range(20)]},
        features=Features({"premise": Value("string"), "hypothesis": Value("string"),
                           "label": ClassLabel(names=NLI_NAMES)}))
    a = load_task("xnli", "train", source="hub", n=5, seed=3)
    assert len(a) == 5 and a["id"] == load_task("xnli", "train", source="hub", n=5, seed=3)["id"]
