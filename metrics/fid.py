"""FID and KID from feature arrays: pure numpy, no network, no scipy.

Both take (N, D) feature matrices (2048-d InceptionV3 pool features in
practice) and return numbers, so they are testable on synthetic Gaussians.
"""

from typing import Dict, Tuple

from absl import logging
import numpy as np


def feature_statistics(features: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
  """(mean, covariance) of (N, D) features, covariance with 1/(N-1)."""
  features = np.asarray(features, np.float64)
  return features.mean(axis=0), np.cov(features, rowvar=False)


def _psd_sqrt(s: np.ndarray) -> np.ndarray:
  """Symmetric square root of a PSD matrix via eigh (tiny negatives -> 0)."""
  w, v = np.linalg.eigh((s + s.T) / 2)
  return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def frechet_distance(mu1: np.ndarray, s1: np.ndarray, mu2: np.ndarray, s2: np.ndarray) -> float:
  """Frechet distance between N(mu1, s1) and N(mu2, s2).

  d^2 = |mu1 - mu2|^2 + Tr(s1) + Tr(s2) - 2 Tr((s1 s2)^(1/2)).

  s1 s2 is not symmetric, but it is similar to the PSD matrix
  m = s1^(1/2) s2 s1^(1/2) (conjugate by s1^(1/2)), so both have the same
  non-negative eigenvalues and Tr((s1 s2)^(1/2)) = sum_i sqrt(eig_i(m)).
  Two symmetric eigendecompositions replace scipy.linalg.sqrtm and stay real
  and stable for the rank-deficient covariances of small samples.
  """
  mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
  s1, s2 = np.asarray(s1, np.float64), np.asarray(s2, np.float64)
  root1 = _psd_sqrt(s1)
  m = root1 @ s2 @ root1
  eig = np.linalg.eigvalsh((m + m.T) / 2)
  tr_sqrt = np.sqrt(np.clip(eig, 0, None)).sum()
  d2 = np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * tr_sqrt
  # Round-off can leave a tiny negative for identical statistics.
  return float(max(d2, 0.0))


def fid(features_a: np.ndarray, features_b: np.ndarray) -> float:
  """FID: the Frechet distance of the two feature sets' Gaussian fits.

  Raises:
    ValueError: fewer than 2 features in a set (no covariance).
  """
  if min(len(features_a), len(features_b)) < 2:
    raise ValueError(
      f'FID needs at least 2 images in each set, got {len(features_a)} and {len(features_b)}.'
    )
  return frechet_distance(*feature_statistics(features_a), *feature_statistics(features_b))


def polynomial_kernel(x: np.ndarray, y: np.ndarray) -> np.ndarray:
  """k(x, y) = (x . y / d + 1)^3, the KID kernel, for all pairs of rows."""
  return (x @ y.T / x.shape[1] + 1.0) ** 3


def mmd2_unbiased(x: np.ndarray, y: np.ndarray) -> float:
  """Unbiased MMD^2 with the cubic polynomial kernel (Binkowski et al. 2018).

  MMD^2_u = sum_{i!=j} k(x_i, x_j) / (m (m-1)) + sum_{i!=j} k(y_i, y_j) /
  (n (n-1)) - 2 sum_{i,j} k(x_i, y_j) / (m n); its expectation is exactly 0
  when x and y come from the same distribution, so it can be negative.
  """
  m, n = len(x), len(y)
  kxx, kyy = polynomial_kernel(x, x), polynomial_kernel(y, y)
  kxy = polynomial_kernel(x, y)
  return float(
    (kxx.sum() - np.trace(kxx)) / (m * (m - 1))
    + (kyy.sum() - np.trace(kyy)) / (n * (n - 1))
    - 2 * kxy.mean()
  )


def kid(
  features_a: np.ndarray,
  features_b: np.ndarray,
  subsets: int = 100,
  subset_size: int = 1000,
  seed: int = 0,
) -> Dict[str, object]:
  """KID: MMD^2_u averaged over random subsets (without replacement in each).

  Subsets bound the O(m^2) kernel cost and give a spread. With fewer images
  than `subset_size` the subsets shrink to the smaller set (with a warning);
  when that is both whole sets, every subset is the same and there is no
  spread to report.

  Returns:
    {'mean', 'std' (None without a spread), 'subset_size', 'subsets'}.

  Raises:
    ValueError: fewer than 2 features in a set.
  """
  a = np.asarray(features_a, np.float64)
  b = np.asarray(features_b, np.float64)
  m = min(subset_size, len(a), len(b))
  if m < 2:
    raise ValueError(f'KID needs at least 2 images in each set, got {len(a)} and {len(b)}.')
  if m < subset_size:
    logging.warning('KID: subsets of %d images (the smaller set), not %d.', m, subset_size)
  if m == len(a) == len(b):
    return {'mean': mmd2_unbiased(a, b), 'std': None, 'subset_size': m, 'subsets': 1}
  rng = np.random.default_rng(seed)
  values = [
    mmd2_unbiased(a[rng.choice(len(a), m, replace=False)], b[rng.choice(len(b), m, replace=False)])
    for _ in range(subsets)
  ]
  return {
    'mean': float(np.mean(values)),
    'std': float(np.std(values)),
    'subset_size': m,
    'subsets': subsets,
  }
