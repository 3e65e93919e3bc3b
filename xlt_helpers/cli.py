"""The ``xlt`` command: run (resume) a profile's grid, show its status, build the book, clean up.

Heavy libraries (torch, papermill, ray, the book builder) are imported only on
the paths that need them: ``xlt run`` on a finished grid and ``xlt status``
answer in about a second.
"""
from __future__ import annotations

import argparse
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

from .grid import Node, build_grid, dependents, select
from .results import ResultsError
from .paths import pin_data_env
from .profiles import ProfileError, available_profiles, configs_dir, load_profile
from .tasks import NONE_TASK
from .runs import (CHECKPOINT_DIR, DONE_FILE, FAILED_FILE, NODE_FILE, RunsFolderError, RunsLocked,
                   first_error_line, lock_holder, node_dir, node_state, read_marker, runs_dir, runs_lock,
                   verify_node)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="xlt", description=(
        "Zero-shot cross-lingual transfer study: run a profile's grid of notebooks (resumable), "
        "show its status, build the book."))
    sub = p.add_subparsers(dest="command", required=True, metavar="{run,status,plan,results,book,clean,transfer,bench}")

    def profile_args(sp: argparse.ArgumentParser, required: bool) -> None:
        sp.add_argument("--profile", required=required,
                        help="profile name in configs/ (e.g. smoke, cpu, full) or a path to a YAML file")
        sp.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a profile field by dotted path, value as YAML "
                             "(e.g. --set seeds=[0] --set target.xnli.train_n=500); repeatable")
        sp.add_argument("--runs-dir", default=None,
                        help="where node directories live (default: $XLT_RUNS_DIR or <repo>/runs)")
        sp.add_argument("--notebooks-dir", default=None,
                        help="folder holding 01_intermediate.ipynb and 02_target.ipynb (default: <repo>/notebooks)")

    r = sub.add_parser("run", help="run every node of the profile that is not done yet (resumes)")
    profile_args(r, required=True)
    r.add_argument("--executor", choices=("local", "ray"), default="local",
                   help="local: worker processes on this machine; ray: one Ray task per node")
    r.add_argument("--workers", type=int, default=1,
                   help="nodes at once (local) / CPUs of the local Ray instance (ray); default 1")
    r.add_argument("--results-dir", default=None,
                   help="committed results store for profiles with export_results (default: $XLT_RESULTS_DIR or <repo>/results)")
    r.add_argument("--address", default=None, help="Ray cluster address (ray executor; default: start a local one)")
    r.add_argument("--allow-version-change", action="store_true",
                   help="run even though the committed results were made with another torch/transformers "
                        "major.minor (every node then trains again under the installed versions)")
    r.add_argument("--only", action="append", default=[], metavar="FILTER",
                   help="run only nodes matching FILTER (and their dependencies): a substring or glob of the "
                        "node id, or key=value on its params (e.g. model=e5-L3); repeat to AND filters")

    r.add_argument("--verify", action="store_true",
                   help="check the sha256 of every finished node's files (sizes are always checked); a node "
                        "that does not verify is moved aside and runs again")

    s = sub.add_parser("status", help="done / failed / pending nodes of a profile, per phase")
    profile_args(s, required=True)
    s.add_argument("--verify", action="store_true",
                   help="also check the sha256 of every finished node's files against DONE.json")

    rs = sub.add_parser("results", help="verify the committed results store (every node, sha256 included)")
    rs.add_argument("--results-dir", default=None, help="default: $XLT_RESULTS_DIR or <repo>/results")
    rs.add_argument("--record-hashes", action="store_true",
                    help="add size and sha256 records to committed DONE.json files that lack them "
                         "(nodes exported before DONE.json recorded files); run ids do not change")

    pl = sub.add_parser("plan", help="per node setup: parameters, estimated peak GPU memory, steps, whether it "
                                     "fits (xlt_helpers/plan.py; estimates, no GPU needed)")
    pl.add_argument("--profile", required=True, help="profile name in configs/ or a path to a YAML file")
    pl.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a profile field")
    pl.add_argument("--gpu-mem", type=float, default=80.0, help="GiB of memory of one GPU (default 80)")

    b = sub.add_parser("book", help="build the Jupyter book from results/")
    b.add_argument("--results", default=None, help="results folder (default: <repo>/results)")

    c = sub.add_parser("clean", help="delete unfinished node directories that xlt run made (and more with the flags); "
                                     "never a folder without node.json (xlt transfer output, your own files)")
    profile_args(c, required=False)
    c.add_argument("--failed", action="store_true", help="also delete failed nodes' directories")
    c.add_argument("--prune-checkpoints", action="store_true",
                   help="delete the checkpoint of phase-1 nodes whose dependents are all done")
    c.add_argument("--dry-run", action="store_true", help="list what would be deleted, and why; delete nothing")
    c.add_argument("--yes", action="store_true", help="do not ask before deleting (asked only at a terminal)")
    t = sub.add_parser("transfer", help="one model through the three phases in this process (no grid, no papermill) "
                                        "and a per-language table; e.g. the e5-L3 SST-2 -> XNLI check")
    t.add_argument("--model", default="e5-L3", help="a name in xlt_helpers.models (default e5-L3)")
    t.add_argument("--intermediate", default="sst2", help=f'intermediate task, or "{NONE_TASK}" (default sst2)')
    t.add_argument("--target", default="xnli", help="target task (default xnli)")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--intermediate-n", type=int, default=2000, help="phase-1 training examples (default 2000)")
    t.add_argument("--train-n", type=int, default=2000, help="phase-2 English training examples (default 2000)")
    t.add_argument("--eval-n", type=int, default=400, help="evaluation examples per language (default 400)")
    t.add_argument("--epochs", type=float, default=2.0, help="phase-2 epochs (phase 1: 1 epoch)")
    t.add_argument("--learning-rate", type=float, default=None, help="default: the model's (2e-4 for e5 ladders)")
    t.add_argument("--batch-size", type=int, default=32)
    t.add_argument("--max-length", type=int, default=128)
    t.add_argument("--out", default=None, help="output folder (default <runs dir>/transfer-<model>-<inter>-<target>-s<seed>)")
    be = sub.add_parser("bench", help="the benchmark suite of issue 6 (training/eval throughput, hardware "
                                      "efficiency, papermill overhead, scaling); writes bench/results.md")
    be.add_argument("--fast", action="store_true",
                    help="tiny model, a few steps (seconds; CI); writes to <cache>/bench-fast unless --out")
    be.add_argument("--out", default=None, help="output folder (default: <repo>/bench, or <cache>/bench-fast with --fast)")
    be.add_argument("--only", action="append", default=[],
                    choices=("train", "eval", "levers", "ceiling", "bf16", "evalprec", "evalcost", "orchestration", "scaling"),
                    help="run only these measurements (repeatable; eval implies train; levers = fp32 training levers, "
                         "ceiling = the efficiency the model's GEMM shapes allow, bf16 = bf16 training, "
                         "evalprec = evaluation precisions, evalcost = cost of full evaluation sets)")
    return p


def cmd_bench(args: argparse.Namespace) -> int:
    """Run the benchmark suite and print where results.md went."""
    from .bench import run_bench
    path = run_bench(fast=args.fast, out_dir=args.out, sections=tuple(args.only) or None)
    print(f"bench results: {path}")
    return 0


def check_transfer_args(args: argparse.Namespace) -> None:
    """Raise ProfileError (one line: the flag, the bad value, the valid ones) before anything loads.

    The names and number rules are the profiles' own (one place): a transfer run is a one-node profile."""
    from .models import MODELS
    from .hparams import ParameterError, check_hparam, check_int
    from .profiles import _COUNT, _intermediate_tasks, _target_tasks, check_max_length

    for flag, value, valid in (("--model", args.model, sorted(MODELS)),
                               ("--intermediate", args.intermediate, _intermediate_tasks()),
                               ("--target", args.target, _target_tasks())):
        if value not in valid:
            raise ProfileError(f"{flag} {value!r} is not one of the valid values: {', '.join(valid)}")
    for flag, key in (("--intermediate-n", "train_n"), ("--train-n", "train_n"), ("--eval-n", "eval_n"),
                      ("--epochs", "epochs"), ("--learning-rate", "learning_rate"),
                      ("--batch-size", "batch_size"), ("--max-length", "max_length")):
        value = getattr(args, flag[2:].replace("-", "_"))
        if value is not None or key != "learning_rate":
            try:
                _COUNT(value, flag) if key.endswith("_n") else check_hparam(key, value, flag)
            except ParameterError as e:   # "(or null for ...)" is a profile's way out, not a flag's
                raise ProfileError(str(e).split(" (or null")[0]) from None
    try:
        check_int(0)(args.seed, "--seed")
    except ParameterError as e:
        raise ProfileError(str(e)) from None
    check_max_length(args.model, args.max_length, "--max-length")


def cmd_transfer(args: argparse.Namespace) -> int:
    """Both phases in-process, then print English, the others' mean and every language."""
    check_transfer_args(args)
    from .pipeline import run_intermediate, run_target
    out = Path(args.out) if args.out else runs_dir(None) / f"transfer-{args.model}-{args.intermediate}-{args.target}-s{args.seed}"
    hp = dict(batch_size=args.batch_size, max_length=args.max_length, learning_rate=args.learning_rate, warmup_ratio=0.1)
    init = ""
    if args.intermediate != NONE_TASK:
        m1 = run_intermediate(model=args.model, task=args.intermediate, seed=args.seed, out_dir=str(out / "intermediate"),
                              train_n=args.intermediate_n, dev_n=400, epochs=1, **hp)
        print(f"phase 1 {args.intermediate}: English dev {m1['metric']} {m1['dev'][m1['metric']]:.1f} "
              f"(chance {m1['chance']:.1f}), {m1['train']['tokens_per_s']:.0f} tokens/s")
        init = str(out / "intermediate" / CHECKPOINT_DIR)
    m2 = run_target(model=args.model, target=args.target, intermediate=args.intermediate, init_from=init, seed=args.seed,
                    out_dir=str(out / "target"), train_n=args.train_n, eval_n=args.eval_n, epochs=args.epochs, **hp)
    metric = next(k for k in next(iter(m2["scores"].values())) if k != "n")
    scores = {lang: v[metric] for lang, v in m2["scores"].items()}
    others = [v for lang, v in scores.items() if lang != "en"]
    print(f"\nphase 2 {args.target} ({metric}, {args.eval_n} examples per language), model {args.model}, "
          f"intermediate {args.intermediate}, seed {args.seed}")
    for lang, v in sorted(scores.items(), key=lambda kv: (kv[0] != "en", kv[0])):
        print(f"  {lang:>3}  {v:6.2f}")
    if others:
        print(f"  English {scores.get('en', float('nan')):.2f}; mean of the {len(others)} other languages "
              f"{sum(others) / len(others):.2f}")
    print(f"train {m2['train']['train_wall_s']:.0f} s at {m2['train']['tokens_per_s']:.0f} tokens/s, "
          f"eval {m2['eval_wall_s']:.0f} s, peak RSS {m2['peak_rss_mb']:.0f} MB; results in {out}")
    return 0


def _nodes(args: argparse.Namespace) -> list[Node]:
    profile = load_profile(args.profile, args.set)
    return build_grid(profile, args.notebooks_dir)


# ------------------------------------------------------------------ run
def cmd_run(args: argparse.Namespace) -> int:
    if args.workers < 1:
        print(f"xlt run: --workers must be >= 1, got {args.workers}", file=sys.stderr)
        return 2
    profile = load_profile(args.profile, args.set)
    grid = build_grid(profile, args.notebooks_dir)
    nodes = select(grid, args.only)
    if not nodes:
        print(f"xlt run: --only {' '.join(args.only)} matched no node of profile {profile.name}", file=sys.stderr)
        return 2
    runs = runs_dir(args.runs_dir)
    from .executors import run_grid
    on_done = None
    with runs_lock(runs):
        if profile.export_results:
            from . import results as store
            res = store.results_dir(args.results_dir)
            refused: list[tuple[str, str]] = []
            restored = store.restore(res, runs, refused)
            if restored:
                print(f"restored {len(restored)} finished nodes from {res / 'nodes'}")
            in_grid = {n.id for n in grid}
            for rid, why in refused:
                if node_state(runs, rid) == "done" and verify_node(node_dir(runs, rid), hashes=True) is None:
                    store.export(runs, res, [rid])   # the runs folder holds a good copy: it replaces the bad one
                    print(f"replaced {res / 'nodes' / rid} ({why}) with the verified copy in {runs / rid}")
                    continue
                fate = "it trains again and its export replaces it" if rid in in_grid else "not in this grid"
                print(f"refused {res / 'nodes' / rid}: {why} ({fate}; or restore the committed copy: "
                      f"git checkout -- {res / 'nodes' / rid})", file=sys.stderr)
            unreplaced = {rid for rid, _ in refused if rid in in_grid and node_state(runs, rid) != "done"}
            from .grid import framework_versions
            mismatch = store.version_mismatch(res, profile.name, framework_versions())
            pending = [n.id for n in nodes if node_state(runs, n.id) != "done"]
            if mismatch and pending and not args.allow_version_change:
                diff = ", ".join(f"{k} {there} in {res / 'meta.json'} but {here} installed"
                                 for k, (there, here) in mismatch.items())
                print(f"xlt run: the committed {profile.name} results were made with other framework versions "
                      f"({diff}). Run ids hash these versions, so {len(pending)} of {len(nodes)} nodes would "
                      "train again and replace the committed tables. Install the pinned versions "
                      "(`make setup`, which applies constraints.txt) to reuse them, or pass "
                      "--allow-version-change to re-run the study under the installed versions.", file=sys.stderr)
                return 2

            grid_ids = [n.id for n in grid]   # tables cover the whole grid, not just --only

            def on_done(nid: str) -> None:
                if store.export(runs, res, [nid]):
                    unreplaced.discard(nid)
                    if not unreplaced:   # tables would read the refused copies: wait until all are replaced
                        store.write_tables(res, profile.name, grid_ids)
        summary = run_grid(nodes, runs, executor=args.executor, workers=args.workers, address=args.address,
                           resources=profile.resources, on_done=on_done, verify_hashes=args.verify)
    if summary.stopped:
        print(f"xlt run: stopped: {summary.stopped}", file=sys.stderr)
    if not (summary.done or summary.failed or summary.skipped or summary.stopped):
        print(f"all {len(nodes)} nodes of {profile.name} already done in {runs} (nothing to run)")
        return 0
    print(f"{profile.name}: {len(summary.done)} done, {len(summary.failed)} failed, "
          f"{len(summary.skipped)} skipped, {len(summary.already_done)} already done "
          f"in {summary.wall_s:.1f} s ({runs})")
    for nid in summary.failed:
        print(f"  FAILED {nid}: {first_error_line(runs, nid)}  (see {node_dir(runs, nid) / FAILED_FILE})")
    return 0 if summary.ok else 1


# ------------------------------------------------------------------ status
def node_states(nodes: Sequence[Node], runs: Path, hashes: bool = False,
                problems: dict[str, str] | None = None) -> dict[str, str]:
    """done / bad (has DONE.json but does not verify: :func:`runs.verify_node`, sha256 too with
    ``hashes``; the cause goes into ``problems``) / failed / skipped (a dependency failed) / running
    (a live run holds the lock and the directory exists) / pending."""
    live = lock_holder(runs) is not None
    out: dict[str, str] = {}
    for n in nodes:  # grid order: dependencies come first
        st = node_state(runs, n.id)
        if st == "done":
            why = verify_node(node_dir(runs, n.id), hashes=hashes)
            if why is not None:
                st = "bad"
                if problems is not None:
                    problems[n.id] = why
        if st == "pending":
            if any(out.get(d) in ("failed", "skipped") for d in n.deps):
                st = "skipped"
            elif live and (node_dir(runs, n.id) / NODE_FILE).is_file():
                st = "running"
        out[n.id] = st
    return out


def cmd_status(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table
    profile = load_profile(args.profile, args.set)
    nodes = build_grid(profile, args.notebooks_dir)
    runs = runs_dir(args.runs_dir)
    problems: dict[str, str] = {}
    states = node_states(nodes, runs, hashes=args.verify, problems=problems)
    cols = ("done", "bad", "failed", "skipped", "running", "pending")
    table = Table(title=f"profile {profile.name}: {len(nodes)} nodes in {runs}")
    table.add_column("phase")
    for c in (*cols, "total"):
        table.add_column(c, justify="right")
    for phase in ("intermediate", "target"):
        ids = [n.id for n in nodes if n.phase == phase]
        table.add_row(phase, *(str(sum(states[i] == c for i in ids)) for c in cols), str(len(ids)))
    table.add_row("all", *(str(sum(s == c for s in states.values())) for c in cols), str(len(nodes)))
    console = Console(width=None if sys.stdout.isatty() else 160)
    console.print(table)
    if problems:
        console.print(f"finished nodes that do not verify (`xlt run{' --verify' if args.verify else ''}` moves "
                      "each aside as <id>.bad-<time> and runs it again):")
        for nid, why in problems.items():
            console.print(f"  {nid}: {why}", markup=False, highlight=False)
    failed = [n.id for n in nodes if states[n.id] == "failed"]
    if failed:
        console.print("failed nodes:")
        for nid in failed:
            console.print(f"  {nid}: {first_error_line(runs, nid)}", markup=False, highlight=False)
    return 0


# ------------------------------------------------------------------ plan
def cmd_plan(args: argparse.Namespace) -> int:
    """Print the GPU plan; exit 0 even when setups do not fit (the table says which, and the fix)."""
    from .plan import print_plan
    print_plan(args.profile, args.set, args.gpu_mem)
    return 0


# ------------------------------------------------------------------ results
def cmd_results(args: argparse.Namespace) -> int:
    """Verify every committed node; with --record-hashes, add file records to legacy DONE.json files."""
    from . import results as store
    res = store.results_dir(args.results_dir)
    if not (res / "nodes").is_dir():
        print(f"xlt results: {res / 'nodes'} does not exist; pass --results-dir", file=sys.stderr)
        return 2
    if args.record_hashes:
        updated = store.record_hashes(res)
        print(f"recorded file sizes and sha256 in {len(updated)} DONE.json files of {res / 'nodes'}")
    good, bad = store.verify_store(res)
    for rid, why in bad:
        print(f"  BAD {res / 'nodes' / rid}: {why}")
    print(f"{len(good)} committed nodes verify, {len(bad)} do not ({res / 'nodes'})")
    return 1 if bad else 0


# ------------------------------------------------------------------ book
def cmd_book(args: argparse.Namespace) -> int:
    from .book import BookBuildError, build_book  # imported only here (it pulls in jupyter-book)
    try:
        out = build_book(results_dir=Path(args.results) if args.results else None)
    except (BookBuildError, ValueError) as e:   # ResultsError, a table lacking columns: named in the message
        print(f"xlt book: {e}", file=sys.stderr)
        return 2
    print(f"book built: {out}")
    return 0


# ------------------------------------------------------------------ clean
def _disk_nodes(runs: Path) -> list[Node]:
    """The node folders ``xlt run`` made in ``runs``: a ``node.json`` that parses as a node whose id is
    the folder's name. Anything else (an ``xlt transfer`` output, a user's folder, a node folder moved
    aside as ``<id>.bad-<time>`` by verification) is not xlt's to delete."""
    out = []
    for f in sorted(runs.glob(f"*/{NODE_FILE}")):
        try:
            node = Node.from_json(read_marker(runs, f.parent.name, NODE_FILE))
        except (KeyError, TypeError, AttributeError):
            continue
        if node.id == f.parent.name:
            out.append(node)
    return out


def _all_profile_nodes(notebooks_dir: str | None) -> list[Node]:
    """Every node of every profile in configs/: a checkpoint any of them still needs is kept."""
    out: list[Node] = []
    for name in available_profiles(configs_dir()):
        try:
            out.extend(build_grid(load_profile(name), notebooks_dir))
        except ProfileError as e:
            print(f"xlt clean: ignoring invalid profile {name}: {e}", file=sys.stderr)
    return out


def clean_plan(runs: Path, disk: Sequence[Node], grid: Sequence[Node], scope: set[str] | None,
               failed: bool, prune: bool) -> list[tuple[Path, str]]:
    """What ``xlt clean`` deletes, as (path, reason): only folders of ``disk`` (made by xlt run),
    within ``scope`` (a profile's ids; None = every xlt-made folder)."""
    plan: list[tuple[Path, str]] = []
    ours = sorted(n.id for n in disk if scope is None or n.id in scope)
    for nid in ours:
        st = node_state(runs, nid)
        if st == "pending":
            plan.append((node_dir(runs, nid), "unfinished: made by xlt run, no DONE.json"))
        elif st == "failed" and failed:
            plan.append((node_dir(runs, nid), f"failed (--failed): {first_error_line(runs, nid)}"))
    if prune:
        deps_of = dependents([*grid, *disk])
        for nid in ours:
            ckpt = node_dir(runs, nid) / CHECKPOINT_DIR
            users = deps_of.get(nid, [])
            if ckpt.is_dir() and node_state(runs, nid) == "done" and users and \
                    all((node_dir(runs, u) / DONE_FILE).is_file() for u in users):
                plan.append((ckpt, f"checkpoint (--prune-checkpoints): all {len(users)} dependents are done"))
    return plan


def _confirm(question: str) -> bool:
    try:
        return input(f"{question} [y/N] ").strip().lower() in ("y", "yes")
    except EOFError:
        return False


def cmd_clean(args: argparse.Namespace) -> int:
    runs = runs_dir(args.runs_dir)
    if not runs.is_dir():
        print(f"nothing to clean: {runs} does not exist")
        return 0
    with runs_lock(runs):
        disk = _disk_nodes(runs)
        if args.profile:
            grid = _nodes(args)
            scope: set[str] | None = {n.id for n in grid}
        else:
            grid = _all_profile_nodes(args.notebooks_dir)
            scope = None
        plan = clean_plan(runs, disk, grid, scope, args.failed, args.prune_checkpoints)
        made = {n.id for n in disk}
        foreign = sorted(p.name for p in runs.iterdir() if p.is_dir() and p.name not in made)
        if foreign:
            print(f"left alone (not node folders made by xlt run: no node.json of that id): {', '.join(foreign)}")
        verb = "would remove" if args.dry_run else "remove"
        for path, why in plan:
            print(f"{verb} {path.relative_to(runs)}  ({why})")
        if args.dry_run or not plan:
            print(f"clean: {'dry run, ' if args.dry_run else ''}{len(plan)} to delete in {runs}")
            return 0
        if not args.yes and sys.stdin.isatty() and not _confirm(f"Delete these {len(plan)} in {runs}?"):
            print("clean: nothing deleted")
            return 1
        for path, _why in plan:
            shutil.rmtree(path)
    removed = sum(p.name != CHECKPOINT_DIR for p, _ in plan)
    print(f"clean: removed {removed} node directories, pruned {len(plan) - removed} checkpoints in {runs}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    pin_data_env()                     # a relative XLT_DATA_DIR means this folder, in every process started from here
    args = _parser().parse_args(argv)
    handler = {"run": cmd_run, "status": cmd_status, "plan": cmd_plan, "results": cmd_results, "book": cmd_book,
               "clean": cmd_clean, "transfer": cmd_transfer, "bench": cmd_bench}[args.command]
    try:
        return handler(args)
    except (ProfileError, RunsLocked, RunsFolderError, ResultsError) as e:
        print(f"xlt {args.command}: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"xlt {args.command}: interrupted; unfinished nodes will be re-run next time", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
