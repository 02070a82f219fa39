"""Precision, recall, density and coverage: how much of the real faces G covers.

Kynkäänniemi et al. 2019 (improved precision and recall) and Naeem et al.
2020 (density and coverage), computed as the reference `prdc` code and
StudioGAN do, from k-nearest-neighbour balls in a feature space. With
r_k(x) the distance from x to its k-th nearest neighbour in its own set
(itself excluded), real features X (n) and fake features Y (m):

  precision = 1/m sum_j  [ exists i: |y_j - x_i| < r_k(x_i) ]
  recall    = 1/n sum_i  [ exists j: |x_i - y_j| < r_k(y_j) ]
  density   = 1/(k m) sum_j sum_i [ |y_j - x_i| < r_k(x_i) ]
  coverage  = 1/n sum_i  [ min_j |x_i - y_j| < r_k(x_i) ]

Coverage is the fraction of real faces with a generated face inside their
neighbourhood: a G that repeats a few faces covers only their neighbours,
however good each face is, so coverage falls where precision and density
stay high. Two samples of one distribution give coverage 1 - 2^-k in
expectation (0.969 at k = 5): the ceiling.

The feature space needs no downloaded weights: images are area-averaged to
16x16 (layout, pose, hair and skin colour, background: what a partly
collapsed G repeats) and projected on the 64 principal components of the
real set, which keep most of its variance and make the distances cheap.
With Inception features (FID's) the same numbers are computed on those.

**The face region.** A G that repeats one face under varied hair and
backgrounds covers many real images on the whole frame, because the 16x16
images differ where the faces do not. The same four numbers on the central
FACE_FRACTION of each image's height and width (where every aligned CelebA
frame, at any preset's crop, has its eyes, nose and mouth) see the repeat:
`face_prdc`.
"""

from typing import Dict, Optional

import numpy as np

from configs.errors import FaceganError

K = 5
PIXELS = 16  # side of the area-averaged images
COMPONENTS = 64  # principal components kept
FACE_FRACTION = 0.45  # of the height and width: the face region, centred


class CoverageError(FaceganError, ValueError):
  """The sets cannot be compared as given; the message names the numbers."""


def ceiling(k: int = K) -> float:
  """Expected coverage of two samples of one distribution: 1 - 2^-k."""
  return 1.0 - 0.5**k


def check_sizes(n_real: int, n_fake: int, k: int = K) -> None:
  """Raises CoverageError unless both sets have n > k images and equal n."""
  if min(n_real, n_fake) < k + 1:
    raise CoverageError(
      f'coverage with k={k} needs at least {k + 1} images in each set, got '
      f'{n_real} real and {n_fake} generated: raise --num_samples.'
    )
  if n_real != n_fake:
    raise CoverageError(
      f'coverage compares sets of one size (its radii depend on it), got '
      f'{n_real} real and {n_fake} generated images.'
    )


def squared_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
  """|a_i - b_j|^2 for every pair, in float64 (exact enough for ranks)."""
  a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
  d = np.sum(a * a, 1)[:, None] - 2.0 * a @ b.T + np.sum(b * b, 1)[None, :]
  return np.maximum(d, 0.0)


def _radii(features: np.ndarray, k: int) -> np.ndarray:
  """Squared distance from each point to its k-th nearest other point."""
  d = squared_distances(features, features)
  # Column k of the sorted row: column 0 is the point itself (distance 0).
  return np.partition(d, k, axis=1)[:, k]


class RealBalls:
  """The real set's features and k-NN radii, computed once for many fakes."""

  def __init__(self, real_features: np.ndarray, k: int = K):
    self.features = np.asarray(real_features, np.float64)
    self.k = k
    check_sizes(len(self.features), len(self.features), k)
    self.radii = _radii(self.features, k)

  def score(self, fake_features: np.ndarray) -> Dict[str, float]:
    """Precision, recall, density and coverage of `fake_features`."""
    fake = np.asarray(fake_features, np.float64)
    check_sizes(len(self.features), len(fake), self.k)
    d = squared_distances(self.features, fake)  # (real, fake)
    inside_real = d < self.radii[:, None]
    inside_fake = d < _radii(fake, self.k)[None, :]
    return dict(
      precision=float(inside_real.any(axis=0).mean()),
      recall=float(inside_fake.any(axis=1).mean()),
      density=float(inside_real.sum(axis=0).mean() / self.k),
      coverage=float((d.min(axis=1) < self.radii).mean()),
    )


def prdc(real_features: np.ndarray, fake_features: np.ndarray, k: int = K) -> Dict[str, float]:
  """Precision, recall, density and coverage of fakes against reals.

  Raises:
    CoverageError: fewer than k + 1 images in a set, or sets of two sizes.
  """
  check_sizes(len(real_features), len(fake_features), k)
  return RealBalls(real_features, k).score(fake_features)


def downsample(images: np.ndarray, side: int = PIXELS) -> np.ndarray:
  """uint8 (N, H, W, 3) -> float32 (N, side*side*3) in [0, 1], area-averaged.

  Pixel (i, j) of the result averages the rows [i H/side, (i+1) H/side) and
  columns likewise, whole pixels weighted by their overlap, so any H and W
  (157x128 included) map to the same grid.
  """
  x = np.asarray(images, np.float32) / 255.0
  for axis in (1, 2):
    x = np.tensordot(x, _area_weights(x.shape[axis], side), axes=([axis], [0]))
    x = np.moveaxis(x, -1, axis)
  return x.reshape(len(x), -1)


def _area_weights(size: int, side: int) -> np.ndarray:
  """(size, side) matrix averaging `size` pixels into `side` equal bins."""
  edges = np.linspace(0.0, size, side + 1)
  lo, hi = np.arange(size)[:, None], np.arange(size)[:, None] + 1.0
  overlap = np.clip(np.minimum(hi, edges[None, 1:]) - np.maximum(lo, edges[None, :-1]), 0.0, None)
  return (overlap / overlap.sum(0, keepdims=True)).astype(np.float32)


class PixelFeatures:
  """Projects images on the principal components of a real set's pixels.

  Fitted once on the real images, so generated sets are measured in the
  real set's axes.
  """

  def __init__(self, real_images: np.ndarray, components: int = COMPONENTS):
    x = downsample(real_images).astype(np.float64)
    self.mean = x.mean(0)
    # Rows of vt are the principal axes, by decreasing variance.
    _, _, vt = np.linalg.svd(x - self.mean, full_matrices=False)
    self.axes = vt[: min(components, len(vt))].T

  def __call__(self, images: np.ndarray) -> np.ndarray:
    return (downsample(images).astype(np.float64) - self.mean) @ self.axes


def channel_stats(images: np.ndarray) -> Dict[str, list]:
  """Per-channel mean and std of uint8 images, in levels of 255."""
  x = np.asarray(images, np.float64).reshape(-1, 3)
  return dict(
    mean=[round(float(v), 2) for v in x.mean(0)], std=[round(float(v), 2) for v in x.std(0)]
  )


def pixel_prdc(
  real_images: np.ndarray,
  fake_images: np.ndarray,
  k: int = K,
  features: Optional[PixelFeatures] = None,
) -> Dict[str, float]:
  """prdc in the pixel-PCA space of `real_images` (fitted here if not given)."""
  check_sizes(len(real_images), len(fake_images), k)
  features = features or PixelFeatures(real_images)
  return prdc(features(real_images), features(fake_images), k)


def face_region(images: np.ndarray, fraction: float = FACE_FRACTION) -> np.ndarray:
  """The central `fraction` of each image's height and width."""
  h, w = images.shape[1:3]
  ch, cw = max(1, round(h * fraction)), max(1, round(w * fraction))
  top, left = (h - ch) // 2, (w - cw) // 2
  return images[:, top : top + ch, left : left + cw]


def face_prdc(real_images: np.ndarray, fake_images: np.ndarray, k: int = K) -> Dict[str, float]:
  """pixel_prdc on the face region of both sets (see the module docstring)."""
  return pixel_prdc(face_region(real_images), face_region(fake_images), k)


class PixelCoverage:
  """pixel_prdc against one real set, fitted once (PCA axes, features, radii)
  and scored against many generated sets, on the whole image or a region.

  Args:
    real_images: uint8 (N, H, W, 3), N > k.
    region: maps a batch of images to the part compared (face_region), or
      None for the whole image.
  """

  def __init__(self, real_images: np.ndarray, region=None):
    self.region = region or (lambda images: images)
    real = self.region(real_images)
    self.features = PixelFeatures(real)
    self.balls = RealBalls(self.features(real))

  def score(self, fake_images: np.ndarray) -> Dict[str, float]:
    """Precision, recall, density and coverage of `fake_images`."""
    return self.balls.score(self.features(self.region(fake_images)))
