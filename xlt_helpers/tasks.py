"""Every task of the study, described once, as data.

A task is a kind (which fixes the example schema, the head and the metric), a
label set, the languages it exists in, and where each (split, language) lives:
a path in XTREME's download layout under ``XLT_DATA_DIR`` and/or a Hugging Face
hub dataset. Loaders (:mod:`xlt_helpers.data`) read these specs; nothing else
should hard-code a task's languages, files or labels.

Split names are the study's roles, not the files' names (see the split plan in
``shared/data/README.md``): ``train`` is what a phase trains on, ``dev`` is
what a phase validates or zero-shot evaluates on. For XNLI the local ``train``
is ``xnli/test-en.tsv`` (gold labels attached) because MNLI is not offline.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    import pandas as pd

Kind = Literal["classification", "multiple-choice", "extractive-QA", "token-tagging"]
KINDS: tuple[str, ...] = ("classification", "multiple-choice", "extractive-QA", "token-tagging")
#: kinds whose text-to-text targets an encoder-decoder generates token by token (QA answers, tag
#: sequences); the others are ranked among a few candidates (label words, option letters)
GENERATED_KINDS: tuple[str, ...] = ("extractive-QA", "token-tagging")

XNLI_LANGS = ("ar", "bg", "de", "el", "en", "es", "fr", "hi", "ru", "sw", "th", "tr", "ur", "vi", "zh")
MLQA_LANGS = ("ar", "de", "en", "es", "hi", "vi", "zh")
XQUAD_LANGS = ("ar", "de", "el", "en", "es", "hi", "ro", "ru", "th", "tr", "vi", "zh")
PAWSX_LANGS = ("de", "en", "es", "fr", "ja", "ko", "zh")
# The intermediate "task" of the no-intermediate baseline (a phase-2 run straight from the pretrained model):
# the one name of the marker, in profiles, run parameters, the tidy tables and the published tables alike.
NONE_TASK = "none"
UPOS_TAGS = ("ADJ", "ADP", "ADV", "AUX", "CCONJ", "DET", "INTJ", "NOUN", "NUM", "PART",
             "PRON", "PROPN", "PUNCT", "SCONJ", "SYM", "VERB", "X")


@dataclass(frozen=True)
class Source:
    """Where one (split, language) of a task lives.

    ``local``: path(s) relative to ``XLT_DATA_DIR`` (``{lang}`` is substituted);
    several paths are concatenated in order. ``fmt`` names the local reader.
    ``hub``: (dataset id, config or None, hub split); ``{lang}`` substituted.
    Either may be None when that source does not have this split.
    ``hub_holdout``: the hub split is cut by the task's hold-out rule (``holdout``,
    ``holdout_key``; :func:`xlt_helpers.data.holdout_split`) and this split keeps its
    side, so that a task whose local dev is a hold-out of the hub's validation file
    is evaluated on the same items with or without the hub (CosmosQA).
    """

    local: tuple[str, ...] | None = None
    fmt: str | None = None
    hub: tuple[str, str | None, str] | None = None
    hub_holdout: bool = False

    def local_files(self, lang: str) -> tuple[str, ...]:
        """The local path(s) of ``lang``, relative to the data folder (none when hub-only)."""
        return tuple(fill_lang(t, lang) for t in (self.local or ()))


def fill_lang(template: str, lang: str) -> str:
    """Substitute ``{lang}``; for a pair ``"ar.de"`` the 1st occurrence gets ``ar``, the 2nd ``de``.

    So ``dev-context-{lang}-question-{lang}.json`` and ``mlqa.{lang}.{lang}`` both
    name the pair's file / hub config, and a single code fills every occurrence.
    """
    parts = lang.split(".")
    if len(parts) == 1:
        return template.replace("{lang}", lang)
    out = template
    for part in parts:
        out = out.replace("{lang}", part, 1)
    return out


@dataclass(frozen=True)
class TaskSpec:
    name: str
    kind: Kind
    description: str
    labels: tuple[str, ...]            # label names; the index is the integer label
    languages: tuple[str, ...]
    splits: dict[str, Source]           # split -> where it lives ({lang} in paths)
    split_languages: dict[str, tuple[str, ...]] = field(default_factory=dict)  # split -> langs if not all
    metric: str = "accuracy"            # accuracy | squad_f1_em | mlqa_f1_em | token_accuracy
    role: Literal["target", "intermediate", "both"] = "intermediate"
    n_choices: int | None = None         # multiple choice only
    chance: float | None = None          # chance-level score on the metric's 0..1 scale
    # When train and dev come from the same local file (only one split is offline), dev is a
    # seeded hold-out of ``holdout`` of its groups (``holdout_key``: "id"; "title" or "context" so
    # that items sharing a passage never straddle the split) and train is the rest. HellaSwag and
    # CosmosQA reuse a context across several items, hence "context" for both.
    holdout: float = 0.0
    holdout_key: str = "id"
    # What an encoder-decoder says for each label (lm-evaluation-harness's ``doc_to_choice``), where
    # the label names are not words a decoder can say (PAWS-X's "0"/"1"); empty = the label names.
    label_words: tuple[str, ...] = ()

    def langs_for(self, split: str) -> tuple[str, ...]:
        return self.split_languages.get(split, self.languages)

    def label_targets(self) -> tuple[str, ...]:
        """The text-to-text target of each label: ``label_words`` if set, else the label names."""
        return self.label_words or self.labels

    @property
    def generated_targets(self) -> bool:
        """Whether an encoder-decoder generates this task's targets rather than ranking candidates;
        it also picks the cross-attention recipe of warm-started ones (models.ModelSpec.cross_attention_gain_for)."""
        return self.kind in GENERATED_KINDS


TASKS: dict[str, TaskSpec] = {}


def _register(spec: TaskSpec) -> TaskSpec:
    TASKS[spec.name] = spec
    return spec


# ----------------------------------------------------------------- targets
_register(TaskSpec(
    name="xnli", kind="classification", role="target", metric="accuracy", chance=1 / 3,
    description="Cross-lingual NLI (Conneau et al. 2018): premise/hypothesis -> 3 labels.",
    labels=("entailment", "neutral", "contradiction"),
    languages=XNLI_LANGS,
    splits={
        # local train = English test set with gold labels (split plan); hub train = MNLI-based XNLI train
        "train": Source(local=("xnli/test-en.tsv",), fmt="xnli_tsv", hub=("facebook/xnli", "en", "train")),
        "dev": Source(local=("xnli/dev-{lang}.tsv",), fmt="xnli_tsv", hub=("facebook/xnli", "{lang}", "validation")),
    },
    split_languages={"train": ("en",)},
))
_register(TaskSpec(
    name="mlqa", kind="extractive-QA", role="target", metric="mlqa_f1_em", chance=0.0,
    description="MLQA (Lewis et al. 2020): extractive QA, same-language context/question pairs.",
    labels=(), languages=MLQA_LANGS,
    splits={
        # local English training = SQuAD v1.1 dev + TyDiQA-GoldP en train (split plan); hub = SQuAD v1.1 train
        "train": Source(local=("english/squad/dev-v1.1.json",
                               "tydiqa/tydiqa-goldp-v1.1-train/tydiqa.goldp.en.train.json"),
                        fmt="squad_json", hub=("rajpurkar/squad", None, "train")),
        "dev": Source(local=("mlqa/MLQA_V1/dev/dev-context-{lang}-question-{lang}.json",), fmt="squad_json",
                      hub=("facebook/mlqa", "mlqa.{lang}.{lang}", "validation")),
    },
    split_languages={"train": ("en",)},
))
_register(TaskSpec(
    name="xquad", kind="extractive-QA", role="target", metric="mlqa_f1_em", chance=0.0,
    description="XQuAD (Artetxe et al. 2020): SQuAD v1.1 dev translated; a subset of SQuAD v1.1 dev.",
    labels=(), languages=XQUAD_LANGS,
    splits={"dev": Source(local=("xquad/xquad.{lang}.json",), fmt="squad_json",
                          hub=("google/xquad", "xquad.{lang}", "validation"))},
))
_register(TaskSpec(
    name="tydiqa", kind="extractive-QA", role="both", metric="squad_f1_em", chance=0.0,
    description="TyDiQA-GoldP (Clark et al. 2020). Local dev answers are blanked by XTREME: train only.",
    labels=(), languages=("en", "ko", "sw"),
    splits={"train": Source(local=("tydiqa/tydiqa-goldp-v1.1-train/tydiqa.goldp.{lang}.train.json",),
                            fmt="squad_json", hub=("google-research-datasets/tydiqa", "secondary_task", "train"))},
))
_register(TaskSpec(
    name="pawsx", holdout=0.2, holdout_key="id", kind="classification", role="both", metric="accuracy", chance=0.5,
    description="PAWS-X (Yang et al. 2019): paraphrase adversaries, 2 labels (1 = paraphrase).",
    labels=("0", "1"), label_words=("no", "yes"), languages=PAWSX_LANGS,
    # local train and dev-en are the same file (PAWS-X train is not offline): a seeded hold-out serves as dev-en
    splits={
        "train": Source(local=("pawsx/dev-en.tsv",), fmt="pawsx_tsv",
                        hub=("google-research-datasets/paws-x", "en", "train")),
        "dev": Source(local=("pawsx/dev-{lang}.tsv",), fmt="pawsx_tsv",
                      hub=("google-research-datasets/paws-x", "{lang}", "validation")),
        "test": Source(local=("pawsx/test-{lang}.tsv",), fmt="pawsx_tsv",
                       hub=("google-research-datasets/paws-x", "{lang}", "test")),
    },
    split_languages={"train": ("en",), "test": ("de", "zh")},
))

# ------------------------------------------------------- intermediate tasks
_register(TaskSpec(
    name="sst2", kind="classification", metric="accuracy", chance=0.5,
    description="SST-2 (Socher et al. 2013): binary sentiment. Easy.",
    labels=("negative", "positive"), languages=("en",),
    splits={"train": Source(local=("english/sst2/train.jsonl",), fmt="sst2_jsonl", hub=("nyu-mll/glue", "sst2", "train")),
            "dev": Source(local=("english/sst2/dev.jsonl",), fmt="sst2_jsonl", hub=("nyu-mll/glue", "sst2", "validation"))},
))
_register(TaskSpec(
    name="udpos", kind="token-tagging", metric="token_accuracy", chance=1 / 17,
    description="Universal Dependencies v2.5 POS tagging (17 UPOS tags), XTREME merge of all treebanks.",
    labels=UPOS_TAGS, languages=("en",),
    splits={"train": Source(local=("udpos/train-{lang}.tsv",), fmt="udpos_tsv",
                            hub=("universal_dependencies", "en_ewt", "train")),
            "dev": Source(local=("udpos/dev-{lang}.tsv",), fmt="udpos_tsv",
                          hub=("universal_dependencies", "en_ewt", "validation"))},
))
_register(TaskSpec(
    name="commonsenseqa", kind="multiple-choice", metric="accuracy", n_choices=5, chance=0.2,
    description="CommonsenseQA (Talmor et al. 2019): 5-way commonsense multiple choice.",
    labels=("A", "B", "C", "D", "E"), languages=("en",),
    splits={"train": Source(local=("english/commonsenseqa/train.jsonl",), fmt="csqa_jsonl",
                            hub=("tau/commonsense_qa", None, "train")),
            "dev": Source(local=("english/commonsenseqa/dev.jsonl",), fmt="csqa_jsonl",
                          hub=("tau/commonsense_qa", None, "validation"))},
))
_register(TaskSpec(
    name="hellaswag", holdout=0.2, holdout_key="context", kind="multiple-choice", metric="accuracy", n_choices=4, chance=0.25,
    description="HellaSwag (Zellers et al. 2019): pick the plausible continuation. Hard.",
    labels=("0", "1", "2", "3"), languages=("en",),
    # only the official validation split is offline: a seeded hold-out of it serves as dev (see data.py)
    splits={"train": Source(local=("english/hellaswag/val.jsonl",), fmt="hellaswag_jsonl",
                            hub=("Rowan/hellaswag", None, "train")),
            "dev": Source(local=("english/hellaswag/val.jsonl",), fmt="hellaswag_jsonl",
                          hub=("Rowan/hellaswag", None, "validation"))},
))
# CosmosQA: the split is ours. Only the official validation set (2,985 labelled items) is offline and the
# public test labels are hidden, so dev = the passages (contexts) whose sha256(HOLDOUT_SALT:context) ranks
# in the first 20% (489 of 2,445 passages, 599 items) and train = the rest (2,386 items). By passage, not
# by item: 904 items share their passage with another item, 764 of them even the question (asked again
# with other answer options). The hub's validation split is the same file (wilburOne/cosmosqa
# data/valid.csv), so hub dev is cut the same way (hub_holdout) and holds the same items; hub train is
# the official train split (25,262 items).
_register(TaskSpec(
    name="cosmosqa", holdout=0.2, holdout_key="context", kind="multiple-choice", metric="accuracy", n_choices=4, chance=0.25,
    description="CosmosQA (Huang et al. 2019): reading comprehension needing commonsense, 4-way. Train/dev "
                "are our seeded-hash split of the official validation set by passage (the test labels are hidden).",
    labels=("0", "1", "2", "3"), languages=("en",),
    splits={"train": Source(local=("english/cosmosqa/valid.jsonl",), fmt="cosmosqa_jsonl",
                            hub=("allenai/cosmos_qa", None, "train")),
            "dev": Source(local=("english/cosmosqa/valid.jsonl",), fmt="cosmosqa_jsonl",
                          hub=("allenai/cosmos_qa", None, "validation"), hub_holdout=True)},
))
_register(TaskSpec(
    name="siqa", kind="multiple-choice", metric="accuracy", n_choices=3, chance=1 / 3,
    description="SocialIQA (Sap et al. 2019): social commonsense, 3-way.",
    labels=("A", "B", "C"), languages=("en",),
    splits={"train": Source(local=("english/siqa/tst.jsonl",), fmt="siqa_jsonl",
                            hub=("allenai/social_i_qa", None, "train")),
            "dev": Source(local=("english/siqa/dev.jsonl",), fmt="siqa_jsonl",
                          hub=("allenai/social_i_qa", None, "validation"))},
))
_register(TaskSpec(
    name="squad", holdout=0.1, holdout_key="title", kind="extractive-QA", metric="squad_f1_em", chance=0.0,
    description="SQuAD v1.1 (Rajpurkar et al. 2016). Locally only dev exists (it trains MLQA's target task).",
    labels=(), languages=("en",),
    splits={"train": Source(local=("english/squad/dev-v1.1.json",), fmt="squad_json",
                            hub=("rajpurkar/squad", None, "train")),
            "dev": Source(local=("english/squad/dev-v1.1.json",), fmt="squad_json",
                          hub=("rajpurkar/squad", None, "validation"))},
))
_register(TaskSpec(
    name="squad_v2", holdout=0.1, holdout_key="title", kind="extractive-QA", metric="squad_f1_em", chance=0.0,
    description="SQuAD v2.0 (Rajpurkar et al. 2018): adds unanswerable questions.",
    labels=(), languages=("en",),
    splits={"train": Source(local=("english/squad/dev-v2.0.json",), fmt="squad_json",
                            hub=("rajpurkar/squad_v2", None, "train")),
            "dev": Source(local=("english/squad/dev-v2.0.json",), fmt="squad_json",
                          hub=("rajpurkar/squad_v2", None, "validation"))},
))
# hub-only intermediate tasks (Phang et al. 2020's best ones; not offline)
_register(TaskSpec(
    name="mnli", kind="classification", metric="accuracy", chance=1 / 3,
    description="MultiNLI (Williams et al. 2018). Hub only.",
    labels=("entailment", "neutral", "contradiction"), languages=("en",),
    splits={"train": Source(hub=("nyu-mll/glue", "mnli", "train")),
            "dev": Source(hub=("nyu-mll/glue", "mnli", "validation_matched"))},
))
_register(TaskSpec(
    name="anli", kind="classification", metric="accuracy", chance=1 / 3,
    description="Adversarial NLI (Nie et al. 2020), rounds 1-3 concatenated. Hub only.",
    labels=("entailment", "neutral", "contradiction"), languages=("en",),
    splits={"train": Source(hub=("facebook/anli", None, "train_r1+train_r2+train_r3")),
            "dev": Source(hub=("facebook/anli", None, "dev_r1+dev_r2+dev_r3"))},
))
_register(TaskSpec(
    name="qqp", kind="classification", metric="accuracy", chance=0.5,
    description="Quora Question Pairs (GLUE). Hub only.",
    labels=("not_duplicate", "duplicate"), label_words=("no", "yes"), languages=("en",),
    splits={"train": Source(hub=("nyu-mll/glue", "qqp", "train")),
            "dev": Source(hub=("nyu-mll/glue", "qqp", "validation"))},
))


def get_task(name: str) -> TaskSpec:
    """The spec of ``name``; an unknown name lists the valid ones."""
    try:
        return TASKS[name]
    except KeyError:
        raise KeyError(f"unknown task {name!r}; valid tasks: {', '.join(sorted(TASKS))}") from None


# scores.csv `metric` rows that each registry metric (TaskSpec.metric) produces; the first is the headline
METRIC_ROWS: dict[str, tuple[str, ...]] = {"accuracy": ("accuracy",), "token_accuracy": ("accuracy",),
                                           "mlqa_f1_em": ("f1", "em"), "squad_f1_em": ("f1", "em")}


def primary_metric(target: str) -> str:
    """The headline metric of a target task (XNLI: accuracy, MLQA: f1), from the task registry."""
    spec = get_task(target)
    try:
        return METRIC_ROWS[spec.metric][0]
    except KeyError:
        raise KeyError(f"task {target!r} has registry metric {spec.metric!r}, which tasks.METRIC_ROWS does not "
                       f"map to a scores.csv metric; add it there (known: {sorted(METRIC_ROWS)})") from None


def targets_in(scores: pd.DataFrame) -> list[str]:
    """The target tasks present in a scores table, in the task registry's order (XNLI before MLQA)."""
    present = set(scores["target"])
    unknown = sorted(present - set(TASKS))
    if unknown:
        raise ValueError(f"scores name unknown target task(s) {unknown}; valid tasks: {', '.join(TASKS)}")
    return [t for t in TASKS if t in present]
