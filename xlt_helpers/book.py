"""Build the study's Jupyter Book offline (the pages read their results through :mod:`xlt_helpers.results`).

Why a function and not just ``jupyter-book build .``:

* the book must work without network: plotly.js is copied from the installed
  ``plotly`` package into ``book/_static/`` (pages embed figures with
  ``include_plotlyjs=False``, see :func:`xlt_helpers.figures.show`);
* the per-run appendix is assembled from the ``results/runs/*.ipynb`` of the
  runs the tables hold (each gets a title cell so it has a heading in the
  table of contents);
* warnings are errors (``-W -n --keep-going``), and a failure names the first
  warning instead of ending in a wall of Sphinx output;
* the build runs on a *staged copy* of ``_config.yml``, ``_toc.yml`` and
  ``book/`` under ``<out_dir>/_build/_source``, so a build (a test's, say) never
  writes generated files into the checkout and two builds cannot trample each
  other's ``book/runs``;
* one source per page: a page that is also a phase notebook (:data:`NOTEBOOK_PAGES`)
  is written once, in ``notebooks/``, and staged into ``book/`` as it is.

The analysis pages find their results through ``$XLT_RESULTS_DIR`` (set here
for the build) via :func:`xlt_helpers.results.load_results`.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

from .paths import repo_root
from .results import ResultsError, load_results
from .results import results_dir as _resolve_results_dir  # build_book's parameter shadows the name

REPO_ROOT = repo_root()
RUNS_INDEX = "book/runs_index"
# Pages whose only source is a papermill notebook (its parameters cell tagged remove-cell): staged file <- notebook.
NOTEBOOK_PAGES: dict[str, str] = {"book/results.ipynb": "notebooks/04_analysis.ipynb"}
_WARNING = re.compile(r"(WARNING|ERROR|CRITICAL|SEVERE):")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
# Logged by jupyter_client's tornado loop when a kernel's ZMQ socket is closed while a late message
# is still queued (a shutdown race seen on slow CI machines). It comes after the page executed; a real
# execution failure is reported separately by jupyter-book ("Executing notebook failed"), so this
# line alone is not a warning about the book.
_BENIGN = re.compile(r"ERROR:tornado\.general:Uncaught exception in ZMQStream callback")


class BookBuildError(RuntimeError):
    """The book did not build cleanly; the message names the first warning and the log file."""


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
    """Copy the book's sources (``book/`` and :data:`NOTEBOOK_PAGES`) into ``stage``, add plotly.js and the
    per-run notebooks; return the runs copied.

    The per-run notebooks are those of the runs the tables hold (:attr:`xlt_helpers.results.Results.runs`),
    not every notebook in ``results/runs``: a node of an older version of the profile is kept in the
    store but is not part of the study the book shows."""
    if stage.exists():
        shutil.rmtree(stage)
    stage.mkdir(parents=True)
    for name in ("_config.yml", "_toc.yml"):
        shutil.copy2(repo / name, stage / name)
    shutil.copytree(repo / "book", stage / "book",
                    ignore=shutil.ignore_patterns("runs", "plotly*.js", ".ipynb_checkpoints", "__pycache__"))
    for page, notebook in NOTEBOOK_PAGES.items():
        shutil.copy2(repo / notebook, stage / page)
    static = stage / "book" / "_static"
    static.mkdir(exist_ok=True)
    shutil.copy2(plotly_js_path(), static / "plotly.min.js")
    runs_dst = stage / "book" / "runs"
    runs_dst.mkdir()
    copied = []
    res = load_results(results)
    for nb in res.runs if res is not None else ():
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
