"""`assistant eval` and `assistant bench`: the evaluation's commands, registered with the
`assistant` command through the `assistant.commands` entry-point group (pyproject.toml)."""

from __future__ import annotations

from pathlib import Path

import click

from assistant import InputError
from assistant.cli.context import emit_json, get_assistant, progress_bar, ready


@click.command(name="eval")
@click.option(
    "--questions",
    "questions",
    multiple=True,
    type=click.Path(path_type=Path),
    help="JSONL question set (repeatable; default: evals/data/gold.jsonl).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=None,
    help="Folder for run folders (default: evals/runs).",
)
@click.option(
    "--compare",
    type=click.Path(path_type=Path),
    default=None,
    help="A previous run folder (default: the latest run of the same --split in --out).",
)
@click.option("--no-compare", is_flag=True, help="Do not compare with a previous run.")
@click.option(
    "--fail-under",
    multiple=True,
    metavar="METRIC=VALUE",
    help="Exit 1 when METRIC is below VALUE (repeatable).",
)
@click.option(
    "--fail-over",
    multiple=True,
    metavar="METRIC=VALUE",
    help="Exit 1 when METRIC is above VALUE, for lower-is-better metrics.",
)
@click.option(
    "--baseline/--no-baseline",
    default=True,
    show_default=True,
    help="Also run LlamaIndex's default recipe on the same questions.",
)
@click.option(
    "--mode",
    type=click.Choice(["extractive", "llm"]),
    default="extractive",
    show_default=True,
    help="llm: answer with the configured model; the report shows extractive mode beside it.",
)
@click.option(
    "--split",
    type=click.Choice(["dev", "test", "all"]),
    default="all",
    show_default=True,
    help="Gold items to run: dev (used for fitting), test (held out), or both side by side.",
)
@click.option(
    "--squad",
    type=click.Path(path_type=Path),
    default=None,
    help="Run a SQuAD 2.0 JSON file instead of the gold set, over its own articles "
    "(e.g. evals/data/squad2/train-subset.json).",
)
@click.option(
    "--squad-articles",
    metavar="I,J,...",
    default=None,
    help="With --squad: only the articles at these indexes (0-based), e.g. 0,3,5.",
)
@click.option(
    "--squad-limit",
    type=int,
    default=None,
    metavar="N",
    help="With --squad: only the first N questions of each article, for quick runs.",
)
@click.pass_context
def eval_command(
    ctx: click.Context,
    questions: tuple[Path, ...],
    as_json: bool,
    out: Path | None,
    compare: Path | None,
    no_compare: bool,
    fail_under: tuple[str, ...],
    fail_over: tuple[str, ...],
    baseline: bool,
    mode: str,
    split: str,
    squad: Path | None,
    squad_articles: str | None,
    squad_limit: int | None,
) -> None:
    """Measure answer quality on a gold question set and write a report with plots.

    \b
    Writes a run folder: items.jsonl, summary.json, report.md and PNG plots.
    Exit code 1 when a --fail-under / --fail-over gate fails.
    Examples:
      assistant eval
      assistant eval --split test --json --no-baseline
      assistant eval --fail-under hit_at_1=0.8 --fail-over over_refusal=0.05
      assistant eval --questions my-questions.jsonl --compare evals/runs/20261128-101500-extractive-abc123
      assistant eval --squad evals/data/squad2/train-subset.json --squad-articles 0,4 --squad-limit 50
    """
    from evals.evaluation import parse_gates, run_eval

    gates = parse_gates(fail_under, fail_over)
    if squad is None and (squad_articles is not None or squad_limit is not None):
        raise InputError(
            "--squad-articles and --squad-limit only apply to a SQuAD run.",
            "Add --squad FILE, e.g. --squad evals/data/squad2/train-subset.json.",
        )
    if squad is not None:
        if questions or split != "all":
            raise InputError(
                "--squad runs a SQuAD file instead of the gold set; --questions and --split "
                "do not apply to it.",
                "Drop --questions/--split, or drop --squad.",
            )
        from evals.squad import DEFAULT_SQUAD, load_squad, parse_articles, run_squad

        chosen = load_squad(squad, parse_articles(squad_articles), squad_limit)
        if squad.resolve() == DEFAULT_SQUAD.resolve():
            click.echo(
                "Note: the shipped answer model and reader were fitted on these articles, so "
                "this run flatters them; their held-out figures are the cross-validation in "
                "assistant/models/answer_model.json and answer_reader.json (`make train`).",
                err=True,
            )
        base = get_assistant(ctx)
        run = run_squad(
            base.settings,
            chosen,
            embedder=base.embedder,
            out_root=out,
            baseline=baseline,
            gates=gates,
            mode=mode,
            compare=None if no_compare else compare,
            progress=progress_bar,
        )
    else:
        assistant = ready(ctx)
        run = run_eval(
            assistant,
            question_files=list(questions),
            out_root=out or Path(assistant.settings.eval_dir),
            compare=None if no_compare else compare,
            compare_latest=not no_compare,
            gates=gates,
            baseline=baseline,
            mode=mode,
            progress=progress_bar,
            split=split,
        )
    summary = run.summary
    if as_json:
        emit_json({**summary, "run_dir": str(run.folder)})
    else:
        from evals.report import summary_table

        click.echo(summary_table(summary))
        comp = summary.get("compare")
        if comp:
            click.echo(
                f"Against {comp['run']}: {len(comp['newly_failing'])} newly failing, {len(comp['newly_passing'])} newly passing."
            )
        click.echo(f"Report: {run.folder / 'report.md'}")
    failed = run.failed_gates
    for g in failed:
        click.secho(
            f"Gate failed: {g['metric']} = {g['value']} (required {g['op']} {g['threshold']})",
            err=True,
            fg="red",
        )
    if failed:
        ctx.exit(1)


@click.command(context_settings={"ignore_unknown_options": True, "help_option_names": []})
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def bench(args: tuple[str, ...]) -> None:
    """Benchmarks against LlamaIndex's default recipe, and a scaling run (python -m evals.bench).

    \b
    Examples:
      assistant bench --skip-scaling --reps 3
      assistant bench --sizes 1000,10000 --out bench-results
      assistant bench --help
    """
    from evals.bench import main as bench_main

    raise SystemExit(bench_main(list(args)))
