"""The stabilising tricks of the train step, as named helpers.

What D sees is not the raw batch: reals are x-flipped, both reals and fakes
DiffAugmented (data/augment.py), then blurred by instance noise; real labels
may be smoothed, and G's loss may add feature matching with a ramped weight.
`Tricks` holds those choices of a Config so the D and G steps (models/gan.py)
read as the tutorial's, with one call per trick.

Every random number is drawn for the global batch from a stateless seed
(config.seed, step) and a stream id (models/streams.py), and each replica
takes its rows: runs are reproducible, resume exactly without RNG state, and
follow the same trajectory on one device or several.
"""

import tensorflow as tf

from configs.presets import Config
from data import augment
from models import streams


def ada_adjust(p, sign_mean, target: float, images: int, kimg: float):
  """ADA's update (Karras et al. 2020): the augmentation probability after a step.

  p' = clip(p + sign(r - target) * images / (1000 kimg), 0, 1), where r is
  the mean of sign(D(x)) over the step's real images: near 1 when D calls
  every training face real with confidence (it overfits them), near 0 when
  it cannot tell. So p climbs while D overfits and falls while it is blind,
  by at most 1 per `kimg` thousand images.
  """
  step = tf.sign(tf.cast(sign_mean, tf.float32) - target) * images / (1000.0 * kimg)
  return tf.clip_by_value(p + step, 0.0, 1.0)


class Tricks:
  """Latents, labels, instance noise, augmentation and the FM weight of a step."""

  def __init__(self, config: Config):
    self.config = config
    self.augment_policy = augment.parse_policy(config.diffaugment)
    self.adaptive = config.augment_target > 0 and bool(self.augment_policy)
    # The probability each transform reaches an image: config.augment_p, or
    # with ADA a variable that starts at 0, moves after every step
    # (`adapt`) and is saved in every checkpoint.
    self.augment_p = tf.Variable(
      0.0 if self.adaptive else config.augment_p, trainable=False, name='augment_p'
    )

  def adapt(self, real_sign):
    """Moves the adaptive probability by ada_adjust (no-op without ADA)."""
    if self.adaptive:
      c = self.config
      self.augment_p.assign(
        ada_adjust(self.augment_p, real_sign, c.augment_target, c.batch_size, c.augment_kimg)
      )

  def random(self, stream, kind, shape, step):
    """This replica's rows of a global-batch 'uniform' [-1, 1) or 'normal'
    random tensor for `stream` at `step`."""
    ctx = tf.distribute.get_replica_context()
    n = ctx.num_replicas_in_sync if ctx else 1
    r = ctx.replica_id_in_sync_group if ctx else 0
    local = shape[0]
    seed = tf.random.experimental.stateless_fold_in(
      tf.stack([tf.cast(self.config.seed, tf.int64), step]), stream
    )
    full = tf.concat([[local * n], shape[1:]], 0)
    if kind == 'uniform':
      x = tf.random.stateless_uniform(full, seed, -1.0, 1.0)
    else:
      x = tf.random.stateless_normal(full, seed)
    return x[r * local : (r + 1) * local]

  def latent(self, stream, batch, step):
    """A (batch, latent_dim) batch of z from config.latent_dist."""
    return self.random(
      stream, self.config.latent_dist, tf.stack([batch, self.config.latent_dim]), step
    )

  def noise_sd(self, step):
    """Instance noise sd at `step`, with its linear decay."""
    c = self.config
    if c.instance_noise == 'none':
      return tf.constant(0.0)
    if c.noise_decay_steps <= 0:
      return tf.constant(c.noise_sd)
    frac = tf.cast(step, tf.float32) / c.noise_decay_steps
    return c.noise_sd * tf.maximum(0.0, 1.0 - frac)

  def real_labels(self, batch, step):
    """D's targets for real images: fixed, or U(low, high) per image."""
    c = self.config
    if c.real_label_low == c.real_label_high:
      return tf.fill([batch], c.real_label_low)
    # One-sided smoothing redrawn per example and batch (as a published recipe does).
    u = self.random(streams.LABELS, 'uniform', tf.reshape(batch, [1]), step)
    return c.real_label_low + (u + 1.0) / 2.0 * (c.real_label_high - c.real_label_low)

  def fm_weight(self, step):
    """The feature-matching weight, ramped up over fm_ramp_steps."""
    c = self.config
    if c.fm_ramp_steps <= 0:
      return tf.constant(c.feature_matching)
    ramp = tf.cast(step, tf.float32) / c.fm_ramp_steps
    return c.feature_matching * tf.minimum(1.0, ramp)

  def d_view(self, x, view: streams.View, sd, step, real=False):
    """`x` as D sees it: x-flipped (reals only), DiffAugmented, noised.

    The same random transforms apply to reals and fakes in both steps, so
    D cannot tell them apart by the augmentation; they are differentiable,
    so G learns through them (see data/augment.py).
    """
    return self._instance_noise(self._augment(x, view.augment, step, real), sd, view.noise, step)

  def _augment(self, x, stream, step, real):
    if not (self.augment_policy or (real and self.config.x_flip)):
      return x  # no extra casts on the step when augmentation is off
    x = tf.cast(x, tf.float32)
    uniform = lambda k, shape: (self.random(stream + k, 'uniform', shape, step) + 1.0) / 2.0
    if real and self.config.x_flip:
      x = augment.x_flip(x, uniform)
    if self.augment_policy:
      p = self.augment_p if self.adaptive else self.config.augment_p
      x = augment.diff_augment(x, self.augment_policy, uniform, p)
    return x

  def _instance_noise(self, x, sd, stream, step):
    # Noise on every D input blurs the real and fake distributions so they
    # overlap and D's gradients stay informative (Sonderby et al. 2016).
    kind = self.config.instance_noise
    if kind == 'none':
      return x
    x = tf.cast(x, tf.float32)
    n = self.random(stream, 'normal', tf.shape(x), step) * sd
    return x + n if kind == 'additive' else x + n * x
