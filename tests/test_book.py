"""The book builds offline, warning-free, from a results folder — and shows its figures.

The results folder here is SYNTHETIC (written by ``conftest.write_synthetic_results``, numbers
drawn from a seeded random generator with planted effects): it exercises every page and figure
path, it is not a study result.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import nbformat
import numpy as np
import pandas as pd
import pytest

from xlt_helpers import book
from xlt_helpers.analysis import NO_RESULTS
from xlt_helpers.results import load_results

CDN = re.compile(r"cdn\.plot\.ly|https://cdn|googleapis|unpkg\.com|jsdelivr|cdnjs")


@pytest.fixture(scope="module")
def built(tmp_path_factory, synthetic_results) -> tuple[Path, Path]:
    tmp = tmp_path_factory.mktemp("book")
    results = synthetic_results(tmp / "results")
    html = book.build_book(results_dir=results, out_dir=tmp / "out")
    return html, results


def _pages(html: Path) -> list[Path]:
    return sorted(p for p in html.rglob("*.html") if "_static" not in p.parts)


@pytest.mark.slow  # a full book build (~35 s on 2 cores)
def test_build_is_clean_and_returns_html_dir(built):
    html, _ = built
    assert html.name == "html" and (html / "index.html").is_file()
    log = (html.parent / "book-build.log").read_text()
    assert book.first_warning(log) is None, book.first_warning(log)
    for page in ("intro", "methods", "published", "results", "conclusion", "runs_index", "reproducibility"):
        assert (html / "book" / f"{page}.html").is_file(), page


@pytest.mark.slow  # a full book build (~35 s on 2 cores)
def test_every_figure_page_loads_the_local_plotly_and_draws_divs(built):
    html, results = built
    assert (html / "_static" / "plotly.min.js").stat().st_size > 1_000_000
    results_page = (html / "book" / "results.html").read_text()
    # each figure of each figure section on these results, and nothing else
    from xlt_helpers import analysis
    titles = analysis.figure_titles(analysis.analyse(load_results(results), n_boot=50))
    for title in titles:
        assert json.dumps(title)[1:-1] in results_page, title
    assert results_page.count('class="plotly-graph-div"') == len(titles) >= 2 * 4 + 2 * 3
    for page in _pages(html):
        text = page.read_text()
        if "plotly-graph-div" in text:
            assert re.search(r'<script src="(\.\./)*_static/plotly\.min\.js', text), page
            assert "Plotly.newPlot" in text


@pytest.mark.slow  # a full book build (~35 s on 2 cores)
def test_full_scale_page_draws_each_of_its_figures(built):
    """The published page is the full-scale chapter: each of its figures, per target where it has one."""
    html, _ = built
    page = (html / "book" / "published.html").read_text()
    titles = ["XNLI: transfer gap vs non-embedding parameters", "MLQA: transfer gap vs non-embedding parameters",
              "XNLI: gap to English per language", "MLQA: gap to English per language",
              "XNLI: gap closed from mt5-small to mt5-xxl vs pre-training share",
              "MLQA: gap closed from mt5-small to mt5-xxl vs pre-training share",
              "X-STILTs gain over the baseline, without MLM", "X-STILTs gain over the baseline, with MLM co-training"]
    for title in titles:
        assert title in page, title
    assert page.count('class="plotly-graph-div"') == len(titles)
    assert "total in the hover" in page and "Xue et al. 2021" in page and "Phang et al. 2020" in page


@pytest.mark.slow  # a full book build (~35 s on 2 cores)
def test_no_remote_asset_references(built):
    """Nothing the browser loads points at a CDN or font service.

    plotly.min.js itself is excluded: it carries URLs for map tiles / topojson that only geo
    and map traces fetch (none here); test_browser.py checks that no request leaves file://.
    """
    html, _ = built
    offenders = []
    for f in html.rglob("*"):
        if f.suffix not in {".html", ".js", ".css"} or f.name in {"searchindex.js", "plotly.min.js"}:
            continue
        for m in CDN.finditer(f.read_text(errors="replace")):
            offenders.append(f"{f.relative_to(html)}: {m.group(0)}")
    assert not offenders, offenders


@pytest.mark.slow  # a full book build (~35 s on 2 cores)
def test_results_pages_show_synthetic_numbers_not_the_placeholder(built):
    html, results = built
    page = (html / "book" / "results.html").read_text()
    assert NO_RESULTS not in page
    assert "synthetic-test" in page          # the profile name from meta.json
    # the page is the analysis notebook: its notebook-only cells (parameters, In brief) stay off the page
    assert "runs_dir" not in page and "In brief" not in page
    # the summary table's gain for one planted-positive cell matches robustness on the same data
    res = load_results(results)
    from xlt_helpers import robustness
    s = robustness.summary_table(res.scores, res.per_example)
    row = s[(s.model == "e5-L6") & (s.intermediate == "sst2") & (s.target == "xnli")].iloc[0]
    assert f"{row['gain_avg']:+.1f} [{row['gain_avg_lo']:+.1f}, {row['gain_avg_hi']:+.1f}]" in page


@pytest.mark.slow  # a full book build (~35 s on 2 cores)
def test_run_notebook_appendix(built):
    html, results = built
    run = next((results / "runs").glob("*.ipynb")).stem
    page = html / "book" / "runs" / f"{run}.html"
    assert page.is_file()
    text = page.read_text()
    assert f"Run <code class=\"docutils literal notranslate\"><span class=\"pre\">{run}</span></code>" in text \
        or run in text
    assert "synthetic run" in text
    assert f'href="runs/{run}.html"' in (html / "book" / "runs_index.html").read_text()


@pytest.mark.slow  # a full book build (~35 s on 2 cores)
def test_empty_results_say_so(tmp_path):
    """No results: every analysis page says so plainly (and the build stays warning-free).
    (A results folder that does not exist at all is an error: see the tests at the end.)"""
    (tmp_path / "no-results").mkdir()
    html = book.build_book(results_dir=tmp_path / "no-results", out_dir=tmp_path / "out")
    for page in ("results", "conclusion", "reproducibility"):
        assert NO_RESULTS in (html / "book" / f"{page}.html").read_text(), page
    assert "plotly-graph-div" not in (html / "book" / "results.html").read_text()


# ------------------------------------------------------------------ fast unit tests

def test_a_notebook_page_has_one_source_staged_as_is(tmp_path, synthetic_results):
    """One source per page: the results page is notebooks/04_analysis.ipynb, copied byte for byte into the
    staged book, and book/ holds no second copy to drift from it."""
    assert book.NOTEBOOK_PAGES == {"book/results.ipynb": "notebooks/04_analysis.ipynb"}
    stage = tmp_path / "stage"
    book.stage_sources(stage, synthetic_results(tmp_path / "results", n_examples=4, with_runs=False))
    for page, notebook in book.NOTEBOOK_PAGES.items():
        stem = Path(page).with_suffix("")
        assert not list(book.REPO_ROOT.glob(f"{stem}.*")), f"a hand-kept copy of {notebook} in book/"
        assert (stage / page).read_bytes() == (book.REPO_ROOT / notebook).read_bytes()
        assert f"file: {stem}" in (book.REPO_ROOT / "_toc.yml").read_text()


def test_first_warning_finds_the_first_one():
    log = "reading sources... [ 50%] intro\n/x/book/a.md:3: WARNING: bad ref\n/x/b.md: ERROR: worse\n"
    assert book.first_warning(log) == "/x/book/a.md:3: WARNING: bad ref"
    assert book.first_warning("build succeeded.\n") is None


def test_first_warning_skips_kernel_shutdown_noise_but_not_what_follows():
    log = ("ERROR:tornado.general:Uncaught exception in ZMQStream callback\n"
           "zmq.error.ZMQError: Socket operation on non-socket\n"
           "/x/book/results.md: WARNING: Executing notebook failed: CellExecutionError\n")
    assert book.first_warning(log) == "/x/book/results.md: WARNING: Executing notebook failed: CellExecutionError"
    assert book.first_warning(log.split("/x/")[0]) is None


def test_add_run_sections(tmp_path):
    toc = tmp_path / "_toc.yml"
    toc.write_text((book.REPO_ROOT / "_toc.yml").read_text())
    book.add_run_sections(toc, ["book/runs/p2-a", "book/runs/p2-b"])
    import yaml
    chapters = [c for part in yaml.safe_load(toc.read_text())["parts"] for c in part["chapters"]]
    entry = next(c for c in chapters if c["file"] == book.RUNS_INDEX)
    assert entry["sections"] == [{"file": "book/runs/p2-a"}, {"file": "book/runs/p2-b"}]
    toc.write_text("format: jb-book\nroot: intro\n")
    with pytest.raises(ValueError, match="runs_index"):
        book.add_run_sections(toc, ["book/runs/p2-a"])


# ------------------------------------------------------------------ xlt book on a missing or corrupt results folder
def test_book_on_a_missing_results_folder_is_an_error(tmp_path, capsys):
    from xlt_helpers.cli import main as xlt
    assert xlt(["book", "--results", str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err
    assert err == (f"xlt book: results folder {tmp_path / 'nope'} does not exist. Fix: pass the folder that holds "
                   f"scores.csv (default: <repo>/results), or omit --results\n")


@pytest.mark.parametrize("name, content, cause", [
    ("scores.csv", b"\x1f\x8b\x08 not a table", "cannot read it as a table (UnicodeDecodeError"),
    ("meta.json", b'{"profile": "cpu",', "cannot read it as JSON (JSONDecodeError"),
    ("per_example.csv.gz", b"\x1f\x8b\x08\x00 cut", "cannot read it as a table ("),
])
def test_book_on_corrupt_results_is_one_line_naming_the_file(tmp_path, capsys, name, content, cause):
    import shutil

    from xlt_helpers.cli import main as xlt
    res = tmp_path / "results"
    res.mkdir()
    for f in ("scores.csv", "per_example.csv.gz", "intermediate.csv", "meta.json"):
        shutil.copy2(book.REPO_ROOT / "results" / f, res / f)
    (res / name).write_bytes(content)
    assert xlt(["book", "--results", str(res)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"xlt book: {res / name}: {cause}") and err.count("\n") == 1, err
    assert not (tmp_path / "_build").exists()
