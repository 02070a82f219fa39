#!/usr/bin/env bash
# GPU check: every preset's train step in the variants that matter on a GPU,
# the input pipeline, and a 2-minute celeba64 run on real faces; about 8
# minutes on one GPU. Results go to OUT_DIR (default gpu_check/), one log
# per part; copy the figures into BENCHMARKS.md with the GPU's name.
#
#   bash bench/gpu_check.sh [CELEBA_DIR] [OUT_DIR]
#
# CELEBA_DIR: a CelebA folder (official or Kaggle layout, or a few thousand
# of its faces); without it the run trains on the synthetic faces.
set -u -o pipefail
cd "$(dirname "$0")/.."
DATA=${1:-}
OUT=${2:-gpu_check}
PY=${PYTHON:-python3}
export TF_CPP_MIN_LOG_LEVEL=2 PYTHONUNBUFFERED=1
mkdir -p "$OUT"

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv \
  | tee "$OUT/gpu.txt" || echo "nvidia-smi failed: is there a GPU?"
if ! $PY - <<'PY' 2>&1 | tee "$OUT/tensorflow.txt"
import sys
try:
  import tensorflow as tf
except ImportError as e:
  sys.exit(f'TensorFlow is not installed ({e}): pip install -r requirements.txt '
           '"tensorflow[and-cuda]" first; nothing was timed.')
gpus = tf.config.list_physical_devices('GPU')
print('TensorFlow', tf.__version__, 'built with CUDA', tf.test.is_built_with_cuda(),
      'GPUs', gpus)
sys.exit(0 if gpus else 'TensorFlow sees no GPU (CPU-only build, or no driver): '
         'nothing was timed.')
PY
then
  exit 2
fi

# 1. The step: every preset, the precisions and XLA, several steps per call
#    (a GPU step is milliseconds: Python overhead counts). ~4 minutes.
timeout 270 $PY bench/train_step.py \
  --presets=celeba48,celeba64,celeba157x128 \
  --variants=plain,auto,float32,bf16,fp16,xla,xla_bf16,xla_bf16_calls8 \
  --repeats=3 --steps=16 2>&1 | tee "$OUT/train_step.log"

# 2. The input pipeline, which a fast GPU step can outrun. ~1 minute.
SOURCES=synthetic,synthetic_cached
[ -n "$DATA" ] && SOURCES=folder,$SOURCES
timeout 90 $PY bench/input_pipeline.py --preset=celeba64 --sources=$SOURCES \
  ${DATA:+--data_dir="$DATA"} --batches=48 2>&1 | tee "$OUT/input_pipeline.log"

# 3. Two minutes of train.py on celeba64 as a user would run it, and the
#    share of its wall clock inside train steps. ~2.5 minutes.
DATASET=${DATA:+celeba}
timeout 180 $PY bench/loop_overhead.py --preset=celeba64 \
  --dataset=${DATASET:-synthetic} --data_dir="$DATA" --epochs=100000 \
  --max_seconds=120 2>&1 | tee "$OUT/celeba64_run.log"
echo "Done: $OUT"
