"""N generated vs N real images -> SWD, FID, KID, coverage, for any generator.

`generate_images(generate, config, n, seed)` draws n images from a generator
function on the evaluation latent stream; `real_images` draws n images of the
config's dataset through the training pipeline (same crop and resize);
`compute_metrics` scores two sets. `TrainingEvaluator` does it during
training, `real_vs_real` measures the floor between two disjoint real sets.
Nothing here knows run directories (run_eval.py does).
"""

import dataclasses
import time
from typing import Dict, Optional, Sequence, Tuple

import numpy as np

from common import files
from configs.errors import FaceganError
from configs.presets import Config
from data import pipeline as data_pipeline
from metrics import coverage as coverage_lib
from metrics import fid as fid_lib
from metrics import swd as swd_lib
from models import latents
from models import streams

METRICS = ('swd', 'fid', 'kid', 'coverage')


class EvaluationError(FaceganError, ValueError):
  """The evaluation cannot run as asked; the message says why."""


def parse_metrics(names: Sequence[str]) -> Tuple[str, ...]:
  """Validated, de-duplicated metric names in the order given."""
  names = tuple(dict.fromkeys(n.strip().lower() for n in names if n.strip()))
  unknown = [n for n in names if n not in METRICS]
  if unknown or not names:
    raise EvaluationError(
      f'Unknown or no metrics {unknown or list(names)}; choose from {", ".join(METRICS)}.'
    )
  return names


def check_counts(metrics: Sequence[str], n: int) -> None:
  """Raises EvaluationError if `n` images a set are too few for `metrics`.

  Called before any image is drawn, so a bad count fails in a second.
  """
  if 'coverage' in metrics:
    try:
      coverage_lib.check_sizes(n, n)
    except coverage_lib.CoverageError as e:
      raise EvaluationError(str(e)) from e


def generate_images(
  generate, config: Config, n: int, seed: int, batch_size: int = 64
) -> np.ndarray:
  """n uint8 images from `generate` (latents -> images in [-1, 1]).

  `generate` is a generator in inference mode: a Keras generator itself or
  any function of a float32 (batch, latent_dim) tensor. The latents are
  models.latents.sample_latents(config, n, seed, streams.EVALUATION),
  untruncated: the same seed gives the same images, and they are not the
  latents of any generate.py output.
  """
  z = latents.sample_latents(config, n, seed, streams.EVALUATION)
  return latents.render(generate, z, batch_size)


def real_images(config: Config, n: int, seed: int) -> np.ndarray:
  """n uint8 images of `config`'s dataset, in a seeded epoch order.

  Same crop and resize as training (data.pipeline). The file cache is
  skipped: a few thousand images do not pay for caching the whole set.
  """
  source = data_pipeline.open_source(config)  # the run's own seed: same faces
  if source.size < n:
    raise EvaluationError(
      f'The {config.dataset} source has {source.size} '
      f'images, fewer than the {n} asked for: lower '
      '--num_samples.'
    )
  # Batch size only groups reading; any n is reached exactly.
  eval_config = dataclasses.replace(config, cache='', seed=seed, batch_size=min(64, n))
  pipeline = data_pipeline.Pipeline(eval_config, source=source)
  out, count = [], 0
  for _, images in pipeline.epoch(0):
    out.append(files.from_float(images).numpy())
    count += len(out[-1])
    if count >= n:
      return np.concatenate(out)[:n]
  raise EvaluationError(
    f'Only {count} of the {config.dataset} images could be read, fewer than the {n} asked for.'
  )


def feature_extractor(
  metrics: Sequence[str],
  inception_weights: Optional[str] = 'imagenet',
  batch_size: int = 50,
  coverage_inception: bool = False,
):
  """InceptionFeatures when FID or KID is asked, else None.

  With `coverage_inception` (a weights file was named), coverage asks for
  them too, to be computed on Inception features beside the pixel ones.
  Built before any image is drawn, so missing weights fail in seconds.
  """
  wanted = 'fid' in metrics or 'kid' in metrics or ('coverage' in metrics and coverage_inception)
  if not wanted:
    return None
  from metrics import inception  # keras.applications only when needed

  return inception.InceptionFeatures(inception_weights, batch_size)


def compute_metrics(
  images_a: np.ndarray, images_b: np.ndarray, metrics: Sequence[str], seed: int = 0, extract=None
) -> Dict[str, object]:
  """The asked metrics between two uint8 image sets, and seconds per metric.

  `images_b` is the real set. `extract` (from feature_extractor) is needed
  for FID and KID. Returns {'swd': {level: x1e3, ..., 'avg'}, 'fid': float,
  'kid': {'mean', 'std', ...}, 'coverage': {'precision', 'recall',
  'density', 'coverage', 'ceiling', 'features'}, 'coverage_face' (the same
  on the face region), 'channels': {'generated', 'real'}, 'seconds': {...}}
  for the metrics asked; 'coverage_inception' too when coverage is asked
  with an extractor.

  Raises:
    EvaluationError: FID or KID with fewer than 2 images in a set, or
      coverage with fewer than k + 1 or with sets of two sizes.
  """
  out, seconds = {}, {}
  if 'coverage' in metrics:
    try:
      coverage_lib.check_sizes(len(images_b), len(images_a))
    except coverage_lib.CoverageError as e:
      raise EvaluationError(str(e)) from e
  if ('fid' in metrics or 'kid' in metrics) and min(len(images_a), len(images_b)) < 2:
    raise EvaluationError(
      f'FID and KID need at least 2 images in each set (a covariance, '
      f'pairs), got {len(images_a)} and {len(images_b)}: raise '
      '--num_samples (thousands give stable values).'
    )
  if 'swd' in metrics:
    tick = time.perf_counter()
    out['swd'] = swd_lib.swd(images_a, images_b, seed=seed)
    seconds['swd'] = time.perf_counter() - tick
  if 'coverage' in metrics:
    tick = time.perf_counter()
    out['coverage'] = dict(
      coverage_lib.pixel_prdc(images_b, images_a),
      ceiling=coverage_lib.ceiling(),
      features='pixel_pca64',
    )
    out['coverage_face'] = dict(
      coverage_lib.face_prdc(images_b, images_a),
      ceiling=coverage_lib.ceiling(),
      features=f'pixel_pca64_centre{round(100 * coverage_lib.FACE_FRACTION)}',
    )
    out['channels'] = dict(
      generated=coverage_lib.channel_stats(images_a), real=coverage_lib.channel_stats(images_b)
    )
    seconds['coverage'] = time.perf_counter() - tick
  if extract is not None:
    tick = time.perf_counter()
    feats_a, feats_b = extract(images_a), extract(images_b)
    seconds['inception_features'] = time.perf_counter() - tick
    if 'fid' in metrics:
      out['fid'] = fid_lib.fid(feats_a, feats_b)
    if 'kid' in metrics:
      out['kid'] = fid_lib.kid(feats_a, feats_b, seed=seed)
    if 'coverage' in metrics:
      out['coverage_inception'] = dict(
        coverage_lib.prdc(feats_b, feats_a),
        ceiling=coverage_lib.ceiling(),
        features='inception_pool3',
      )
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
    self.extract = feature_extractor(self.metrics, config.inception_weights or 'imagenet')
    data_pipeline.check_eval_split(config)
    real_config = dataclasses.replace(config, split=config.eval_split or config.split)
    self.real = real_images(real_config, config.eval_num_samples, config.seed)
    if 'coverage' in self.metrics:
      # The real side of coverage once: its PCA axes, features and radii.
      coverage_lib.check_sizes(len(self.real), len(self.real))
      self.coverage = {
        '': coverage_lib.PixelCoverage(self.real),
        'face_': coverage_lib.PixelCoverage(self.real, coverage_lib.face_region),
      }
      self.real_means = coverage_lib.channel_stats(self.real)['mean']

  def __call__(self, generate) -> Dict[str, float]:
    """Scores `generate` (see generate_images): {'eval/swd': avg,
    'eval/swd/<level>': ..., 'eval/fid', 'eval/kid', 'eval/coverage',
    'eval/density', 'eval/precision', 'eval/recall', 'eval/face_<the same
    four>' (on the face region),
    'eval/channel_mean_diff/<r|g|b>' (generated minus real, levels of 255)}.
    """
    fake = generate_images(generate, self.config, len(self.real), self.config.seed)
    metrics = [m for m in self.metrics if m != 'coverage']
    result = (
      compute_metrics(fake, self.real, metrics, self.config.seed, self.extract) if metrics else {}
    )
    out = {}
    if 'coverage' in self.metrics:
      for prefix, real_side in self.coverage.items():
        for name, value in real_side.score(fake).items():
          out[f'eval/{prefix}{name}'] = value
      means = coverage_lib.channel_stats(fake)['mean']
      for channel, m, r in zip('rgb', means, self.real_means):
        out[f'eval/channel_mean_diff/{channel}'] = round(m - r, 2)
    for level, value in result.get('swd', {}).items():
      out['eval/swd' if level == 'avg' else f'eval/swd/{level}'] = value
    if 'fid' in result:
      out['eval/fid'] = result['fid']
    if 'kid' in result:
      out['eval/kid'] = result['kid']['mean']
    return out


def real_vs_real(
  config: Config,
  metrics: Sequence[str] = ('swd',),
  num_samples: int = 2048,
  seed: int = 0,
  inception_weights: Optional[str] = 'imagenet',
  coverage_inception: bool = False,
) -> Dict[str, object]:
  """Metrics between two disjoint sets of num_samples real images: the floor.

  The sets are the first and second halves of 2 * num_samples images of one
  seeded epoch order, so no image is in both.
  """
  metrics = parse_metrics(metrics)
  check_counts(metrics, num_samples)
  extract = feature_extractor(metrics, inception_weights, coverage_inception=coverage_inception)
  images = real_images(config, 2 * num_samples, seed)
  result = compute_metrics(images[:num_samples], images[num_samples:], metrics, seed, extract)
  return dict(
    mode='real_vs_real',
    dataset=config.dataset,
    data_dir=config.data_dir,
    image_size=[config.image_height, config.image_width],
    num_samples=num_samples,
    seed=seed,
    **result,
  )


def format_table(result: Dict[str, object]) -> str:
  """A two-column text table of the metric values in `result`."""
  rows = []
  for level, value in result.get('swd', {}).items():
    rows.append((f'SWD x1e3 {level}', f'{value:.2f}'))
  if 'fid' in result:
    rows.append(('FID', f'{result["fid"]:.2f}'))
  if 'kid' in result:
    kid = result['kid']
    spread = (
      '(one subset of every image: no spread)'
      if kid['std'] is None
      else f'+- {1e3 * kid["std"]:.2f}'
    )
    rows.append(('KID x1e3', f'{1e3 * kid["mean"]:.2f} {spread}'))
  for key, where in (
    ('coverage', 'pixels'),
    ('coverage_face', 'face region'),
    ('coverage_inception', 'Inception'),
  ):
    if key in result:
      c = result[key]
      rows.append(
        (
          f'coverage ({where}, k=5)',
          f'{c["coverage"]:.3f} (same-distribution ceiling {c["ceiling"]:.3f})',
        )
      )
      rows += [
        (f'{name} ({where})', f'{c[name]:.3f}') for name in ('density', 'precision', 'recall')
      ]
  if 'channels' in result:
    for side in ('generated', 'real'):
      stats = result['channels'][side]
      rows.append(
        (
          f'RGB mean / std ({side})',
          ' '.join(f'{m:.1f}' for m in stats['mean'])
          + ' / '
          + ' '.join(f'{s:.1f}' for s in stats['std']),
        )
      )
  width = max(len(name) for name, _ in rows)
  return '\n'.join(f'{name:<{width}}  {value}' for name, value in rows)
