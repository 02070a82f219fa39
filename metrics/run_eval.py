"""Evaluate a run directory: its generator against its own dataset.

`evaluate_run(path, ...)` restores a run's generator (the EMA copy by
default), draws N images from it and N real images from the run's dataset
(metrics/evaluation.py does the drawing and scoring) and writes the result
to <run>/eval/metrics_step<step>_n<N>_seed<S>.json (..._no_ema.json for the
raw G of an EMA run; real_vs_real_n<N>_seed<S>.json with compare_real).
"""

import dataclasses
import json
import os
import time
from typing import Dict, Optional, Sequence

from common import files
from configs import run_files
from metrics import evaluation
from models import checkpoint


def evaluate_run(
  path: str,
  metrics: Sequence[str] = ('swd',),
  num_samples: int = 2048,
  seed: int = 0,
  inception_weights: Optional[str] = 'imagenet',
  use_ema: bool = True,
  data_dir: str = '',
  batch_size: int = 64,
  compare_real: bool = False,
  write: bool = True,
  coverage_inception: bool = False,
) -> Dict[str, object]:
  """Metrics of a run's generator against its dataset; writes them to eval/.

  Args:
    path: run directory, its checkpoints/ folder or a checkpoint prefix.
    metrics: names from METRICS.
    num_samples: images per set.
    seed: latents, real-image order, patch and projection draws, KID subsets.
    inception_weights: weights file, 'imagenet' or None (random; tests only).
    use_ema: sample the EMA copy of G when the run has one.
    data_dir: overrides the run's data_dir (a run moved to another machine).
    batch_size: generator and InceptionV3 batch.
    compare_real: real vs real instead of generated vs real (the floor).
    write: write the JSON file (its path is returned under 'output').
    coverage_inception: compute coverage on Inception features too.

  Raises:
    configs.run_files.RunDirError: no run or checkpoint at `path`, or a
      checkpoint without every weight of the generator.
    metrics.evaluation.EvaluationError: unknown metrics, or too few real
      images.
    data.pipeline.DataError: the run's dataset cannot be found.
    metrics.inception.InceptionWeightsError: FID/KID without weights.
  """
  metrics = evaluation.parse_metrics(metrics)
  evaluation.check_counts(metrics, num_samples)
  if compare_real:
    run_dir, prefix = checkpoint.find_checkpoint(path)
    config = run_files.load_config(run_dir)
  else:
    # The newest checkpoint, even if a running train.py rotates it away.
    config, run_dir, prefix, generator = checkpoint.load_generator_from(path, use_ema)
  if data_dir:
    config = dataclasses.replace(config, data_dir=data_dir)
  step = checkpoint.checkpoint_step(prefix)
  if compare_real:
    result = evaluation.real_vs_real(
      config, metrics, num_samples, seed, inception_weights, coverage_inception
    )
    name = f'real_vs_real_n{num_samples}_seed{seed}.json'
  else:
    key = checkpoint.generator_key(config, use_ema)
    extract = evaluation.feature_extractor(
      metrics, inception_weights, batch_size, coverage_inception
    )
    tick = time.perf_counter()
    fake = evaluation.generate_images(generator, config, num_samples, seed, batch_size)
    generate_seconds = time.perf_counter() - tick
    real = evaluation.real_images(config, num_samples, seed)
    result = dict(
      mode='generated_vs_real',
      generator=key,
      image_size=[config.image_height, config.image_width],
      num_samples=num_samples,
      seed=seed,
      **evaluation.compute_metrics(fake, real, metrics, seed, extract),
    )
    result['seconds']['generate'] = generate_seconds
    no_ema = key == 'generator' and config.ema_decay > 0
    # N and the seed are in the name: a rerun with others adds a file.
    name = f'metrics_step{step}_n{num_samples}_seed{seed}{"_no_ema" if no_ema else ""}.json'
  result.update(run_dir=run_dir, checkpoint=prefix, step=step)
  if write:
    os.makedirs(os.path.join(run_dir, run_files.EVAL_DIR), exist_ok=True)
    result['output'] = os.path.join(run_dir, run_files.EVAL_DIR, name)
    write_json(result['output'], result)
  return result


def write_json(path: str, result: Dict[str, object]) -> None:
  """Writes `result` to `path` atomically (a crash leaves no half file)."""
  files.atomic_write(path, lambda f: f.write(json.dumps(result, indent=2) + '\n'))
