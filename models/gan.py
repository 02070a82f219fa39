"""The train state (G, D, EMA G, two optimizers, the step) and the GAN step.

The step reads as the TF DCGAN tutorial's: D learns to tell a real batch
from G's fakes, then G learns to fool the updated D. The stabilising tricks
(augmentation, instance noise, label smoothing, feature matching) are named
helpers of models/tricks.py; the gradient norms are models/grad_norms.py's.
"""

import typing

import keras
import tensorflow as tf

from configs.presets import Config
from models import blocks
from models import grad_norms
from models import hardware
from models import losses
from models import streams
from models import tricks
from models.discriminator import Discriminator
from models.generator import Generator
from models.generator import set_standing_statistics


def make_optimizer(config: Config, model, net: str, policy: str = 'off'):
  """Adam or AdamW (decoupled weight decay) for `model`, G's or D's (`net`
  'g' or 'd': config.g_lr, g_beta1... or d_lr...), loss-scaled under
  float16, built so a checkpoint restores its slots at once."""
  c = lambda field: getattr(config, f'{net}_{field}')
  kwargs = dict(learning_rate=c('lr'), beta_1=c('beta1'), beta_2=c('beta2'))
  kwargs.update(epsilon=config.adam_epsilon)
  if config.optimizer == 'adamw':
    optimizer = keras.optimizers.AdamW(weight_decay=config.weight_decay, **kwargs)
  else:
    optimizer = keras.optimizers.Adam(**kwargs)
  if policy == 'mixed_float16':
    # float16 gradients underflow without it; bfloat16 has float32's range.
    optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
  optimizer.build(model.trainable_variables)
  return optimizer


def build_models(config: Config, kit: blocks.Kit):
  """G, D and the EMA copy of G (None when ema_decay is 0), with variables;
  the EMA copy starts equal to G."""
  generator = Generator(config, kit)
  discriminator = Discriminator(config, kit)
  z = tf.zeros((1, config.latent_dim))
  discriminator(generator(z))  # create the variables
  ema = None
  if config.ema_decay > 0:
    ema = Generator(config, kit, name='ema_generator')
    ema(z)
    for e, w in zip(ema.weights, generator.weights):
      e.assign(w)
  return generator, discriminator, ema


def update_ema(ema, model, decay, step):
  """ema <- d * ema + (1 - d) * model, d = min(decay, (1 + step) / (10 + step)).

  The warm-up (as tf.train.ExponentialMovingAverage with num_updates) makes
  the average follow the model closely early on, instead of its random
  initialisation. Other non-trainable weights (spectral-norm vectors) are
  copied, except BatchNorm's moving statistics: the EMA G gets its own
  (models.generator.set_standing_statistics) before its pictures are used.
  """
  step = tf.cast(step, tf.float32)
  d = tf.minimum(decay, (1.0 + step) / (10.0 + step))
  own = {id(v) for n in ema.batch_norms() for v in (n.moving_mean, n.moving_variance)}
  for e, w in zip(ema.weights, model.weights):
    if id(e) not in own:
      e.assign(d * e + (1.0 - d) * w if w.trainable else w)


def scaled_loss(optimizer, loss, replicas: int):
  """The loss to differentiate: a share of the global batch, loss-scaled.

  Optimizers sum gradients over replicas, so each replica's mean loss is
  divided by the replica count to give the global batch's mean.
  """
  loss = loss / replicas
  if isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
    loss = optimizer.scale_loss(loss)
  return loss


def unscale_factor(optimizer, replicas: int):
  """Factor turning gradients of `scaled_loss` back into the mean loss's."""
  if isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
    return replicas / optimizer.dynamic_scale
  return float(replicas)


def all_finite(variables) -> bool:
  """Whether every floating-point variable holds only finite values."""
  # One device-to-host read for all of them, not one per variable.
  return bool(
    tf.reduce_all(
      [tf.reduce_all(tf.math.is_finite(v)) for v in variables if tf.as_dtype(v.dtype).is_floating]
    )
  )


def lazy_r1_gradients(config: Config, discriminator, real_in, step, scaled):
  """D's gradients of r1_every * gamma/2 * losses.r1_penalty on every
  r1_every-th step, zeros on the others (lazy R1, as StyleGAN2).

  `scaled` maps the penalty to the loss to differentiate (scaled_loss).
  """
  c, variables = config, discriminator.trainable_variables

  def r1_grads():
    x = tf.identity(real_in)  # a tensor of this branch's graph to watch
    with tf.GradientTape() as tape:
      penalty = c.r1_every * c.r1_gamma / 2 * losses.r1_penalty(discriminator, x)
      loss = scaled(penalty)
    return tape.gradient(loss, variables)

  zeros = lambda: [tf.zeros_like(v) for v in variables]
  return tf.cond(step % c.r1_every == 0, r1_grads, zeros)


def xla_compile(gan, names):
  """Replaces the methods `names` of `gan` with XLA-compiled tf.functions.

  XLA compiles the forward and gradient computations only: applying
  gradients needs a cross-replica all-reduce, which an XLA cluster cannot
  contain. Without XLA they are plain calls, traced into the step's graph
  (a nested tf.function could not all-reduce either).
  """
  for name in names:
    setattr(gan, name, tf.function(getattr(gan, name), jit_compile=True))


class Target(typing.NamedTuple):
  """What the D step hands the G step: D's features of the real batch (the
  feature-matching target) and the real labels (smoothed G targets)."""

  real_features: tf.Tensor
  real_labels: tf.Tensor


LOSS_METRICS = (
  'd_loss',
  'd_loss_real',
  'd_loss_fake',
  'd_real',
  'd_fake',
  'noise_sd',
  'd_real_sign',
  'augment_p',
  'g_loss',
  'g_loss_adv',
  'g_loss_fm',
  'fm_weight',
)


def d_metrics(real_logits, fake_logits, loss_parts, noise_sd, augment_p):
  """The D step's scalars: its losses, mean D outputs, noise and augmentation."""
  d_loss, d_real, d_fake = loss_parts
  return dict(
    d_loss=d_loss,
    d_loss_real=d_real,
    d_loss_fake=d_fake,
    d_real=tf.reduce_mean(tf.sigmoid(real_logits)),
    d_fake=tf.reduce_mean(tf.sigmoid(fake_logits)),
    noise_sd=noise_sd,
    # ADA's overfitting measure, and the augmentation probability D saw.
    d_real_sign=tf.reduce_mean(tf.sign(real_logits)),
    augment_p=tf.convert_to_tensor(augment_p),
  )


class GAN:
  """The train state and its step.

  `step_fn(images)` runs one D update and `g_steps_per_d` G updates and
  returns a dict of scalar tensors (`metric_names`); the training loop
  composes it into one tf.function of several steps
  (training.loop.make_train_steps), asking for the gradient norms only on
  the steps it logs.
  """

  def __init__(self, config: Config, strategy: tf.distribute.Strategy = None):
    self.config = config
    self.strategy = strategy or tf.distribute.get_strategy()
    replicas = self.strategy.num_replicas_in_sync
    self.jit_compile = hardware.resolve_jit_compile(config.jit_compile, replicas)
    self.mixed_precision = mp = hardware.resolve_mixed_precision(config.mixed_precision)
    norm = hardware.batch_norm_kind(replicas, self.jit_compile)
    kit = blocks.Kit(hardware.dtype_policy_name(mp), norm)
    with self.strategy.scope():
      self.tricks = tricks.Tricks(config)
      self.generator, self.discriminator, self.ema_generator = build_models(config, kit)
      self.g_optimizer = make_optimizer(config, self.generator, 'g', mp)
      self.d_optimizer = make_optimizer(config, self.discriminator, 'd', mp)
      self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name='step')
    self._g_layers = grad_norms.layer_groups(self.generator.trainable_variables)
    self._d_layers = grad_norms.layer_groups(self.discriminator.trainable_variables)
    norm_names = grad_norms.metric_names(dict(g=self._g_layers, d=self._d_layers))
    self.metric_names = list(LOSS_METRICS) + norm_names
    if self.jit_compile:
      xla_compile(self, ('generate', 'd_gradients', 'g_gradients', 'g_loss'))
    pictures = lambda z: tf.cast(self.sampler(z, training=False), tf.float32)
    self._sample = tf.function(pictures, reduce_retracing=True)
    self._standing_step = None  # the step of the EMA G's BatchNorm statistics

  def all_finite(self) -> bool:
    """Whether every weight, EMA weight and optimizer slot is finite."""
    models = (self.generator, self.discriminator, self.ema_generator)
    models += (self.g_optimizer, self.d_optimizer)
    return all_finite([v for m in models if m is not None for v in m.variables])

  @property
  def steps_done(self) -> int:
    """The step counter as a Python int (works for mirrored variables)."""
    return int(self.step.numpy())

  @property
  def sampler(self):
    """The generator used for pictures: the EMA copy when there is one."""
    return self.ema_generator or self.generator

  def sample(self, z, refresh=True):
    """Float32 pictures of `z`; refresh=False reuses the EMA G's last statistics, if any."""
    if refresh or self._standing_step is None:
      self.refresh_sampler()
    return self._sample(z)

  def refresh_sampler(self) -> None:
    """Gives the EMA G (if any) the BatchNorm statistics of its weights, once a step."""
    step = self.steps_done
    if self.ema_generator is not None and self._standing_step != step:
      set_standing_statistics(self.ema_generator, self.config)
      self._standing_step = step

  # --- the step -------------------------------------------------------------

  def step_fn(self, images, with_norms=True):
    """One step on a (distributed or plain) batch, in cross-replica context.

    Returns the step's metrics (`metric_names`), averaged over replicas; the
    gradient norms, about 30 reductions, only when `with_norms` (a bool or
    a boolean tensor) holds, else 0. Eager unless inside a tf.function.
    """

    def replica_step(*args):  # the metrics stacked: one all-reduce, not 30
      out = self.replica_step(*args)
      return tf.stack([tf.cast(out[k], tf.float32) for k in self.metric_names])

    stacked = self.strategy.run(
      replica_step, args=(images, self.step + 1, tf.convert_to_tensor(with_norms))
    )
    # Per-replica means of equal shares: their mean is the global batch's.
    mean = self.strategy.reduce(tf.distribute.ReduceOp.MEAN, stacked, axis=None)
    out = dict(zip(self.metric_names, tf.unstack(mean)))
    self.tricks.adapt(out['d_real_sign'])  # ADA: the next step's probability
    self.step.assign_add(1)
    if self.ema_generator is not None:
      update_ema(self.ema_generator, self.generator, self.config.ema_decay, self.step)
    return out

  def replica_step(self, real, step, with_norms):
    """One D update, then g_steps_per_d G updates, on this replica's batch."""
    c, G, D = self.config, self.generator, self.discriminator
    real = tf.cast(real, tf.float32)
    batch = tf.shape(real)[0]
    z = self.tricks.latent(streams.Z_D, batch, step)
    # The tape records G's forward pass only for reuse_fake (below).
    with tf.GradientTape(watch_accessed_variables=c.reuse_fake) as tape:
      fake = self.generate(z)
    # D learns to tell this real batch from G's fakes...
    d_grads, target, d_out = self.d_gradients(real, fake, step)
    self.d_optimizer.apply_gradients(zip(d_grads, D.trainable_variables))
    # ...then G learns to fool the updated D, on fresh latents each time.
    for i in range(c.g_steps_per_d):  # unrolled: a Python int
      if i == 0 and c.reuse_fake:
        # Through the D step's own fakes, as the PyTorch DCGAN tutorial
        # does: G has not changed since, so they are what a recomputation
        # would give, one G forward pass cheaper.
        with tape:
          scaled, g_out = self.g_loss(fake, target, step, i)
        g_grads = tape.gradient(scaled, G.trainable_variables)
      else:
        z = self.tricks.latent(streams.g_latent(i), batch, step)
        g_grads, g_out = self.g_gradients(z, target, step, i)
      self.g_optimizer.apply_gradients(zip(g_grads, G.trainable_variables))
    norms = lambda: self._norms(d_grads, g_grads)  # of the last G update
    skipped = lambda: {n: tf.constant(0.0) for n in self.metric_names if n.startswith('grad_norm/')}
    return dict(d_out, **g_out, **tf.cond(with_norms, norms, skipped))

  def generate(self, z):
    """G's fakes in training mode (BatchNorm on batch statistics)."""
    return self.generator(z, training=True)

  def d_gradients(self, real, fake, step):
    """D's gradients on a real and a fake batch, the G step's Target, metrics.

    d_loss = BCE(D(real), real labels) + BCE(D(fake), 0) (or the hinge
    loss), with D seeing both batches through Tricks.d_view, plus lazy R1
    on its steps.
    """
    D, t = self.discriminator, self.tricks
    sd = t.noise_sd(step)
    labels = t.real_labels(tf.shape(real)[0], step)
    real_in = t.d_view(real, streams.D_REAL, sd, step, real=True)
    fake_in = t.d_view(fake, streams.D_FAKE, sd, step)
    with tf.GradientTape() as tape:
      real_logits, real_features = D(real_in, training=True, return_features=True)
      fake_logits = D(fake_in, training=True)
      real_logits = tf.cast(real_logits, tf.float32)
      fake_logits = tf.cast(fake_logits, tf.float32)
      d_loss, d_real, d_fake = losses.adversarial_d_loss(
        self.config.loss, real_logits, fake_logits, labels
      )
      scaled = self._scaled(self.d_optimizer, d_loss)
    grads = tape.gradient(scaled, D.trainable_variables)
    if self.config.r1_gamma > 0:
      r1 = lazy_r1_gradients(
        self.config, D, real_in, step, lambda loss: self._scaled(self.d_optimizer, loss)
      )
      grads = [g + r for g, r in zip(grads, r1)]
    out = d_metrics(real_logits, fake_logits, (d_loss, d_real, d_fake), sd, t.augment_p)
    # Real features for feature matching come from this D pass: recomputing
    # them in the G step would cost a D forward pass for a target that
    # barely moves.
    features = tf.stop_gradient(tf.cast(real_features, tf.float32))
    return grads, Target(features, labels), out

  def g_gradients(self, z, target: Target, step, index):
    """G's gradients from a fresh forward pass on `z`, and g_loss's parts."""
    G = self.generator
    with tf.GradientTape() as tape:
      scaled, out = self.g_loss(G(z, training=True), target, step, index)
    return tape.gradient(scaled, G.trainable_variables), out

  def g_loss(self, fake, target: Target, step, index):
    """G's loss on `fake` (G update `index`), scaled to differentiate, and parts.

    g_loss = BCE(D(fake), 1 or the real labels) (or -D(fake) under the
    hinge loss) + fm_weight * feature
    matching against the D step's real features, D seeing `fake` through
    Tricks.d_view.
    """
    c, t = self.config, self.tricks
    seen = t.d_view(fake, streams.g_view(index), t.noise_sd(step), step)
    fake_logits, fake_features = self.discriminator(seen, training=True, return_features=True)
    g_adv = losses.adversarial_g_loss(
      c.loss, tf.cast(fake_logits, tf.float32), target.real_labels if c.smooth_g_targets else 1.0
    )
    g_fm = (
      losses.feature_matching_loss(target.real_features, tf.cast(fake_features, tf.float32))
      if c.feature_matching > 0
      else tf.constant(0.0)
    )
    fm_weight = t.fm_weight(step)
    g_loss = g_adv + fm_weight * g_fm
    return self._scaled(self.g_optimizer, g_loss), dict(
      g_loss=g_loss, g_loss_adv=g_adv, g_loss_fm=g_fm, fm_weight=fm_weight
    )

  def _scaled(self, optimizer, loss):
    return scaled_loss(optimizer, loss, self.strategy.num_replicas_in_sync)

  def _norms(self, d_grads, g_grads):
    """Gradient norms of the replica's mean losses (models/grad_norms.py)."""
    n = self.strategy.num_replicas_in_sync
    return dict(
      grad_norms.norms('g', g_grads, self._g_layers, unscale_factor(self.g_optimizer, n)),
      **grad_norms.norms('d', d_grads, self._d_layers, unscale_factor(self.d_optimizer, n)),
    )
