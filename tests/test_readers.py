"""Local-file readers on small hand-written files (no shared data needed)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from xlt_helpers import readers
from xlt_helpers.readers import MalformedRecord
from xlt_helpers.tasks import TASKS, UPOS_TAGS

NLI = ("entailment", "neutral", "contradiction")


def write(path: Path, text: str, newline: str = "\n") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.replace("\n", newline).encode("utf-8"))
    return path


def test_every_registered_format_has_a_reader():
    fmts = {src.fmt for spec in TASKS.values() for src in spec.splits.values() if src.local}
    assert fmts and fmts <= set(readers.READERS), fmts - set(readers.READERS)


def test_pair_tsv_reads_crlf_csv_quoting_and_label_names(tmp_path):
    # XTREME wrote these with csv.writer: CRLF, and a field with '"' is quoted with inner quotes doubled.
    p = write(tmp_path / "dev-fr.tsv",
              'A man.\tA person.\tentailment\n"He said ""hi""."\tNobody spoke.\tcontradiction\n', "\r\n")
    cols = readers.read("xnli_tsv", p, labels=NLI, id_prefix="xnli-dev-fr")
    assert cols["text_a"] == ["A man.", 'He said "hi".']
    assert cols["text_b"] == ["A person.", "Nobody spoke."]          # no stray \r
    assert cols["label"] == [0, 2]
    assert cols["id"] == ["xnli-dev-fr-00001", "xnli-dev-fr-00002"]


def test_pair_tsv_wrong_column_count_names_file_and_line(tmp_path):
    p = write(tmp_path / "dev-de.tsv", "a\tb\tneutral\nonly two\tcolumns\n", "\r\n")
    with pytest.raises(MalformedRecord, match=rf"{p}:2: expected 3 tab-separated columns.*found 2"):
        readers.read("xnli_tsv", p, labels=NLI, id_prefix="x")


def test_label_outside_label_set_names_file_line_and_label(tmp_path):
    p = write(tmp_path / "dev-de.tsv", "a\tb\tneutral\nc\td\tmaybe\n", "\r\n")
    with pytest.raises(MalformedRecord) as e:
        readers.read("xnli_tsv", p, labels=NLI, id_prefix="x")
    assert f"{p}:2" in str(e.value) and "'maybe'" in str(e.value) and "entailment" in str(e.value)


def test_pawsx_labels_are_strings_0_1(tmp_path):
    p = write(tmp_path / "dev-en.tsv", "s1\ts2\t1\ns3\ts4\t0\n", "\r\n")
    assert readers.read("pawsx_tsv", p, labels=("0", "1"), id_prefix="p")["label"] == [1, 0]
    bad = write(tmp_path / "bad.tsv", "s1\ts2\t2\n", "\r\n")
    with pytest.raises(MalformedRecord, match=r"bad.tsv:1: label '2'"):
        readers.read("pawsx_tsv", bad, labels=("0", "1"), id_prefix="p")


def test_sst2_jsonl_and_its_errors(tmp_path):
    p = write(tmp_path / "train.jsonl", '{"idx": 0, "sentence": "good ", "label": 1}\n'
                                        '{"idx": 1, "sentence": "bad", "label": 0}\n')
    cols = readers.read("sst2_jsonl", p, labels=("negative", "positive"), id_prefix="sst2-train")
    assert cols == {"id": ["sst2-train-00001", "sst2-train-00002"], "text_a": ["good ", "bad"],
                    "text_b": ["", ""], "label": [1, 0]}
    bad_json = write(tmp_path / "b1.jsonl", '{"sentence": "x", "label": 1}\n{"sentence": "y", "label": 1\n')
    with pytest.raises(MalformedRecord, match=r"b1.jsonl:2: invalid JSON"):
        readers.read("sst2_jsonl", bad_json, labels=("negative", "positive"), id_prefix="s")
    missing = write(tmp_path / "b2.jsonl", '{"text": "x", "label": 1}\n')
    with pytest.raises(MalformedRecord, match=r"b2.jsonl:1: missing key 'sentence'"):
        readers.read("sst2_jsonl", missing, labels=("negative", "positive"), id_prefix="s")
    out_of_range = write(tmp_path / "b3.jsonl", '{"sentence": "x", "label": 2}\n')
    with pytest.raises(MalformedRecord, match=r"b3.jsonl:1: label 2"):
        readers.read("sst2_jsonl", out_of_range, labels=("negative", "positive"), id_prefix="s")


def test_csqa_orders_choices_by_letter_and_maps_answer_key(tmp_path):
    row = {"answerKey": "C", "id": "q1", "question": {"stem": "Where?", "choices": [
        {"label": letter, "text": f"t{letter}"} for letter in "EDCBA"]}}
    p = write(tmp_path / "dev.jsonl", json.dumps(row) + "\n")
    cols = readers.read("csqa_jsonl", p, labels=tuple("ABCDE"), id_prefix="c")
    assert cols == {"id": ["q1"], "context": [""], "question": ["Where?"],
                    "choices": [["tA", "tB", "tC", "tD", "tE"]], "label": [2]}
    row["answerKey"] = "F"
    bad = write(tmp_path / "bad.jsonl", json.dumps(row) + "\n")
    with pytest.raises(MalformedRecord, match=r"bad.jsonl:1: label 'F'"):
        readers.read("csqa_jsonl", bad, labels=tuple("ABCDE"), id_prefix="c")


def test_hellaswag_context_joins_activity_label(tmp_path):
    p = write(tmp_path / "val.jsonl", json.dumps(
        {"activity_label": "Canoeing", "ctx": "Two women paddle.", "endings": ["a", "b", "c", "d"],
         "label": 2, "split": "val"}) + "\n")
    cols = readers.read("hellaswag_jsonl", p, labels=("0", "1", "2", "3"), id_prefix="hellaswag-val")
    assert cols["context"] == ["Canoeing: Two women paddle."] and cols["question"] == [""]
    assert cols["choices"] == [["a", "b", "c", "d"]] and cols["label"] == [2]
    assert cols["id"] == ["hellaswag-val-00001"]


def test_cosmosqa_and_siqa(tmp_path):
    cos = write(tmp_path / "valid.jsonl", json.dumps(
        {"id": "c1", "context": "ctx", "question": "q?", "answer0": "a0", "answer1": "a1",
         "answer2": "a2", "answer3": "a3", "label": 3}) + "\n")
    cols = readers.read("cosmosqa_jsonl", cos, labels=("0", "1", "2", "3"), id_prefix="c")
    assert cols["choices"] == [["a0", "a1", "a2", "a3"]] and cols["label"] == [3] and cols["id"] == ["c1"]
    siqa = write(tmp_path / "dev.jsonl", json.dumps(
        {"context": "ctx", "question": "q?", "answerA": "x", "answerB": "y", "answerC": "z", "correct": "B"}) + "\n")
    cols = readers.read("siqa_jsonl", siqa, labels=("A", "B", "C"), id_prefix="siqa-dev")
    assert cols == {"id": ["siqa-dev-00001"], "context": ["ctx"], "question": ["q?"],
                    "choices": [["x", "y", "z"]], "label": [1]}


@pytest.mark.parametrize("change, message", [
    ({"answer3": None}, r"valid.jsonl:2: missing key 'answer3'"),
    ({"label": 4}, r"valid.jsonl:2: label 4 is not an integer in 0..3"),
    ({"label": "1"}, r"valid.jsonl:2: label '1' is not an integer"),
])
def test_cosmosqa_bad_record_names_file_line_and_field(tmp_path, change, message):
    good = {"id": "c1", "context": "ctx", "question": "q?", "answer0": "a0", "answer1": "a1",
            "answer2": "a2", "answer3": "a3", "label": 0}
    bad = {k: v for k, v in {**good, "id": "c2", **change}.items() if v is not None}
    path = write(tmp_path / "valid.jsonl", json.dumps(good) + "\n" + json.dumps(bad) + "\n")
    with pytest.raises(MalformedRecord, match=message):
        readers.read("cosmosqa_jsonl", path, labels=("0", "1", "2", "3"), id_prefix="c")


def squad_doc(qas_per_para: list[list[dict]], title: str | None = "T") -> dict:
    article = {"paragraphs": [{"context": f"context {i}", "qas": qas} for i, qas in enumerate(qas_per_para)]}
    if title is not None:
        article["title"] = title
    return {"version": "x", "data": [article]}


def test_squad_json_one_row_per_question_with_v2_unanswerable(tmp_path):
    doc = squad_doc([[{"id": "a", "question": "q1", "answers": [{"text": "context", "answer_start": 0},
                                                                  {"text": "0", "answer_start": 8}]},
                      {"id": "b", "question": "q2", "answers": [], "is_impossible": True}]])
    p = write(tmp_path / "dev-v2.0.json", json.dumps(doc))
    cols = readers.read("squad_json", p, labels=(), id_prefix="squad_v2-dev-v2.0")
    assert cols["id"] == ["a", "b"] and cols["title"] == ["T", "T"]
    assert cols["answers"] == [{"text": ["context", "0"], "answer_start": [0, 8]}, {"text": [], "answer_start": []}]


def test_squad_json_without_titles_and_with_reused_ids_gets_position_ids(tmp_path):
    # XTREME's TyDiQA-GoldP train files have no title and reuse ids ("12", "0", ...).
    qa = {"id": "12", "question": "q", "answers": [{"text": "c", "answer_start": 0}]}
    p = write(tmp_path / "tydiqa.goldp.en.train.json", json.dumps(squad_doc([[qa], [qa]], title=None)))
    cols = readers.read("squad_json", p, labels=(), id_prefix="tydiqa-tydiqa.goldp.en.train")
    assert cols["title"] == ["", ""]
    assert cols["id"] == ["tydiqa-tydiqa.goldp.en.train-00001", "tydiqa-tydiqa.goldp.en.train-00002"]


def test_squad_json_errors_name_the_position(tmp_path):
    bad_json = write(tmp_path / "a.json", '{"data": [\n{"title": }]}')
    with pytest.raises(MalformedRecord, match=r"a.json:2: invalid JSON"):
        readers.read("squad_json", bad_json, labels=(), id_prefix="x")
    no_question = write(tmp_path / "b.json", json.dumps(squad_doc([[{"id": "a", "answers": []}]])))
    with pytest.raises(MalformedRecord, match=r"b.json: data\[0\].paragraphs\[0\].qas\[0\]: missing key 'question'"):
        readers.read("squad_json", no_question, labels=(), id_prefix="x")


def test_udpos_sentences_tags_and_ids(tmp_path):
    p = write(tmp_path / "dev-en.tsv", "The\tDET\ncat\tNOUN\n\n\nRuns\tVERB\n.\tPUNCT\n")
    cols = readers.read("udpos_tsv", p, labels=UPOS_TAGS, id_prefix="udpos-dev-en")
    assert cols["tokens"] == [["The", "cat"], ["Runs", "."]]
    assert cols["tags"] == [[UPOS_TAGS.index("DET"), UPOS_TAGS.index("NOUN")],
                            [UPOS_TAGS.index("VERB"), UPOS_TAGS.index("PUNCT")]]
    assert cols["id"] == ["udpos-dev-en-00001", "udpos-dev-en-00005"]       # 1-based first line


def test_udpos_errors(tmp_path):
    unknown = write(tmp_path / "a.tsv", "The\tDET\ncat\tNOUNISH\n")
    with pytest.raises(MalformedRecord, match=r"a.tsv:2: label 'NOUNISH'"):
        readers.read("udpos_tsv", unknown, labels=UPOS_TAGS, id_prefix="u")
    three = write(tmp_path / "b.tsv", "The\tDET\textra\n")
    with pytest.raises(MalformedRecord, match=r"b.tsv:1: expected 'token<TAB>TAG'"):
        readers.read("udpos_tsv", three, labels=UPOS_TAGS, id_prefix="u")
    # test files carry tokens only: asking for tags is an error, tokens alone are fine
    test_file = write(tmp_path / "test-en.tsv", "What\nif\n\nGoogle\n")
    with pytest.raises(MalformedRecord, match=r"test-en.tsv:1: .*no tag"):
        readers.read("udpos_tsv", test_file, labels=UPOS_TAGS, id_prefix="u")
    assert readers.read_udpos_tokens(test_file, id_prefix="u")["tokens"] == [["What", "if"], ["Google"]]


def test_unknown_format_lists_known_ones(tmp_path):
    with pytest.raises(readers.DataError, match="known formats: .*squad_json"):
        readers.read("csv_thing", tmp_path / "x", labels=(), id_prefix="x")


@pytest.mark.parametrize("fmt, name, good", [
    ("xnli_tsv", "dev-de.tsv", "a\tb\tentailment\n"),
    ("sst2_jsonl", "dev.jsonl", '{"idx": 0, "sentence": "fine", "label": 1}\n'),
    ("udpos_tsv", "dev-en.tsv", "Hi\tINTJ\n\n"),
])
def test_invalid_utf8_names_file_and_line(tmp_path, fmt, name, good):
    path = tmp_path / name
    path.write_bytes(good.encode() * 2 + b"caf\xe9\t" + good.encode())     # latin-1 on line 3 (udpos: line 5)
    labels = {"xnli_tsv": NLI, "sst2_jsonl": TASKS["sst2"].labels, "udpos_tsv": UPOS_TAGS}[fmt]
    with pytest.raises(MalformedRecord) as e:
        readers.read(fmt, path, labels=labels, id_prefix="t")
    line = 2 * good.count("\n") + 1
    assert str(e.value).startswith(f"{path}:{line}: not valid UTF-8 (byte 0xe9 at column 4"), str(e.value)
    assert "iconv" in str(e.value)
