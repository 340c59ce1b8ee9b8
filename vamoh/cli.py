"""The ``vamoh`` command: parameter counts of a preset, training and evaluating one model by hand.

    vamoh params --model vamoh --preset celebahq64        # ~12.95M per hypernetwork, ~129.5M for K = 10
    vamoh presets                                          # every model's presets
    vamoh datasets                                         # the dataset registry
    vamoh train --dataset polymnist --model vamoh --preset tiny --out runs/poly.pt --epochs 2
    vamoh sample --checkpoint runs/poly.pt --n 16 --upsample 2 --out samples.npz

The whole comparison is the Snakemake workflow (see README.md); these commands are for one model.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from .checks import ConfigError


def _info_for(dataset: str):
    from .data import DATASETS

    if dataset not in DATASETS:
        raise ConfigError(f"--dataset {dataset!r} is not one of {sorted(DATASETS)}")
    return DATASETS[dataset].info


def cmd_params(args: argparse.Namespace) -> int:
    from .interface import build_model, get_model_class

    cls = get_model_class(args.model)
    dataset = args.dataset or (args.preset if args.preset in ("celebahq64", "shapes3d", "polymnist", "era5", "shapenet") else "polymnist")
    model = build_model(args.model, _info_for(dataset), args.preset)
    counts = model.parameter_counts()
    print(f"{args.model} preset {args.preset!r} on {dataset}: {counts['total']:,} parameters")
    for name, n in counts.items():
        if name != "total":
            print(f"  {name:<14} {n:>14,}")
    hyper = getattr(model, "hypernets", None)
    if hyper is not None and hasattr(hyper, "num"):
        per = counts["hypernets"] / hyper.num
        print(f"  per hypernetwork: {per:,.0f} ({per / 1e6:.2f}M), K = {hyper.num}: {counts['hypernets'] / 1e6:.1f}M")
    del cls
    return 0


def cmd_presets(args: argparse.Namespace) -> int:
    from .interface import available_models, get_model_class

    for name in available_models():
        print(f"{name}: {', '.join(sorted(get_model_class(name).presets))}")
    return 0


def cmd_datasets(args: argparse.Namespace) -> int:
    from .data import DATASETS

    for name, spec in DATASETS.items():
        print(f"{name:<11} {spec.kind:<7} grid {spec.grid_shape}  likelihood {spec.likelihood:<21} formats {', '.join(spec.formats)}")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from .config import from_dict
    from .data import load_dataset, make_config
    from .interface import build_model
    from .train import TrainConfig, Trainer

    try:
        overrides: dict[str, Any] = json.loads(args.set) if args.set else {}
    except json.JSONDecodeError as err:
        raise ConfigError(f"--set {args.set!r} is not valid JSON ({err}); expected an object such as '{{\"K\": 4}}'") from None
    if not isinstance(overrides, dict):
        raise ConfigError(f"--set {args.set!r}: expected a JSON object of config keys, got {type(overrides).__name__}")
    splits = load_dataset(make_config({"name": args.dataset, "source": args.source, **({"path": args.path} if args.path else {})}),
                          args.cache_dir)
    train_set = splits["train"]
    print(f"data: {train_set.label} ({len(train_set)} training samples)")
    model = build_model(args.model, train_set.spec.info, args.preset, overrides)
    tcfg = from_dict(TrainConfig, {"epochs": args.epochs, "max_steps": args.max_steps, "batch_size": args.batch_size,
                                   "seed": args.seed, "device": args.device, "points_per_sample": train_set.spec.train_points})
    history = Trainer(model, train_set, tcfg, args.out).fit()
    if history:
        print("last:", {k: round(v, 4) for k, v in history[-1].items()})
    print(f"checkpoint: {args.out} (rerun the same command to resume or extend with more --epochs)")
    return 0


def cmd_sample(args: argparse.Namespace) -> int:
    import numpy as np
    import torch

    from .pipeline.stages import _grid, query_grid
    from .data import DATASETS
    from .train import load_model

    model, payload = load_model(args.checkpoint)
    model.eval()
    spec = next((s for s in DATASETS.values() if s.info == model.info), None)
    if spec is None:
        raise ConfigError(f"{args.checkpoint}: no registered dataset matches the model's data info {model.info}")
    coords, shape = query_grid(spec, args.upsample)
    samples = model.sample(args.n, coords, generator=torch.Generator().manual_seed(args.seed))
    np.savez_compressed(args.out, samples=_grid(samples, shape))
    print(f"{args.n} samples of shape {shape} -> {args.out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="vamoh", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True)
    p = sub.add_parser("params", help="parameter counts of a model preset")
    p.add_argument("--model", default="vamoh")
    p.add_argument("--preset", default="celebahq64")
    p.add_argument("--dataset", default=None, help="dataset the model is built for (default: the preset's)")
    p.set_defaults(fn=cmd_params)
    sub.add_parser("presets", help="every model's presets").set_defaults(fn=cmd_presets)
    sub.add_parser("datasets", help="the dataset registry").set_defaults(fn=cmd_datasets)
    t = sub.add_parser("train", help="train one model on one dataset (resumes when --out exists)")
    t.add_argument("--dataset", required=True)
    t.add_argument("--model", default="vamoh")
    t.add_argument("--preset", default="tiny")
    t.add_argument("--source", default="standin", choices=["standin", "real"])
    t.add_argument("--path", default=None, help="real dataset path (with --source real)")
    t.add_argument("--cache-dir", default=None)
    t.add_argument("--out", required=True, help="checkpoint path")
    t.add_argument("--epochs", type=int, default=None)
    t.add_argument("--max-steps", type=int, default=None)
    t.add_argument("--batch-size", type=int, default=None)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--device", default="auto")
    t.add_argument("--set", default=None, help='model config overrides as JSON, e.g. \'{"K": 4}\'')
    t.set_defaults(fn=cmd_train)
    s = sub.add_parser("sample", help="sample a trained checkpoint at any resolution")
    s.add_argument("--checkpoint", required=True)
    s.add_argument("--n", type=int, default=16)
    s.add_argument("--upsample", type=int, default=1)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--out", required=True)
    s.set_defaults(fn=cmd_sample)
    args = ap.parse_args(argv)
    try:
        return args.fn(args)
    except (ConfigError, FileNotFoundError, ValueError) as err:
        print(f"vamoh {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
