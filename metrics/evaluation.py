"""Evaluate a run: N generated vs N real images -> SWD, FID, KID.

`evaluate_run(path, ...)` restores a run's generator (the EMA copy by
default), draws N images from it and N real images from the run's own
dataset through the training pipeline (same crop and resize), computes the
asked metrics and writes them to <run>/eval/metrics_step<step>_n<N>_seed<S>.json
(..._no_ema.json for the raw G of an EMA run; real_vs_real_n<N>_seed<S>.json
for `real_vs_real`). `real_vs_real(config, ...)` measures
the floor between two disjoint real sets of any config, with no run.
"""

import dataclasses
import json
import os
import time
from typing import Dict, Optional, Sequence, Tuple

import numpy as np
import tensorflow as tf

from data import pipeline as data_pipeline
from configs.presets import Config
from metrics import fid as fid_lib
from metrics import swd as swd_lib
from training import generation
from training import rundir

METRICS = ('swd', 'fid', 'kid')
EVAL_DIR = 'eval'
# Evaluation's latents come from a stream of their own (generation uses 11-13).
LATENT_STREAM = 2


class EvaluationError(ValueError):
  """The evaluation cannot run as asked; the message says why."""


def parse_metrics(names: Sequence[str]) -> Tuple[str, ...]:
  """Validated, de-duplicated metric names in the order given."""
  names = tuple(dict.fromkeys(n.strip().lower() for n in names if n.strip()))
  unknown = [n for n in names if n not in METRICS]
  if unknown or not names:
    raise EvaluationError(f'Unknown or no metrics {unknown or list(names)}; '
                          f'choose from {", ".join(METRICS)}.')
  return names


def _checkpoint_step(prefix: str) -> int:
  return int(tf.train.load_variable(prefix, 'step/.ATTRIBUTES/VARIABLE_VALUE'))


def generate_images(generator, config: Config, n: int, seed: int,
                    batch_size: int = 64) -> np.ndarray:
  """n uint8 images from `generator` (inference mode), latents seeded.

  The latents are `training.generation.sample_latents(config, n, seed,
  LATENT_STREAM)`, untruncated: the same seed gives the same images, and
  they are not the latents of any generate.py output.
  """
  z = generation.sample_latents(config, n, seed, LATENT_STREAM)
  return generation.render(generator, z, batch_size)


def real_images(config: Config, n: int, seed: int) -> np.ndarray:
  """n uint8 images of `config`'s dataset, in a seeded epoch order.

  Same crop and resize as training (data.pipeline). The file cache is
  skipped: a few thousand images do not pay for caching the whole set.
  """
  source = data_pipeline.open_source(config)  # the run's own seed: same faces
  if source.size < n:
    raise EvaluationError(f'The {config.dataset} source has {source.size} '
                          f'images, fewer than the {n} asked for: lower '
                          '--num_samples.')
  # Batch size only groups reading; any n is reached exactly.
  eval_config = dataclasses.replace(config, cache='', seed=seed,
                                    batch_size=min(64, n))
  pipeline = data_pipeline.Pipeline(eval_config, source=source)
  out, count = [], 0
  for _, images in pipeline.epoch(0):
    out.append(data_pipeline.from_float(images).numpy())
    count += len(out[-1])
    if count >= n:
      return np.concatenate(out)[:n]
  raise EvaluationError(f'Only {count} of the {config.dataset} images could be '
                        f'read, fewer than the {n} asked for.')


def feature_extractor(metrics: Sequence[str],
                      inception_weights: Optional[str] = 'imagenet',
                      batch_size: int = 50):
  """InceptionFeatures when FID or KID is asked, else None.

  Built before any image is drawn, so missing weights fail in seconds.
  """
  if 'fid' not in metrics and 'kid' not in metrics:
    return None
  from metrics import inception  # keras.applications only when needed
  return inception.InceptionFeatures(inception_weights, batch_size)


def compute_metrics(images_a: np.ndarray, images_b: np.ndarray,
                    metrics: Sequence[str], seed: int = 0,
                    extract=None) -> Dict[str, object]:
  """The asked metrics between two uint8 image sets, and seconds per metric.

  `extract` (from feature_extractor) is needed for FID and KID. Returns
  {'swd': {level: x1e3, ..., 'avg'}, 'fid': float, 'kid': {'mean', 'std',
  ...}, 'seconds': {...}} for the metrics asked.

  Raises:
    EvaluationError: FID or KID with fewer than 2 images in a set.
  """
  out, seconds = {}, {}
  if ('fid' in metrics or 'kid' in metrics) and min(len(images_a),
                                                    len(images_b)) < 2:
    raise EvaluationError(
        f'FID and KID need at least 2 images in each set (a covariance, '
        f'pairs), got {len(images_a)} and {len(images_b)}: raise '
        '--num_samples (thousands give stable values).')
  if 'swd' in metrics:
    tick = time.perf_counter()
    out['swd'] = swd_lib.swd(images_a, images_b, seed=seed)
    seconds['swd'] = time.perf_counter() - tick
  if 'fid' in metrics or 'kid' in metrics:
    tick = time.perf_counter()
    feats_a, feats_b = extract(images_a), extract(images_b)
    seconds['inception_features'] = time.perf_counter() - tick
    if 'fid' in metrics:
      out['fid'] = fid_lib.fid(feats_a, feats_b)
    if 'kid' in metrics:
      out['kid'] = fid_lib.kid(feats_a, feats_b, seed=seed)
  out['seconds'] = seconds
  return out


class TrainingEvaluator:
  """The live generator's metrics during training (config.eval_every).

  The real set is drawn once, from config.eval_split (default: the
  training split); each call draws the same latents, so the curve moves
  only because G does.
  """

  def __init__(self, config: Config):
    self.config = config
    self.metrics = parse_metrics(config.eval_metrics.split(','))
    # Built first: missing InceptionV3 weights fail before any image is read.
    self.extract = feature_extractor(self.metrics,
                                     config.inception_weights or 'imagenet')
    real_config = dataclasses.replace(
        config, split=config.eval_split or config.split)
    self.real = real_images(real_config, config.eval_num_samples, config.seed)

  def __call__(self, generator) -> Dict[str, float]:
    """{'eval/swd': avg, 'eval/swd/<level>': ..., 'eval/fid', 'eval/kid'}."""
    fake = generate_images(generator, self.config, len(self.real),
                           self.config.seed)
    result = compute_metrics(fake, self.real, self.metrics, self.config.seed,
                             self.extract)
    out = {}
    for level, value in result.get('swd', {}).items():
      out['eval/swd' if level == 'avg' else f'eval/swd/{level}'] = value
    if 'fid' in result:
      out['eval/fid'] = result['fid']
    if 'kid' in result:
      out['eval/kid'] = result['kid']['mean']
    return out


def real_vs_real(config: Config, metrics: Sequence[str] = ('swd',),
                 num_samples: int = 2048, seed: int = 0,
                 inception_weights: Optional[str] = 'imagenet') -> Dict[str, object]:
  """Metrics between two disjoint sets of num_samples real images: the floor.

  The sets are the first and second halves of 2 * num_samples images of one
  seeded epoch order, so no image is in both.
  """
  metrics = parse_metrics(metrics)
  extract = feature_extractor(metrics, inception_weights)
  images = real_images(config, 2 * num_samples, seed)
  result = compute_metrics(images[:num_samples], images[num_samples:], metrics,
                           seed, extract)
  return dict(mode='real_vs_real', dataset=config.dataset,
              data_dir=config.data_dir,
              image_size=[config.image_height, config.image_width],
              num_samples=num_samples, seed=seed, **result)


def evaluate_run(path: str, metrics: Sequence[str] = ('swd',),
                 num_samples: int = 2048, seed: int = 0,
                 inception_weights: Optional[str] = 'imagenet',
                 use_ema: bool = True, data_dir: str = '',
                 batch_size: int = 64, compare_real: bool = False,
                 write: bool = True) -> Dict[str, object]:
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

  Raises:
    training.rundir.RunDirError: no run or checkpoint at `path`, or a
      checkpoint without every weight of the generator.
    EvaluationError: unknown metrics, or too few real images.
    data.pipeline.DataError: the run's dataset cannot be found.
    metrics.inception.InceptionWeightsError: FID/KID without weights.
  """
  metrics = parse_metrics(metrics)
  run_dir, prefix = rundir.find_checkpoint(path)
  config = rundir.load_config(run_dir)
  if data_dir:
    config = dataclasses.replace(config, data_dir=data_dir)
  step = _checkpoint_step(prefix)
  if compare_real:
    result = real_vs_real(config, metrics, num_samples, seed, inception_weights)
    name = f'real_vs_real_n{num_samples}_seed{seed}.json'
  else:
    # The prefix, not `path`: the checkpoint whose step names the file.
    _, _, generator = generation.load_generator(prefix, use_ema)
    key = generation.generator_key(config, use_ema)
    extract = feature_extractor(metrics, inception_weights, batch_size)
    tick = time.perf_counter()
    fake = generate_images(generator, config, num_samples, seed, batch_size)
    generate_seconds = time.perf_counter() - tick
    real = real_images(config, num_samples, seed)
    result = dict(mode='generated_vs_real', generator=key,
                  image_size=[config.image_height, config.image_width],
                  num_samples=num_samples, seed=seed,
                  **compute_metrics(fake, real, metrics, seed, extract))
    result['seconds']['generate'] = generate_seconds
    no_ema = key == 'generator' and config.ema_decay > 0
    # N and the seed are in the name: a rerun with others adds a file.
    name = (f'metrics_step{step}_n{num_samples}_seed{seed}'
            f'{"_no_ema" if no_ema else ""}.json')
  result.update(run_dir=run_dir, checkpoint=prefix, step=step)
  if write:
    os.makedirs(os.path.join(run_dir, EVAL_DIR), exist_ok=True)
    result['output'] = os.path.join(run_dir, EVAL_DIR, name)
    write_json(result['output'], result)
  return result


def write_json(path: str, result: Dict[str, object]) -> None:
  """Writes `result` to `path` atomically (a crash leaves no half file)."""
  rundir.atomic_write(path, lambda f: f.write(json.dumps(result, indent=2) +
                                              '\n'))


def format_table(result: Dict[str, object]) -> str:
  """A two-column text table of the metric values in `result`."""
  rows = []
  for level, value in result.get('swd', {}).items():
    rows.append((f'SWD x1e3 {level}', f'{value:.2f}'))
  if 'fid' in result:
    rows.append(('FID', f'{result["fid"]:.2f}'))
  if 'kid' in result:
    kid = result['kid']
    spread = ('(one subset of every image: no spread)' if kid['std'] is None
              else f'+- {1e3 * kid["std"]:.2f}')
    rows.append(('KID x1e3', f'{1e3 * kid["mean"]:.2f} {spread}'))
  width = max(len(name) for name, _ in rows)
  return '\n'.join(f'{name:<{width}}  {value}' for name, value in rows)
