"""Build the study's Jupyter Book offline, and load the results its pages show.

Why a function and not just ``jupyter-book build .``:

* the book must work without network: plotly.js is copied from the installed
  ``plotly`` package into ``book/_static/`` (pages embed figures with
  ``include_plotlyjs=False``, see :func:`xlt_helpers.figures.show`);
* the per-run appendix is assembled from whatever ``results/runs/*.ipynb``
  exist (each gets a title cell so it has a heading in the table of contents);
* warnings are errors (``-W -n --keep-going``), and a failure names the first
  warning instead of ending in a wall of Sphinx output;
* the build runs on a *staged copy* of ``_config.yml``, ``_toc.yml`` and
  ``book/`` under ``<out_dir>/_build/_source``, so a build (a test's, say) never
  writes generated files into the checkout and two builds cannot trample each
  other's ``book/runs``.

The analysis pages find their results through ``$XLT_RESULTS_DIR`` (set here
for the build) via :func:`results_dir` / :func:`load_results`.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from .paths import repo_root
from .results import ResultsError, read_csv, read_json
from .results import results_dir  # noqa: F401  (the pages call book.results_dir)

REPO_ROOT = repo_root()
NO_RESULTS = "No reference-study results are committed yet."
SCORES_COLUMNS: tuple[str, ...] = ("run_id", "family", "model", "size", "intermediate", "target", "seed",
                                   "lang", "metric", "score", "n")
PER_EXAMPLE_COLUMNS: tuple[str, ...] = ("run_id", "lang", "example_id", "metric", "value")
RUN_KEYS: tuple[str, ...] = ("family", "model", "size", "intermediate", "target", "seed")
RUNS_INDEX = "book/runs_index"
_WARNING = re.compile(r"(WARNING|ERROR|CRITICAL|SEVERE):")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
# Logged by jupyter_client's tornado loop when a kernel's ZMQ socket is closed while a late message
# is still queued (a shutdown race seen on slow CI machines). It comes after the page executed; a real
# execution failure is reported separately by jupyter-book ("Executing notebook failed"), so this
# line alone is not a warning about the book.
_BENIGN = re.compile(r"ERROR:tornado\.general:Uncaught exception in ZMQStream callback")


# scores.csv `metric` rows that each registry metric (TaskSpec.metric) produces; the first is the headline
METRIC_ROWS: dict[str, tuple[str, ...]] = {"accuracy": ("accuracy",), "token_accuracy": ("accuracy",),
                                           "mlqa_f1_em": ("f1", "em"), "squad_f1_em": ("f1", "em")}


def primary_metric(target: str) -> str:
    """The headline metric of a target task (XNLI: accuracy, MLQA: f1), from the task registry."""
    from .tasks import get_task

    spec = get_task(target)
    try:
        return METRIC_ROWS[spec.metric][0]
    except KeyError:
        raise KeyError(f"task {target!r} has registry metric {spec.metric!r}, which book.METRIC_ROWS does not "
                       f"map to a scores.csv metric; add it there (known: {sorted(METRIC_ROWS)})") from None


def targets_in(scores: pd.DataFrame) -> list[str]:
    """The target tasks present in a scores table, in the task registry's order (XNLI before MLQA)."""
    from .tasks import TASKS

    present = set(scores["target"])
    unknown = sorted(present - set(TASKS))
    if unknown:
        raise ValueError(f"scores name unknown target task(s) {unknown}; valid tasks: {', '.join(TASKS)}")
    return [t for t in TASKS if t in present]


def stands_for_table(models, meta: dict | None = None) -> pd.DataFrame:
    """model, family, what it stands for — printed next to results, straight from the model registry —
    and, given the results' ``meta.json``, the device that trained it (``devices_by_model``; a meta.json
    written before that field labels every model with its one ``device``)."""
    from .models import get_model

    by_model = (meta or {}).get("devices_by_model") or {}
    fallback = [(meta or {}).get("device", "unknown")]
    rows = [{"model": m, "family": get_model(m).family, "stands in for": get_model(m).stands_for,
             "trained on": "; ".join(by_model.get(m, fallback))} for m in models]
    columns = ["model", "family", "stands in for", "trained on"]
    return pd.DataFrame(rows, columns=columns if meta is not None else columns[:3])


def format_summary(summary: pd.DataFrame) -> pd.DataFrame:
    """The reader-facing columns of ``robustness.summary_table``, rounded, gains with their 95% CI.

    ``gain [95% CI]`` reads "+1.2 [+0.3, +2.0]*" (``*``: CI excludes 0); without per-example
    scores the interval is absent and the gain stands alone. ``±`` is the interval's half-width and
    ``MDE`` the gain detected with 80% power (both NaN without an interval).
    """
    def gain(row) -> str:
        if pd.isna(row["gain_avg"]):
            return "–"
        text = f"{row['gain_avg']:+.1f}"
        if pd.notna(row.get("gain_avg_lo")):
            text += f" [{row['gain_avg_lo']:+.1f}, {row['gain_avg_hi']:+.1f}]"
            sig = row.get("sig_avg")
            text += "*" if pd.notna(sig) and bool(sig) else ""
        return text

    out = pd.DataFrame({
        "model": summary["model"], "intermediate": summary["intermediate"],
        "target": summary["target"], "metric": summary["metric"],
        "en": summary["en"].round(1), "mean": summary["avg"].round(1),
        "gap": summary["gap"].round(1), "gain [95% CI]": summary.apply(gain, axis=1),
        "±": summary.get("gain_avg_hw", pd.Series(float("nan"), index=summary.index)).round(1),
        "MDE": summary.get("gain_avg_mde", pd.Series(float("nan"), index=summary.index)).round(1),
        "hurt": summary["neg_transfer_share"].map(lambda v: "–" if pd.isna(v) else f"{100 * v:.0f}%"),
        "worst": summary["worst_lang"].fillna("–"),
        "seeds": summary["n_seeds"]})
    return out


RESULTS_HINT = ("Run the study (<code>make study</code>, or <code>xlt run --profile cpu</code>) and rebuild the "
                "book (<code>xlt book</code>); this page is drawn from <code>results/</code> once it holds results.")


def no_results_html(what: str = NO_RESULTS, hint: str = RESULTS_HINT) -> str:
    """The plain notice a page shows instead of figures when its input is absent (no fake numbers)."""
    return f'<div class="no-results"><p><b>{what}</b></p><p>{hint}</p></div>'



def progress_html(res: "Results") -> str:
    """How much of the profile's grid the committed results cover, so a partial study says so."""
    meta = res.meta or {}
    name, done = meta.get("profile"), meta.get("nodes")
    try:
        from .grid import build_grid
        from .profiles import load_profile
        total = len(build_grid(load_profile(name))) if name else None
    except Exception:  # noqa: BLE001 - a renamed/removed profile must not break the book
        total = None
    if not done or not total or done >= total:
        return ""
    return (f'<div class="no-results"><p><b>Study in progress:</b> {done} of the {total} nodes of profile '
            f'<code>{name}</code> are finished and committed; every number below comes from those alone and will '
            f'change as the rest arrive (<code>make study</code> resumes it).</p></div>')


class BookBuildError(RuntimeError):
    """The book did not build cleanly; the message names the first warning and the log file."""


_resolve_results_dir = results_dir  # build_book's parameter shadows the name


@dataclass(frozen=True)
class Results:
    """The tidy result tables of one results directory (``None`` where a file is absent)."""

    dir: Path
    scores: pd.DataFrame
    per_example: pd.DataFrame | None      # scores' run keys joined on, as robustness expects
    intermediate: pd.DataFrame | None
    meta: dict | None
    runs: tuple[Path, ...]


def _require(df: pd.DataFrame, columns: tuple[str, ...], path: Path) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(f"{path} lacks column(s) {missing} (has {list(df.columns)}); the results format is "
                         f"{list(columns)} — regenerate it with the study's collect step.")


def load_results(directory: str | os.PathLike | None = None) -> Results | None:
    """Read ``scores.csv`` (+ ``per_example.csv.gz``, ``intermediate.csv``, ``meta.json``, ``runs/``).

    Returns None when ``scores.csv`` is absent: the pages then say :data:`NO_RESULTS`
    rather than inventing numbers. A present but malformed file is an error.
    """
    d = results_dir(directory)
    scores_path = d / "scores.csv"
    if not scores_path.is_file():
        return None
    scores = read_csv(scores_path)
    _require(scores, SCORES_COLUMNS, scores_path)
    per_example = None
    pe_path = d / "per_example.csv.gz"
    if pe_path.is_file():
        per_example = read_csv(pe_path)
        _require(per_example, PER_EXAMPLE_COLUMNS, pe_path)
        keys = scores[["run_id", *RUN_KEYS]].drop_duplicates("run_id")
        unknown = sorted(set(per_example["run_id"]) - set(keys["run_id"]))
        if unknown:
            raise ValueError(f"{pe_path}: run_id(s) {unknown[:5]} have no row in {scores_path}; "
                             f"the two files come from different collections — regenerate both.")
        per_example = per_example.merge(keys, on="run_id", how="left")
    inter_path = d / "intermediate.csv"
    intermediate = read_csv(inter_path) if inter_path.is_file() else None
    meta_path = d / "meta.json"
    meta = read_json(meta_path) if meta_path.is_file() else None
    if meta is not None and not isinstance(meta, dict):
        raise ResultsError(f"{meta_path}: expected a JSON object, got {type(meta).__name__}")
    runs = tuple(sorted((d / "runs").glob("*.ipynb")))
    return Results(d, scores, per_example, intermediate, meta, runs)


def plotly_js_path() -> Path:
    """The minified plotly.js bundled with the installed plotly package (same version as the Python API)."""
    import plotly

    path = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
    if not path.is_file():
        raise FileNotFoundError(f"plotly.min.js not found at {path}; reinstall plotly "
                                f"(pip install --force-reinstall plotly) — the book needs its local copy.")
    return path


def _titled_run_notebook(src: Path, dst: Path) -> None:
    """Copy a per-run notebook, adding an H1 with its run id when it has none (a toc entry needs a title)."""
    import nbformat

    try:
        nb = nbformat.read(src, as_version=4)
    except Exception as e:  # noqa: BLE001 - nbformat raises several types (NotJSONError, ValidationError, ...)
        raise ResultsError(f"{src}: cannot read it as a notebook ({type(e).__name__}: {str(e)[:200]}). Fix: restore "
                           f"the file (e.g. git checkout -- {src}) or delete it to leave that run out") from None
    first_md = next((c for c in nb.cells if c.cell_type == "markdown"), None)
    if first_md is None or not first_md.source.lstrip().startswith("# "):
        nb.cells.insert(0, nbformat.v4.new_markdown_cell(f"# Run `{src.stem}`\n\nExecuted notebook of this run, "
                                                         f"rendered as stored (not re-executed by the book)."))
    # papermill's own metadata and widget state are not needed to render and may reference CDNs
    nb.metadata.pop("widgets", None)
    # myst-nb highlights code by the notebook's language; a notebook saved without it warns (-W fails)
    nb.metadata.setdefault("kernelspec", {"display_name": "Python 3", "language": "python", "name": "python3"})
    nb.metadata.setdefault("language_info", {"name": "python"})
    nbformat.write(nb, dst)


def stage_sources(stage: Path, results: Path, *, repo: Path = REPO_ROOT) -> list[Path]:
    """Copy the book's sources into ``stage``, add plotly.js and the per-run notebooks; return the runs copied."""
    if stage.exists():
        shutil.rmtree(stage)
    stage.mkdir(parents=True)
    for name in ("_config.yml", "_toc.yml"):
        shutil.copy2(repo / name, stage / name)
    shutil.copytree(repo / "book", stage / "book",
                    ignore=shutil.ignore_patterns("runs", "plotly*.js", ".ipynb_checkpoints", "__pycache__"))
    static = stage / "book" / "_static"
    static.mkdir(exist_ok=True)
    shutil.copy2(plotly_js_path(), static / "plotly.min.js")
    runs_dst = stage / "book" / "runs"
    runs_dst.mkdir()
    copied = []
    for nb in sorted((results / "runs").glob("*.ipynb")):
        _titled_run_notebook(nb, runs_dst / nb.name)
        copied.append(runs_dst / nb.name)
    if copied:
        add_run_sections(stage / "_toc.yml", [f"book/runs/{p.stem}" for p in copied])
    return copied


def add_run_sections(toc_path: Path, files: list[str], *, index: str = RUNS_INDEX) -> None:
    """Hang ``files`` under the ``index`` chapter of a jupyter-book toc (a glob would warn when empty)."""
    import yaml

    toc = yaml.safe_load(toc_path.read_text())
    chapters = [c for part in toc.get("parts", []) for c in part.get("chapters", [])] + toc.get("chapters", [])
    entry = next((c for c in chapters if c.get("file") == index), None)
    if entry is None:
        raise ValueError(f"{toc_path} has no chapter 'file: {index}' to hang the per-run notebooks under; "
                         f"add it to the repository's _toc.yml (appendix part).")
    entry["sections"] = [{"file": f} for f in files]
    toc_path.write_text(yaml.safe_dump(toc, sort_keys=False))


def first_warning(log: str) -> str | None:
    """The first Sphinx/jupyter-book warning or error line of a build log, or None.

    Kernel-shutdown noise (:data:`_BENIGN`) is skipped: it says nothing about the pages.
    """
    for line in log.splitlines():
        if _WARNING.search(line) and not _BENIGN.search(line):
            return line.strip()
    return None


def build_book(results_dir: Path | None = None, out_dir: Path | None = None, strict: bool = True) -> Path:
    """Build the book offline into ``<out_dir>/_build/html`` and return that path.

    ``results_dir``: what the pages show (default ``$XLT_RESULTS_DIR`` or ``<repo>/results``);
    ``out_dir``: default the repository root. ``strict``: warnings are errors (``-W -n --keep-going``);
    a failure raises :class:`BookBuildError` naming the first warning and the full log's path.
    """
    results = _resolve_results_dir(results_dir)
    if results_dir is not None and not results.is_dir():
        raise ResultsError(f"results folder {results} does not exist. Fix: pass the folder that holds scores.csv "
                           f"(default: <repo>/results), or omit --results")
    load_results(results)   # a corrupt table fails here, naming its file, instead of deep in a page's build log
    out = Path(out_dir).resolve() if out_dir is not None else REPO_ROOT
    build = out / "_build"
    for stale in ("html", ".doctrees", "jupyter_execute"):
        shutil.rmtree(build / stale, ignore_errors=True)
    stage = build / "_source"
    stage_sources(stage, results)
    cmd = [sys.executable, "-c", "from jupyter_book.cli.main import main; main()", "build", str(stage),
           "--path-output", str(out), "--all", "--builder", "html"]
    if strict:
        cmd += ["-W", "-n", "--keep-going"]
    env = {**os.environ, "XLT_RESULTS_DIR": str(results), "PYDEVD_DISABLE_FILE_VALIDATION": "1",
           "HF_HUB_OFFLINE": os.environ.get("HF_HUB_OFFLINE", "1")}
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=stage, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    build.mkdir(parents=True, exist_ok=True)
    log_path = build / "book-build.log"
    log = _ANSI.sub("", proc.stdout + "\n" + proc.stderr)
    log_path.write_text(f"$ {' '.join(cmd)}\n# {seconds:.1f} s, exit {proc.returncode}\n{log}")
    warning = first_warning(log)
    html = build / "html"
    if proc.returncode != 0 or (strict and warning):
        raise BookBuildError(f"jupyter-book build failed (exit {proc.returncode}, {seconds:.0f} s); first warning: "
                             f"{warning or '(none; see the log)'}. Full log: {log_path}. Page sources were staged "
                             f"in {stage / 'book'}; execution errors also land in "
                             f"{build / 'html' / 'reports'} when jupyter-book writes them.")
    if not (html / "index.html").is_file():
        raise BookBuildError(f"jupyter-book exited 0 but {html / 'index.html'} is missing; see {log_path}.")
    return html
