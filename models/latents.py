"""Latents: drawing them, paths between them, and images from them.

The path maths (`lerp`, `slerp`, `circle`, `walk`) is plain numpy, so it can
be tested on known vectors. `sample_latents` draws the batches used outside
training (grids, GIFs, metrics) from numpy streams (models/streams.py);
`render` turns latents into uint8 images with any generator.
"""

from typing import Optional, Sequence, Tuple

import numpy as np
import tensorflow as tf

from configs.errors import FaceganError
from configs.presets import Config
from common.files import from_float

# The 48x48 recipe notebook's walk dimensions (latent 100).
DEFAULT_WALK_DIMS = (25, 50, 75)


class LatentError(FaceganError, ValueError):
  """A latent request that cannot be served; the message says why."""


def _frames_axis(t, z):
  """t (T,) reshaped to broadcast against z (..., D) with a leading T axis."""
  t = np.asarray(t, np.float64)
  return t.reshape(t.shape + (1,) * np.ndim(z))


def lerp(z1: np.ndarray, z2: np.ndarray, t) -> np.ndarray:
  """Linear interpolation z(t) = (1 - t) z1 + t z2.

  Args:
    z1, z2: latents of the same shape (..., D).
    t: 1-D array of positions; 0 gives z1, 1 gives z2.

  Returns:
    float64 array (len(t), ..., D).
  """
  z1, z2 = np.asarray(z1, np.float64), np.asarray(z2, np.float64)
  t = _frames_axis(t, z1)
  return (1 - t) * z1 + t * z2


def slerp(z1: np.ndarray, z2: np.ndarray, t) -> np.ndarray:
  """Spherical interpolation along the great circle from z1 to z2.

  w = arccos(<z1/|z1|, z2/|z2|>),
  z(t) = sin((1 - t) w) / sin w * z1 + sin(t w) / sin w * z2.
  Pairs with sin w ~ 0 (parallel or opposite latents, where the formula is
  0/0) fall back to `lerp`. Equal-norm endpoints keep that norm all along,
  which is why slerp suits Gaussian latents: a linear path cuts through the
  low-norm middle of the distribution that G rarely saw in training.

  Args:
    z1, z2: latents of the same shape (..., D).
    t: 1-D array of positions; 0 gives z1, 1 gives z2.

  Returns:
    float64 array (len(t), ..., D).
  """
  z1, z2 = np.asarray(z1, np.float64), np.asarray(z2, np.float64)
  n1 = np.linalg.norm(z1, axis=-1, keepdims=True)
  n2 = np.linalg.norm(z2, axis=-1, keepdims=True)
  cos = np.sum(z1 * z2, axis=-1, keepdims=True) / np.maximum(n1 * n2, 1e-12)
  w = np.arccos(np.clip(cos, -1.0, 1.0))
  sin_w = np.sin(w)
  degenerate = sin_w < 1e-6
  safe = np.where(degenerate, 1.0, sin_w)
  t_ = _frames_axis(t, z1)
  spherical = (np.sin((1 - t_) * w) * z1 + np.sin(t_ * w) * z2) / safe
  return np.where(degenerate, lerp(z1, z2, t), spherical)


def circle_angles(frames: int) -> np.ndarray:
  """frames angles evenly over [0, 2 pi), the end excluded so a loop closes."""
  return np.arange(frames) * (2 * np.pi / frames)


def circle(z1: np.ndarray, z2: np.ndarray, theta) -> np.ndarray:
  """A closed loop through z1: z(th) = cos th * z1 + sin th * z2'.

  z2' is the part of z2 orthogonal to z1, rescaled to |z1|, so |z(th)| = |z1|
  for every th and z(th + 2 pi) = z(th): a GIF over `circle_angles` loops
  without a jump.

  Args:
    z1, z2: latents of the same shape (..., D); z2 not parallel to z1.
    theta: 1-D array of angles in radians.

  Returns:
    float64 array (len(theta), ..., D).
  """
  z1, z2 = np.asarray(z1, np.float64), np.asarray(z2, np.float64)
  sq1 = np.sum(z1 * z1, axis=-1, keepdims=True)
  ortho = z2 - np.sum(z1 * z2, axis=-1, keepdims=True) / sq1 * z1
  n_ortho = np.linalg.norm(ortho, axis=-1, keepdims=True)
  if np.any(n_ortho < 1e-9 * np.sqrt(sq1)):
    raise LatentError(
      'circle: z2 is parallel to z1, so there is no plane to turn in; draw another pair.'
    )
  ortho *= np.sqrt(sq1) / n_ortho
  th = _frames_axis(theta, z1)
  return np.cos(th) * z1 + np.sin(th) * ortho


def walk(z: np.ndarray, dim: int, values) -> np.ndarray:
  """Copies of z (D,) with dimension `dim` set to each of `values`.

  Returns:
    float64 array (len(values), D); only column `dim` differs between rows.
  """
  z = np.asarray(z, np.float64)
  check_dims([dim], z.shape[-1])
  path = np.repeat(z[None], len(values), axis=0)
  path[:, dim] = values
  return path


def check_dims(dims: Sequence[int], latent_dim: int) -> None:
  """Raises LatentError unless every dim is in [0, latent_dim)."""
  bad = [d for d in dims if not 0 <= d < latent_dim]
  if bad:
    raise LatentError(
      f'Latent dimension(s) {bad} out of range: this run has latent_dim='
      f'{latent_dim}, so --dims must be in 0..{latent_dim - 1}.'
    )


def default_dims(latent_dim: int) -> Tuple[int, ...]:
  """The 48x48 recipe's 25, 50, 75 when they fit, else the latent's quarter points."""
  if latent_dim > max(DEFAULT_WALK_DIMS):
    return DEFAULT_WALK_DIMS
  return tuple(sorted({latent_dim * k // 4 for k in (1, 2, 3)}))


def sample_latents(
  config: Config, n: int, seed: int, stream: int, truncation: Optional[float] = None
) -> np.ndarray:
  """n float32 latents from the run's distribution (see draw_latents)."""
  return draw_latents(config.latent_dim, config.latent_dist, n, seed, stream, truncation)


def draw_latents(
  latent_dim: int,
  latent_dist: str,
  n: int,
  seed: int,
  stream: int,
  truncation: Optional[float] = None,
) -> np.ndarray:
  """n float32 latents of `latent_dist` ('normal' or 'uniform'), optionally
  truncated: facegan's one sampler of latents outside the train step.

  `stream` is one of models/streams.py's latent-batch ids, so each kind of
  output has latents of its own: changing --num does not change the
  interpolation pairs, and metrics never score the pictures' latents.
  Truncation trades variety for quality. Normal latents: every component with
  |z| > truncation is redrawn until none is (a truncated normal). Uniform
  latents: U(-1, 1) is scaled by min(truncation, 1), which gives U(-t, t),
  exactly the distribution redrawing would give, in one draw.
  """
  if truncation is not None and truncation <= 0:
    raise LatentError(f'--truncation must be positive, got {truncation}.')
  rng = np.random.default_rng([seed, stream])
  shape = (n, latent_dim)
  if latent_dist == 'uniform':
    z = rng.uniform(-1.0, 1.0, shape)
    if truncation is not None:
      z *= min(truncation, 1.0)
  else:
    z = rng.standard_normal(shape)
    if truncation is not None:
      out = np.abs(z) > truncation
      while out.any():
        z[out] = rng.standard_normal(int(out.sum()))
        out = np.abs(z) > truncation
  return z.astype(np.float32)


def render(generate, z: np.ndarray, batch_size: int = 64) -> np.ndarray:
  """uint8 images (N, H, W, 3) from latents (N, D).

  `generate` maps a float32 batch of latents to images in [-1, 1]: a Keras
  generator (called in inference mode, its default) or any function. All
  frames of a GIF go through here at once, in batches of `batch_size`.
  """
  z = np.asarray(z, np.float32)
  out = [
    from_float(generate(tf.constant(z[i : i + batch_size]))).numpy()
    for i in range(0, len(z), batch_size)
  ]
  return np.concatenate(out)
