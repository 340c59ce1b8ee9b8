#!/usr/bin/env bash
# The GPU checks of the suite in one script, sized for about 8 minutes on one GPU (results appended to
# benchmarks/results/gpu.md with the machine they ran on). Run from the repository root on a CUDA machine:
#   bash benchmarks/gpu_check.sh
# 0. every model's training step under torch.cuda.set_sync_debug_mode("error") (no host synchronisation);
# 1. the tiny DAG with device: cuda, then every recorded device (metrics, timing, training) checked to be CUDA;
# 2. VAMoH at the CelebA-HQ preset: training samples/s, peak memory, reconstruction latency (fp32 and bf16);
# 3. Tables 2 and 5 at the paper architectures (VAMoH's Table 3 presets, Functa 512 x 15) on every dataset.
set -euo pipefail
cd "$(dirname "$0")/.."
python -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'no CUDA device: this script is for a GPU machine')"
work=$(mktemp -d /tmp/vamoh_gpu.XXXX)
echo "== 0. training steps without host synchronisation"
python benchmarks/bench_gpu.py nosync
echo "== 1. tiny DAG on CUDA ($work)"
python -m snakemake -s "$PWD/Snakefile" --directory "$work" --cores 4 --configfile config/tiny.yaml --config device=cuda threads=2 -q
python benchmarks/bench_gpu.py devices "$work/results/tiny"
echo "== 2. VAMoH at the CelebA-HQ preset"
python benchmarks/bench_gpu.py vamoh
echo "== 3. Tables 2/5 at the paper architectures"
python benchmarks/bench_gpu.py tables "$work/tables"
echo "results: benchmarks/results/gpu.md"
