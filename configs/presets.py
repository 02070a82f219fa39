"""The run configuration and the presets: one table of the fields that differ.

A `Config` is the single object every library function receives; it is written
to `<workdir>/config.json` so a run directory can be reloaded without flags.
"""

import dataclasses
import json
import math
from typing import Any, Dict

# Width of CelebA's aligned 178x218 frame, the unit of `crop`.
FRAME_WIDTH = 178

# Bump when a field changes meaning, so an old run directory is refused clearly.
CONFIG_VERSION = 1

# Architecture fields added after runs existed, with the value every run made
# before them had: such a run keeps it on resume (never a silent change of
# architecture), whatever the preset now says.
ADDED_ARCH_FIELDS = {
  'g_upsample': 'deconv',
  'd_mbstd_group': 0,
  'g_deconv_init': 'random',
  'g_blur': False,
  'g_out_upsample': '',
}
# Preset defaults that changed after runs existed: (preset, field) -> the
# default before. A run that recorded the old default and is resumed with
# the new one keeps the old (printed, recorded), as for ADDED_ARCH_FIELDS:
# a resumed run goes on with the recipe it was started with.
CHANGED_DEFAULTS = {
  ('celeba157x128', 'd_batch_norm'): 'arch',
  ('celeba157x128', 'augment_target'): 0.0,
  ('celeba64', 'reuse_fake'): False,
  ('celeba48', 'd_batch_norm'): 'arch',
  ('celeba48', 'augment_target'): 0.0,
}

DIFFAUGMENT = ('color', 'translation', 'cutout')
ARCHS = ('tutorial', 'dcgan', 'rect', 'mlp')
UPSAMPLES = ('deconv', 'deconv4', 'nearest', 'bilinear', 'nearest2x')
DATASETS = ('celeba', 'tfds', 'folder', 'synthetic')
CHOICES = {
  'arch': ARCHS,
  'dataset': DATASETS,
  'g_activation': ('relu', 'leaky_relu', 'selu'),
  'g_upsample': UPSAMPLES,
  'g_out_upsample': ('',) + UPSAMPLES,
  'g_deconv_init': ('random', 'nearest'),
  'instance_noise': ('none', 'additive', 'multiplicative'),
  'latent_dist': ('normal', 'uniform'),
  'loss': ('nonsaturating', 'hinge'),
  'd_batch_norm': ('arch', 'on', 'off'),
  'optimizer': ('adam', 'adamw'),
  'split': ('train', 'valid', 'test', 'heldout', 'all'),
  'eval_split': ('', 'train', 'valid', 'test', 'heldout', 'all'),
  'jit_compile': ('auto', 'on', 'off'),
  'mixed_precision': ('auto', 'off', 'mixed_float16', 'mixed_bfloat16'),
  'strategy': ('default', 'mirrored', 'multiworker'),
  'keep_best': ('', 'swd', 'coverage', 'fid', 'kid'),
}


def _f(default, help_text):
  return dataclasses.field(default=default, metadata={'help': help_text})


@dataclasses.dataclass(frozen=True)
class Config:
  """Every setting of a run; presets override a few, flags override any."""

  preset: str = _f('celeba64', 'Name of the preset this config started from.')
  # Images and architecture.
  image_height: int = _f(64, 'Image height in pixels.')
  image_width: int = _f(64, 'Image width in pixels.')
  crop: int = _f(
    160,
    'Square centre crop, in pixels of the 178x218 CelebA '
    'frame (scaled to each image); 0 resizes the whole frame.',
  )
  arch: str = _f(
    'dcgan',
    'tutorial (TF-tutorial DCGAN), dcgan (canonical '
    '4x4 DCGAN), rect (157x128 spectral-norm DCGAN), mlp.',
  )
  latent_dim: int = _f(100, 'Size of the latent vector z.')
  g_filters: int = _f(64, 'Width of the last hidden layer of G (others scale).')
  d_filters: int = _f(64, 'Width of the first layer of D (others scale).')
  g_activation: str = _f('relu', 'Hidden activation of G.')
  g_leaky_slope: float = _f(0.2, 'Negative slope of G when leaky_relu.')
  d_leaky_slope: float = _f(0.2, 'Negative slope of D LeakyReLUs.')
  d_dropout: float = _f(0.0, 'Dropout rate after each hidden layer of D.')
  d_spectral_norm: bool = _f(False, 'Spectral normalisation on D layers.')
  d_batch_norm: str = _f(
    'arch',
    'BatchNorm after every hidden D layer but '
    'the first (DCGAN placement): arch = as the arch '
    'has it (dcgan: on; tutorial, rect, mlp: off).',
  )
  g_spectral_norm: bool = _f(False, 'Spectral normalisation on G layers.')
  g_upsample: str = _f(
    'deconv',
    "How G doubles its resolution: 'deconv' "
    "(the arch's stride-2 transposed conv, as published), "
    "'deconv4' (stride-2 transposed convs with 4x4 "
    'kernels, which the stride divides: even overlap) '
    "or resize-convolution, 'nearest' or 'bilinear' "
    'resize then a stride-1 conv (no checkerboard); '
    "'nearest2x' copies every pixel exactly twice and "
    'fits odd sizes (157x128) at the bottom edge.',
  )
  g_out_upsample: str = _f(
    '',
    "How G's last doubling, the one that writes the image, upsamples "
    "(the g_upsample choices; '' = as g_upsample): a resize-conv there "
    'cannot draw the one-pixel checkerboard, but the hidden doublings '
    'keep their transposed convs, which draw theirs a size up.',
  )
  g_deconv_init: str = _f(
    'random',
    "How G's stride-2 transposed convs start (g_upsample=deconv): "
    "'random' (DCGAN's N(0, 0.02), as published) or 'nearest' "
    '(ICNR: as nearest-neighbour upsampling then a random conv, so '
    'all four output phases start equal: no checkerboard at the start).',
  )
  g_blur: bool = _f(
    False,
    "Low-pass G's output with a fixed [1, 2, 1] binomial filter per axis "
    '(zero response at the Nyquist frequency): no one-pixel checkerboard '
    'from the transposed convs can reach the images, as StyleGAN blurs '
    'after its upsamplings.',
  )
  d_mbstd_group: int = _f(
    0,
    'Minibatch standard deviation channel before '
    "D's head, over groups of this many images (0: "
    'off; 4 in ProGAN): lets D see a batch of '
    'near-copies.',
  )
  # Objective and stabilising tricks.
  instance_noise: str = _f(
    'none', 'Noise on every D input: additive x + sd*n or multiplicative x + sd*n*x.'
  )
  noise_sd: float = _f(0.1, 'Instance noise standard deviation.')
  noise_decay_steps: int = _f(
    0, 'Decay the noise sd linearly to 0 over this many steps (0: constant).'
  )
  loss: str = _f(
    'nonsaturating',
    'Adversarial loss: nonsaturating (BCE on D logits, G maximises log D(G(z)), '
    'as published) or hinge (max(0, 1 -+ D) for D, -D(G(z)) for G; no labels).',
  )
  real_label_low: float = _f(
    1.0, 'Real label for D; drawn uniformly in [low, high] per example and batch.'
  )
  real_label_high: float = _f(1.0, 'Upper end of the real label range.')
  smooth_g_targets: bool = _f(False, 'Use the smoothed real label as G target too (a seed quirk).')
  feature_matching: float = _f(0.0, 'Weight of the feature-matching term in the G loss (0: off).')
  fm_ramp_steps: int = _f(0, 'Ramp the feature-matching weight from 0 over this many steps.')
  g_steps_per_d: int = _f(1, 'G updates per D update.')
  diffaugment: str = _f(
    '',
    'DiffAugment transforms applied to every image D '
    'sees, real and fake, in both steps: a comma-'
    "separated subset of color,translation,cutout ('': "
    'off).',
  )
  augment_p: float = _f(
    1.0,
    'Probability that each DiffAugment transform '
    'is applied to an image (1: every image, as '
    'published; below about 0.8 colour changes cannot '
    'leak into G, Karras et al. 2020).',
  )
  augment_target: float = _f(
    0.0,
    'Adaptive augmentation (ADA, Karras et al. 2020) when above 0: the '
    'augmentation probability starts at 0 and rises while the mean sign of '
    "D's real logits (how surely D calls the training faces real) is above "
    'this target, falls while it is below; augment_p is then ignored. '
    'ADA used 0.6. 0: a fixed augment_p.',
  )
  augment_kimg: float = _f(
    20.0,
    'ADA speed: thousands of images over which the adaptive probability '
    'can move from 0 to 1 (ADA used 500 for runs of tens of millions of '
    'images; an hour on a CPU sees about 100 thousand).',
  )
  r1_gamma: float = _f(
    0.0, 'Weight of the R1 penalty gamma/2 * |grad_x D(x)|^2 on real images (0: off).'
  )
  r1_every: int = _f(16, 'Apply R1 every N steps, scaled by N (lazy regularisation, StyleGAN2).')
  x_flip: bool = _f(False, 'Mirror the real images left-right at random.')
  reuse_fake: bool = _f(
    False,
    'Train the first G step on the D step fake '
    'batch, through the same G forward pass (PyTorch '
    'DCGAN tutorial style: one G forward fewer) instead '
    'of a fresh z.',
  )
  latent_dist: str = _f('normal', 'Latent distribution: N(0,1) or U(-1,1).')
  # Optimisers.
  optimizer: str = _f('adam', 'Optimiser for both networks.')
  g_lr: float = _f(1e-4, 'Generator learning rate.')
  d_lr: float = _f(2e-4, 'Discriminator learning rate.')
  g_beta1: float = _f(0.9, 'Generator Adam beta1.')
  g_beta2: float = _f(0.999, 'Generator Adam beta2.')
  d_beta1: float = _f(0.9, 'Discriminator Adam beta1.')
  d_beta2: float = _f(0.999, 'Discriminator Adam beta2.')
  adam_epsilon: float = _f(1e-7, 'Adam epsilon.')
  weight_decay: float = _f(0.0, 'Decoupled weight decay (adamw only).')
  ema_decay: float = _f(
    0.999,
    'Decay of the EMA copy of G used for samples (0: no EMA); it '
    'normalises with BatchNorm statistics of its own weights.',
  )
  # Data.
  dataset: str = _f(
    'celeba',
    'celeba (local folder), tfds (celeb_a via '
    'TFDS), folder (any image tree), synthetic (built in).',
  )
  data_dir: str = _f('', 'CelebA folder (official or Kaggle layout) or image folder.')
  split: str = _f('train', 'CelebA partition to train on (heldout: valid and test together).')
  tfds_data_dir: str = _f('', 'TFDS data_dir for --dataset=tfds.')
  tfds_download: bool = _f(False, 'Let TFDS try to download celeb_a.')
  synthetic_size: int = _f(8192, 'Number of distinct synthetic faces.')
  cache: str = _f('', "'' (none), 'memory', or a file path prefix: cache decoded, resized images.")
  # Speed and scale.
  jit_compile: str = _f(
    'auto',
    'XLA-compile the gradient computations; '
    'auto: measured on a single GPU (XLA on or off, '
    'whichever is faster), off on CPUs (4x slower '
    'there, BENCHMARKS.md).',
  )
  mixed_precision: str = _f(
    'auto',
    'Keras mixed precision policy (float16 '
    'adds dynamic loss scaling); auto: float32 or '
    'bfloat16, whichever trains this model faster '
    'on this machine, timed once and cached '
    '(~/.cache/facegan), kept by a resumed run.',
  )
  steps_per_call: int = _f(
    1, 'Train steps per tf.function call (fewer Python round trips on fast accelerators).'
  )
  strategy: str = _f(
    'default',
    'tf.distribute strategy: mirrored uses every '
    'local GPU (or logical CPU), multiworker every TF_CONFIG '
    'host; batch_size is the global batch.',
  )
  # Loop.
  batch_size: int = _f(64, 'Batch size (global, across replicas).')
  epochs: int = _f(20, 'Number of epochs.')
  steps_per_epoch: int = _f(0, 'Cap on steps per epoch (0: a full pass).')
  seed: int = _f(0, 'Seed of weights, data order, noise and samples.')
  num_samples: int = _f(64, 'Images in the fixed-latent sample grid.')
  log_every: int = _f(50, 'Write TensorBoard scalars every N steps.')
  checkpoint_every_steps: int = _f(
    1000, 'Also checkpoint every N steps (0: at each epoch end only).'
  )
  checkpoint_every_secs: float = _f(
    600.0,
    'An epoch end checkpoints only '
    'once this many seconds passed since '
    'the last save (0: every epoch); the '
    'last epoch, Ctrl-C and --max_minutes '
    'always save.',
  )
  grid_every_secs: float = _f(
    60.0,
    'An epoch end writes its sample grid '
    '(samples/ and TensorBoard) only once this '
    'many seconds passed since the last grid (0: '
    'every epoch); the first and last epochs '
    'always get one.',
  )
  keep_checkpoints: int = _f(3, 'Checkpoints kept.')
  eval_every: int = _f(0, 'Log quality metrics to TensorBoard every N steps (0: off).')
  eval_metrics: str = _f(
    'swd,coverage', 'Comma-separated metrics for --eval_every: swd, fid, kid, coverage.'
  )
  eval_split: str = _f(
    '',
    'CelebA partition the real images of --eval_every '
    "come from ('': the training split). heldout (valid "
    'and test: identities never trained on) measures '
    'generalisation, not memorisation.',
  )
  eval_num_samples: int = _f(1024, 'Generated and real images per evaluation.')
  keep_best: str = _f(
    'swd',
    'With --eval_every, also keep the checkpoint '
    'of the best evaluation so far in <run>/best/, by '
    'this metric: swd, fid or kid (lowest) or coverage '
    "(highest); '' keeps none.",
  )
  inception_weights: str = _f(
    '', "InceptionV3 weights file for FID/KID ('': Keras' download, when online)."
  )

  def d_has_batch_norm(self) -> bool:
    """Whether D's hidden layers have BatchNorm (d_batch_norm resolved)."""
    return {'on': True, 'off': False, 'arch': self.arch == 'dcgan'}[self.d_batch_norm]

  def validate(self) -> 'Config':
    """Raises ValueError with a readable message if a field is invalid."""
    _check_choices(self)
    _check_ranges(self)
    _check_combinations(self)
    return self

  def to_json(self) -> str:
    return json.dumps(
      {'version': CONFIG_VERSION, **dataclasses.asdict(self)}, indent=2, sort_keys=True
    )

  @classmethod
  def from_json(cls, text: str) -> 'Config':
    """Parses `to_json` output; refuses other versions or unknown fields."""
    fields = json.loads(text)
    version = fields.pop('version', None)
    if version != CONFIG_VERSION:
      raise ValueError(
        f'config.json has version {version}, this code reads version {CONFIG_VERSION}.'
      )
    unknown = set(fields) - {f.name for f in dataclasses.fields(cls)}
    if unknown:
      raise ValueError(f'config.json has unknown fields: {sorted(unknown)}.')
    return cls(**{**ADDED_ARCH_FIELDS, **fields})


def missing_data_message(dataset: str, data_dir: str) -> str:
  """The one-paragraph error shown when no training images can be found."""
  where = f' at {data_dir!r}' if data_dir else ''
  return (
    f'No {dataset} images found{where}. Get data one of three ways: '
    '(1) download CelebA\'s img_align_celeba (Kaggle "celeba-dataset" or '
    'the official Google Drive) and pass --dataset=celeba '
    '--data_dir=<folder holding img_align_celeba/>; (2) use TFDS with '
    '--dataset=tfds --tfds_data_dir=<dir> after preparing celeb_a there '
    '(add --tfds_download to let TFDS try the download); (3) train on any '
    'image folder with --dataset=folder --data_dir=<folder>, or offline on '
    'the built-in procedural faces with --dataset=synthetic.'
  )


# The presets: only the fields that differ from the Config defaults.
# Numeric fields by the range they must lie in (packed: not reformatted).
# fmt: off
POSITIVE = ('image_height', 'image_width', 'latent_dim', 'g_filters', 'd_filters', 'batch_size',
            'epochs', 'g_steps_per_d', 'num_samples', 'log_every', 'keep_checkpoints',
            'synthetic_size', 'steps_per_call', 'eval_num_samples', 'r1_every',
            'g_lr', 'd_lr', 'adam_epsilon', 'augment_kimg')
NON_NEGATIVE = ('steps_per_epoch', 'noise_sd', 'noise_decay_steps', 'fm_ramp_steps',
                'feature_matching', 'weight_decay', 'checkpoint_every_steps', 'eval_every',
                'd_mbstd_group', 'r1_gamma', 'checkpoint_every_secs', 'grid_every_secs')
BELOW_ONE = ('g_beta1', 'd_beta1', 'g_beta2', 'd_beta2', 'd_dropout', 'ema_decay',
             'augment_target')  # in [0, 1)
# fmt: on


def _check_choices(c: Config) -> None:
  """Every enumerated field holds one of its choices."""
  for name, choices in CHOICES.items():
    if getattr(c, name) not in choices:
      raise ValueError(f'{name}={getattr(c, name)!r} is not one of {", ".join(choices)}.')
  unknown = [p for p in c.diffaugment.split(',') if p.strip() and p.strip() not in DIFFAUGMENT]
  if unknown:
    raise ValueError(
      f'diffaugment: unknown transform(s) {unknown}; use a '
      f'comma-separated subset of {",".join(DIFFAUGMENT)}.'
    )


def _check_ranges(c: Config) -> None:
  """Every number is finite and in its field's range."""
  for field in dataclasses.fields(c):
    value = getattr(c, field.name)
    if isinstance(value, float) and not math.isfinite(value):
      raise ValueError(f'{field.name} must be a finite number, got {value}.')
  for name in POSITIVE:
    if not getattr(c, name) > 0:
      raise ValueError(f'{name} must be positive, got {getattr(c, name)}.')
  for name in NON_NEGATIVE:
    if getattr(c, name) < 0:
      raise ValueError(f'{name} must not be negative, got {getattr(c, name)}.')
  for name in BELOW_ONE:
    if not 0 <= getattr(c, name) < 1:
      raise ValueError(f'{name} must be in [0, 1), got {getattr(c, name)}.')
  if not 0 <= c.crop <= FRAME_WIDTH:
    raise ValueError(
      f'crop must be between 0 (whole frame) and {FRAME_WIDTH} (the frame width), got {c.crop}.'
    )
  if not 0 < c.augment_p <= 1:
    raise ValueError(f'augment_p must be in (0, 1], got {c.augment_p}.')
  if c.real_label_low > c.real_label_high:
    raise ValueError('real_label_low must not exceed real_label_high.')


def _check_combinations(c: Config) -> None:
  """Fields that only work together, and the sizes each architecture builds."""
  if c.weight_decay > 0 and c.optimizer != 'adamw':
    raise ValueError(
      f'weight_decay={c.weight_decay} needs --optimizer=adamw (Adam has no decoupled weight decay).'
    )
  metrics = c.eval_metrics.split(',')
  if 'coverage' in metrics and c.eval_num_samples < 6:
    raise ValueError(
      f'eval_num_samples={c.eval_num_samples} is too few for coverage, which needs 6 images a '
      'set (k=5 neighbours); raise it or drop coverage from --eval_metrics.'
    )
  if c.eval_every and c.keep_best and c.keep_best not in metrics:
    raise ValueError(
      f'keep_best={c.keep_best} ranks evaluations by a metric that '
      f'--eval_metrics={c.eval_metrics} does not compute; add it there or pick one of those.'
    )
  smoothed = (c.real_label_low, c.real_label_high) != (1.0, 1.0) or c.smooth_g_targets
  if c.loss == 'hinge' and smoothed:
    raise ValueError(
      'loss=hinge has no labels to smooth: add --real_label_low=1 --real_label_high=1 '
      f'--nosmooth_g_targets (now {c.real_label_low}, {c.real_label_high}, '
      f'{c.smooth_g_targets}).'
    )
  if c.d_mbstd_group and c.arch == 'mlp':
    raise ValueError('d_mbstd_group needs a convolutional D; arch=mlp has none.')
  h, w = c.image_height, c.image_width
  if c.arch == 'tutorial' and (h % 8 or w % 8):
    raise ValueError(f'arch=tutorial needs sizes divisible by 8, got {h}x{w}.')
  if c.arch == 'dcgan' and (h != w or h < 8 or h & (h - 1)):
    raise ValueError(f'arch=dcgan needs a square power-of-two size >= 8, got {h}x{w}.')
  if c.arch == 'rect' and (h, w) != (157, 128):
    raise ValueError(f'arch=rect is built for 157x128 images, got {h}x{w}.')


# One preset per entry, its fields packed like a table row: not reformatted.
# fmt: off
PRESETS: Dict[str, Dict[str, Any]] = {
  # TF-tutorial DCGAN at 48x48 with additive instance noise on D inputs.
  # On a few thousand real faces the recipe alone loses to D within 50
  # steps; DiffAugment, x-flips and Adam beta1 0.5 keep D(G(z)) near 0.4
  # and faces appear within a few hundred steps (docs/results.md).
  'celeba48': dict(image_height=48, image_width=48, crop=160,
                   arch='tutorial', latent_dim=200, batch_size=256,
                   g_activation='leaky_relu', g_leaky_slope=0.3,
                   d_leaky_slope=0.3, d_dropout=0.3,
                   instance_noise='additive', noise_sd=0.1,
                   g_beta1=0.5, d_beta1=0.5,
                   diffaugment='color,translation,cutout', x_flip=True,
                   # As for celeba157x128: over an hour on 2,500 and on
                   # 8,140 faces, held-out SWD a quarter to a third lower,
                   # coverage and colour as good or better (docs/results.md).
                   d_batch_norm='on', augment_target=0.6),
  # Canonical DCGAN, improved recipe: D dropout, leaky G, labels U(.7,1.2);
  # with celeba48's small-data fixes (augmentation, Adam beta1 0.5).
  'celeba64': dict(image_height=64, image_width=64, crop=160, arch='dcgan',
                   latent_dim=100, batch_size=64, g_activation='leaky_relu',
                   g_leaky_slope=0.2, d_dropout=0.1, real_label_low=0.7,
                   real_label_high=1.2, g_beta1=0.5, d_beta1=0.5,
                   diffaugment='color,translation,cutout', x_flip=True,
                   # G's first update reuses the D step's fakes, as the
                   # PyTorch DCGAN example does: one G forward pass fewer,
                   # the same held-out scores step for step (docs/results.md).
                   reuse_fake=True),
  # Rectangular spectral-norm DCGAN on the whole frame, GAN-hacks tricks,
  # with the same small-data fixes. --augment_p=0.5 and --d_mbstd_group=4
  # lead early but not yet at 1,000 steps (docs/results.md): not defaults.
  'celeba157x128': dict(image_height=157, image_width=128, crop=0,
                        arch='rect', latent_dim=100, batch_size=32,
                        d_dropout=0.3, d_spectral_norm=True,
                        g_spectral_norm=True,
                        instance_noise='multiplicative', noise_sd=0.1,
                        real_label_low=0.9, real_label_high=0.9,
                        g_beta1=0.5, d_beta1=0.5,
                        diffaugment='color,translation,cutout', x_flip=True,
                        # Ahead on held-out SWD and coverage at steps 416,
                        # 2,000 and 2,080 (docs/results.md).
                        r1_gamma=1.0,
                        # BatchNorm in D compares the faces of a batch, and
                        # adaptive augmentation lets D see G's faults: without
                        # them G repeats one face (docs/results.md).
                        d_batch_norm='on', augment_target=0.6),
  # CPU quickstart: the 48x48 recipe, narrower, on the synthetic faces (its
  # D without the BatchNorm celeba48 gained: the quickstart was not re-measured).
  # Smaller batches and Adam beta1 0.5 (the DCGAN paper's) make faces
  # appear within ~1000 steps, a few minutes on a 2-core CPU.
  'quick48': dict(image_height=48, image_width=48, crop=160,
                  arch='tutorial', latent_dim=100, batch_size=32,
                  g_filters=32, d_filters=32, g_activation='leaky_relu',
                  g_leaky_slope=0.3, d_leaky_slope=0.3, d_dropout=0.3,
                  instance_noise='additive', noise_sd=0.1, g_beta1=0.5,
                  d_beta1=0.5, dataset='synthetic', synthetic_size=4096,
                  cache='memory', epochs=10, steps_per_epoch=120,
                  num_samples=36, log_every=20,
                  # A two-minute run: a grid every epoch, for the GIF.
                  grid_every_secs=0),
  # Smallest useful GAN, for tests and smoke runs.
  # float32 everywhere: tests compare trajectories at float32 tolerances;
  # a grid and a checkpoint at every epoch end, whose steps tests count.
  'tiny': dict(image_height=32, image_width=32, crop=160, arch='dcgan',
               mixed_precision='off',
               latent_dim=16, batch_size=8, g_filters=8, d_filters=8,
               dataset='synthetic', synthetic_size=64, epochs=2,
               steps_per_epoch=4, num_samples=16, log_every=2,
               checkpoint_every_secs=0, grid_every_secs=0),
}
# fmt: on


def get_config(preset: str, **overrides) -> Config:
  """The preset's config with `overrides` applied and validated.

  Raises:
    ValueError: for an unknown preset, unknown field or invalid value.
  """
  if preset not in PRESETS:
    raise ValueError(f'Unknown preset {preset!r}; choose one of {", ".join(PRESETS)}.')
  fields = {f.name for f in dataclasses.fields(Config)}
  unknown = set(overrides) - fields
  if unknown:
    raise ValueError(f'Unknown config fields: {sorted(unknown)}.')
  return Config(**{**PRESETS[preset], 'preset': preset, **overrides}).validate()
