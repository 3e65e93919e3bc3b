"""Hub adapters: one small mapping per Hugging Face dataset schema.

Each adapter takes the dataset exactly as ``datasets.load_dataset`` returns it
(real column names and types of that hub dataset) and returns columns in the
study's schema for the task's kind (:mod:`xlt_helpers.schema`), minus ``lang``.
The schema facts they rely on, checked against each dataset's loading script or
card:

* ``facebook/xnli``, ``facebook/anli``, ``nyu-mll/glue`` (mnli, qqp, sst2),
  ``google-research-datasets/paws-x``: ``label`` is a ``ClassLabel``; it is
  mapped **by name** onto the task's labels. ``-1`` marks an unlabelled row
  (GLUE test splits) and is an error here.
* ``Rowan/hellaswag``: ``label`` is a string ``"0".."3"`` (``""`` on test);
  ``endings`` is a list of strings (old script versions: ``{"ending": [...]}``).
* ``allenai/social_i_qa``: ``label`` is a string ``"1".."3"`` (1-based); no id.
* ``tau/commonsense_qa``: ``question`` is the stem string; ``choices`` is
  ``{"label": [...], "text": [...]}``; ``answerKey`` a letter.
* ``allenai/cosmos_qa``: ``answer0..3`` and an integer ``label``.
* ``universal_dependencies``: ``upos`` is a sequence of ``ClassLabel`` whose
  names are in a different order from UPOS_TAGS and include ``"_"`` (the
  surface form of a multiword token, whose parts carry the real tags): mapped
  by name, ``"_"`` tokens dropped, as XTREME's preprocessing does.
* SQuAD-layout datasets (``rajpurkar/squad``, ``rajpurkar/squad_v2``,
  ``facebook/mlqa``, ``google/xquad``, ``google-research-datasets/tydiqa``
  ``secondary_task``): ``id``, ``context``, ``question``, ``answers`` =
  ``{"text", "answer_start"}``; only SQuAD and TyDiQA have ``title``. TyDiQA's
  ``secondary_task`` mixes all languages; rows are kept whose id starts with
  the language's English name (``"english-..."``).

``datasets.load_dataset`` is only ever called inside :func:`load`, never at import.
Whether the hub answers at all (:func:`hub_reachable`) is also decided here, for datasets and models alike.
"""
from __future__ import annotations

import contextlib
import os
import socket
from functools import lru_cache
from typing import Any, Callable, Iterator, Sequence

from .paths import DataError
from .readers import Columns

Adapter = Callable[..., Columns]

HUB_HOST = ("huggingface.co", 443)
_OFFLINE_VALUES = {"1", "true", "yes", "on"}


# --------------------------------------------------------------------------- network
def hub_reachable() -> bool:
    """Whether the Hugging Face hub can be used: False at once under ``HF_HUB_OFFLINE=1``.

    The network probe (a 1.5 s TCP connect) runs at most once per process;
    the offline flag is re-read on every call, so tests can flip it.
    """
    if os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in _OFFLINE_VALUES:
        return False
    return _probe_hub()


@lru_cache(maxsize=1)
def _probe_hub(timeout: float = 1.5) -> bool:
    try:
        with socket.create_connection(HUB_HOST, timeout=timeout):
            return True
    except OSError:
        return False


@contextlib.contextmanager
def cache_only_when_unreachable() -> Iterator[bool]:
    """Inside the block, ``datasets`` and ``huggingface_hub`` read the local HF cache only when the hub
    does not answer; yields whether they do.

    Why: without ``HF_HUB_OFFLINE=1`` in the environment an unreachable hub makes ``huggingface_hub``
    retry every request five times with back-off (1 + 2 + 4 + 8 + 8 s of waiting each, seen 2026-12-01), so
    ``xlt plan --profile full`` took minutes offline to learn that three training splits were not
    there. Both libraries read their offline constant at call time, so setting it for the block is
    what ``HF_HUB_OFFLINE=1`` would have done, and a split already in the cache still loads."""
    if hub_reachable():
        yield False
        return
    import datasets.config
    import huggingface_hub.constants

    saved = datasets.config.HF_HUB_OFFLINE, huggingface_hub.constants.HF_HUB_OFFLINE
    datasets.config.HF_HUB_OFFLINE = huggingface_hub.constants.HF_HUB_OFFLINE = True
    try:
        yield True
    finally:
        datasets.config.HF_HUB_OFFLINE, huggingface_hub.constants.HF_HUB_OFFLINE = saved


#: TyDiQA-GoldP ids start with the language's English name.
TYDIQA_LANGUAGE_NAMES = {"ar": "arabic", "bn": "bengali", "en": "english", "fi": "finnish", "id": "indonesian",
                         "ko": "korean", "ru": "russian", "sw": "swahili", "te": "telugu"}


def column(ds: Any, name: str) -> list:
    """A column as a Python list, in one Arrow conversion.

    ``datasets>=4`` returns a lazy ``Column`` from ``ds[name]`` whose iteration
    decodes row by row (seconds for a few 10k rows); slicing it converts at once
    and honours an indices mapping (after ``select``).
    """
    return ds[name][:]


def _label_mapper(raw: Any, column: str, labels: Sequence[str], where: str) -> Callable[[int, int], int]:
    """Map a hub ClassLabel (by name) or plain int label onto the task's label index."""
    feature = raw.features[column]
    names = getattr(feature, "names", None)
    if names is not None:
        missing = [n for n in names if n not in labels]
        if missing:
            raise DataError(f"{where}: hub label names {names} include {missing}, not in the task's labels {tuple(labels)}")
        table = [list(labels).index(n) for n in names]
    else:
        table = list(range(len(labels)))

    def convert(value: int, row: int) -> int:
        if value is None or value < 0 or value >= len(table):
            raise DataError(f"{where} row {row}: label {value!r} is unlabelled or out of range "
                            f"(GLUE/XNLI test splits use -1); load a labelled split")
        return table[value]
    return convert


def _string_label(value: Any, labels: Sequence[str], offset: int, where: str, row: int) -> int:
    """A label stored as a digit string (HellaSwag "0".."3", SocialIQA "1".."3")."""
    try:
        index = int(value) - offset
    except (TypeError, ValueError):
        index = -1
    if not 0 <= index < len(labels):
        raise DataError(f"{where} row {row}: label {value!r} is not one of "
                        f"{[str(i + offset) for i in range(len(labels))]} (unlabelled test split?)")
    return index


def _ids(prefix: str, n: int) -> list[str]:
    return [f"{prefix}-{i:05d}" for i in range(1, n + 1)]


# ------------------------------------------------------------------ classification
def adapt_pair(raw: Any, *, task: str, lang: str, split: str, labels: Sequence[str], where: str,
               a: str = "premise", b: str = "hypothesis", id_column: str | None = None) -> Columns:
    """Sentence-pair classification (XNLI, MNLI, ANLI, QQP, PAWS-X); ``b=None`` for single sentences."""
    convert = _label_mapper(raw, "label", labels, where)
    n = len(raw)
    ids = ([f"{task}-{split}-{v}" for v in column(raw, id_column)] if id_column else _ids(f"{task}-{split}-{lang}", n))
    return {"id": ids, "text_a": column(raw, a), "text_b": column(raw, b) if b else [""] * n,
            "label": [convert(v, i) for i, v in enumerate(column(raw, "label"))]}


def adapt_xnli(raw: Any, **kw: Any) -> Columns:
    return adapt_pair(raw, **kw)


def adapt_anli(raw: Any, **kw: Any) -> Columns:
    return adapt_pair(raw, id_column="uid", **kw)


def adapt_pawsx(raw: Any, **kw: Any) -> Columns:
    return adapt_pair(raw, a="sentence1", b="sentence2", **kw)


def adapt_glue(raw: Any, *, config: str, **kw: Any) -> Columns:
    """GLUE: the columns depend on the config (sst2 single sentence, mnli premise/hypothesis, qqp questions)."""
    columns = {"sst2": ("sentence", None), "mnli": ("premise", "hypothesis"), "qqp": ("question1", "question2")}
    if config not in columns:
        raise DataError(f"{kw['where']}: no adapter for GLUE config {config!r}; known: {sorted(columns)}")
    a, b = columns[config]
    return adapt_pair(raw, a=a, b=b, id_column="idx", **kw)


# ------------------------------------------------------------------ multiple choice
def adapt_hellaswag(raw: Any, *, task: str, lang: str, split: str, labels: Sequence[str], where: str) -> Columns:
    """Context as in the local file: ``activity_label + ": " + ctx``; no question."""
    endings = [e["ending"] if isinstance(e, dict) else e for e in column(raw, "endings")]
    return {"id": [f"{task}-{split}-{i}" for i in column(raw, "ind")],
            "context": [f"{al}: {ctx}" for al, ctx in zip(column(raw, "activity_label"), column(raw, "ctx"))],
            "question": [""] * len(raw), "choices": [list(e) for e in endings],
            "label": [_string_label(v, labels, 0, where, i) for i, v in enumerate(column(raw, "label"))]}


def adapt_cosmosqa(raw: Any, *, task: str, lang: str, split: str, labels: Sequence[str], where: str) -> Columns:
    answers = [column(raw, f"answer{i}") for i in range(len(labels))]
    bad = [(i, v) for i, v in enumerate(column(raw, "label")) if not 0 <= v < len(labels)]
    if bad:
        raise DataError(f"{where} row {bad[0][0]}: label {bad[0][1]!r} outside 0..{len(labels) - 1} (unlabelled split?)")
    return {"id": column(raw, "id"), "context": column(raw, "context"), "question": column(raw, "question"),
            "choices": [list(c) for c in zip(*answers)], "label": column(raw, "label")}


def adapt_csqa(raw: Any, *, task: str, lang: str, split: str, labels: Sequence[str], where: str) -> Columns:
    choices, gold = [], []
    for i, (ch, key) in enumerate(zip(column(raw, "choices"), column(raw, "answerKey"))):
        by_letter = dict(zip(ch["label"], ch["text"]))
        if sorted(by_letter) != sorted(labels):
            raise DataError(f"{where} row {i}: choice letters {sorted(by_letter)} differ from {list(labels)}")
        choices.append([by_letter[letter] for letter in labels])
        if key not in labels:
            raise DataError(f"{where} row {i}: answerKey {key!r} not in {list(labels)} (unlabelled test split?)")
        gold.append(list(labels).index(key))
    return {"id": column(raw, "id"), "context": [""] * len(raw), "question": column(raw, "question"),
            "choices": choices, "label": gold}


def adapt_siqa(raw: Any, *, task: str, lang: str, split: str, labels: Sequence[str], where: str) -> Columns:
    return {"id": _ids(f"{task}-{split}", len(raw)), "context": column(raw, "context"),
            "question": column(raw, "question"),
            "choices": [list(c) for c in zip(*(column(raw, f"answer{letter}") for letter in labels))],
            "label": [_string_label(v, labels, 1, where, i) for i, v in enumerate(column(raw, "label"))]}


# ------------------------------------------------------------------ extractive QA
def adapt_squad_layout(raw: Any, *, task: str, lang: str, split: str, labels: Sequence[str], where: str,
                       keep: Callable[[str], bool] | None = None) -> Columns:
    """SQuAD-layout datasets; ``title`` is "" where the hub dataset has none (MLQA, XQuAD)."""
    rows = None if keep is None else [i for i, v in enumerate(column(raw, "id")) if keep(v)]

    def pick(col: str) -> list:
        values = column(raw, col)  # materialise once: indexing a hub column row by row is slow
        return values if rows is None else [values[i] for i in rows]
    n = len(raw) if rows is None else len(rows)
    titles = pick("title") if "title" in raw.column_names else [""] * n
    answers = [{"text": list(a["text"]), "answer_start": [int(s) for s in a["answer_start"]]} for a in pick("answers")]
    return {"id": [str(v) for v in pick("id")], "title": titles, "context": pick("context"),
            "question": pick("question"), "answers": answers}


def adapt_tydiqa(raw: Any, *, lang: str, **kw: Any) -> Columns:
    """TyDiQA-GoldP ``secondary_task`` holds every language: keep ``lang``'s rows (by id prefix)."""
    try:
        prefix = TYDIQA_LANGUAGE_NAMES[lang] + "-"
    except KeyError:
        raise DataError(f"{kw['where']}: TyDiQA-GoldP has no language {lang!r}; "
                        f"known: {', '.join(TYDIQA_LANGUAGE_NAMES)}") from None
    return adapt_squad_layout(raw, lang=lang, keep=lambda v: str(v).startswith(prefix), **kw)


# ------------------------------------------------------------------ token tagging
def adapt_udpos(raw: Any, *, task: str, lang: str, split: str, labels: Sequence[str], where: str) -> Columns:
    """UD ``upos`` ClassLabel ids -> UPOS_TAGS order, by name; ``"_"`` (multiword surface forms) dropped."""
    names = raw.features["upos"].feature.names
    table = {}
    for hub_index, name in enumerate(names):
        if name == "_":
            continue
        if name not in labels:
            raise DataError(f"{where}: hub UPOS name {name!r} is not in the task's tags {tuple(labels)}")
        table[hub_index] = list(labels).index(name)
    tokens_out, tags_out = [], []
    for tokens, upos in zip(column(raw, "tokens"), column(raw, "upos")):
        kept = [(t, table[u]) for t, u in zip(tokens, upos) if u in table]
        tokens_out.append([t for t, _ in kept])
        tags_out.append([u for _, u in kept])
    return {"id": [f"{task}-{split}-{v}" for v in column(raw, "idx")], "tokens": tokens_out, "tags": tags_out}


ADAPTERS: dict[str, Adapter] = {
    "facebook/xnli": adapt_xnli,
    "facebook/anli": adapt_anli,
    "google-research-datasets/paws-x": adapt_pawsx,
    "nyu-mll/glue": adapt_glue,
    "Rowan/hellaswag": adapt_hellaswag,
    "allenai/cosmos_qa": adapt_cosmosqa,
    "tau/commonsense_qa": adapt_csqa,
    "allenai/social_i_qa": adapt_siqa,
    "rajpurkar/squad": adapt_squad_layout,
    "rajpurkar/squad_v2": adapt_squad_layout,
    "facebook/mlqa": adapt_squad_layout,
    "google/xquad": adapt_squad_layout,
    "google-research-datasets/tydiqa": adapt_tydiqa,
    "universal_dependencies": adapt_udpos,
}


def describe(hub_id: str, config: str | None, split: str) -> str:
    """``"facebook/xnli (config 'de', split 'validation')"``, for messages."""
    return f"{hub_id} (config {config!r}, split {split!r})"


def load(hub_id: str, config: str | None, split: str, *, task: str, lang: str, labels: Sequence[str]) -> Columns:
    """Download (or read from the HF cache) one hub split and map it onto the study's schema."""
    import datasets  # the module attribute, so tests can monkeypatch datasets.load_dataset

    where = describe(hub_id, config, split)
    if hub_id not in ADAPTERS:
        raise DataError(f"no hub adapter for {where}; known hub datasets: {', '.join(sorted(ADAPTERS))}")
    cache_only = False
    try:
        with cache_only_when_unreachable() as cache_only:
            raw = datasets.load_dataset(hub_id, config, split=split)
    except Exception as e:  # network, auth or missing-config errors all mean the same to the caller
        state = (f"{HUB_HOST[0]}:{HUB_HOST[1]} did not answer, so only the local HF cache was read. "
                 if cache_only else "Offline? ")
        raise DataError(f"could not load {where} from the Hugging Face hub: {type(e).__name__}: {e}. "
                        f"{state}Tasks with local files load them with source='local' "
                        f"(XLT_DATA_DIR); hub-only tasks need network once (then the HF cache).") from e
    kw: dict[str, Any] = {"task": task, "lang": lang, "split": split, "labels": labels, "where": where}
    if hub_id == "nyu-mll/glue":
        kw["config"] = config
    return ADAPTERS[hub_id](raw, **kw)
