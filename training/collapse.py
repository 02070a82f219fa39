"""Collapse watch: notices the ways a GAN run dies or drifts, warns, never stops.

1. D wins outright: mean D(G(z)) stays near 0, so the non-saturating G loss
   -log D(G(z)) grows and G's gradient carries no useful direction. On a few
   thousand real faces this happens within tens of steps without
   augmentation.
2. Mode collapse: G maps every latent to (nearly) the same image. Measured
   on the fixed-latent sample grid as the mean over pixels of the standard
   deviation across samples (images in [-1, 1]); real CelebA crops score
   about 0.45, a collapsed G under 0.05.
3. Partial collapse: G repeats a few faces for many latents. Seen on the
   fixed-latent samples as the near-duplicate rate (the share of samples
   with another sample within RMS 0.1 at 16x16, images in [-1, 1]; among
   64 real faces the closest pair is about 0.23 apart), and, with
   --eval_every, as coverage that falls while density stays high (the
   faces stay realistic but cover fewer real ones).
4. Quality turning back: the evaluation's SWD rising three times in a row,
   or the samples' colour drifting (a channel mean, once within
   `max_color_drift` levels of 255 of the real faces', further away; or
   never within them after `color_grace` evaluations).
Each check arms only once the run has looked healthy on it, so a fresh G
(every latent the same flat image, colours off) raises no alarm; the colour
check also arms after its grace, since some runs never match in colour.
"""

from typing import Dict, List, Optional, Tuple

import numpy as np

from metrics import coverage

REMEDIES = (
  'Remedies: turn on small-data augmentation (--diffaugment=color,'
  'translation,cutout --x_flip), which lets D keep its lead without '
  'memorising the reals; use Adam beta1 0.5 (--g_beta1=0.5 --d_beta1=0.5); '
  'lower --d_lr; add instance noise (--instance_noise=additive '
  '--noise_sd=0.1); or resume from an earlier checkpoint. The run goes on; '
  'it is your call whether to stop it.'
)


BEST = (
  'sample the checkpoint of the best evaluation, which --keep_best '
  'keeps (generate.py --checkpoint=<run>/best)'
)


def partial_remedies(config=None) -> str:
  """The partial-collapse remedies, leaving out those `config` already uses.

  Args:
    config: the run's presets.Config, or None for all of them.
  """
  c = config
  options = []
  if c is None or not c.d_has_batch_norm():
    options.append(
      'BatchNorm in D (--d_batch_norm=on) lets D compare the faces of a batch: with '
      'adaptive augmentation (--augment_target=0.6) it lifted 157x128 recall on '
      'held-out faces from 0.04 to 0.63 at step 2,000, and over an hour of 48x48 '
      'training lowered SWD by a quarter to a third with coverage as good (alone, '
      'under DiffAugment on every image, it smeared the faces)'
    )
  if c is None or c.r1_gamma <= 0:
    options.append(
      'an R1 penalty on D (--r1_gamma=1) kept coverage 0.03-0.08 '
      'higher over 1,040 steps of 157x128 training'
    )
  if c is None or (c.augment_p >= 1 and c.diffaugment):
    options.append('DiffAugment on half of the images (--augment_p=0.5) raised coverage early')
  if c is None or c.d_mbstd_group <= 0:
    options.append(
      'a minibatch-stddev channel in D (--d_mbstd_group=4) lets D see a batch of near-copies'
    )
  options.append(BEST)
  return f'Remedies: {"; ".join(options)}. The run goes on.'


PARTIAL_REMEDIES = partial_remedies()
TURN_REMEDIES = f'Remedies: {BEST}; more training faces, where you have them. The run goes on.'
DRIFT_REMEDIES = (
  f'Remedies: {BEST}. The samples come from the EMA G with BatchNorm '
  'statistics of its own weights, which removed the swings between '
  "evaluations that the raw G's statistics made (docs/results.md): a cast "
  "that stays is G's own. Where colour augmentation is on, training "
  'without it (--diffaugment=translation,cutout) scored the colour and '
  "layout of 2,500 faces (SWD's coarse level) better. The run goes on."
)

# A held-out SWD that rose three evaluations in a row reports a turn only when
# the rise totals this share of where it started: two draws of 1,024 faces
# differ by a few percent, and a celeba48 run on 2,500 faces drifted 19.6 ->
# 20.5 (5%) past its hour and back while coverage kept rising.
SWD_TURN_MIN_RISE = 0.06


def near_duplicate_rate(images: np.ndarray, threshold: float = 0.1) -> float:
  """Share of images with another within RMS `threshold` (16x16, [-1, 1])."""
  images = np.asarray(images, np.float32)
  if len(images) < 2:
    return 0.0
  x = coverage.downsample((images + 1.0) * 127.5) * 2.0  # back to [-1, 1]
  d = coverage.squared_distances(x, x) / x.shape[1]  # mean square per value
  np.fill_diagonal(d, np.inf)
  return float(np.mean(np.sqrt(d.min(1)) < threshold))


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
    max_duplicates: a near_duplicate_rate over this is partial collapse.
    max_crowd_recall, min_crowd_density: recall under the first at
      density over the second, two evaluations in a row, is partial
      collapse by crowding (see _crowding).
    arm_diversity: the sample diversity (real faces: about 0.45) the
      samples must have reached, with few near-copies, before a partial
      collapse counts: a young G's blurry faces pass through a moment of
      few near-copies before they look alike again and then sharpen.
    remedies: the advice of a partial-collapse warning (partial_remedies
      of the run's config names only what the run does not already use).
  """

  def __init__(
    self,
    d_fake_floor: float = 0.02,
    patience: int = 3,
    min_diversity: float = 0.05,
    max_duplicates: float = 0.25,
    arm_diversity: float = 0.2,
    coverage_drop: float = 0.8,
    min_density: float = 0.5,
    max_crowd_recall: float = 0.15,
    min_crowd_density: float = 1.5,
    max_color_drift: float = 6.0,
    color_grace: int = 4,
    remedies: str = PARTIAL_REMEDIES,
  ):
    self.d_fake_floor = d_fake_floor
    self.patience = patience
    self.min_diversity = min_diversity
    self.max_duplicates = max_duplicates
    self.arm_diversity = arm_diversity
    self.coverage_drop = coverage_drop
    self.min_density = min_density
    self.max_crowd_recall = max_crowd_recall
    self.min_crowd_density = min_crowd_density
    self._crowded = 0  # evaluations in a row with crowding samples
    self.max_color_drift = max_color_drift
    self.color_grace = color_grace
    self.remedies = remedies
    self._color_evals = 0
    self.best_coverage = 0.0
    self.swds: List[float] = []
    self._armed_duplicates = self._armed_color = False
    self.streak = 0
    self._armed = False
    self._warned = set()

  def observe_d(self, d_fake: float, step: int) -> Optional[str]:
    """Called once per log interval; a warning the first time D wins."""
    self.streak = self.streak + 1 if d_fake < self.d_fake_floor else 0
    if self.streak >= self.patience and 'd_wins' not in self._warned:
      self._warned.add('d_wins')
      return (
        f'warning: D is winning outright at step {step}: mean D(G(z)) '
        f'has stayed below {self.d_fake_floor} for {self.streak} log '
        'intervals, so G gets almost no gradient and its samples '
        f'usually collapse soon. {REMEDIES}'
      )
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
      return (
        f'warning: the samples at step {step} have lost their '
        f'diversity (per-pixel std across samples {diversity:.3f}, '
        f'under {self.min_diversity}; real faces give about 0.45): G '
        f'has collapsed onto one image. {REMEDIES}'
      )
    return None

  def observe_duplicates(self, rate: float, step: int, diversity: float) -> Optional[str]:
    """Called with the near_duplicate_rate and sample_diversity of the
    fixed-latent samples.

    Armed once the rate has been at most `max_duplicates` while the
    diversity was at least `arm_diversity`: a fresh G's samples are all
    near-copies of one flat image, and a young G's blurry ones of one
    average face (celeba64 at step 250: 22% near-copies at diversity 0.12,
    72% at step 300, none from step 350 on), which is no collapse.
    """
    if rate <= self.max_duplicates and diversity >= self.arm_diversity:
      self._armed_duplicates = True
    elif self._armed_duplicates and 'duplicates' not in self._warned:
      self._warned.add('duplicates')
      return (
        f'warning: partial mode collapse at step {step}: {rate:.0%} of '
        'the fixed-latent samples have a near-copy among them (RMS '
        'under 0.1 at 16x16; distinct real faces are about 0.23 '
        f'apart). {self.remedies}'
      )
    return None

  def observe_samples(self, samples: np.ndarray, step: int) -> Tuple[Dict[str, float], List[str]]:
    """Called with the fixed-latent samples of a logging step.

    Returns their collapse/sample_diversity and collapse/near_duplicates,
    and any warnings.
    """
    diversity = sample_diversity(samples)
    duplicates = near_duplicate_rate(samples)
    warnings = [
      self.observe_diversity(diversity, step),
      self.observe_duplicates(duplicates, step, diversity),
    ]
    return (
      {'collapse/sample_diversity': diversity, 'collapse/near_duplicates': duplicates},
      [w for w in warnings if w],
    )

  def observe_eval(self, scores: Dict[str, float], step: int) -> List[str]:
    """Called with each evaluation's scores (TrainingEvaluator's keys).

    Warns once each: coverage fallen under `coverage_drop` of its best while
    density stays at least `min_density` (partial collapse); SWD up three
    evaluations in a row (quality turning back); a channel mean more than
    `max_color_drift` levels from the real faces' (colour drift), once they
    had matched or after `color_grace` evaluations; samples crowding around
    a few real faces (_crowding).
    """
    warnings = [w for w in [self._crowding(scores, step)] if w]
    cov, density = scores.get('eval/coverage'), scores.get('eval/density')
    if cov is not None:
      self.best_coverage = max(self.best_coverage, cov)
      if (
        cov < self.coverage_drop * self.best_coverage
        and density >= self.min_density
        and 'coverage' not in self._warned
      ):
        self._warned.add('coverage')
        warnings.append(
          f'warning: partial mode collapse at step {step}: coverage fell to '
          f'{cov:.2f} from its best {self.best_coverage:.2f} while density '
          f'stays {density:.2f}: the faces are realistic but fewer real '
          f'faces have one near them. {self.remedies}'
        )
    if 'eval/swd' in scores:
      self.swds.append(scores['eval/swd'])
      last = self.swds[-4:]
      if (
        len(last) == 4
        and all(b > a for a, b in zip(last, last[1:]))
        and last[-1] >= last[0] * (1 + SWD_TURN_MIN_RISE)
        and 'swd_rising' not in self._warned
      ):
        self._warned.add('swd_rising')
        warnings.append(
          f'warning: the evaluation SWD has risen three times in a row '
          f'(step {step}: '
          + ' -> '.join(f'{v:.1f}' for v in last)
          + f'): quality is turning back. {TURN_REMEDIES}'
        )
    drift = {
      c: scores[f'eval/channel_mean_diff/{c}']
      for c in 'rgb'
      if f'eval/channel_mean_diff/{c}' in scores
    }
    # Drift is moving away after having matched: early samples are off in
    # colour as in everything else. Past color_grace evaluations a cast
    # counts even if the means never matched.
    worst = max((abs(v) for v in drift.values()), default=None)
    self._color_evals += worst is not None
    if worst is not None and worst <= self.max_color_drift:
      self._armed_color = True
    elif (
      worst is not None
      and 'color' not in self._warned
      and (self._armed_color or self._color_evals > self.color_grace)
    ):
      self._warned.add('color')
      how = (
        f", once within {self.max_color_drift:g} levels of the real faces', now differ"
        if self._armed_color
        else f" still differ from the real faces' after {self._color_evals} evaluations"
      )
      warnings.append(
        f"warning: colour drift at step {step}: the samples' channel means"
        f'{how} by '
        + ', '.join(f'{c.upper()} {v:+.1f}' for c, v in drift.items())
        + f' levels of 255. {DRIFT_REMEDIES}'
      )
    return warnings

  def _crowding(self, scores: Dict[str, float], step: int) -> Optional[str]:
    """A warning, once, when recall stays under `max_crowd_recall` at density
    over `min_crowd_density` for two evaluations in a row.

    Few real faces have a sample near them while the samples sit where real
    faces are densest: G repeats a few faces. Whole-image coverage can miss
    it when the backgrounds around the repeated face vary (celeba157x128's
    hour before BatchNorm in D: recall 0.02-0.06 at density 1.7-2.6 at every
    evaluation, one face in half of the grid; celeba48 and celeba64 never had
    density over 1.3 at low recall).
    """
    recall, density = scores.get('eval/recall'), scores.get('eval/density')
    if recall is None or density is None:
      return None
    crowded = recall < self.max_crowd_recall and density > self.min_crowd_density
    self._crowded = self._crowded + 1 if crowded else 0
    if self._crowded < 2 or 'crowding' in self._warned:
      return None
    self._warned.add('crowding')
    face = scores.get('eval/face_coverage')
    face = '' if face is None else f'; coverage of the face region {face:.2f}'
    return (
      f'warning: partial mode collapse at step {step}: the samples crowd around '
      f'a few real faces (recall {recall:.2f}: few real faces have a sample near '
      f'them; density {density:.2f}{face}) for {self._crowded} evaluations in a row. '
      f'The grid may repeat one face even where coverage looks fine. {self.remedies}'
    )

  def d_scalars(self) -> Dict[str, float]:
    """collapse/d_wins: 1 while D has been winning for `patience` intervals."""
    return {'collapse/d_wins': float(self.streak >= self.patience)}
