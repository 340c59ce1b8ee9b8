"""The ``vamoh`` command: one model by hand, and the tools around the workflow's outputs.

    vamoh params --model vamoh --preset celebahq64        # ~12.95M per hypernetwork, ~129.5M for K = 10
    vamoh presets                                          # every model's presets
    vamoh datasets                                         # the dataset registry
    vamoh train --dataset polymnist --model vamoh --preset tiny --out runs/poly.pt --epochs 2
    vamoh sample --checkpoint runs/poly.pt --n 16 --upsample 2 --out samples.npz
    vamoh sample --run-id <mlflow run id> --tracking-uri sqlite:///results/demo/mlflow.db --n 16 --out samples.npz
    vamoh reconstruct --checkpoint runs/poly.pt --input digit.png --mask centre --upsample 2 --out completed.png
    vamoh recompute results/demo/polymnist/vamoh/seed0/metrics.json
    vamoh import gasp gasp_celebahq.pt --dataset celebahq64 --out runs/gasp_official.pt
    vamoh check-config config/paper.yaml                   # what the workflow checks before its first job

The whole comparison is the Snakemake workflow (see README.md); these commands are for one model.
Every argument is checked before any work starts; a bad one gets one line naming it.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from .checks import CheckpointError, ConfigError, DataError, TrainingDivergedError, check_input_file, check_seed, resolve_device


def _info_for(dataset: str):
    from .data import DATASETS

    if dataset not in DATASETS:
        raise ConfigError(f"--dataset {dataset!r} is not one of {sorted(DATASETS)}")
    return DATASETS[dataset].info


def _positive(name: str, value: int | None, allow_none: bool = True) -> None:
    if value is None and allow_none:
        return
    if not isinstance(value, int) or value < 1:
        raise ConfigError(f"{name} {value}: expected an integer >= 1")


def _writable_file(flag: str, path: str | Path) -> Path:
    """``path`` can be written as a file: not a directory, its parent creatable and writable (checked before work)."""
    import os

    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"{flag} {path} is a directory; name a file in it, e.g. {path / 'out.pt'}")
    existing = next((p for p in [path.parent, *path.parent.parents] if p.exists()), Path("."))
    if not existing.is_dir():
        raise ConfigError(f"{flag} {path}: {existing} is a file, not a directory")
    if not os.access(existing, os.W_OK):
        raise ConfigError(f"{flag} {path}: {existing} is not writable")
    _probe(flag, path, existing)
    return path


def _probe(flag: str, path: Path, folder: Path) -> None:
    """Create and remove a file in ``folder``: os.access says yes to root everywhere, also in /proc or a read-only
    mount, where the write would fail only after the work (a whole training) is done."""
    import os
    import tempfile

    try:
        fd, tmp = tempfile.mkstemp(prefix=".vamoh-probe-", dir=folder)
    except OSError as err:
        raise ConfigError(f"{flag} {path}: cannot write in {folder} ({err.strerror or err})") from None
    os.close(fd)
    os.unlink(tmp)


def _writable_dir(flag: str, path: str | Path) -> Path:
    """``path`` can be used as a folder: a directory (or creatable under one) that can be written in, checked before work."""
    import os

    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ConfigError(f"{flag} {path} is a file; expected a directory")
    existing = next((p for p in [path, *path.parents] if p.exists()), Path("."))
    if not existing.is_dir():
        raise ConfigError(f"{flag} {path}: {existing} is a file, not a directory")
    if not os.access(existing, os.W_OK):
        raise ConfigError(f"{flag} {path}: {existing} is not writable")
    _probe(flag, path, existing)
    return path


def _os_error(err: OSError) -> str:
    """An OSError as one line that names the file: 'PATH: reason'."""
    names = " -> ".join(str(n) for n in (err.filename, err.filename2) if n is not None)
    reason = err.strerror or str(err)
    return f"{names}: {reason}" if names else reason


def _output(flag: str, path: str | Path, accepted: dict[str, str]) -> Path:
    """The one output-path rule of the command: ``path`` must end in one of ``accepted`` (suffix -> what is written
    there, compared case-insensitively) and be writable; what is written is exactly ``path`` (and the siblings the
    command prints), never a name with a suffix added."""
    path = _writable_file(flag, path)
    if path.suffix.lower() not in accepted:
        what = "; ".join(f"{s}: {w}" for s, w in accepted.items())
        raise ConfigError(f"{flag} {path}: unknown suffix {path.suffix or '(none)'!r}; expected one of {list(accepted)} ({what})")
    return path


def cmd_params(args: argparse.Namespace) -> int:
    from .data import DATASETS
    from .interface import build_model

    dataset = args.dataset or (args.preset if args.preset in DATASETS else "polymnist")
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


def _overrides(text: str | None) -> dict[str, Any]:
    try:
        overrides: Any = json.loads(text) if text else {}
    except json.JSONDecodeError as err:
        raise ConfigError(f"--set {text!r} is not valid JSON ({err}); expected an object such as '{{\"K\": 4}}'") from None
    if not isinstance(overrides, dict):
        raise ConfigError(f"--set {text!r}: expected a JSON object of config keys, got {type(overrides).__name__}")
    return overrides


def cmd_train(args: argparse.Namespace) -> int:
    from .config import from_dict, to_dict
    from .data import load_prepared, make_config, prepare, read_record
    from .interface import get_model_class
    from .train import TrainConfig, Trainer, seed_everything

    # everything that can be checked without the data is checked first
    for flag in ("--epochs", "--max-steps", "--batch-size"):
        _positive(flag, getattr(args, flag[2:].replace("-", "_")))
    if args.seed < 0:
        raise ConfigError(f"--seed {args.seed}: expected an integer >= 0")
    check_seed("--seed", args.seed)
    _info_for(args.dataset)
    if args.cache_dir is not None:
        _writable_dir("--cache-dir", args.cache_dir)
    if args.path and args.source == "standin":
        raise ConfigError(f"--path {args.path} is given but --source is 'standin', so it would be ignored; add --source real")
    out = _writable_file("--out", args.out)
    cls = get_model_class(args.model)
    if args.preset not in cls.presets:
        raise ConfigError(f"--preset {args.preset!r}: {args.model} has no such preset (has {sorted(cls.presets)})")
    config = cls.config_from(args.preset, _overrides(args.set), seed=args.seed, where="--set")  # the workflow's rule
    data_cfg = make_config({"name": args.dataset, "source": args.source, **({"path": args.path} if args.path else {})})
    tcfg = from_dict(TrainConfig, {"epochs": args.epochs, "max_steps": args.max_steps, "batch_size": args.batch_size,
                                   "seed": args.seed, "device": args.device})
    path = prepare(data_cfg, args.cache_dir)
    train_set = load_prepared(path, train_points=data_cfg.train_points)["train"]
    print(f"data: {train_set.label} ({len(train_set)} training samples)")
    tcfg = from_dict(TrainConfig, {**to_dict(tcfg), "points_per_sample": train_set.train_points})
    seed_everything(args.seed)  # seed first, build second: the initialisation follows --seed
    model = cls(config, train_set.info)
    identity = {"dataset": args.dataset, "data_source": args.source, "data_sha256": read_record(path)["content_sha256"]}
    history = Trainer(model, train_set, tcfg, out, identity=identity).fit()
    if history:
        print("last:", {k: round(v, 4) for k, v in history[-1].items()})
    print(f"checkpoint: {out} (rerun the same command to resume or extend with more --epochs)")
    return 0


def _load_for_use(args: argparse.Namespace):
    from .train import load_model

    if (args.checkpoint is None) == (args.run_id is None):
        raise ConfigError("name the model with exactly one of --checkpoint PATH or --run-id ID (with --tracking-uri)")
    device = resolve_device(args.device, "--device")  # 'auto', 'cpu', 'cuda[:N]'; CUDA asked for where there is none is refused
    path = args.checkpoint
    if args.run_id is not None:
        import tempfile

        from . import tracking

        check_uri = tracking.resolve_tracking_uri("cli", args.tracking_uri) if args.tracking_uri else None
        if check_uri is None:
            raise ConfigError("--run-id needs --tracking-uri (e.g. sqlite:///results/demo/mlflow.db)")
        tracking.check_existing_store(check_uri, "--tracking-uri")
        path = tracking.download_checkpoint(check_uri, args.run_id, tempfile.mkdtemp(prefix="vamoh-run-"))
        print(f"checkpoint of run {args.run_id}: {path}")
    model, _ = load_model(path, device)
    return model.eval()


MAX_OUTPUT_BYTES = 2 * 1024**3  # float32 values a sample/reconstruct command may produce (the model's activations are a multiple)


def _check_size(flags: str, n: int, grid_shape: tuple[int, ...], upsample: int, sphere: bool, features: int) -> None:
    """Refuse, before any work, an output larger than ``MAX_OUTPUT_BYTES``, with the estimate."""
    if sphere:
        points = ((grid_shape[0] - 1) * upsample + 1) * (grid_shape[1] * upsample)
    else:
        points = 1
        for g in grid_shape:
            points *= (g - 1) * upsample + 1
    size = n * points * features * 4
    if size > MAX_OUTPUT_BYTES:
        raise ConfigError(f"{flags}: {n:,} x {points:,} points x {features} feature(s) = {size / 1024**3:,.1f} GiB of float32 output "
                          f"(and a multiple of it while computing), more than the {MAX_OUTPUT_BYTES / 1024**3:.0f} GiB this command allows; "
                          f"lower --n or --upsample")


SAMPLE_OUTPUTS = {".npz": "the samples array"}
RECONSTRUCT_OUTPUTS = {".png": "the figure, and its arrays beside it as .npz", ".npz": "the arrays only"}


def cmd_sample(args: argparse.Namespace) -> int:
    import torch

    from .infer import SPHERE_KIND
    from .io import atomic_write_npz
    from .pointcloud import query_grid

    _positive("--n", args.n, allow_none=False)
    _positive("--upsample", args.upsample, allow_none=False)
    check_seed("--seed", args.seed)
    out = _output("--out", args.out, SAMPLE_OUTPUTS)
    model = _load_for_use(args)
    sphere = model.info.kind == SPHERE_KIND
    _check_size(f"--n {args.n} --upsample {args.upsample}", args.n, tuple(model.info.grid_shape), args.upsample, sphere, model.info.feature_dim)
    coords, shape = query_grid(tuple(model.info.grid_shape), args.upsample, sphere=model.info.kind == SPHERE_KIND)
    samples = model.sample(args.n, coords, generator=torch.Generator().manual_seed(args.seed))
    atomic_write_npz(out, {"samples": samples.clamp(0, 1).reshape(args.n, *shape, samples.shape[-1]).cpu().numpy()})
    print(f"{args.n} samples of shape {shape} -> {out}")
    return 0


def cmd_reconstruct(args: argparse.Namespace) -> int:
    from .infer import completion_mask, read_input, reconstruct_sample, save_result

    _positive("--upsample", args.upsample, allow_none=False)
    out = _output("--out", args.out, RECONSTRUCT_OUTPUTS)
    check_input_file(args.input, "--input")
    if args.mask not in ("none", "centre", "half", "outpaint") and Path(args.mask).exists():
        check_input_file(args.mask, "--mask")
    model = _load_for_use(args)
    if not model.can_reconstruct:
        raise ConfigError(f"{model.model_name} cannot reconstruct: it has no encoder and no inner loop, only generation (use vamoh sample)")
    _check_size(f"--upsample {args.upsample}", 1, tuple(model.info.grid_shape), args.upsample, model.info.kind == "field", model.info.feature_dim)
    features = read_input(args.input, model.info)
    mask = completion_mask(args.mask, tuple(model.info.grid_shape))
    result = reconstruct_sample(model, features, mask, args.upsample)
    title = f"{type(model).display_label(model.config)}: {Path(args.input).name}, mask {args.mask}, {args.upsample}x"
    for path in save_result(result, out, title):
        print(f"wrote {path}")
    return 0


def cmd_recompute(args: argparse.Namespace) -> int:
    from .eval.io import read_json
    from .eval.recompute import compare, recompute_metrics

    bad = 0
    for path in args.metrics:
        check_input_file(path, "metrics file")
    for path in args.metrics:
        again = recompute_metrics(path)  # checks the file first (a foreign or damaged one is named)
        saved = read_json(path)["metrics"]
        problems = compare(saved, again)
        print(f"{path}: {len(again)} metrics recomputed, " + ("all agree" if not problems else f"{len(problems)} differ"))
        for p in problems:
            print(f"  {p}")
        bad += bool(problems)
    return 1 if bad else 0


def cmd_import(args: argparse.Namespace) -> int:
    from .interface import get_model_class
    from .train import save_as_suite_checkpoint

    info = _info_for(args.dataset)
    cls = get_model_class(args.source)  # the registry finds the model's importer (its class names the module)
    if cls.importer is None:
        raise ConfigError(f"{args.source} has no importer for published checkpoints (a model class names one in `importer`)")
    check_input_file(args.path, f"published {args.source} checkpoint")
    if args.modulations is not None:
        check_input_file(args.modulations, "--modulations")
    out = _writable_file("--out", args.out)
    source = {"path": args.path, "trust_pickle": args.trust_pickle, **({"modulations": args.modulations} if args.modulations else {})}
    model = cls.import_published(source, info, preset=args.dataset)  # the same call as the workflow's import rule
    save_as_suite_checkpoint(model, out)
    print(f"{args.source} checkpoint {args.path} -> {out} (score it with the workflow's evaluate rule or vamoh sample)")
    return 0


def cmd_check_config(args: argparse.Namespace) -> int:
    """Everything the workflow checks before its first job, for a config file, with the file's line on a YAML error."""
    from .pipeline import preflight
    from .pipeline.runconfig import RunConfig

    from .pipeline.plan import plan_lines

    from .pipeline.configfile import load_yaml

    empty = not load_yaml(args.config)
    rc = RunConfig.from_file(args.config)
    preflight.check(rc)
    print(f"{args.config}: valid" + (" (it sets nothing, so it means the full demo: every default of the schema)" if empty else ""))
    print("\n".join(plan_lines(rc)))
    return 0


def _model_source(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoint", default=None, help="a suite checkpoint file")
    p.add_argument("--run-id", default=None, help="an MLflow run id whose checkpoint to use (a training job's run)")
    p.add_argument("--tracking-uri", default=None, help="the MLflow store of --run-id, e.g. sqlite:///results/demo/mlflow.db")
    p.add_argument("--device", default="cpu")


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
    t = sub.add_parser("train", help="train one model on one dataset (resumes when --out is the same run's checkpoint)")
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
    s = sub.add_parser("sample", help="sample a trained model at any resolution")
    _model_source(s)
    s.add_argument("--n", type=int, default=16)
    s.add_argument("--upsample", type=int, default=1)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--out", required=True, help="the samples array (.npz)")
    s.set_defaults(fn=cmd_sample)
    r = sub.add_parser("reconstruct", help="super-resolution and completion of your own image, ERA5 field or voxel grid")
    _model_source(r)
    r.add_argument("--input", required=True, help="an image (.png/.jpg, 8 or 16 bit), an ERA5 .npz (GASP's: latitude, longitude, temperature in kelvin) or a voxel grid (.pt/.npy)")
    r.add_argument("--mask", default="none", help="none | centre | half | outpaint | PATH (.npy or image; non-zero = observed)")
    r.add_argument("--upsample", type=int, default=2)
    r.add_argument("--out", required=True, help="the figure (.png; its arrays go beside it with .npz) or the arrays only (.npz)")
    r.set_defaults(fn=cmd_reconstruct)
    c = sub.add_parser("recompute", help="recompute every number of metrics.json files from their saved scores")
    c.add_argument("metrics", nargs="+", help="metrics.json files written by the workflow's evaluate rule")
    c.set_defaults(fn=cmd_recompute)
    i = sub.add_parser("import", help="a published GASP or Functa checkpoint as a suite checkpoint")
    i.add_argument("source", help="a registered model whose class names an importer (gasp, functa)")
    i.add_argument("path", help="the published file (GASP: the torch.load dict; Functa: celeba_params_*_latents.npz)")
    i.add_argument("--modulations", default=None, help="Functa: the published modulations file; the flow prior is fitted on them")
    i.add_argument("--dataset", required=True)
    i.add_argument("--out", required=True)
    i.add_argument("--trust-pickle", action="store_true", help="allow arbitrary pickled objects in the file (only for files you trust)")
    i.set_defaults(fn=cmd_import)
    k = sub.add_parser("check-config", help="check a run config as the workflow will, before running it")
    k.add_argument("config", help="e.g. config/paper.yaml")
    k.set_defaults(fn=cmd_check_config)
    args = ap.parse_args(argv)
    try:
        return args.fn(args)
    except (ConfigError, DataError, CheckpointError, FileNotFoundError, TrainingDivergedError, ValueError) as err:
        message = str(err) if not (isinstance(err, FileNotFoundError) and err.filename) else _os_error(err)
    except OSError as err:  # a file that cannot be read or written (permissions, a full disk, /proc): named, one line
        message = _os_error(err)
    print(f"vamoh {args.command}: error: {' '.join(message.split())}", file=sys.stderr)  # one line, whatever the library wrote
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
