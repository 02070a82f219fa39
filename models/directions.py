"""Edit directions found without labels (GANSpace, Härkönen et al. 2020).

A DCGAN's raw latent dimensions are entangled: each changes a little of
everything. GANSpace finds the directions G itself uses most: sample many
latents, take the principal components of an early feature layer of G (the
output of its first stage: 4x4 or 6x6 maps, before any upsampling), and
map them back to latent space by linear regression from each sample's PCA
coordinates to its latent. The k-th direction is the latent change that
moves the layer along its k-th principal axis. They are orthonormalised in
order of variance, so they are independent sliders.

Computed once per generator and cached beside its weights (DIRECTIONS_FILE),
keyed by a fingerprint of the weights and the settings: a run that trains on
recomputes them. Nothing here reads flags.
"""

import dataclasses
import hashlib
import os
from typing import Optional

import numpy as np
import tensorflow as tf

from common import files
from configs.presets import Config
from models import latents
from models import streams

DIRECTIONS_FILE = 'directions.npz'
NUM_SAMPLES = 4096  # latents whose features the PCA is fitted on
NUM_COMPONENTS = 10  # the explorer's sliders, generate.py's default strips
LAYER = 0  # G's stage whose output is analysed: the first, before upsampling
_OVERSAMPLE, _POWER_ITERATIONS = 20, 6


@dataclasses.dataclass(frozen=True)
class Directions:
  """Orthonormal latent directions, by decreasing variance of the layer.

  vectors: float32 (K, latent_dim), unit rows, orthogonal to each other.
  variance: float32 (K,), the fraction of the layer's total variance along
    each direction's principal axis.
  """

  vectors: np.ndarray
  variance: np.ndarray
  layer: int
  num_samples: int
  seed: int
  fingerprint: str


def weights_fingerprint(generator) -> str:
  """A hash of G's trainable weights: equal weights, equal directions.

  BatchNorm's statistics are left out: they are measured again on every
  load (standing statistics) and may differ in the last bits between CPUs.
  """
  digest = hashlib.sha256()
  for v in generator.trainable_variables:
    digest.update(np.ascontiguousarray(v.numpy()).tobytes())
  return digest.hexdigest()[:16]


def layer_features(generator, z: np.ndarray, layer: int, batch_size: int = 256) -> np.ndarray:
  """float32 (N, F): G's stage `layer` output in inference mode, flattened."""
  if not 0 <= layer < len(generator.stages) - 1:
    raise ValueError(f'layer must be in 0..{len(generator.stages) - 2}, got {layer}.')
  out = []
  for i in range(0, len(z), batch_size):
    x = tf.constant(z[i : i + batch_size])
    for stage in generator.stages[: layer + 1]:
      x = stage(x, training=False)
    out.append(tf.reshape(tf.cast(x, tf.float32), [len(x), -1]).numpy())
  return np.concatenate(out)


def top_components(y: np.ndarray, k: int, seed: int):
  """The top-k singular values and right singular vectors (k, F) of y (N, F).

  Randomized subspace iteration (Halko et al. 2011): a few products with y
  instead of a full SVD, which takes minutes for 4,096 x 9,216. Signs are
  fixed so each vector's largest entry is positive: the same numbers give
  the same directions.
  """
  rng = np.random.default_rng(seed)
  q = np.linalg.qr(y @ rng.standard_normal((y.shape[1], k + _OVERSAMPLE)))[0]
  for _ in range(_POWER_ITERATIONS):  # sharpens the subspace towards the top
    q = np.linalg.qr(y.T @ q)[0]
    q = np.linalg.qr(y @ q)[0]
  _, s, vt = np.linalg.svd(q.T @ y, full_matrices=False)
  vt = vt[:k] * np.sign(vt[:k][np.arange(k), np.argmax(np.abs(vt[:k]), axis=1)])[:, None]
  return s[:k], vt


def find_directions(
  generator,
  config: Config,
  components: int = NUM_COMPONENTS,
  num_samples: int = NUM_SAMPLES,
  layer: int = LAYER,
  seed: int = 0,
) -> Directions:
  """GANSpace directions of `generator` (see the module docstring).

  Args:
    generator: a models.generator.Generator in inference mode.
    config: its run's config (latent size and distribution).
    components: how many directions (at most the latent size, the samples
      and the layer's features).
    num_samples: latents the PCA is fitted on.
    layer: the stage whose output is analysed.
    seed: seeds the latents and the PCA's random start.
  """
  z = latents.sample_latents(config, num_samples, seed, streams.DIRECTIONS).astype(np.float64)
  y = layer_features(generator, z.astype(np.float32), layer).astype(np.float64)
  y -= y.mean(axis=0)
  k = min(components, z.shape[1], *y.shape)
  s, axes = top_components(y, k, seed)
  coords = y @ axes.T  # (N, k): each sample's position along the axes
  # GANSpace's regression: the latent basis U minimising sum_j |U x_j - z_j|^2.
  basis = np.linalg.lstsq(coords, z - z.mean(axis=0), rcond=None)[0]  # (k, D)
  q, r = np.linalg.qr(basis.T)
  vectors = (q * np.sign(np.diag(r))).T  # each keeps its regression vector's sense
  return Directions(
    vectors=vectors.astype(np.float32),
    variance=(s**2 / np.sum(y**2)).astype(np.float32),
    layer=layer,
    num_samples=num_samples,
    seed=seed,
    fingerprint=weights_fingerprint(generator),
  )


def _read(path: str) -> Optional[Directions]:
  try:
    with np.load(path, allow_pickle=False) as f:
      fields = {k: f[k] for k in f.files}
    return Directions(
      vectors=fields['vectors'],
      variance=fields['variance'],
      layer=int(fields['layer']),
      num_samples=int(fields['num_samples']),
      seed=int(fields['seed']),
      fingerprint=str(fields['fingerprint']),
    )
  except (OSError, ValueError, KeyError, EOFError):
    return None  # damaged or from another version: computed again


def cached_directions(
  run_dir: str,
  generator,
  config: Config,
  components: int = NUM_COMPONENTS,
  seed: int = 0,
) -> Directions:
  """find_directions, read from <run_dir>/DIRECTIONS_FILE when it was made
  for these weights and settings, else computed and written there.

  A run directory that cannot be written (a read-only copy) still gets its
  directions, computed each time.
  """
  path = os.path.join(run_dir, DIRECTIONS_FILE)
  cached = _read(path) if os.path.isfile(path) else None
  wanted = dict(layer=LAYER, num_samples=NUM_SAMPLES, seed=seed)
  if (
    cached is not None
    and all(getattr(cached, k) == v for k, v in wanted.items())
    and len(cached.vectors) >= components
    and cached.fingerprint == weights_fingerprint(generator)
  ):
    return dataclasses.replace(
      cached, vectors=cached.vectors[:components], variance=cached.variance[:components]
    )
  found = find_directions(generator, config, components, NUM_SAMPLES, seed=seed)
  try:
    files.write_whole(path, lambda p: np.savez(p, **dataclasses.asdict(found)))
  except OSError:
    pass  # read-only: the directions are still returned
  return found
