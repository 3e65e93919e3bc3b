"""Load any (task, split, language) of the study, offline when the files exist.

``load_task`` reads the spec in :mod:`xlt_helpers.tasks`, picks the local file(s)
under the data folder (:func:`xlt_helpers.paths.data_dir`) or the Hugging Face
hub, and returns a ``datasets.Dataset`` with exactly the columns of the task's
kind (:func:`xlt_helpers.schema.features_for`), ``lang`` filled and unique
string ids. Everything about *which* file or hub dataset lives in the spec;
everything about *how to read it* lives in :mod:`readers` / :mod:`hub`. Every
local file is checked against the data folder's ``MANIFEST.sha256`` before it
is read and its record count against ``COUNTS.tsv`` after (:mod:`manifest`).

Two guards against measuring training items:

* **Hold-out.** When a task's local train and dev are the same file (only one
  official split is offline, e.g. HellaSwag val), dev is a fixed fraction
  (``spec.holdout``) of the file's *groups* and train is the rest. Groups are
  ids, or titles for SQuAD so that questions sharing a paragraph never straddle
  the split. The choice is a hash of each group key with a fixed salt: it does
  not depend on the ``seed`` argument, the row order or the Python version.
  A hub split marked ``hub_holdout`` (CosmosQA validation) is cut the same way,
  so hub and local dev hold the same items.
* :func:`assert_disjoint` raises :class:`LeakageError` when a training set
  shares ids or texts with an evaluation set (e.g. MLQA's local training data
  contains SQuAD v1.1 dev, of which XQuAD is a translation).

Example (README)::

    from xlt_helpers.data import load_task
    ds = load_task("xnli", "dev", "de")
    assert len(ds) == 2490
"""
from __future__ import annotations

import hashlib
import os
import random
from functools import lru_cache
from pathlib import Path
from typing import Literal, Sequence

from datasets import Dataset

from . import hub, manifest, readers
from .paths import DATA_ENV, DataError, DataFileMissing, data_dir as resolve_data_dir
from .hub import column
from .readers import Columns, MalformedRecord
from .schema import COLUMNS, features_for
from .tasks import MLQA_LANGS, TASKS, Source, TaskSpec, fill_lang

__all__ = ["load_task", "subsample", "assert_disjoint", "holdout_split", "local_paths", "text_keys",
           "DataError", "DataFileMissing", "MalformedRecord", "LeakageError", "HOLDOUT_SALT"]

Origin = Literal["auto", "local", "hub"]

#: Fixed salt of the hold-out hash. Changing it changes every held-out dev set.
HOLDOUT_SALT = "xlt-holdout-v1"
#: Only MLQA dev accepts cross-lingual pairs ``"<context lang>.<question lang>"``.
PAIR_TASKS = {("mlqa", "dev"): MLQA_LANGS}


class LeakageError(DataError):
    """A training set shares items (ids or texts) with an evaluation set."""


# ------------------------------------------------------------------ validation
def _spec(task: str) -> TaskSpec:
    if task not in TASKS:
        raise DataError(f"unknown task {task!r}; valid tasks: {', '.join(sorted(TASKS))}")
    return TASKS[task]


def _check_split_lang(spec: TaskSpec, split: str, lang: str) -> None:
    if split not in spec.splits:
        raise DataError(f"task {spec.name!r} has no split {split!r}; valid splits: {', '.join(spec.splits)}")
    valid = spec.langs_for(split)
    pair_langs = PAIR_TASKS.get((spec.name, split))
    if "." in lang:
        parts = lang.split(".")
        if pair_langs is None:
            raise DataError(f"language {lang!r}: context.question pairs exist only for "
                            f"{', '.join(f'{t} {s}' for t, s in PAIR_TASKS)}; task {spec.name!r} split "
                            f"{split!r} takes one of: {', '.join(valid)}")
        if len(parts) != 2 or any(p not in pair_langs for p in parts):
            raise DataError(f"language pair {lang!r} for {spec.name} {split}: both codes (context.question) "
                            f"must be among {', '.join(pair_langs)}, e.g. 'ar.de'")
    elif lang not in valid:
        extra = " or a context.question pair such as 'ar.de'" if pair_langs else ""
        raise DataError(f"task {spec.name!r} split {split!r} has no language {lang!r}; "
                        f"valid languages: {', '.join(valid)}{extra}")


# ------------------------------------------------------------------ local files
def local_paths(task: str, split: str, lang: str = "en", *, data_dir: str | os.PathLike | None = None) -> list[Path]:
    """The absolute local file(s) of (task, split, lang); raises if the task is hub-only or the folder is missing."""
    spec = _spec(task)
    _check_split_lang(spec, split, lang)
    src = spec.splits[split]
    if src.local is None:
        raise DataError(f"task {task!r} split {split!r} is hub-only (not in the offline data; see "
                        f"shared/data/README.md, 'Not included'): use source='hub' or 'auto' "
                        f"(needs network once): {_hub_ref(src, lang)}")
    try:
        root = resolve_data_dir(data_dir)
    except DataFileMissing as e:
        raise DataFileMissing(f"{e} Needed for {task} {split} {lang}: {', '.join(_rel(src, lang))}; "
                              f"hub alternative: {_hub_ref(src, lang)}.") from None
    return [root / rel for rel in _rel(src, lang)]


def _rel(src: Source, lang: str) -> list[str]:
    return list(src.local_files(lang))


def _hub_ref(src: Source, lang: str) -> str:
    if src.hub is None:
        return "none (no hub source declared in tasks.py)"
    hub_id, config, split = src.hub
    return hub.describe(hub_id, fill_lang(config, lang) if config else None, split)


def _missing_message(task: str, split: str, lang: str, missing: Sequence[Path], src: Source) -> str:
    return (f"local data for task {task!r} split {split!r} lang {lang!r} not found: "
            f"{', '.join(str(p) for p in missing)}. Fix: set {DATA_ENV} (now "
            f"{os.environ.get(DATA_ENV, 'unset')!r}) to a folder in XTREME's download layout, e.g. "
            f"../shared/data beside the checkout; or use source='hub' with network: {_hub_ref(src, lang)}.")


@lru_cache(maxsize=16)
def _read_cached(path: str, mtime_ns: int, size: int, fmt: str, labels: tuple[str, ...], id_prefix: str) -> Columns:
    # mtime and size in the key: an edited file is re-read. Callers must not mutate the result.
    return readers.read(fmt, Path(path), labels=labels, id_prefix=id_prefix)


def _read_local(spec: TaskSpec, src: Source, root: Path, rels: Sequence[str]) -> Columns:
    """Read ``root/rel`` for each of ``rels``, each first checked against the folder's manifest and,
    once read, its record count against COUNTS.tsv (:mod:`xlt_helpers.manifest`)."""
    manifest.verify_files(root, rels)
    parts = []
    for rel in rels:
        path = root / rel
        st = path.stat()
        cols = _read_cached(str(path), st.st_mtime_ns, st.st_size, src.fmt or "", tuple(spec.labels),
                            f"{spec.name}-{path.stem}")
        manifest.check_count(root, rel, len(cols["id"]))
        parts.append(cols)
    if len(parts) == 1:
        return parts[0]
    return {col: [v for part in parts for v in part[col]] for col in parts[0]}


def _same_file_holdout(spec: TaskSpec, split: str, lang: str) -> bool:
    """Whether (split, lang) is one side of a train/dev pair read from the same local file(s)."""
    train, dev = spec.splits.get("train"), spec.splits.get("dev")
    if split not in ("train", "dev") or train is None or dev is None or not train.local or not dev.local:
        return False
    same = _rel(train, lang) == _rel(dev, lang)
    if same and spec.holdout <= 0:
        raise DataError(f"task {spec.name!r}: local train and dev are the same file(s) {_rel(train, lang)}, "
                        f"so dev would measure training items; set holdout (a fraction) in xlt_helpers/tasks.py")
    return same


def holdout_split(cols: Columns, *, fraction: float, key: str, part: Literal["train", "dev"]) -> Columns:
    """Split columns by groups (values of column ``key``): ``dev`` = a fixed ``fraction`` of groups.

    A group is dev when it ranks among the first ``round(fraction * n_groups)``
    (at least 1) by ``sha256(HOLDOUT_SALT:group)``; train is everything else.
    """
    if key not in cols:
        raise DataError(f"holdout_key {key!r} is not a column; columns: {sorted(cols)}")
    if not 0 < fraction < 1:
        raise DataError(f"holdout fraction {fraction!r} must be in (0, 1)")
    groups = list(dict.fromkeys(cols[key]))
    k = max(1, round(fraction * len(groups)))
    ranked = sorted(groups, key=lambda g: hashlib.sha256(f"{HOLDOUT_SALT}:{g}".encode()).hexdigest())
    dev_groups = set(ranked[:k])
    keep = [(g in dev_groups) == (part == "dev") for g in cols[key]]
    return {col: [v for v, m in zip(values, keep) if m] for col, values in cols.items()}


# ------------------------------------------------------------------ assembly
def _to_dataset(spec: TaskSpec, cols: Columns, lang: str, origin: str) -> Dataset:
    ids = cols["id"]
    dupes = readers.duplicated(ids)
    if dupes:
        raise DataError(f"{spec.name} ({origin}): {len(dupes)} duplicated ids, e.g. {dupes[:5]}; ids must be unique")
    mapping = {col: ([lang] * len(ids) if col == "lang" else cols[col]) for col in COLUMNS[spec.kind]}
    return Dataset.from_dict(mapping, features=features_for(spec))


def load_task(task: str, split: str, lang: str = "en", *, n: int | None = None, seed: int = 0,
              source: Origin = "auto", data_dir: str | os.PathLike | None = None) -> Dataset:
    """One (task, split, language) as a Dataset in the task kind's schema.

    ``source``: ``"local"`` reads the files under the data folder (error if
    missing), ``"hub"`` loads the spec's hub dataset, ``"auto"`` uses the local
    files when they exist and the hub otherwise. ``n``/``seed``: see
    :func:`subsample`. ``lang="ar.de"`` (MLQA dev only) is context ar, question de.
    """
    spec = _spec(task)
    _check_split_lang(spec, split, lang)
    if source not in ("auto", "local", "hub"):
        raise DataError(f"source {source!r} must be 'auto', 'local' or 'hub'")
    src = spec.splits[split]

    if source == "hub" or (source == "auto" and src.local is None):
        return subsample(_load_hub(spec, split, lang, src), n, seed)

    try:
        paths = local_paths(task, split, lang, data_dir=data_dir)
    except DataFileMissing:            # no data folder: only "auto" without an explicit folder may go on
        if source == "local" or data_dir is not None:
            raise
        paths = []
    missing = [p for p in paths if not p.is_file()] if paths else [Path(rel) for rel in _rel(src, lang)]
    if missing and source == "local":
        raise DataFileMissing(_missing_message(task, split, lang, missing, src))
    if missing:                        # "auto": the hub, and if that fails too, say both
        try:
            return subsample(_load_hub(spec, split, lang, src), n, seed)
        except DataError as e:
            raise DataFileMissing(f"{_missing_message(task, split, lang, missing, src)} "
                                  f"The hub fallback failed too: {e}") from e

    cols = _read_local(spec, src, resolve_data_dir(data_dir), _rel(src, lang))
    if _same_file_holdout(spec, split, lang):
        cols = holdout_split(cols, fraction=spec.holdout, key=spec.holdout_key, part=split)  # type: ignore[arg-type]
    return subsample(_to_dataset(spec, cols, lang, ", ".join(str(p) for p in paths)), n, seed)


def _load_hub(spec: TaskSpec, split: str, lang: str, src: Source) -> Dataset:
    if src.hub is None:
        raise DataError(f"task {spec.name!r} split {split!r} has no hub source in xlt_helpers/tasks.py; "
                        f"use source='local' with {DATA_ENV}")
    hub_id, config, hub_split = src.hub
    config = fill_lang(config, lang) if config else None
    cols = hub.load(hub_id, config, hub_split, task=spec.name, lang=lang, labels=spec.labels)
    if src.hub_holdout:
        if split not in ("train", "dev") or spec.holdout <= 0:
            raise DataError(f"task {spec.name!r} split {split!r}: hub_holdout needs split 'train' or 'dev' and "
                            f"a hold-out fraction (holdout={spec.holdout!r}); fix the spec in xlt_helpers/tasks.py")
        cols = holdout_split(cols, fraction=spec.holdout, key=spec.holdout_key, part=split)  # type: ignore[arg-type]
    return _to_dataset(spec, cols, lang, hub.describe(hub_id, config, hub_split))


# ------------------------------------------------------------------ subsets and leakage
def subsample(ds: Dataset, n: int | None, seed: int) -> Dataset:
    """``n`` rows drawn without replacement by ``seed`` (kept in file order); ``None`` = all.

    Explicit and deterministic so that a profile's ``n`` is reproducible; asking
    for more rows than exist is an error, not a silent cap.
    """
    if n is None:
        return ds
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise DataError(f"n={n!r} must be a non-negative integer or None (all rows)")
    if n > len(ds):
        raise DataError(f"asked for n={n} examples but the dataset has only {len(ds)}; "
                        f"lower n or pass n=None for all {len(ds)}")
    return ds.select(sorted(random.Random(seed).sample(range(len(ds)), n)))


def text_keys(ds: Dataset) -> list[tuple]:
    """The text that identifies each item, per kind: (premise, hypothesis) / (context, question) / tokens."""
    cols = set(ds.column_names)
    if {"text_a", "text_b"} <= cols:
        return list(zip(column(ds, "text_a"), column(ds, "text_b")))
    if {"context", "question"} <= cols:
        return list(zip(column(ds, "context"), column(ds, "question")))
    if "tokens" in cols:
        return [tuple(t) for t in column(ds, "tokens")]
    raise DataError(f"no text columns to compare in {ds.column_names}")


def assert_disjoint(train: Dataset, evals: Sequence[Dataset], *, task: str) -> None:
    """Raise :class:`LeakageError` if any eval set shares an id or a text with ``train``.

    Text means the item's defining input: premise/hypothesis pair, context+question,
    or the token sequence, so a re-id'd copy of an item is caught too.
    """
    train_ids, train_texts = set(column(train, "id")), set(text_keys(train))
    problems = []
    for i, ev in enumerate(evals):
        langs = sorted(set(column(ev, "lang"))) if "lang" in ev.column_names else ["?"]
        ids = [x for x in column(ev, "id") if x in train_ids]
        texts = [t for t in text_keys(ev) if t in train_texts]
        if ids or texts:
            shown = "; ".join(" | ".join(str(x)[:60] for x in t) for t in texts[:3])
            problems.append(f"eval set {i} (lang {','.join(langs)}): {len(ids)} shared ids (e.g. {ids[:5]}), "
                            f"{len(texts)} shared texts (e.g. {shown})")
    if problems:
        raise LeakageError(f"{task}: training data overlaps evaluation data, which would measure training "
                           f"items: " + " || ".join(problems))
