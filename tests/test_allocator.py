"""Config key malloc: tuned (vamoh.pipeline.runconfig.TUNED_GLIBC) changes where glibc puts tensors, never a value.

Each model trains a few steps, then reconstructs and samples, in two fresh processes: one with the system's
allocator and one with the tuned one; the parameters and outputs must be bitwise the same. The tensors are large
enough (a 64x64 grid, several samples) for glibc's default to map them with mmap, which the tuned setting never does.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from vamoh.interface import available_models
from vamoh.pipeline.runconfig import TUNED_GLIBC

SCRIPT = textwrap.dedent('''
    import hashlib, sys
    import numpy as np, torch
    from vamoh.data.dataset import FunctionDataset
    from vamoh.data.registry import get_spec
    from vamoh.interface import build_model

    torch.set_num_threads(1)
    spec = get_spec("celebahq64")
    images = np.random.default_rng(0).integers(0, 256, size=(8, *spec.grid_shape, 3), dtype=np.uint8)
    data = FunctionDataset(spec, images, is_standin=True, label="celebahq64 test", split="train")
    torch.manual_seed(0)
    model = build_model(sys.argv[1], data.info, "tiny", {})
    opts = model.make_optimizers()
    g = torch.Generator().manual_seed(0)
    for step in range(3):
        model.training_step(data.train_batch(torch.arange(4) + step, g), opts, step, 0)
    model.eval()
    outputs = [p.detach() for p in model.parameters()]
    with torch.no_grad():
        batch = data.batch(torch.arange(6))
        if sys.argv[1] != "gasp":  # a GAN has no encoder or inner loop
            outputs.append(model.reconstruct(batch, batch.coords))
        if sys.argv[1] != "functa":  # Functa samples only after its prior stage
            outputs.append(model.sample(20, batch.coords[0], generator=torch.Generator().manual_seed(1)))
    print(hashlib.sha256(b"".join(t.contiguous().numpy().tobytes() for t in outputs)).hexdigest())
''')


def run(model: str, tunables: str | None) -> str:
    env = {k: v for k, v in os.environ.items() if k != "GLIBC_TUNABLES"}
    if tunables is not None:
        env["GLIBC_TUNABLES"] = tunables
    out = subprocess.run([sys.executable, "-c", SCRIPT, model], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip().splitlines()[-1]


@pytest.mark.parametrize("model", available_models())
def test_the_tuned_allocator_gives_bitwise_the_same_training_and_outputs(model):
    assert run(model, None) == run(model, TUNED_GLIBC)
