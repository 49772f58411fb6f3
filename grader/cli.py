"""`bracket-grade PATH...`: grade submissions and write reports.

Exit status 0 when grading completed, whatever the scores; 2 for usage errors.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import textwrap
import time
from pathlib import Path

from grader.config import ConfigError, Limits, read_points, usable_cores  # noqa: F401 - read_points: part of the CLI's API



UsageError = ConfigError  # a usage error: the options cannot be honoured (exit status 2)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="bracket-grade", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("paths", nargs="*", metavar="PATH",
                   help=".py or .ipynb submissions, or folders of them (default: a bundled example)")
    out = p.add_argument_group("reports")
    out.add_argument("--json", metavar="FILE", help="write the JSON report here")
    out.add_argument("--csv", metavar="FILE", help="write one row per submission, one column per item")
    out.add_argument("--junit", metavar="FILE", help="write JUnit XML (one testcase per item)")
    out.add_argument("--gradescope", metavar="FILE", help="write Gradescope's results.json (one submission)")
    out.add_argument("--classroom", metavar="FILE", help="write GitHub Classroom's reporter JSON (one submission)")
    out.add_argument("--gradebook", metavar="FILE", help="CSV: one row per student, one column per item, totals")
    out.add_argument("--canvas", metavar="FILE", help="CSV: the scores as a gradebook Canvas imports")
    out.add_argument("--canvas-roster", metavar="FILE",
                     help="the gradebook Canvas exported: each submission matched to its student (by the folder or "
                          "file name: SIS Login ID, SIS User ID, ID or name), their Canvas identifiers kept")
    out.add_argument("--canvas-assignment", metavar="TITLE", default=None,
                     help="the assignment's column in Canvas (default: the section's title)")
    out.add_argument("--overrides", metavar="CSV",
                     help="an instructor's regrades (student, item, points, reason, who), applied to every report")
    out.add_argument("--similar-base", metavar="FILE", action="append", default=[],
                     help="code the class may share without copying (the course's published solutions, a worked "
                          "example): not counted in the copied-work report (--starter files never are)")
    out.add_argument("--no-similarity", action="store_true",
                     help="leave the copied-work report out of --json and --report")
    out.add_argument("--summary", metavar="FILE", help="Markdown: per item, how many passed and the commonest failure")
    out.add_argument("--feedback-dir", metavar="DIR", help="one Markdown feedback file per submission")
    out.add_argument("--report", metavar="FILE",
                     help="the class report page: one self-contained HTML file (plots, what the class got wrong, "
                          "a sortable table of submissions) that works offline")
    out.add_argument("--from", dest="from_reports", metavar="JSON", nargs="+", action="extend", default=[],
                     help="write the reports asked for from these JSON reports (one run's, or shards') instead of "
                          "grading")
    out.add_argument("--github", action="store_true",
                     help="in GitHub Actions: job summary table, an annotation per failed item")
    out.add_argument("--quiet", action="store_true", help="print only the summary")
    grading = p.add_argument_group("grading")
    grading.add_argument("--weights", metavar="FILE", help="model weights: our .safetensors or the course's .pt")
    grading.add_argument("--data", metavar="FILE", help="data JSON: ours or the course's brackets_data.json")
    grading.add_argument("--also-model", metavar="FILE", action="append", default=[],
                         help="other weights that object items may have been computed with")
    grading.add_argument("--device", choices=("cpu", "cuda", "auto"), default="cpu")
    grading.add_argument("--points", metavar="FILE", help="points per item (JSON or `id = points` lines; "
                         "`provided` = what an item the starter gives complete is worth, 0 by default)")
    grading.add_argument("--starter", metavar="FILE", action="append", default=[],
                         help="a file students began from, besides our template and the course's notebook: "
                              "its items left unchanged earn nothing (provided, or not attempted)")
    grading.add_argument("--only", metavar="IDS", help="comma-separated item ids to grade")
    grading.add_argument("--fail-under", type=float, metavar="PCT",
                         help="exit 1 if any submission scores below PCT percent (for CI checks)")
    limits = p.add_argument_group("limits")
    limits.add_argument("--timeout", type=float, default=None, metavar="SECONDS",
                        help=f"wall-clock limit per item (default {Limits.item_seconds:g})")
    limits.add_argument("--submission-timeout", type=float, default=None, metavar="SECONDS",
                        help=f"wall-clock limit for everything one submission takes (default {Limits.submission_seconds:g})")
    limits.add_argument("--statement-timeout", type=float, default=None, metavar="SECONDS",
                        help="wall-clock limit for one top-level statement of the submission's own code; one that "
                             f"runs past it is skipped (default {Limits.statement_seconds:g})")
    limits.add_argument("--memory", type=float, default=None, metavar="GIB",
                        help=f"address-space limit per worker (default {Limits.memory_bytes / 1024**3:g}; twice it in "
                             "a second look on the course's 5,000 examples, which the course's own code needs)")
    batch = p.add_argument_group("batches")
    batch.add_argument("--workers", type=int, default=usable_cores(), help="submissions graded at once")
    batch.add_argument("--no-warm-pool", action="store_true", help="start a fresh interpreter per submission")
    batch.add_argument("--mode", "--notebook-mode", dest="notebook_mode", choices=("lean", "fast", "kernel"),
                       default=None,
                       help="lean (default): run only the statements grading needs (definitions, set-up, what "
                            "object items are computed from), in the warm worker; items that do not pass are "
                            "graded again with every cell run. fast: every cell, in the warm worker. kernel: every "
                            "cell of a notebook in a real Jupyter kernel (as nbgrader does; slowest)")
    batch.add_argument("--results-log", metavar="FILE",
                       help="append each result here as it finishes (default: next to --json)")
    batch.add_argument("--resume", action="store_true", help="skip submissions already in the results log")
    batch.add_argument("--shard", metavar="I/N",
                       help="grade only shard I of N (every shard computes the same split, the submissions dealt by "
                            "their expected cost); auto: read I and N from the scheduler that started this process (a "
                            "Slurm array, a Kubernetes Indexed Job, a GitHub Actions matrix), and resume this "
                            "shard's results log if a restart finds one. `{shard}` in --json or --results-log "
                            "becomes I-of-N")
    batch.add_argument("--shard-count", type=int, metavar="N",
                       help="with --shard auto, how many shards (a Kubernetes Indexed Job's completions)")
    batch.add_argument("--merge", action="store_true", help="PATHs are JSON reports (shards): merge them")
    course = p.add_argument_group("course")
    course.add_argument("--config", metavar="FILE",
                        help="the course file (default: bracket-grader.toml in the class folder graded); "
                             "a flag given here wins over it")
    course.add_argument("--write-config", metavar="FILE",
                        help="write a complete, commented course file to start from, and exit")
    course.add_argument("--write-gradescope", metavar="ZIP",
                        help="write the autograder zip Gradescope runs (this grader, pinned; the course file; the "
                             "model and data), and exit")
    course.add_argument("--submission-metadata", metavar="FILE",
                        help="Gradescope's submission_metadata.json, for a late policy with times = \"gradescope\" "
                             "and a course that keeps each student's best (keep = \"best\") "
                             "(default: /autograder/submission_metadata.json)")
    batch.add_argument("--write-recipe", nargs=2, metavar=("KIND", "DIR"),
                       help="write the files that grade a class on a scheduler into DIR, and exit: slurm (an array "
                            "job and a merge job, started by submit.sh), kubernetes (an Indexed Job and a merge "
                            "Job) or github (a workflow: a matrix of shards and a merge job)")
    batch.add_argument("--prepare-cache", action="store_true",
                       help="compute the reference's answers for this model and data into the cache "
                            "(BRACKET_GRADER_CACHE) once, before shards that share it start, and exit")
    p.add_argument("--write-workflow", metavar="FILE",
                   help="copy the GitHub Actions workflow that grades pull requests to FILE, and exit")
    p.add_argument("--cache-key", action="store_true",
                   help="print the key of the reference cache for these --weights/--data/--device (grader "
                        "version, reference code, model, data, device, libraries: what a CI cache step keys on), "
                        "and exit")
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return run(args)
    except UsageError as e:
        parser.print_usage(sys.stderr)
        print(f"bracket-grade: error: {e}", file=sys.stderr)
        return 2


def write_canvas(args: argparse.Namespace, results: list) -> None:
    """The Canvas import file; what the roster could not match is said on stderr."""
    from grader import canvas, reports

    roster = canvas.read_roster(args.canvas_roster) if args.canvas_roster else None
    reports.write_atomic(args.canvas, canvas.canvas_csv(results, roster, args.canvas_assignment or
                                                        canvas.DEFAULT_ASSIGNMENT))
    if roster is None:
        return
    matched = canvas.match(results, roster)
    for path in matched.unmatched:
        print(f"bracket-grade: canvas: no single student of the roster is {reports.student_name(path)!r} ({path}): "
              "its row has the name only", file=sys.stderr)
    twice = {}
    for path, student in matched.students.items():
        twice.setdefault(student, []).append(path)
    for student, paths in twice.items():
        if len(paths) > 1:
            print(f"bracket-grade: canvas: {len(paths)} submissions are {student.name}'s ({', '.join(paths)}): each "
                  "has a row, keep the one to import", file=sys.stderr)
    if matched.without_submission:
        names = ", ".join(s.name for s in matched.without_submission[:10])
        print(f"bracket-grade: canvas: {len(matched.without_submission)} student(s) of the roster have no submission: "
              f"{names}{', ...' if len(matched.without_submission) > 10 else ''}", file=sys.stderr)


def write_reports(args: argparse.Namespace, results: list, run: dict | None = None) -> None:
    from grader import reports

    similar = similar_pairs(args, results) if args.json or args.report else None
    if args.json:
        reports.write_atomic(args.json, reports.json_text(results, run, similar))
    if args.csv:
        reports.write_atomic(args.csv, reports.csv_text(results))
    if args.junit:
        reports.write_atomic(args.junit, reports.junit_text(results, run))
    if (args.gradescope or args.classroom) and not results:
        raise UsageError("--gradescope and --classroom report one submission: there is none")
    if args.gradescope:
        course = getattr(args, "course", None)
        reports.write_atomic(args.gradescope, reports.gradescope_json(one_submission(results, "--gradescope"), run,
                                                                      course.visibility_of if course else None))
    if args.classroom:
        reports.write_atomic(args.classroom, reports.classroom_json(one_submission(results, "--classroom")))
    if args.gradebook:
        reports.write_atomic(args.gradebook, reports.gradebook_csv(results))
    if args.canvas:
        write_canvas(args, results)
    if args.summary:
        reports.write_atomic(args.summary, reports.item_summary_markdown(results, run))
    if args.report:
        from grader.report_page import page_html

        reports.write_atomic(args.report, page_html(results, run, args.feedback_dir, args.report, similar))
    if args.feedback_dir:
        for r in results:
            name = reports.feedback_file_name(r.path)
            reports.write_atomic(Path(args.feedback_dir) / name, reports.feedback_markdown(r, run))
    if args.github:
        summary = os.environ.get("GITHUB_STEP_SUMMARY")
        if summary:
            with open(summary, "a") as f:
                f.write(reports.github_summary_markdown(results, run))
        sys.stdout.write(reports.github_annotations(results, run))
        sys.stdout.flush()


WORKFLOW = Path(__file__).resolve().parent.parent / "ci" / "grade-pull-request.yml"


def run(args: argparse.Namespace) -> int:
    """The phases, in order: a one-off command, or validate the options, select the submissions,
    grade them (logging each result as it comes), report."""
    if args.write_workflow:
        return write_workflow(args.write_workflow)
    if args.write_config:
        return write_config(args.write_config)
    if args.write_recipe:
        return write_recipe(*args.write_recipe)
    with_course_file(args)
    if args.write_gradescope:
        return write_gradescope(args)
    if args.prepare_cache:
        return prepare_cache(args)
    if args.cache_key:
        from grader.reference_results import cache_key

        config = validate(args).resolved()
        print(f"reference-{cache_key(config.weights, config.data, config.device)}")
        return 0
    check_outputs(args)
    if args.merge or args.from_reports:
        return merge(args, args.from_reports or args.paths)
    config = validate(args)
    started = time.time()
    from grader.slots import early_slot

    early = early_slot(config)  # its warm worker loads torch while this process does
    try:
        submissions = select(args)
        from grader.engine import Grader

        grader = Grader(config, at_once=max(1, min(args.workers, len(submissions))), early=early)
    except BaseException:
        if early:
            early[0].close()
        raise
    from grader.isolation import warning

    try:
        if warning():
            print(textwrap.fill(warning(), 100), file=sys.stderr)  # once per run, and in every report
        results, interrupted = grade(args, grader, submissions)
    finally:  # whatever stops it (a results log it cannot write), no warm worker is left running
        grader.close()
    if interrupted:
        return 130
    return report(args, grader, submissions, results, time.time() - started)


def one_submission(results: list, flag: str):
    """The submission a one-submission report is about: a student's upload may hold several files
    (the notebook and a helper module); which one is said."""
    from grader import reports

    chosen = reports.the_submission(results)
    if len(results) > 1:
        print(f"bracket-grade: {flag}: {len(results)} files graded; the report is about {chosen.path} "
              "(the gradable one that scored most)", file=sys.stderr)
    return chosen


def similar_pairs(args: argparse.Namespace, results: list) -> list | None:
    """The class's pairs that share code (grader.similarity), for a class of two or more whose
    files can still be read; None for a single submission."""
    if len(results) < 2 or args.no_similarity:
        return None
    from grader import similarity, starters

    known = starters.built_in() + tuple(starters.starter_from_file(f) for f in args.starter)
    return similarity.of_class([r.path for r in results if not r.not_gradable], known,
                               [*args.starter, *args.similar_base])


def write_config(target: str) -> int:
    from grader.course_file import EXAMPLE

    if Path(target).exists():
        raise UsageError(f"--write-config: {target} exists; give a new file name")
    Path(target).parent.mkdir(parents=True, exist_ok=True)
    Path(target).write_text(EXAMPLE)
    print(f"wrote {target}: put it in the class folder (or pass --config {target})")
    return 0


RECIPES = Path(__file__).resolve().parent / "recipes"


def write_recipe(kind: str, target: str) -> int:
    """A scheduler's recipe (grader/recipes/KIND), written into the folder `target`."""
    source = RECIPES / kind
    if not source.is_dir():
        kinds = ", ".join(sorted(p.name for p in RECIPES.iterdir() if p.is_dir()))
        raise UsageError(f"--write-recipe: no recipe {kind!r} (there are: {kinds})")
    out = Path(target)
    files = sorted(p for p in source.iterdir() if p.is_file())
    clash = [str(out / f.name) for f in files if (out / f.name).exists()]
    if clash:
        raise UsageError(f"--write-recipe: {', '.join(clash)} exist(s); give a new folder")
    out.mkdir(parents=True, exist_ok=True)
    for f in files:
        (out / f.name).write_bytes(f.read_bytes())
        (out / f.name).chmod(f.stat().st_mode & 0o777 | 0o644)
    print(f"wrote {', '.join(str(out / f.name) for f in files)}: the comments at the top of each say how to start it")
    return 0


def prepare_cache(args: argparse.Namespace) -> int:
    from grader.catalogue import EXERCISES
    from grader.disk_cache import cache_dir
    from grader.reference_results import ReferenceResults

    config = validate(args).resolved()
    reference = ReferenceResults(config.weights, config.data, config.device)
    started = time.time()
    reference.warm([e for e in EXERCISES if e.kind == "function"])
    print(f"the reference's answers for {Path(config.weights).name} and {Path(config.data).name} are in "
          f"{cache_dir()} ({time.time() - started:.0f} s)")
    return 0


def write_gradescope(args: argparse.Namespace) -> int:
    from grader import gradescope_zip

    config = validate(args).resolved()
    names = gradescope_zip.build(args.write_gradescope, config.weights, config.data, args.course)
    course = f"the course file {args.course.path}" if args.course else "the example course file (every key commented)"
    print(f"wrote {args.write_gradescope} ({len(names)} files): upload it as the assignment's autograder; it holds "
          f"{course}, the model {Path(config.weights).name} and the data {Path(config.data).name}")
    return 0


def with_course_file(args: argparse.Namespace) -> None:
    """The course file's values where no flag gave one (grader.course_file), then the defaults."""
    from grader import course_file

    path = args.config or course_file.find(args.paths)
    if args.config and not Path(args.config).is_file():
        raise UsageError(f"--config: no such file: {args.config}")
    args.course = course = course_file.read(path) if path else None
    if course is not None:
        args.weights = args.weights or course.weights
        args.data = args.data or course.data
        args.notebook_mode = args.notebook_mode or course.mode
        for flag, key in (("timeout", "item_seconds"), ("submission_timeout", "submission_seconds"),
                          ("statement_timeout", "statement_seconds"), ("memory", "memory_gib")):
            if getattr(args, flag) is None and key in course.limits:
                setattr(args, flag, course.limits[key])
        if not args.starter and course.starter:
            args.starter = [course.starter]
        if args.points is None and course.points:
            args.points = course.points
    args.notebook_mode = args.notebook_mode or "lean"


def write_workflow(target: str) -> int:
    if not WORKFLOW.exists():
        raise UsageError(f"the workflow ships with the source checkout ({WORKFLOW}); clone the grader to copy it")
    Path(target).parent.mkdir(parents=True, exist_ok=True)
    Path(target).write_text(WORKFLOW.read_text())
    print(f"wrote {target}: set GRADER_REPOSITORY and GRADER_REF in it")
    return 0


def merge(args: argparse.Namespace, paths: list[str]) -> int:
    """Reports from JSON reports (--merge PATHS, --from PATHS), nothing graded."""
    from grader import batch, reports

    missing = [p for p in paths if not Path(p).is_file()]
    if not paths or missing:
        raise UsageError("--merge and --from take the JSON reports to read" + (f" (not found: {', '.join(missing)})"
                                                                              if missing else ""))
    if args.from_reports and args.paths:
        raise UsageError("--from writes reports from JSON reports: give no submissions to grade with it")
    try:
        results = batch.merge_reports(map(Path, paths))
        run_info = batch.merged_run(map(Path, paths))
    except (ValueError, KeyError, TypeError) as e:
        raise UsageError(f"not a bracket-grade JSON report: {type(e).__name__}: {e}") from None
    results = with_overrides(args, results)
    write_reports(args, results, run_info)
    print(reports.summary_line(results))
    return 0


def check_outputs(args: argparse.Namespace) -> None:
    """Report options that cannot be honoured, said before anything is graded."""
    import csv

    for f in args.similar_base:
        if not Path(f).is_file():
            raise UsageError(f"--similar-base: no such file: {f}")
    course = getattr(args, "course", None)
    if course is not None and course.late is not None:  # its files read now: a mistake costs no grading
        from grader import late

        try:
            if course.late.extensions:
                late.read_extensions(course.late.extensions, course.late.due)
            if course.late.times not in ("", "gradescope", "git"):
                late.read_times(Path(course.late.times))
            metadata = Path(args.submission_metadata or "/autograder/submission_metadata.json")
            if course.late.times == "gradescope":
                late.gradescope_times(metadata)
        except (OSError, ValueError, KeyError, csv.Error) as e:
            raise UsageError(f"{course.path} [late]: {type(e).__name__ if isinstance(e, KeyError) else ''}{e}") from None
    if args.overrides:
        from grader.overrides import read

        try:
            args.overrides_read = read(args.overrides)
        except (OSError, ValueError, csv.Error) as e:  # OverridesError, UnicodeDecodeError are ValueErrors
            raise UsageError(f"--overrides: {e}") from None
    if (args.canvas_roster or args.canvas_assignment) and not args.canvas:
        raise UsageError("--canvas-roster and --canvas-assignment go with --canvas FILE")
    if args.canvas_roster:
        from grader.canvas import read_roster

        try:
            read_roster(args.canvas_roster)
        except (OSError, ValueError, csv.Error) as e:  # RosterError, UnicodeDecodeError are ValueErrors
            raise UsageError(f"--canvas-roster: {e}") from None


def adjusted(args: argparse.Namespace, results: list) -> tuple[list, list[str]]:
    """The results with the instructor's overrides, then the course's late policy, applied, and the
    warnings of what could not be."""
    from grader import overrides, reports

    warnings = []
    if getattr(args, "overrides_read", None):
        results, warnings = overrides.apply(results, args.overrides_read, reports.student_name)
    rules = args.course.late if getattr(args, "course", None) is not None else None
    if rules is not None:
        from grader import late

        metadata = Path(args.submission_metadata or "/autograder/submission_metadata.json")
        try:
            times, dues = late.times_for(rules, results, metadata)
        except (OSError, ValueError, KeyError) as e:
            raise UsageError(f"{args.course.path} [late]: {e}") from None
        results, more = late.apply(results, rules, times, dues, reports.student_name)
        warnings += more
    return results, warnings


def with_overrides(args: argparse.Namespace, results: list) -> list:
    """The results with the instructor's overrides, then the course's late policy, applied (what
    cannot be applied is said on stderr)."""
    results, warnings = adjusted(args, results)
    from dataclasses import replace

    results = [replace(r, kept=None) if r.kept else r for r in results]  # a report read back keeps none
    if getattr(args, "course", None) is not None and args.course.keep == "best":
        results, more = kept_best(args, results)
        warnings += more
    for w in warnings:
        print(f"warning: {w}", file=sys.stderr)
    return results


def kept_best(args: argparse.Namespace, results: list) -> tuple[list, list[str]]:
    """The course keeps each student's best: an earlier submission's higher score (Gradescope's
    submission_metadata.json, one submission per run) stands."""
    from grader import earlier
    from grader.reports import the_submission

    metadata = Path(args.submission_metadata or "/autograder/submission_metadata.json")
    if not metadata.is_file():
        return results, [f"keep = \"best\": no submission_metadata.json at {metadata}: each submission's own score stands"]
    if not results:
        return results, []
    chosen = the_submission(results)  # an upload of several files: the one the report is about
    try:
        kept = earlier.keep_best(chosen, metadata)
    except (OSError, ValueError) as e:
        return results, [f"keep = \"best\": {e}: this submission's own score stands"]
    return [kept if r is chosen else r for r in results], []


def validate(args: argparse.Namespace):
    """The grading configuration the options ask for; a usage error for anything that cannot be."""
    from grader.config import configured

    try:
        args.shard_parsed = shard_of(args)
    except ValueError as e:
        raise UsageError(str(e)) from None
    if args.resume and not (args.results_log or args.json):
        raise UsageError("--resume needs --results-log or --json (the log lives next to it)")
    return configured(weights=args.weights, data=args.data, device=args.device, timeout=args.timeout,
                      submission_timeout=args.submission_timeout, statement_timeout=args.statement_timeout,
                      memory_gib=args.memory, points=args.points, only=args.only or (), also_models=tuple(args.also_model),
                      warm_pool=not args.no_warm_pool, mode=args.notebook_mode or "lean", starters=tuple(args.starter))


def shard_of(args: argparse.Namespace) -> tuple[int, int] | None:
    """--shard I/N, or the scheduler's shard with --shard auto (which then resumes this shard's
    results log, where a restart finds one); `{shard}` in --json and --results-log named for it."""
    from grader import shards

    if not args.shard:
        if args.shard_count:
            raise UsageError("--shard-count goes with --shard auto")
        return None
    if args.shard == "auto":
        shard, where = shards.from_environment(os.environ, args.shard_count)
        print(f"shard {shard[0]} of {shard[1]} (from the {where} scheduler)", file=sys.stderr)
        args.resume = bool(args.results_log or args.json)
    else:
        shard = shards.parse(args.shard)
    for name in ("json", "results_log"):
        if getattr(args, name):
            setattr(args, name, getattr(args, name).replace("{shard}", f"{shard[0]}-of-{shard[1]}"))
    return shard


def select(args: argparse.Namespace) -> list[Path]:
    """The submissions to grade: the paths given (folders expanded), this shard of them, or the
    bundled example when none is given."""
    from grader import shards
    from grader.engine import find_submissions

    if not args.paths:
        import tempfile

        from grader.examples import example_submission

        example = example_submission(Path(tempfile.mkdtemp(prefix="bracket-example-")))
        print(f"No submission given: grading the bundled example {example}\n")
    paths = args.paths or [str(example)]
    missing = [p for p in paths if not Path(p).exists() and not Path(p).is_symlink()]
    if missing:
        raise UsageError(f"no such file or folder: {', '.join(missing)}")
    submissions = find_submissions(paths)
    course = getattr(args, "course", None)
    if course is not None and course.starter:  # the blank notebook kept beside the course file is no student's
        submissions = [s for s in submissions if s.resolve() != Path(course.starter).resolve()]
    if args.shard_parsed:
        submissions = shards.mine(submissions, args.shard_parsed, [Path(p) for p in paths if Path(p).is_dir()])
    if not submissions and not args.shard_parsed:
        raise UsageError("no .py or .ipynb submissions found")
    return submissions


def grade(args: argparse.Namespace, grader, submissions: list[Path]) -> tuple[list, bool]:
    """Grade what the results log does not hold yet, appending each result as it finishes; Ctrl-C
    stops at once. Returns the results (logged ones included) and whether it was interrupted."""
    from grader import batch, reports

    # what the verdicts depend on: a restarted shard (--shard auto resumes) reuses a result only
    # where nothing of the grading changed
    c = grader.config
    context = (f"{grader.reference.key}|{sorted(c.points.items())}|{c.only}|{c.notebook_mode}|{c.limits.to_json()}|"
               f"{c.starters}|{c.extra_models}")
    log_path = Path(args.results_log or f"{args.json}.log.jsonl") if (args.results_log or args.json) else None
    if log_path and not args.resume and log_path.exists():
        log_path.unlink()
    log = batch.ResultsLog(log_path) if log_path else None
    keys = {str(s): batch.submission_key(s, context) for s in submissions}
    done = log.done if log and args.resume else {}
    results = [done[keys[str(s)]] for s in submissions if keys[str(s)] in done]
    todo = [s for s in submissions if keys[str(s)] not in done]
    if args.resume and results:
        print(f"resuming: {len(results)} already graded, {len(todo)} to go", file=sys.stderr)
    progress = batch.Progress(len(todo)) if len(todo) > 1 else None
    if args.github:  # student-controlled text (feedback, tracebacks) must not run workflow commands
        token = os.urandom(16).hex()
        print(f"::stop-commands::{token}", flush=True)
    interrupted = False
    try:
        for result in grader.grade_many(todo, args.workers):
            results.append(result)
            if log:
                log.append(keys[result.path], result)
            if progress:
                progress.update(result)
            if not args.quiet:  # as the reports will show it: overridden, less a late penalty
                print(reports.terminal_table(shown_live(args, result)) + "\n", flush=True)
    except KeyboardInterrupt:
        interrupted = True
        grader.stop()  # submissions being graded end now; nothing more starts
    finally:
        grader.close()
        if args.github:
            print(f"::{token}::", flush=True)
    if interrupted:
        saved = f"; they are in {log_path}: rerun with --resume to grade the rest" if log else ""
        print(f"interrupted: {len(results)} of {len(submissions)} graded{saved}", file=sys.stderr)
    return results, interrupted


def shown_live(args: argparse.Namespace, result):
    """One submission as the reports will show it, while the batch goes on (what could not be
    applied is said once, at the end, where the reports are written)."""
    try:
        return adjusted(args, [result])[0][0]
    except Exception:  # a times file edited during the run: the row as graded; the batch goes on
        return result


def report(args: argparse.Namespace, grader, submissions: list[Path], results: list, seconds: float) -> int:
    """Write every report asked for; exit 1 only when --fail-under is given and someone is below."""
    from grader import reports

    order = {str(p): i for i, p in enumerate(submissions)}
    results.sort(key=lambda r: order.get(r.path, len(order)))
    results = with_overrides(args, results)
    print(reports.summary_line(results))
    if results:
        write_reports(args, results, grader.run_info(workers=args.workers, seconds=seconds))
    if args.fail_under is not None:
        low = [r for r in results if r.max_score and 100 * r.score / r.max_score < args.fail_under]
        if low:
            not_gradable = sum(1 for r in low if r.not_gradable)  # no score, so no pass either
            print("; ".join([f"{len(low) - not_gradable} submission(s) scored below {args.fail_under:g}%"]
                            + [f"{not_gradable} file(s) not gradable"] * bool(not_gradable)), file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
