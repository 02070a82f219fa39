"""The GAN: both models, both optimizers, the step counter and the train step."""

import collections
from typing import Dict

import keras
import tensorflow as tf

from flags.presets import Config
from models import losses
from models.discriminator import Discriminator
from models.generator import Generator


def make_optimizer(config: Config, lr: float, beta1: float, beta2: float):
  """Adam or AdamW (decoupled weight decay) as the config asks."""
  kwargs = dict(learning_rate=lr, beta_1=beta1, beta_2=beta2,
                epsilon=config.adam_epsilon)
  if config.optimizer == 'adamw':
    return keras.optimizers.AdamW(weight_decay=config.weight_decay, **kwargs)
  return keras.optimizers.Adam(**kwargs)


def model_state(model: keras.Model) -> Dict[str, tf.Variable]:
  """Every variable of `model`, keyed by position, for tf.train.Checkpoint.

  Keras 3 layers kept in Python lists are invisible to TensorFlow's
  checkpoint object graph, so the models are checkpointed as these dicts.
  `model.variables` (unlike `weights`) includes BN statistics, spectral-norm
  vectors and the dropout seeds, which an exact resume needs; its order is
  fixed by the architecture, so the keys are stable across processes.
  """
  return {f'{i:04d}': v for i, v in enumerate(model.variables)}


def _layer_groups(variables):
  """Maps 'layer path' -> indices of its variables, for per-layer norms."""
  groups = collections.OrderedDict()
  for i, v in enumerate(variables):
    groups.setdefault(v.path.rsplit('/', 1)[0], []).append(i)
  return groups


class GAN:
  """Owns G, D, the EMA copy of G, two optimizers, the step and the RNG.

  `train_step(real)` runs one D update and `g_steps_per_d` G updates inside a
  `tf.function` and returns a dict of scalar tensors for logging.
  """

  def __init__(self, config: Config):
    self.config = config
    self.generator = Generator(config)
    self.discriminator = Discriminator(config)
    z = tf.zeros((1, config.latent_dim))
    self.discriminator(self.generator(z))  # create the variables
    self.ema_generator = None
    if config.ema_decay > 0:
      self.ema_generator = Generator(config, name='ema_generator')
      self.ema_generator(z)
      for e, w in zip(self.ema_generator.weights, self.generator.weights):
        e.assign(w)
    self.g_optimizer = make_optimizer(config, config.g_lr, config.g_beta1,
                                      config.g_beta2)
    self.d_optimizer = make_optimizer(config, config.d_lr, config.d_beta1,
                                      config.d_beta2)
    # Built now so a checkpoint restores their slots instead of deferring.
    self.g_optimizer.build(self.generator.trainable_variables)
    self.d_optimizer.build(self.discriminator.trainable_variables)
    self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name='step')
    self.rng = tf.random.Generator.from_seed(config.seed)
    self._g_groups = _layer_groups(self.generator.trainable_variables)
    self._d_groups = _layer_groups(self.discriminator.trainable_variables)
    self.train_step = tf.function(self._train_step)
    self.sample = tf.function(self._sample)

  def checkpoint_items(self) -> Dict[str, object]:
    """Everything a checkpoint must hold to resume this GAN exactly."""
    items = dict(generator=model_state(self.generator),
                 discriminator=model_state(self.discriminator),
                 g_optimizer=self.g_optimizer, d_optimizer=self.d_optimizer,
                 step=self.step, rng=self.rng)
    if self.ema_generator is not None:
      items['ema_generator'] = model_state(self.ema_generator)
    return items

  @property
  def sampler(self):
    """The generator used for pictures: the EMA copy when there is one."""
    return self.ema_generator or self.generator

  def _sample(self, z):
    return self.sampler(z, training=False)

  def sample_latent(self, n):
    """n latent vectors from the configured distribution, off the GAN's RNG."""
    shape = tf.stack([n, self.config.latent_dim])
    if self.config.latent_dist == 'uniform':
      return self.rng.uniform(shape, -1.0, 1.0)
    return self.rng.normal(shape)

  def noise_sd(self):
    """Instance noise sd at the current step (linear decay when asked)."""
    c = self.config
    if c.instance_noise == 'none':
      return tf.constant(0.0)
    if c.noise_decay_steps <= 0:
      return tf.constant(c.noise_sd)
    frac = tf.cast(self.step, tf.float32) / c.noise_decay_steps
    return c.noise_sd * tf.maximum(0.0, 1.0 - frac)

  def _instance_noise(self, x, sd):
    # Noise on every D input blurs the real and fake distributions so they
    # overlap and D's gradients stay informative (Sonderby et al. 2016).
    kind = self.config.instance_noise
    if kind == 'none':
      return x
    n = self.rng.normal(tf.shape(x)) * sd
    return x + n if kind == 'additive' else x + n * x

  def _real_labels(self, batch):
    c = self.config
    if c.real_label_low == c.real_label_high:
      return tf.fill([batch], c.real_label_low)
    # One-sided smoothing redrawn per example and batch (seed recipe).
    return self.rng.uniform([batch], c.real_label_low, c.real_label_high)

  def _fm_weight(self):
    c = self.config
    if c.fm_ramp_steps <= 0:
      return tf.constant(c.feature_matching)
    ramp = tf.cast(self.step, tf.float32) / c.fm_ramp_steps
    return c.feature_matching * tf.minimum(1.0, ramp)

  @staticmethod
  def _norms(prefix, grads, groups):
    out = {f'grad_norm/{prefix}': tf.linalg.global_norm(grads)}
    for name, idx in groups.items():
      out[f'grad_norm/{prefix}/{name}'] = tf.linalg.global_norm(
          [grads[i] for i in idx])
    return out

  def _train_step(self, real):
    c = self.config
    G, D = self.generator, self.discriminator
    batch = tf.shape(real)[0]
    sd = self.noise_sd()
    real_labels = self._real_labels(batch)

    z = self.sample_latent(batch)
    with tf.GradientTape() as tape:
      fake = G(z, training=True)
      real_logits, real_features = D(self._instance_noise(real, sd),
                                     training=True, return_features=True)
      fake_logits = D(self._instance_noise(fake, sd), training=True)
      d_loss, d_real, d_fake = losses.discriminator_loss(
          real_logits, fake_logits, real_labels)
    d_grads = tape.gradient(d_loss, D.trainable_variables)
    self.d_optimizer.apply_gradients(zip(d_grads, D.trainable_variables))

    g_target = real_labels if c.smooth_g_targets else 1.0
    fm_weight = self._fm_weight()
    # Real features come from the D step: recomputing them would cost a
    # forward pass of D per G step for a target that moves very little.
    real_features = tf.stop_gradient(real_features)
    for i in range(c.g_steps_per_d):  # unrolled: a Python int
      if i > 0 or not c.reuse_fake:
        z = self.sample_latent(batch)
      with tf.GradientTape() as tape:
        fake_logits_g, fake_features = D(
            self._instance_noise(G(z, training=True), sd), training=True,
            return_features=True)
        g_adv = losses.generator_loss(fake_logits_g, g_target)
        g_fm = (losses.feature_matching_loss(real_features, fake_features)
                if c.feature_matching > 0 else tf.constant(0.0))
        g_loss = g_adv + fm_weight * g_fm
      g_grads = tape.gradient(g_loss, G.trainable_variables)
      self.g_optimizer.apply_gradients(zip(g_grads, G.trainable_variables))

    self.step.assign_add(1)
    if self.ema_generator is not None:
      self._update_ema()
    metrics = dict(
        d_loss=d_loss, d_loss_real=d_real, d_loss_fake=d_fake, g_loss=g_loss,
        g_loss_adv=g_adv, g_loss_fm=g_fm,
        d_real=tf.reduce_mean(tf.sigmoid(real_logits)),
        d_fake=tf.reduce_mean(tf.sigmoid(fake_logits)),
        noise_sd=sd, fm_weight=fm_weight)
    metrics.update(self._norms('g', g_grads, self._g_groups))
    metrics.update(self._norms('d', d_grads, self._d_groups))
    return metrics

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
