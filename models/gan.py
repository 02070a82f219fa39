"""The GAN: both models, both optimizers, the step counter and the train step."""

import collections

import keras
import tensorflow as tf

from configs.presets import Config
from data import augment
from models import blocks
from models import hardware
from models import losses
from models import streams
from models.discriminator import Discriminator
from models.generator import Generator


def make_optimizer(config: Config, lr: float, beta1: float, beta2: float,
                   policy: str = 'off'):
  """Adam or AdamW (decoupled weight decay), loss-scaled under float16."""
  kwargs = dict(learning_rate=lr, beta_1=beta1, beta_2=beta2,
                epsilon=config.adam_epsilon)
  if config.optimizer == 'adamw':
    optimizer = keras.optimizers.AdamW(weight_decay=config.weight_decay, **kwargs)
  else:
    optimizer = keras.optimizers.Adam(**kwargs)
  if policy == 'mixed_float16':
    # float16 gradients underflow without it; bfloat16 has float32's range.
    optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
  return optimizer


def _layer_groups(variables):
  """Maps 'layer path' -> indices of its variables, for per-layer norms."""
  groups = collections.OrderedDict()
  for i, v in enumerate(variables):
    groups.setdefault(v.path.rsplit('/', 1)[0], []).append(i)
  return groups


class GAN:
  """Owns G, D, the EMA copy of G, two optimizers and the step counter.

  `train_step(images)` runs one D update and `g_steps_per_d` G updates in a
  `tf.function` and returns a dict of scalar tensors; `step_fn` is the same
  step as a plain function, to compose into a larger tf.function (the
  training loop runs several steps per call that way, and asks for the
  gradient norms only on the steps it logs).

  Every random number of a step (latents, labels, instance noise,
  augmentation) is drawn for the global batch from a stateless seed
  (config.seed, step) and a stream id (models/streams.py), and each replica
  takes its rows: runs are reproducible, resume exactly without RNG state,
  and follow the same trajectory on one device or several.
  """

  def __init__(self, config: Config, strategy: tf.distribute.Strategy = None):
    self.config = config
    self.strategy = strategy or tf.distribute.get_strategy()
    replicas = self.strategy.num_replicas_in_sync
    self.jit_compile = hardware.resolve_jit_compile(config.jit_compile, replicas)
    self.mixed_precision = hardware.resolve_mixed_precision(
        config.mixed_precision)
    kit = blocks.Kit(hardware.dtype_policy_name(self.mixed_precision),
                     hardware.batch_norm_kind(replicas, self.jit_compile))
    self._policy = augment.parse_policy(config.diffaugment)
    with self.strategy.scope():
      self.generator = Generator(config, kit)
      self.discriminator = Discriminator(config, kit)
      z = tf.zeros((1, config.latent_dim))
      self.discriminator(self.generator(z))  # create the variables
      self.ema_generator = None
      if config.ema_decay > 0:
        self.ema_generator = Generator(config, kit, name='ema_generator')
        self.ema_generator(z)
        for e, w in zip(self.ema_generator.weights, self.generator.weights):
          e.assign(w)
      self.g_optimizer = make_optimizer(config, config.g_lr, config.g_beta1,
                                        config.g_beta2, self.mixed_precision)
      self.d_optimizer = make_optimizer(config, config.d_lr, config.d_beta1,
                                        config.d_beta2, self.mixed_precision)
      # Built now so a checkpoint restores their slots instead of deferring.
      self.g_optimizer.build(self.generator.trainable_variables)
      self.d_optimizer.build(self.discriminator.trainable_variables)
      self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name='step')
    self._g_groups = _layer_groups(self.generator.trainable_variables)
    self._d_groups = _layer_groups(self.discriminator.trainable_variables)
    self.metric_names = (
        ['d_loss', 'd_loss_real', 'd_loss_fake', 'd_real', 'd_fake',
         'noise_sd', 'g_loss', 'g_loss_adv', 'g_loss_fm', 'fm_weight',
         'grad_norm/g', 'grad_norm/d'] +
        [f'grad_norm/g/{n}' for n in self._g_groups] +
        [f'grad_norm/d/{n}' for n in self._d_groups])
    # XLA compiles the forward and gradient computations only: applying
    # gradients needs a cross-replica all-reduce, which an XLA cluster
    # cannot contain. Without XLA they are plain calls, traced into the
    # step's graph (a nested tf.function could not all-reduce either).
    compiled = ((lambda f: tf.function(f, jit_compile=True))
                if self.jit_compile else (lambda f: f))
    self._generate = compiled(self._generate_fn)
    self._d_grads = compiled(self._d_grads_fn)
    self._g_grads = compiled(self._g_grads_fn)
    self._g_loss = compiled(self._g_loss_fn)
    self.train_step = tf.function(self.step_fn)
    self.sample = tf.function(self._sample, reduce_retracing=True)

  def all_finite(self) -> bool:
    """Whether every weight, EMA weight and optimizer slot is finite."""
    variables = (self.generator.variables + self.discriminator.variables +
                 (self.ema_generator.variables if self.ema_generator else []) +
                 self.g_optimizer.variables + self.d_optimizer.variables)
    # One device-to-host read for all of them, not one per variable.
    return bool(tf.reduce_all([tf.reduce_all(tf.math.is_finite(v))
                               for v in variables
                               if tf.as_dtype(v.dtype).is_floating]))

  @property
  def steps_done(self) -> int:
    """The step counter as a Python int (works for mirrored variables)."""
    return int(self.step.numpy())

  @property
  def sampler(self):
    """The generator used for pictures: the EMA copy when there is one."""
    return self.ema_generator or self.generator

  def _sample(self, z):
    return tf.cast(self.sampler(z, training=False), tf.float32)

  # --- randomness -----------------------------------------------------------

  def _random(self, stream, kind, shape, step):
    """This replica's rows of a global-batch random tensor for `stream`."""
    ctx = tf.distribute.get_replica_context()
    n = ctx.num_replicas_in_sync if ctx else 1
    r = ctx.replica_id_in_sync_group if ctx else 0
    local = shape[0]
    seed = tf.random.experimental.stateless_fold_in(
        tf.stack([tf.cast(self.config.seed, tf.int64), step]), stream)
    full = tf.concat([[local * n], shape[1:]], 0)
    if kind == 'uniform':
      x = tf.random.stateless_uniform(full, seed, -1.0, 1.0)
    else:
      x = tf.random.stateless_normal(full, seed)
    return x[r * local:(r + 1) * local]

  def _latent(self, stream, batch, step):
    return self._random(stream, self.config.latent_dist,
                        tf.stack([batch, self.config.latent_dim]), step)

  def noise_sd(self, step=None):
    """Instance noise sd at `step` (default: now), with its linear decay."""
    c = self.config
    if c.instance_noise == 'none':
      return tf.constant(0.0)
    if c.noise_decay_steps <= 0:
      return tf.constant(c.noise_sd)
    step = self.step if step is None else step
    frac = tf.cast(step, tf.float32) / c.noise_decay_steps
    return c.noise_sd * tf.maximum(0.0, 1.0 - frac)

  def _instance_noise(self, x, sd, stream, step):
    # Noise on every D input blurs the real and fake distributions so they
    # overlap and D's gradients stay informative (Sonderby et al. 2016).
    kind = self.config.instance_noise
    if kind == 'none':
      return x
    x = tf.cast(x, tf.float32)
    n = self._random(stream, 'normal', tf.shape(x), step) * sd
    return x + n if kind == 'additive' else x + n * x

  def _augment(self, x, stream, step, real=False):
    """`x` x-flipped (reals only) and DiffAugmented; instance noise follows.

    The same random transforms apply to reals and fakes in both steps, so
    D cannot tell them apart by the augmentation; they are differentiable,
    so G learns through them (see data/augment.py).
    """
    if not (self._policy or (real and self.config.x_flip)):
      return x  # no extra casts on the step when augmentation is off
    x = tf.cast(x, tf.float32)
    uniform = lambda k, shape: (self._random(stream + k, 'uniform', shape,
                                             step) + 1.0) / 2.0
    if real and self.config.x_flip:
      x = augment.x_flip(x, uniform)
    if self._policy:
      x = augment.diff_augment(x, self._policy, uniform,
                               self.config.augment_p)
    return x

  def _real_labels(self, batch, step):
    c = self.config
    if c.real_label_low == c.real_label_high:
      return tf.fill([batch], c.real_label_low)
    # One-sided smoothing redrawn per example and batch (as a published recipe does).
    u = self._random(streams.LABELS, 'uniform', tf.reshape(batch, [1]), step)
    return c.real_label_low + (u + 1.0) / 2.0 * (c.real_label_high - c.real_label_low)

  def _fm_weight(self, step):
    c = self.config
    if c.fm_ramp_steps <= 0:
      return tf.constant(c.feature_matching)
    ramp = tf.cast(step, tf.float32) / c.fm_ramp_steps
    return c.feature_matching * tf.minimum(1.0, ramp)

  # --- the step -------------------------------------------------------------

  def step_fn(self, images, with_norms=True):
    """One step on a (distributed or plain) batch; cross-replica context.

    Returns the step's metrics (`metric_names`), averaged over replicas.
    `with_norms` (a bool or a boolean tensor) says whether to compute the
    gradient norms, about 30 reductions over every weight: without them
    they read 0. Runs eagerly unless called inside a tf.function
    (train_step is one).
    """
    def replica_step(*args):  # the metrics stacked: one all-reduce, not 30
      out = self._replica_step(*args)
      return tf.stack([tf.cast(out[k], tf.float32) for k in self.metric_names])
    stacked = self.strategy.run(replica_step,
                                args=(images, self.step + 1,
                                      tf.convert_to_tensor(with_norms)))
    # Per-replica means of equal shares: their mean is the global batch's.
    mean = self.strategy.reduce(tf.distribute.ReduceOp.MEAN, stacked, axis=None)
    out = dict(zip(self.metric_names, tf.unstack(mean)))
    self.step.assign_add(1)
    if self.ema_generator is not None:
      self._update_ema()
    return out

  def _replica_step(self, real, step, with_norms):
    """One D update, then g_steps_per_d G updates, on this replica's batch."""
    G, D = self.generator, self.discriminator
    real = tf.cast(real, tf.float32)
    batch = tf.shape(real)[0]
    z = self._latent(streams.Z_D, batch, step)
    if self.config.reuse_fake:
      return self._replica_step_reusing_fake(real, z, step, with_norms)
    # D learns to tell this real batch from G's fakes...
    d_grads, real_features, real_labels, d_out = self._d_grads(
        real, self._generate(z), step)
    self.d_optimizer.apply_gradients(zip(d_grads, D.trainable_variables))
    # ...then G learns to fool the updated D, on fresh latents each time.
    for i in range(self.config.g_steps_per_d):  # unrolled: a Python int
      z = self._latent(streams.Z_G + 2 * i, batch, step)
      g_grads, g_out = self._g_grads(z, real_features, real_labels, step, i)
      self.g_optimizer.apply_gradients(zip(g_grads, G.trainable_variables))
    return self._step_metrics(d_out, g_out, d_grads, g_grads, with_norms)

  def _replica_step_reusing_fake(self, real, z, step, with_norms):
    """_replica_step with --reuse_fake: G's first update reuses D's fakes.

    The first G update differentiates through the very forward pass that
    made the D step's fakes (as the PyTorch DCGAN tutorial does): G has not
    changed in between, so the fakes are those a recomputation would give,
    one G forward pass cheaper. Later G updates draw fresh latents.
    """
    G, D = self.generator, self.discriminator
    with tf.GradientTape() as tape:
      fake = self._generate(z)
      with tape.stop_recording():  # the D step is no part of G's gradient
        d_grads, real_features, real_labels, d_out = self._d_grads(
            real, fake, step)
        self.d_optimizer.apply_gradients(zip(d_grads, D.trainable_variables))
      scaled, g_out = self._g_loss(fake, real_features, real_labels, step, 0)
    g_grads = tape.gradient(scaled, G.trainable_variables)
    self.g_optimizer.apply_gradients(zip(g_grads, G.trainable_variables))
    batch = tf.shape(real)[0]
    for i in range(1, self.config.g_steps_per_d):
      z = self._latent(streams.Z_G + 2 * i, batch, step)
      g_grads, g_out = self._g_grads(z, real_features, real_labels, step, i)
      self.g_optimizer.apply_gradients(zip(g_grads, G.trainable_variables))
    return self._step_metrics(d_out, g_out, d_grads, g_grads, with_norms)

  def _generate_fn(self, z):
    return self.generator(z, training=True)

  def _d_grads_fn(self, real, fake, step):
    """D's gradients on a real and a fake batch, and what the G step reuses."""
    D = self.discriminator
    batch = tf.shape(real)[0]
    sd = self.noise_sd(step)
    real_labels = self._real_labels(batch, step)
    real_in = self._instance_noise(
        self._augment(real, streams.AUG_REAL, step, real=True), sd,
        streams.NOISE_REAL, step)
    fake_in = self._instance_noise(
        self._augment(fake, streams.AUG_FAKE, step), sd, streams.NOISE_FAKE,
        step)
    with tf.GradientTape() as tape:
      real_logits, real_features = D(real_in, training=True,
                                     return_features=True)
      fake_logits = D(fake_in, training=True)
      real_logits = tf.cast(real_logits, tf.float32)
      fake_logits = tf.cast(fake_logits, tf.float32)
      d_loss, d_real, d_fake = losses.discriminator_loss(
          real_logits, fake_logits, real_labels)
      scaled = self._scaled(self.d_optimizer, d_loss)
    grads = tape.gradient(scaled, D.trainable_variables)
    if self.config.r1_gamma > 0:
      # Lazy R1: every r1_every steps, scaled by r1_every (StyleGAN2).
      r1_grads = tf.cond(
          step % self.config.r1_every == 0, lambda: self._r1_grads(real_in),
          lambda: [tf.zeros_like(v) for v in D.trainable_variables])
      grads = [g + r for g, r in zip(grads, r1_grads)]
    out = dict(d_loss=d_loss, d_loss_real=d_real, d_loss_fake=d_fake,
               d_real=tf.reduce_mean(tf.sigmoid(real_logits)),
               d_fake=tf.reduce_mean(tf.sigmoid(fake_logits)), noise_sd=sd)
    # Real features for feature matching come from this D pass: recomputing
    # them in the G step would cost a D forward pass for a target that
    # barely moves.
    return (grads, tf.stop_gradient(tf.cast(real_features, tf.float32)),
            real_labels, out)

  def _r1_grads(self, real_in):
    """D's gradients of r1_every * gamma/2 * mean_i |grad_x D(x_i)|^2.

    The R1 penalty (Mescheder et al. 2018) on the real images D saw: it
    flattens D around the data, so D cannot sharpen on the few thousand
    training faces and G keeps a useful gradient.
    """
    D, c = self.discriminator, self.config
    real_in = tf.identity(real_in)  # a tensor of this branch's graph to watch
    with tf.GradientTape() as tape:
      with tf.GradientTape() as inner:
        inner.watch(real_in)
        total = tf.reduce_sum(tf.cast(D(real_in, training=True), tf.float32))
      slopes = inner.gradient(total, real_in)
      penalty = tf.reduce_mean(tf.reduce_sum(
          tf.square(tf.cast(slopes, tf.float32)), axis=[1, 2, 3]))
      scaled = self._scaled(self.d_optimizer,
                            c.r1_every * c.r1_gamma / 2 * penalty)
    return tape.gradient(scaled, D.trainable_variables)

  def _g_loss_fn(self, fake, real_features, real_labels, step, index):
    """G's loss on `fake` (G step `index`), scaled to differentiate, and parts.

    g_loss = adversarial loss + fm_weight * feature-matching loss, with D
    seeing `fake` augmented and noised as in the D step.
    """
    c = self.config
    seen = self._instance_noise(
        self._augment(fake, streams.AUG_G + 10 * index, step),
        self.noise_sd(step), streams.NOISE_G + 2 * index, step)
    fake_logits, fake_features = self.discriminator(
        seen, training=True, return_features=True)
    g_adv = losses.generator_loss(tf.cast(fake_logits, tf.float32),
                                  real_labels if c.smooth_g_targets else 1.0)
    g_fm = (losses.feature_matching_loss(
        real_features, tf.cast(fake_features, tf.float32))
            if c.feature_matching > 0 else tf.constant(0.0))
    fm_weight = self._fm_weight(step)
    g_loss = g_adv + fm_weight * g_fm
    return self._scaled(self.g_optimizer, g_loss), dict(
        g_loss=g_loss, g_loss_adv=g_adv, g_loss_fm=g_fm, fm_weight=fm_weight)

  def _g_grads_fn(self, z, real_features, real_labels, step, index):
    """G's gradients from a fresh forward pass on `z` (one XLA cluster)."""
    G = self.generator
    with tf.GradientTape() as tape:
      fake = G(z, training=True)
      scaled, out = self._g_loss_fn(fake, real_features, real_labels, step,
                                    index)
    return tape.gradient(scaled, G.trainable_variables), out

  def _step_metrics(self, d_out, g_out, d_grads, g_grads, with_norms):
    """The step's losses, D outputs and gradient norms (last G update's).

    The norms are computed only when `with_norms` holds (a tf.cond: the
    other steps skip the reductions) and read 0 otherwise.
    """
    def norms():
      out = self._norms('g', g_grads, self._g_groups,
                        self._grad_scale(self.g_optimizer))
      out.update(self._norms('d', d_grads, self._d_groups,
                             self._grad_scale(self.d_optimizer)))
      return out
    names = [n for n in self.metric_names if n.startswith('grad_norm/')]
    skipped = lambda: {n: tf.constant(0.0) for n in names}
    return dict(d_out, **g_out, **tf.cond(with_norms, norms, skipped))

  def _scaled(self, optimizer, loss):
    """The loss to differentiate: a share of the global batch, loss-scaled.

    Optimizers sum gradients over replicas, so each replica's mean loss is
    divided by the replica count to give the global batch's mean.
    """
    loss = loss / self.strategy.num_replicas_in_sync
    if isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
      loss = optimizer.scale_loss(loss)
    return loss

  def _grad_scale(self, optimizer):
    """Factor turning differentiated gradients back into the mean loss's."""
    scale = float(self.strategy.num_replicas_in_sync)
    if isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
      return scale / optimizer.dynamic_scale
    return scale

  @staticmethod
  def _norms(prefix, grads, groups, scale):
    """Global and per-layer gradient norms of the replica's mean loss.

    With several replicas each sees its share of the batch, so the logged
    (replica-averaged) norms are those of per-replica gradients. `scale`
    undoes the replica share and the loss scale on the norms, not on the
    gradients, so no gradient is copied.
    """
    squares = [tf.reduce_sum(tf.square(tf.cast(g, tf.float32))) for g in grads]
    out = {f'grad_norm/{prefix}': tf.sqrt(tf.add_n(squares)) * scale}
    for name, idx in groups.items():
      out[f'grad_norm/{prefix}/{name}'] = tf.sqrt(
          tf.add_n([squares[i] for i in idx])) * scale
    return out

  def _update_ema(self):
    # Warm-up (as tf.train.ExponentialMovingAverage with num_updates): early
    # on the average follows G closely instead of the random initialisation.
    step = tf.cast(self.step, tf.float32)
    decay = tf.minimum(self.config.ema_decay, (1.0 + step) / (10.0 + step))
    for e, w in zip(self.ema_generator.weights, self.generator.weights):
      if w.trainable:
        e.assign(decay * e + (1.0 - decay) * w)
      else:  # BN moving statistics, spectral-norm vectors: copy.
        e.assign(w)
