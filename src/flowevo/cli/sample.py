"""``flowevo sample``: draw samples from any saved flow (e.g. a CFO round checkpoint) into an .npz."""

from __future__ import annotations

from pathlib import Path

import typer

from flowevo.cli.app import app
from flowevo.cli.common import device_option, device_or_fail, fail, guarded, print_metrics


def _parse_condition(text: str | None, model, meta: dict, crystal):
    """``--condition``: ``null``, a class id (``3``) or comma-separated values (``0.5`` / ``0.1,0.2``; crystals:
    the property in physical units). Default: the condition a CFO run used, else null."""
    import torch

    from flowevo.cfo import condition_from_dict, null_condition
    from flowevo.flow import Condition

    if text is None:
        cfo = meta.get("cfo")
        return condition_from_dict(cfo["condition"]) if cfo and "condition" in cfo else null_condition(model)
    text = text.strip()
    if text.lower() == "null":
        return null_condition(model)
    cfg = getattr(model, "config", {})
    try:
        if crystal is not None:
            return crystal.condition([float(v) for v in text.split(",")])
        if cfg.get("num_classes", 0) > 0 and not cfg.get("value_dim", 0):
            label = int(text)
            if not 0 <= label < cfg["num_classes"]:
                raise ValueError(f"--condition {text}: the model knows classes 0..{cfg['num_classes'] - 1}")
            return Condition.from_labels([label])
        values = [float(v) for v in text.split(",")]
    except ValueError as exc:
        raise ValueError(f"--condition {text!r}: {exc}") from exc
    if len(values) != cfg.get("value_dim", 0):
        raise ValueError(f"--condition {text!r}: the model expects {cfg.get('value_dim', 0)} value(s)")
    return Condition.from_values(torch.tensor([values]))


def _add_structures(arrays: dict, structures: list | None, cif_dir: Path | None) -> int:
    """Add the decoded crystals' formulas to ``arrays`` and write their CIFs to ``cif_dir`` (if given); returns how
    many CIFs were written. ``structures`` None: not a crystal model (``--cif`` is then an error)."""
    import numpy as np

    if structures is None:
        if cif_dir is not None:
            raise ValueError("--cif applies to crystal models only")
        return 0
    arrays["formula"] = np.array([s.composition.reduced_formula if s is not None else "" for s in structures])
    if cif_dir is None:
        return 0
    from flowevo.domains.crystals.outputs import write_cifs

    return sum(name is not None for name in write_cifs(cif_dir, structures))


def _sample(model_path: Path, n: int, out: Path, condition: str | None, seed: int, steps: int,
            cif_dir: Path | None, device: str = "cpu") -> dict:
    """Noise is drawn on the CPU from ``seed`` and moved to ``device``: the same draws on every device, so samples
    agree across devices to float rounding."""
    import numpy as np
    import torch

    from flowevo.cfo import sample_flow
    from flowevo.devices import require_cpu
    from flowevo.domains.generic import FORMAT as GENERIC_FORMAT
    from flowevo.flow import FixedGrid, load_checkpoint
    from flowevo.workflows.cfo_flow import is_cfo_round

    if is_cfo_round(model_path):
        return _sample_cfo_round(model_path, n, out, condition, seed, steps, cif_dir, device)
    model, meta = load_checkpoint(model_path, device)
    if meta.get("format") == GENERIC_FORMAT:  # its samples would be in the encoder's space, not data units
        raise ValueError(f"{model_path}: the flow of a generic MODEL_DIR (flowevo train) cannot be sampled on its own "
                         "(it lives behind the folder's encoder); edit with flowevo optimize --model DIR")
    crystal = None
    if str(meta.get("kind", "")).startswith("flowevo.crystals.CrystalModel"):
        from flowevo.domains.crystals.model import load_crystal_model

        require_cpu(device, "sampling a crystal model", "its Whitening encoder takes no device")
        crystal = load_crystal_model(model_path)
    c = _parse_condition(condition, model, meta, crystal)
    encoder = crystal.encoder if crystal is not None else None
    z, x = sample_flow(model, n, c, torch.Generator().manual_seed(seed), FixedGrid("rk4", steps), encoder)
    arrays = {"x": x.cpu().numpy(), "z": z.cpu().numpy()}
    x = x.cpu()
    structures = None
    if crystal is not None:
        from flowevo.domains.crystals.objectives import structures_payload

        structures = structures_payload(crystal.representation)(x)["structures"]
    written = _add_structures(arrays, structures, cif_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(out, **arrays)
    cfo = meta.get("cfo") or {}
    return {"model": str(model_path), "n": n, "out": str(out), "x_shape": list(arrays["x"].shape),
            "cfo_round": cfo.get("round"), "cifs": written, "seed": seed, "device": device}


def _cfo_condition(text: str | None, flow, default):
    """``--condition`` for a ``flowevo cfo`` round, in the domain's units (class id or values); default: the run's."""
    from flowevo.workflows.cfo_flow import null_condition_of

    if text is None:
        return default
    text = text.strip()
    if text.lower() == "null":
        return null_condition_of(flow)
    try:
        if flow.num_classes and not flow.value_dim:
            return flow.condition(int(text), None)
        return flow.condition(None, [float(v) for v in text.split(",")])
    except ValueError as exc:
        raise ValueError(f"--condition {text!r}: {exc}") from exc


def _sample_cfo_round(path: Path, n: int, out: Path, condition: str | None, seed: int, steps: int,
                      cif_dir: Path | None, device: str) -> dict:
    """A round of ``flowevo cfo``: the model it was fine-tuned from, rebuilt by its domain, with the round's weights."""
    import numpy as np
    import torch

    from flowevo.cfo import sample_flow
    from flowevo.flow import FixedGrid
    from flowevo.workflows.cfo_flow import load_round

    velocity, flow, default, meta = load_round(path, device)
    c = _cfo_condition(condition, flow, default)
    z, x = sample_flow(velocity, n, c, torch.Generator().manual_seed(seed), FixedGrid("rk4", steps), flow.encoder)
    arrays = {"x": x.cpu().numpy(), "z": z.cpu().numpy()}
    structures = flow.payload(x.cpu()).get("structures") if flow.payload is not None else None
    written = _add_structures(arrays, structures, cif_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(out, **arrays)
    return {"model": str(path), "n": n, "out": str(out), "x_shape": list(arrays["x"].shape),
            "cfo_round": meta["cfo"]["round"], "domain": flow.kind, "cifs": written, "seed": seed, "device": device}


@app.command("sample", epilog="Example: flowevo sample --model out/constrained/checkpoints/synthetic/round_008.pt "
                              "--n 1000 --out samples.npz")
def sample(
    model: Path = typer.Option(..., help="A flowevo checkpoint: a round of flowevo cfo (RUN_DIR/checkpoints/"
                                         "round_<k>.pt, any domain), a CFO benchmark round, a crystal or toy model."),
    n: int = typer.Option(..., min=1, help="Number of samples."),
    out: Path = typer.Option(..., help="Output .npz: x (N, *D) data space, z (N, *S) flow space; crystals: formula."),
    condition: str | None = typer.Option(None, help="null, a class id, or comma-separated values (crystals: the "
                                                       "property in its units). Default: the CFO run's condition, else null."),
    seed: int = typer.Option(0, help="Seed of the noise."),
    steps: int = typer.Option(10, min=1, help="rk4 steps of the decode."),
    cif: Path | None = typer.Option(None, help="Crystal models: also write <dir>/<i>.cif."),
    device: str = device_option(),
    quiet: bool = typer.Option(False, "--quiet", help="No progress output."),
    as_json: bool = typer.Option(False, "--json", help="Print a summary as JSON on stdout."),
) -> None:
    """Sample a saved flow (any round of flowevo cfo or of the CFO benchmark, a crystal or toy model) into an .npz."""
    if out.suffix != ".npz":
        fail(f"--out {out}: the output must be a .npz file")
    m = guarded(lambda: _sample(model, n, out, condition, seed, steps, cif, device_or_fail(device)), quiet)
    print_metrics(m, as_json, f"flowevo sample -> {out}", [(k, str(v)) for k, v in m.items()])
