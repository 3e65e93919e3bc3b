"""Local-file readers: one per ``fmt`` named in :mod:`xlt_helpers.tasks`.

Each reader turns one file in XTREME's download layout (see
``shared/data/README.md``, "File formats") into *columns* (a dict of equal-length
lists) in the schema of its task kind (:mod:`xlt_helpers.schema`), minus ``lang``,
which the loader fills. Columns rather than row dicts because the large files
(SST-2 train: 67k rows, UD-POS train: 21k sentences / 375k tokens) must load in
about a second.

Readers are strict: a record they cannot read is a :class:`MalformedRecord`
naming ``path:line`` (or the JSON position) and what was wrong, and a label
outside the task's label set names the label. Nothing is dropped or repaired.

IDs: a file's own string ids are kept. Files without ids (TSV rows, SST-2,
HellaSwag, SocialIQA) get ``f"{id_prefix}-{line:05d}"`` with the 1-based line;
the loader passes ``id_prefix = f"{task}-{file stem}"``. XTREME's TyDiQA-GoldP
train files reuse ids (3,696 English questions carry 89 distinct ids), so a
SQuAD-style file whose ids are not unique gets ``f"{id_prefix}-{k:05d}"`` for its
k-th question instead, for every question of that file.
"""
from __future__ import annotations

import csv
import json
from collections import Counter
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from .paths import DataError

Columns = dict[str, list]


class MalformedRecord(DataError):
    """A line or record of a data file that cannot be read as its format says."""


# ------------------------------------------------------------------ helpers
def _label_index(value: Any, labels: Sequence[str], where: str) -> int:
    """Index of a label given by name (``"entailment"``, ``"A"``, ``"1"``)."""
    try:
        return list(labels).index(str(value))
    except ValueError:
        raise MalformedRecord(
            f"{where}: label {value!r} is not in the task's label set {tuple(labels)}; "
            f"fix the file or the task's labels in xlt_helpers/tasks.py"
        ) from None


def _int_label(value: Any, labels: Sequence[str], where: str) -> int:
    """An integer label (SST-2, HellaSwag, CosmosQA) checked against the label count."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < len(labels):
        raise MalformedRecord(
            f"{where}: label {value!r} is not an integer in 0..{len(labels) - 1} "
            f"(the task's labels are {tuple(labels)})"
        )
    return value


def _get(obj: dict, key: str, where: str) -> Any:
    try:
        return obj[key]
    except (KeyError, TypeError):
        have = sorted(obj) if isinstance(obj, dict) else type(obj).__name__
        raise MalformedRecord(f"{where}: missing key {key!r} (found {have})") from None


def _str(obj: dict, key: str, where: str) -> str:
    value = _get(obj, key, where)
    if not isinstance(value, str):
        raise MalformedRecord(f"{where}: key {key!r} should be a string, found {type(value).__name__}")
    return value


def _row_id(id_prefix: str, line: int) -> str:
    return f"{id_prefix}-{line:05d}"


def _tsv_rows(path: Path, n_cols: int, what: str) -> Iterator[tuple[int, list[str]]]:
    """``(line, fields)`` of an XTREME TSV (CRLF, csv quoting: see the data README)."""
    with open(path, encoding="utf-8", newline="") as f:
        reader = csv.reader(f, delimiter="\t")
        for row in reader:
            if len(row) != n_cols:
                raise MalformedRecord(
                    f"{path}:{reader.line_num}: expected {n_cols} tab-separated columns ({what}), "
                    f"found {len(row)}: {row!r:.200}"
                )
            yield reader.line_num, row


def _jsonl(path: Path) -> Iterator[tuple[int, str, dict]]:
    """``(line, "path:line", object)`` of a JSONL file; blank lines are skipped."""
    with open(path, encoding="utf-8") as f:
        for line_no, line in enumerate(f, 1):
            if not line.strip():
                continue
            where = f"{path}:{line_no}"
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                raise MalformedRecord(f"{where}: invalid JSON ({e.msg} at column {e.colno})") from None
            if not isinstance(obj, dict):
                raise MalformedRecord(f"{where}: expected a JSON object, found {type(obj).__name__}")
            yield line_no, where, obj


def _mc_columns() -> Columns:
    return {"id": [], "context": [], "question": [], "choices": [], "label": []}


def _append(cols: Columns, **values: Any) -> None:
    for key, value in values.items():
        cols[key].append(value)


# ------------------------------------------------------------------ classification
def read_pair_tsv(path: Path, *, labels: Sequence[str], id_prefix: str) -> Columns:
    """XNLI / PAWS-X TSV: ``premise<TAB>hypothesis<TAB>label`` with label names."""
    cols: Columns = {"id": [], "text_a": [], "text_b": [], "label": []}
    for line, (a, b, label) in _tsv_rows(path, 3, "premise, hypothesis, label"):
        _append(cols, id=_row_id(id_prefix, line), text_a=a, text_b=b,
                label=_label_index(label, labels, f"{path}:{line}"))
    return cols


def read_sst2_jsonl(path: Path, *, labels: Sequence[str], id_prefix: str) -> Columns:
    """SST-2 JSONL ``{"idx", "sentence", "label": 0|1}``; single sentence, so text_b is ""."""
    cols: Columns = {"id": [], "text_a": [], "text_b": [], "label": []}
    for line, where, obj in _jsonl(path):
        _append(cols, id=_row_id(id_prefix, line), text_a=_str(obj, "sentence", where), text_b="",
                label=_int_label(_get(obj, "label", where), labels, where))
    return cols


# ------------------------------------------------------------------ multiple choice
def read_csqa_jsonl(path: Path, *, labels: Sequence[str], id_prefix: str) -> Columns:
    """CommonsenseQA: the stem is the question, no context; choices ordered by their letter."""
    cols = _mc_columns()
    for _line, where, obj in _jsonl(path):
        q = _get(obj, "question", where)
        choices = _get(q, "choices", where)
        if not isinstance(choices, list):
            raise MalformedRecord(f"{where}: 'choices' should be a list, found {type(choices).__name__}")
        by_letter = {_str(c, "label", where): _str(c, "text", where) for c in choices}
        if sorted(by_letter) != sorted(labels):
            raise MalformedRecord(f"{where}: choice letters {sorted(by_letter)} differ from the labels {list(labels)}")
        _append(cols, id=str(_get(obj, "id", where)), context="", question=_str(q, "stem", where),
                choices=[by_letter[letter] for letter in labels],
                label=_label_index(_get(obj, "answerKey", where), labels, where))
    return cols


def read_hellaswag_jsonl(path: Path, *, labels: Sequence[str], id_prefix: str) -> Columns:
    """HellaSwag: context = ``activity_label + ": " + ctx`` (as the official text dump), no question."""
    cols = _mc_columns()
    for line, where, obj in _jsonl(path):
        endings = _get(obj, "endings", where)
        if not isinstance(endings, list) or len(endings) != len(labels):
            raise MalformedRecord(f"{where}: 'endings' should be a list of {len(labels)} strings, found {endings!r:.200}")
        _append(cols, id=_row_id(id_prefix, line),
                context=f"{_str(obj, 'activity_label', where)}: {_str(obj, 'ctx', where)}", question="",
                choices=[str(e) for e in endings], label=_int_label(_get(obj, "label", where), labels, where))
    return cols


def read_cosmosqa_jsonl(path: Path, *, labels: Sequence[str], id_prefix: str) -> Columns:
    """CosmosQA: ``context``, ``question``, ``answer0..3``, integer ``label``."""
    cols = _mc_columns()
    for _line, where, obj in _jsonl(path):
        _append(cols, id=str(_get(obj, "id", where)), context=_str(obj, "context", where),
                question=_str(obj, "question", where),
                choices=[_str(obj, f"answer{i}", where) for i in range(len(labels))],
                label=_int_label(_get(obj, "label", where), labels, where))
    return cols


def read_siqa_jsonl(path: Path, *, labels: Sequence[str], id_prefix: str) -> Columns:
    """SocialIQA: ``answerA..C`` and ``correct`` as a letter."""
    cols = _mc_columns()
    for line, where, obj in _jsonl(path):
        _append(cols, id=_row_id(id_prefix, line), context=_str(obj, "context", where),
                question=_str(obj, "question", where),
                choices=[_str(obj, f"answer{letter}", where) for letter in labels],
                label=_label_index(_get(obj, "correct", where), labels, where))
    return cols


# ------------------------------------------------------------------ extractive QA
def read_squad_json(path: Path, *, labels: Sequence[str] = (), id_prefix: str) -> Columns:
    """SQuAD-style JSON (SQuAD v1.1/v2.0, MLQA, XQuAD, TyDiQA-GoldP): one row per question.

    ``answers`` may be empty (SQuAD v2.0 unanswerable). Offsets are taken as
    given; an answer that does not sit at its offset is not an error (the data
    README documents where offsets were recomputed). TyDiQA files have no title: "".
    """
    try:
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
    except json.JSONDecodeError as e:
        raise MalformedRecord(f"{path}:{e.lineno}: invalid JSON ({e.msg} at column {e.colno})") from None
    cols: Columns = {"id": [], "title": [], "context": [], "question": [], "answers": []}
    for i, article in enumerate(_get(doc, "data", str(path))):
        title = article.get("title", "") if isinstance(article, dict) else ""
        for j, para in enumerate(_get(article, "paragraphs", f"{path}: data[{i}]")):
            context = _str(para, "context", f"{path}: data[{i}].paragraphs[{j}]")
            for k, qa in enumerate(_get(para, "qas", f"{path}: data[{i}].paragraphs[{j}]")):
                where = f"{path}: data[{i}].paragraphs[{j}].qas[{k}]"
                answers = _get(qa, "answers", where)
                texts, starts = [], []
                for a, ans in enumerate(answers):
                    texts.append(_str(ans, "text", f"{where}.answers[{a}]"))
                    start = _get(ans, "answer_start", f"{where}.answers[{a}]")
                    if isinstance(start, bool) or not isinstance(start, int):
                        raise MalformedRecord(f"{where}.answers[{a}]: answer_start {start!r} is not an integer")
                    starts.append(start)
                _append(cols, id=str(_get(qa, "id", where)), title=str(title), context=context,
                        question=_str(qa, "question", where), answers={"text": texts, "answer_start": starts})
    if len(set(cols["id"])) != len(cols["id"]):
        cols["id"] = [_row_id(id_prefix, k) for k in range(1, len(cols["id"]) + 1)]
    return cols


# ------------------------------------------------------------------ token tagging
def _udpos_sentences(path: Path) -> Iterator[tuple[int, list[tuple[int, list[str]]]]]:
    """``(first line, [(line, fields) per token])`` for each blank-line-separated sentence."""
    start, rows = 0, []
    with open(path, encoding="utf-8") as f:
        for line_no, line in enumerate(f, 1):
            line = line.rstrip("\r\n")
            if not line:
                if rows:
                    yield start, rows
                start, rows = 0, []
                continue
            fields = line.split("\t")
            if len(fields) > 2:
                raise MalformedRecord(f"{path}:{line_no}: expected 'token<TAB>TAG' (2 columns), found {len(fields)}")
            if not rows:
                start = line_no
            rows.append((line_no, fields))
    if rows:
        yield start, rows


def read_udpos_tsv(path: Path, *, labels: Sequence[str], id_prefix: str) -> Columns:
    """UD-POS ``token<TAB>UPOS`` lines, blank line between sentences; id from the first line.

    XTREME strips the tags from UD test files: asking for tags from such a file
    is an error (use :func:`read_udpos_tokens` for the tokens alone).
    """
    index = {tag: i for i, tag in enumerate(labels)}
    cols: Columns = {"id": [], "tokens": [], "tags": []}
    for start, rows in _udpos_sentences(path):
        tokens, tags = [], []
        for line, fields in rows:
            if len(fields) != 2:
                raise MalformedRecord(
                    f"{path}:{line}: token {fields[0]!r} has no tag; this file carries no tags "
                    f"(XTREME strips them from UD test files), so it cannot serve a tagging split; "
                    f"read it with readers.read_udpos_tokens for unlabelled text")
            tag = index.get(fields[1])
            if tag is None:
                _label_index(fields[1], labels, f"{path}:{line}")
            tokens.append(fields[0])
            tags.append(tag)
        _append(cols, id=_row_id(id_prefix, start), tokens=tokens, tags=tags)
    return cols


def read_udpos_tokens(path: Path, *, id_prefix: str) -> Columns:
    """The tokens of a UD-POS file (tagged or not): ``id``, ``tokens``; for unlabelled use."""
    cols: Columns = {"id": [], "tokens": []}
    for start, rows in _udpos_sentences(path):
        _append(cols, id=_row_id(id_prefix, start), tokens=[fields[0] for _line, fields in rows])
    return cols


Reader = Callable[..., Columns]

READERS: dict[str, Reader] = {
    "xnli_tsv": read_pair_tsv,
    "pawsx_tsv": read_pair_tsv,
    "sst2_jsonl": read_sst2_jsonl,
    "csqa_jsonl": read_csqa_jsonl,
    "hellaswag_jsonl": read_hellaswag_jsonl,
    "cosmosqa_jsonl": read_cosmosqa_jsonl,
    "siqa_jsonl": read_siqa_jsonl,
    "squad_json": read_squad_json,
    "udpos_tsv": read_udpos_tsv,
}


def read(fmt: str, path: Path, *, labels: Sequence[str], id_prefix: str) -> Columns:
    """Read ``path`` with the reader registered for ``fmt``."""
    try:
        reader = READERS[fmt]
    except KeyError:
        raise DataError(f"no reader for format {fmt!r} (file {path}); known formats: {', '.join(sorted(READERS))}") from None
    try:
        return reader(Path(path), labels=labels, id_prefix=id_prefix)
    except UnicodeDecodeError as e:
        raise utf8_error(Path(path), e) from None


def utf8_error(path: Path, error: UnicodeDecodeError) -> MalformedRecord:
    """The error for a file that is not UTF-8, naming its first bad line (the decoder only knows an
    offset into a buffer). Lines are split on the byte 0x0A, which never occurs inside a UTF-8 character."""
    with open(path, "rb") as f:
        for line_no, raw in enumerate(f, 1):
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError as e:
                return MalformedRecord(
                    f"{path}:{line_no}: not valid UTF-8 (byte {raw[e.start]:#04x} at column {e.start + 1}: "
                    f"{e.reason}). The study's data files are UTF-8: check the folder against its manifest "
                    f"(sha256sum -c MANIFEST.sha256) and restore the file, or convert it with "
                    f"iconv -f <its encoding> -t UTF-8")
    return MalformedRecord(f"{path}: not valid UTF-8 ({error})")


def duplicated(values: Sequence[str]) -> list[str]:
    """The values occurring more than once, in first-seen order (for error messages)."""
    return [v for v, c in Counter(values).items() if c > 1]
