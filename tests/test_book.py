"""The book builds offline, warning-free, from a results folder — and shows its figures.

The results folder here is SYNTHETIC (written by :func:`write_synthetic_results`, numbers drawn
from a seeded random generator with planted effects): it exercises every page and figure path,
it is not a study result. test_browser.py reuses it.
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

SYNTH_MODELS = {  # registry names (stands_for comes from models.MODELS); sizes are synthetic
    "e5-L3": ("encoder", 40_000_000), "e5-L6": ("encoder", 60_000_000),
    "e5ed-L3": ("encoder-decoder", 70_000_000), "e5ed-L6": ("encoder-decoder", 110_000_000),
}
SYNTH_TASKS = {"none": 0.0, "sst2": 4.0, "udpos": -3.0}      # planted gain (points) per intermediate task
SYNTH_TARGETS = {"xnli": (("accuracy",), ("en", "de", "sw")), "mlqa": (("f1", "em"), ("en", "de"))}
CDN = re.compile(r"cdn\.plot\.ly|https://cdn|googleapis|unpkg\.com|jsdelivr|cdnjs")


def write_synthetic_results(root: Path, *, n_examples: int = 30, seeds=(0, 1), with_runs: bool = True) -> Path:
    """Write a small, clearly synthetic results/ folder in the study's tidy format; return it."""
    rng = np.random.default_rng(1234)
    root.mkdir(parents=True, exist_ok=True)
    scores, per_example, inter = [], [], []
    for model, (family, size) in SYNTH_MODELS.items():
        for task, gain in SYNTH_TASKS.items():
            for seed in seeds:
                if task != "none":
                    inter.append({"run_id": f"p1-{model}-{task}-s{seed}", "model": model, "intermediate": task,
                                  "seed": seed, "metric": "accuracy", "score": 60 + 10 * rng.random(),
                                  "chance": 50.0 if task == "sst2" else 100 / 17})
                for target, (metrics, langs) in SYNTH_TARGETS.items():
                    run_id = f"p2-{model}-{task}-{target}-s{seed}"
                    for lang in langs:
                        p = np.clip(0.55 + (gain + (8 if lang == "en" else 0)) / 100 + size / 2e9, 0, 1)
                        correct = rng.random(n_examples) < p
                        for metric in metrics:
                            if metric == "accuracy":
                                values = correct.astype(float)
                            elif metric == "em":
                                values = 100.0 * correct
                            else:  # f1: partial credit where not exact
                                values = np.where(correct, 100.0, 100 * rng.random(n_examples) * 0.6)
                            scale = 100.0 if metric == "accuracy" else 1.0
                            scores.append({"run_id": run_id, "family": family, "model": model, "size": size,
                                           "intermediate": task, "target": target, "seed": seed, "lang": lang,
                                           "metric": metric, "score": float(values.mean() * scale),
                                           "n": n_examples})
                            per_example += [{"run_id": run_id, "lang": lang, "example_id": f"{target}-{lang}-{i:03d}",
                                             "metric": metric, "value": float(v)} for i, v in enumerate(values)]
    pd.DataFrame(scores).to_csv(root / "scores.csv", index=False)
    pd.DataFrame(per_example).to_csv(root / "per_example.csv.gz", index=False)
    pd.DataFrame(inter).to_csv(root / "intermediate.csv", index=False)
    (root / "meta.json").write_text(json.dumps({
        "profile": "synthetic-test", "device": "none (synthetic numbers written by tests/test_book.py)",
        "versions": {"xlt_helpers": "test"}, "wall_times_s": {"total": 0.0}}))
    if with_runs:
        (root / "runs").mkdir(exist_ok=True)
        run_id = scores[0]["run_id"]
        nb = nbformat.v4.new_notebook()
        nb.cells = [nbformat.v4.new_markdown_cell("## Synthetic run notebook (no H1: the book adds a title)"),
                    nbformat.v4.new_code_cell("print('synthetic run')", execution_count=1,
                                              outputs=[nbformat.v4.new_output("stream", text="synthetic run\n")])]
        nbformat.write(nb, root / "runs" / f"{run_id}.ipynb")
    return root


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> tuple[Path, Path]:
    tmp = tmp_path_factory.mktemp("book")
    results = write_synthetic_results(tmp / "results")
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
    html, _ = built
    assert (html / "_static" / "plotly.min.js").stat().st_size > 1_000_000
    results_page = (html / "book" / "results.html").read_text()
    n_divs = results_page.count('class="plotly-graph-div"')
    # 2 targets x (heatmap, gain-vs-size, gap-vs-size, difficulty) + per-language bars (1 + 2 families each)
    assert n_divs >= 2 * 4 + 2 * 3, n_divs
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
    assert book.NO_RESULTS not in page
    assert "synthetic-test" in page          # the profile name from meta.json
    # the summary table's gain for one planted-positive cell matches robustness on the same data
    res = book.load_results(results)
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
        assert book.NO_RESULTS in (html / "book" / f"{page}.html").read_text(), page
    assert "plotly-graph-div" not in (html / "book" / "results.html").read_text()


# ------------------------------------------------------------------ fast unit tests

def test_load_results_joins_run_keys_and_rejects_foreign_runs(tmp_path):
    results = write_synthetic_results(tmp_path / "r", n_examples=3, seeds=(0,), with_runs=False)
    res = book.load_results(results)
    assert {"family", "model", "intermediate", "target", "seed"} <= set(res.per_example.columns)
    assert res.per_example["model"].notna().all() and res.runs == ()
    pe = pd.read_csv(results / "per_example.csv.gz")
    pe.loc[0, "run_id"] = "p2-ghost-run"
    pe.to_csv(results / "per_example.csv.gz", index=False)
    with pytest.raises(ValueError, match="p2-ghost-run"):
        book.load_results(results)


def test_load_results_missing_and_malformed(tmp_path):
    assert book.load_results(tmp_path) is None
    pd.DataFrame({"run_id": ["x"], "score": [1.0]}).to_csv(tmp_path / "scores.csv", index=False)
    with pytest.raises(ValueError, match=r"lacks column\(s\).*family"):
        book.load_results(tmp_path)


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


def test_targets_in_registry_order():
    assert book.targets_in(pd.DataFrame({"target": ["mlqa", "xnli", "mlqa"]})) == ["xnli", "mlqa"]
    with pytest.raises(ValueError, match="nope"):
        book.targets_in(pd.DataFrame({"target": ["nope"]}))


def test_primary_metric_comes_from_the_task_registry():
    assert book.primary_metric("xnli") == "accuracy"
    assert book.primary_metric("mlqa") == "f1"
    with pytest.raises(KeyError, match="valid tasks"):
        book.primary_metric("nope")


def test_progress_note_says_how_much_of_the_grid_is_committed():
    import pandas as pd
    from xlt_helpers.book import Results, progress_html
    res = lambda meta: Results(Path("."), pd.DataFrame(), None, None, meta, ())  # noqa: E731
    assert "3 of the 13 nodes" in progress_html(res({"profile": "smoke", "nodes": 3}))
    assert progress_html(res({"profile": "smoke", "nodes": 13})) == "", "a finished grid needs no notice"
    assert progress_html(res({"profile": "no-such-profile", "nodes": 3})) == ""


def test_stands_for_table_labels_each_model_with_its_device():
    meta = {"device": "CPU: x86_64, 2 threads", "devices_by_model": {"e5-L3": ["GPU: NVIDIA H200"]}}
    t = book.stands_for_table(["e5-L3", "e5-L6"], meta)
    assert list(t["trained on"]) == ["GPU: NVIDIA H200", "CPU: x86_64, 2 threads"]   # older meta: its one device
    assert "trained on" not in book.stands_for_table(["e5-L3"]).columns


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
