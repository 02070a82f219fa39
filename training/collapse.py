"""Collapse watch: notices the two ways a GAN run dies, warns once, never stops.

1. D wins outright: mean D(G(z)) stays near 0, so the non-saturating G loss
   -log D(G(z)) grows and G's gradient carries no useful direction. On a few
   thousand real faces this happens within tens of steps without
   augmentation.
2. Mode collapse: G maps every latent to (nearly) the same image. Measured
   on the fixed-latent sample grid as the mean over pixels of the standard
   deviation across samples (images in [-1, 1]); real CelebA crops score
   about 0.45, a collapsed G under 0.05.
"""

from typing import Dict, Optional

import numpy as np

REMEDIES = (
    'Remedies: turn on small-data augmentation (--diffaugment=color,'
    'translation,cutout --x_flip), which lets D keep its lead without '
    'memorising the reals; use Adam beta1 0.5 (--g_beta1=0.5 --d_beta1=0.5); '
    'lower --d_lr; add instance noise (--instance_noise=additive '
    '--noise_sd=0.1); or resume from an earlier checkpoint. The run goes on; '
    'it is your call whether to stop it.')


def sample_diversity(images: np.ndarray) -> float:
  """Mean per-pixel std across a batch of images in [-1, 1] (0: all alike)."""
  images = np.asarray(images, np.float32)
  return float(np.mean(np.std(images, axis=0)))


class CollapseWatch:
  """Feeds on logged metrics and sample grids; returns warnings to print.

  Args:
    d_fake_floor: mean D(G(z)) under this counts as D winning outright.
    patience: consecutive log intervals under the floor before warning.
    min_diversity: sample diversity under this counts as mode collapse.
  """

  def __init__(self, d_fake_floor: float = 0.02, patience: int = 3,
               min_diversity: float = 0.05):
    self.d_fake_floor = d_fake_floor
    self.patience = patience
    self.min_diversity = min_diversity
    self.streak = 0
    self._armed = False
    self._warned = set()

  def observe_d(self, d_fake: float, step: int) -> Optional[str]:
    """Called once per log interval; a warning the first time D wins."""
    self.streak = self.streak + 1 if d_fake < self.d_fake_floor else 0
    if self.streak >= self.patience and 'd_wins' not in self._warned:
      self._warned.add('d_wins')
      return (f'warning: D is winning outright at step {step}: mean D(G(z)) '
              f'has stayed below {self.d_fake_floor} for {self.streak} log '
              'intervals, so G gets almost no gradient and its samples '
              f'usually collapse soon. {REMEDIES}')
    return None

  def observe_diversity(self, diversity: float, step: int) -> Optional[str]:
    """Called with the sample_diversity of the fixed-latent samples; a
    warning the first time it falls under min_diversity.

    The watch arms once the samples have been diverse: a freshly initialised
    G maps every latent to nearly the same flat image, which is no collapse.
    """
    if diversity >= self.min_diversity:
      self._armed = True
    elif self._armed and 'mode' not in self._warned:
      self._warned.add('mode')
      return (f'warning: the samples at step {step} have lost their '
              f'diversity (per-pixel std across samples {diversity:.3f}, '
              f'under {self.min_diversity}; real faces give about 0.45): G '
              f'has collapsed onto one image. {REMEDIES}')
    return None

  def d_scalars(self) -> Dict[str, float]:
    """collapse/d_wins: 1 while D has been winning for `patience` intervals."""
    return {'collapse/d_wins': float(self.streak >= self.patience)}
