"""``flowevo cfo``: constrained fine-tuning of a flow against a black-box reward and constraints, from flags or a
config file's ``[cfo]`` section (the library call: :func:`flowevo.workflows.run_cfo`)."""

from __future__ import annotations

from pathlib import Path

import typer

from flowevo.cli import configured
from flowevo.cli.app import app
from flowevo.cli.common import device_option, device_or_fail, fail, guarded, logger, print_metrics

EXAMPLE = ("Example: flowevo cfo --model models/blobs --reward examples/blob_objectives.py:brightness@max "
           "--constraint 'examples/blob_objectives.py:darkest<=0.5' --rounds 6 --run-dir runs/blobs_cfo")

REWARD_HELP = ("The reward, one spec as for flowevo optimize --objective: a built-in, package.module:function, "
               "path/file.py:function or 'cmd:PROGRAM ARGS {input}'; options after '@': min|max, per_item, name=N, "
               "key=value params.")


@app.command("cfo", epilog=EXAMPLE)
def cfo(
    model: Path | None = typer.Option(None, help="MODEL_DIR written by flowevo train, or path/file.py:factory "
                                                    "returning your own adapted flow."),
    reward: str | None = typer.Option(None, "--reward", help=REWARD_HELP),
    constraint: list[str] | None = typer.Option(None, "--constraint", help="Repeatable. SPEC<=BOUND or SPEC>=BOUND "
                                                                              "(SPEC as for --reward)."),
    condition: str | None = typer.Option(None, help="Sample under this condition: a class id (2), values=0.5,1.0 "
                                                       "or 'class=2 values=0.5'. Default: the null condition."),
    run_dir: Path | None = typer.Option(None, help="Where to write round checkpoints, metrics.json and rounds.png."),
    config_file: Path | None = configured.config_option(),
    rounds: int | None = typer.Option(None, help="Fine-tuning rounds (default 8)."),
    samples: int | None = typer.Option(None, help="Flow samples scored per round (default 512)."),
    max_violation: float | None = typer.Option(None, help="Allowed violation rate per constraint (default 0.02)."),
    finetune_steps: int | None = typer.Option(None, help="Fine-tuning steps per round (default 200)."),
    anchor: float | None = typer.Option(None, help="Pull toward the pretrained velocity (default 0.1)."),
    seed: int | None = typer.Option(None, help="Run seed (same seed, same result)."),
    backend: str | None = configured.evaluation_options()["backend"],
    workers: int | None = configured.evaluation_options()["workers"],
    address: str | None = configured.evaluation_options()["address"],
    timeout_s: float | None = configured.evaluation_options()["timeout_s"],
    cache: bool | None = configured.evaluation_options()["cache"],
    device: str | None = device_option(None),
    sets: list[str] | None = configured.set_option(),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bars."),
    as_json: bool = typer.Option(False, "--json", help="Print metrics as JSON on stdout."),
) -> None:
    """Fine-tune a flow so its samples maximise a reward while each constraint is violated by at most
    --max-violation of them (constrained flow optimisation).

    Checkpoints every round (flowevo resume RUN_DIR continues a killed run; flowevo sample --model
    RUN_DIR/checkpoints/round_<k>.pt samples any round).
    """
    from flowevo.config import ConfigError
    from flowevo.config.flags import parse_constraint_flag, parse_objective_flag, parse_target_flag
    from flowevo.workflows import run_cfo

    try:
        flags = {
            "cfo.model": None if model is None else str(model),
            "cfo.run_dir": None if run_dir is None else str(run_dir),
            "cfo.reward": None if reward is None else parse_objective_flag(reward),
            "cfo.constraints": [parse_constraint_flag(c) for c in constraint] if constraint else None,
            "cfo.condition": None if condition is None else parse_target_flag(condition),
            "cfo.rounds": rounds, "cfo.samples": samples, "cfo.max_violation": max_violation,
            "cfo.finetune_steps": finetune_steps, "cfo.anchor": anchor, "cfo.device": device, "seed": seed,
            **configured.evaluation_flags(backend, workers, address, timeout_s, cache, section="cfo"),
        }
    except ConfigError as exc:
        fail(str(exc))
    cfg = configured.load(config_file, sets, flags)
    device_or_fail(cfg.cfo.device)
    m = guarded(lambda: run_cfo(cfg, show_progress=not quiet, log=logger(quiet)), quiet)
    print_metrics(m, as_json, f"cfo -> {m['run_dir']}", summary_rows(m))


def _g(v: float | None, fmt: str = ".4g") -> str:
    return "-" if v is None else format(v, fmt)


def summary_rows(m: dict) -> list[tuple[str, str]]:
    """The table ``flowevo cfo`` and ``flowevo resume`` print: pretrained -> final per figure."""
    pre, fin = m["pretrained"], m["final"]
    rows = [(f"reward {m['reward']['name']} ({m['reward']['sense']}): mean, pretrained -> final",
             f"{_g(pre['reward_mean'])} -> {_g(fin['reward_mean'])}"),
            ("samples meeting every constraint",
             f"{_g(pre['satisfaction'], '.1%')} -> {_g(fin['satisfaction'], '.1%')}")]
    rows += [(f"  {name} (bound {bound:g})", f"{_g(pre['constraint_satisfaction'][name], '.1%')} -> "
                                             f"{_g(fin['constraint_satisfaction'][name], '.1%')}, multiplier "
                                             f"{_g(fin['multipliers'][name], '.3g')}")
             for name, bound in m["constraints"].items()]
    rows += [("KL to the pretrained flow (nats)", f"{_g(fin['kl'], '.3g')} ± {_g(fin['kl_stderr'], '.2g')}"),
             ("evaluations / failed samples", f"{m['evaluations']} / {m['failed_samples']}"),
             ("rounds / checkpoints", f"{len(m['rounds']) - 1} / {len(m['checkpoints'])}"),
             ("wall time", f"{m['wall_s']:.1f} s")]
    return rows
