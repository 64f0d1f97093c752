"""``flowevo train``: fit an encoder, a conditional flow and a judge on a user's .npz and write MODEL_DIR."""

from __future__ import annotations

from pathlib import Path

import typer

from flowevo.cli import configured
from flowevo.cli.app import app
from flowevo.cli.common import device_option, device_or_fail, guarded, logger, print_metrics

EXAMPLE = "Example: flowevo train --data data/blobs.npz --out models/blobs   (python examples/make_blobs.py --out data)"


@app.command("train", epilog=EXAMPLE)
def train(
    data: Path | None = typer.Option(None, help="Training .npz: x (N, D) / (N, H, W) / (N, C, H, W); "
                                                "c (N,) class ids and/or v (N, K) floats."),
    out: Path | None = typer.Option(None, help="MODEL_DIR to write (model.json, flow.pt, encoder.pt, judge.pt)."),
    config_file: Path | None = configured.config_option(),
    encoder: str | None = typer.Option(None, help="auto | none | pca | autoencoder (auto: PCA for images and > 64 features)."),
    latent: int | None = typer.Option(None, help="Encoder width (default: scaled to the data)."),
    steps: int | None = typer.Option(None, help="Flow-matching steps (default: ~40 epochs, 500..4000)."),
    batch_size: int | None = typer.Option(None, help="Batch size (default: min(256, N))."),
    judge: bool | None = typer.Option(None, "--judge/--no-judge",
                                      help="Also train the judge that built-in objectives use (default: on)."),
    seed: int | None = typer.Option(None, help="Seed (same seed, same weights)."),
    device: str | None = device_option(None),
    sets: list[str] | None = configured.set_option(),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bars."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON on stdout."),
) -> None:
    """Train a conditional flow-matching model (plus encoder and judge) on your data, with defaults scaled to it."""
    from flowevo.workflows import run_train

    cfg = configured.load(config_file, sets, {
        "train.data": None if data is None else str(data), "train.out": None if out is None else str(out),
        "train.encoder": encoder, "train.latent": latent, "train.steps": steps, "train.batch_size": batch_size,
        "train.judge": judge, "train.device": device, "seed": seed})
    device_or_fail(cfg.train.device)
    m = guarded(lambda: run_train(cfg, show_progress=not quiet, log=logger(quiet)), quiet)
    j = m["judge"] or {}
    print_metrics(m, as_json, f"model -> {m['model_dir']}", [
        ("data", f"{m['kind']} {tuple(m['shape'])}, {m['num_classes']} classes, {m['value_dim']} float conditions"),
        ("encoder", f"{m['encoder']['kind']} -> flow space {tuple(m['flow_shape'])}, reconstruction RMSE "
                    f"{m['encoder']['reconstruction_rmse']:.3g}"),
        ("flow", f"{m['steps']} steps, final loss {m['final_loss']:.4g}"),
        ("round trip (rk4, 10 steps), median rel. error", f"{m['roundtrip']['rk4_10_median_rel_error']:.2e}"),
        ("judge hold-out accuracy / R^2", f"{j.get('holdout_accuracy')} / {j.get('holdout_r2')}" if j else "no judge"),
        ("wall time", f"{m['wall_s']:.1f} s"),
    ])
