"""The GAN: both models, both optimizers, the step counter and the train step."""

import collections
import contextlib
from typing import Dict

import keras
import tensorflow as tf

from data import augment
from configs.presets import Config
from models import blocks
from models import losses
from models.discriminator import Discriminator
from models.generator import Generator

# Stream ids for the per-step random numbers (see GAN._random).
_Z_D, _LABELS, _NOISE_REAL, _NOISE_FAKE = 0, 1, 2, 3
_Z_G, _NOISE_G = 10, 11  # + 2 * (G step index)
# Augmentation streams; each transform adds its draw number (< 10).
_AUG_REAL, _AUG_FAKE, _AUG_G = 100, 110, 120  # _AUG_G + 10 * (G step index)


# Layer classes that hold the same variables under one name: fused and Keras
# BatchNorm (XLA runs use Keras'), so checkpoints move between the two.
_KINDS = {'FusedBatchNorm': 'batchnorm', 'BatchNormalization': 'batchnorm'}


def model_state(model: keras.Model, positional: bool = False
                ) -> Dict[str, tf.Variable]:
  """Every variable of `model`, keyed by where it sits, for tf.train.Checkpoint.

  Keras 3 layers kept in Python lists are invisible to TensorFlow's
  checkpoint object graph, so the models are checkpointed as these dicts.
  `model.variables` (unlike `weights`) includes BN statistics, spectral-norm
  vectors and the dropout seeds, which an exact resume needs.

  A key names the stage, the layer kind and its count within the stage, and
  the variable: 'stages2_conv2d0_kernel' is the kernel of the first Conv2D of
  stage 2. Adding a layer to a stage (dropout) leaves every other key as it
  was, and no key depends on Keras' process-wide layer-name counters (which
  `v.path` does).

  Args:
    model: a Generator or Discriminator (layers in `stages`, `head`).
    positional: key by position instead ('0000', '0001'...), as checkpoints
      written before these keys were; only for reading those.
  """
  if positional:
    return {f'{i:04d}': v for i, v in enumerate(model.variables)}
  state = {}
  for group in ('stages', 'head'):
    for i, stage in enumerate(getattr(model, group, ())):
      counts = collections.Counter()
      for layer in stage.stage_layers:
        name = type(layer).__name__
        kind = _KINDS.get(name, name.lower())
        prefix = f'{group}{i}_{kind}{counts[kind]}'
        counts[kind] += 1
        for v in layer.variables:
          key = f'{prefix}_{v.name}'
          if key in state:
            raise ValueError(f'Two variables of {model.name} map to {key}.')
          state[key] = v
  if len(state) != len(model.variables):
    raise ValueError(f'{model.name} has variables outside its stages.')
  return state


def uses_positional_keys(names) -> bool:
  """Whether checkpoint variable `names` come from model_state(positional)."""
  return any(n.startswith('generator/0000/') for n in names)


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


@contextlib.contextmanager
def dtype_policy(name: str):
  """Builds layers under a Keras dtype policy, restoring the old one after."""
  old = keras.config.dtype_policy()
  keras.config.set_dtype_policy('float32' if name == 'off' else name)
  try:
    yield
  finally:
    keras.config.set_dtype_policy(old)


def cpu_has_native_bfloat16() -> bool:
  """Whether this CPU computes in bfloat16 natively (Linux CPU flags)."""
  try:
    with open('/proc/cpuinfo') as f:
      flags = set(f.read().split())
  except OSError:  # not Linux: unknown, so no
    return False
  return bool(flags & {'avx512_bf16', 'amx_bf16'})


def resolve_mixed_precision(setting: str) -> str:
  """The Keras policy for a mixed_precision setting ('off' for float32).

  'auto' is bfloat16 on a CPU-only machine whose CPU has native bfloat16: a
  preset's step there runs 1.2-1.5x faster, with float32 variables and the
  same quality in a CPU study (BENCHMARKS.md). Elsewhere, GPUs included
  until measured, it is float32. Never float16: its loss-scale state would
  make checkpoints depend on the machine.
  """
  if setting != 'auto':
    return setting
  if tf.config.list_logical_devices('GPU') or not cpu_has_native_bfloat16():
    return 'off'
  return 'mixed_bfloat16'


class UnsupportedSetup(ValueError):
  """A combination of settings this GAN cannot run; the message says why."""


def resolve_jit_compile(setting: str, replicas: int) -> bool:
  """'on'/'off', or 'auto': XLA on a single GPU (see BENCHMARKS.md).

  Raises:
    UnsupportedSetup: 'on' with several replicas, where synchronised
      BatchNorm needs a cross-replica all-reduce that an XLA cluster cannot
      contain.
  """
  if setting == 'on' and replicas > 1:
    raise UnsupportedSetup(
        '--jit_compile=on is not supported with several replicas '
        '(synchronised BatchNorm cannot run inside XLA); use '
        '--jit_compile=off or auto with --strategy=mirrored.')
  if setting == 'auto':
    return replicas == 1 and bool(tf.config.list_logical_devices('GPU'))
  return setting == 'on'


def _layer_groups(variables):
  """Maps 'layer path' -> indices of its variables, for per-layer norms."""
  groups = collections.OrderedDict()
  for i, v in enumerate(variables):
    groups.setdefault(v.path.rsplit('/', 1)[0], []).append(i)
  return groups


class GAN:
  """Owns G, D, the EMA copy of G, two optimizers and the step counter.

  `train_step(real)` runs one D update and `g_steps_per_d` G updates in a
  `tf.function`; `train_steps(iterator, k)` runs k of them in one call over
  a (distributed) dataset iterator. Both return a dict of scalar tensors.

  Every random number of a step (latents, labels, instance noise) is drawn
  for the global batch from a stateless seed (config.seed, step), and each
  replica takes its rows: runs are reproducible, resume exactly without RNG
  state, and follow the same trajectory on one device or several.
  """

  def __init__(self, config: Config, strategy: tf.distribute.Strategy = None):
    self.config = config
    self.strategy = strategy or tf.distribute.get_strategy()
    self.jit_compile = resolve_jit_compile(
        config.jit_compile, self.strategy.num_replicas_in_sync)
    self.mixed_precision = resolve_mixed_precision(config.mixed_precision)
    self._policy = augment.parse_policy(config.diffaugment)
    with self.strategy.scope(), dtype_policy(self.mixed_precision), \
        blocks.fused_batch_norm(not self.jit_compile):
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
    # Only the forward/gradient computations are XLA-compiled: applying
    # gradients needs a cross-replica all-reduce, which XLA clusters cannot
    # contain. (With reuse_fake the compiled G forward runs under a tape;
    # its backward is compiled too.) Without XLA they are inlined (a nested
    # tf.function cannot all-reduce).
    fns = dict(generate=self._generate_fn, d_grads=self._d_grads_fn,
               g_grads=self._g_grads_fn, g_fake_grads=self._g_fake_grads_fn)
    if self.jit_compile:
      fns = {k: tf.function(f, jit_compile=True) for k, f in fns.items()}
    self._generate, self._d_grads = fns['generate'], fns['d_grads']
    self._g_grads, self._g_fake_grads = fns['g_grads'], fns['g_fake_grads']
    self.train_step = tf.function(self._train_step)
    self.train_steps = tf.function(self._train_steps)
    self.sample = tf.function(self._sample, reduce_retracing=True)

  def checkpoint_items(self, positional: bool = False) -> Dict[str, object]:
    """Everything a checkpoint must hold to resume this GAN exactly.

    positional: the models keyed as older checkpoints have them (see
      model_state).
    """
    items = dict(generator=model_state(self.generator, positional),
                 discriminator=model_state(self.discriminator, positional),
                 g_optimizer=self.g_optimizer, d_optimizer=self.d_optimizer,
                 step=self.step)
    if self.ema_generator is not None:
      items['ema_generator'] = model_state(self.ema_generator, positional)
    return items

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
      x = augment.diff_augment(x, self._policy, uniform)
    return x

  def _real_labels(self, batch, step):
    c = self.config
    if c.real_label_low == c.real_label_high:
      return tf.fill([batch], c.real_label_low)
    # One-sided smoothing redrawn per example and batch (as a published recipe does).
    u = self._random(_LABELS, 'uniform', tf.reshape(batch, [1]), step)
    return c.real_label_low + (u + 1.0) / 2.0 * (c.real_label_high - c.real_label_low)

  def _fm_weight(self, step):
    c = self.config
    if c.fm_ramp_steps <= 0:
      return tf.constant(c.feature_matching)
    ramp = tf.cast(step, tf.float32) / c.fm_ramp_steps
    return c.feature_matching * tf.minimum(1.0, ramp)

  # --- the step -------------------------------------------------------------

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

  def _generate_fn(self, z):
    return self.generator(z, training=True)

  def _d_grads_fn(self, real, fake, step):
    D = self.discriminator
    batch = tf.shape(real)[0]
    sd = self.noise_sd(step)
    real_labels = self._real_labels(batch, step)
    with tf.GradientTape() as tape:
      real_logits, real_features = D(
          self._instance_noise(self._augment(real, _AUG_REAL, step, real=True),
                               sd, _NOISE_REAL, step),
          training=True, return_features=True)
      fake_logits = D(
          self._instance_noise(self._augment(fake, _AUG_FAKE, step), sd,
                               _NOISE_FAKE, step), training=True)
      real_logits = tf.cast(real_logits, tf.float32)
      fake_logits = tf.cast(fake_logits, tf.float32)
      d_loss, d_real, d_fake = losses.discriminator_loss(
          real_logits, fake_logits, real_labels)
      scaled = self._scaled(self.d_optimizer, d_loss)
    grads = tape.gradient(scaled, D.trainable_variables)
    out = dict(d_loss=d_loss, d_loss_real=d_real, d_loss_fake=d_fake,
               d_real=tf.reduce_mean(tf.sigmoid(real_logits)),
               d_fake=tf.reduce_mean(tf.sigmoid(fake_logits)), noise_sd=sd)
    # Real features for feature matching come from this D pass: recomputing
    # them in the G step would cost a D forward pass for a target that
    # barely moves.
    return grads, tf.stop_gradient(tf.cast(real_features, tf.float32)), real_labels, out

  def _g_fake_grads_fn(self, fake, real_features, real_labels, step, index):
    """The G loss on `fake` and its gradient with respect to `fake`.

    G's own backward pass is left to the caller's tape, which recorded the
    forward pass that made `fake` (possibly the D step's, see _replica_step).
    """
    c = self.config
    D = self.discriminator
    sd = self.noise_sd(step)
    with tf.GradientTape() as tape:
      tape.watch(fake)
      seen = self._augment(fake, _AUG_G + 10 * index, step)
      fake_logits, fake_features = D(
          self._instance_noise(seen, sd, _NOISE_G + 2 * index, step),
          training=True, return_features=True)
      g_adv = losses.generator_loss(tf.cast(fake_logits, tf.float32),
                                    real_labels if c.smooth_g_targets else 1.0)
      g_fm = (losses.feature_matching_loss(
          real_features, tf.cast(fake_features, tf.float32))
              if c.feature_matching > 0 else tf.constant(0.0))
      fm_weight = self._fm_weight(step)
      g_loss = g_adv + fm_weight * g_fm
      scaled = self._scaled(self.g_optimizer, g_loss)
    return tape.gradient(scaled, fake), dict(
        g_loss=g_loss, g_loss_adv=g_adv, g_loss_fm=g_fm, fm_weight=fm_weight)

  def _g_grads_fn(self, z, real_features, real_labels, step, index):
    """G's gradients from a fresh forward pass on `z` (one XLA cluster)."""
    G = self.generator
    with tf.GradientTape() as tape:
      fake = G(z, training=True)
    d_fake, out = self._g_fake_grads_fn(fake, real_features, real_labels,
                                        step, index)
    return tape.gradient(fake, G.trainable_variables,
                         output_gradients=d_fake), out

  def _replica_step(self, real, step):
    """One D update and g_steps_per_d G updates on this replica's batch.

    With reuse_fake the first G update differentiates through the very
    forward pass that made the D step's fakes (as the PyTorch DCGAN
    tutorial does): G has not changed in between, so the fakes are the
    same as a recomputation would give, one G forward pass cheaper.
    """
    G, D = self.generator, self.discriminator
    real = tf.cast(real, tf.float32)
    batch = tf.shape(real)[0]
    reuse = self.config.reuse_fake
    g_tape = tf.GradientTape() if reuse else None
    with g_tape or contextlib.nullcontext():
      fake = self._generate(self._latent(_Z_D, batch, step))
    d_grads, real_features, real_labels, out = self._d_grads(
        real, tf.stop_gradient(fake), step)
    self.d_optimizer.apply_gradients(zip(d_grads, D.trainable_variables))
    for i in range(self.config.g_steps_per_d):  # unrolled: a Python int
      if i == 0 and reuse:
        d_fake, g_out = self._g_fake_grads(fake, real_features, real_labels,
                                           step, i)
        g_grads = g_tape.gradient(fake, G.trainable_variables,
                                  output_gradients=d_fake)
      else:
        g_grads, g_out = self._g_grads(
            self._latent(_Z_G + 2 * i, batch, step), real_features,
            real_labels, step, i)
      self.g_optimizer.apply_gradients(zip(g_grads, G.trainable_variables))
    out.update(g_out)
    out.update(self._norms('g', g_grads, self._g_groups,
                           self._grad_scale(self.g_optimizer)))
    out.update(self._norms('d', d_grads, self._d_groups,
                           self._grad_scale(self.d_optimizer)))
    return out

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

  def _one_step(self, real):
    """One step over a distributed or plain batch; cross-replica context."""
    out = self.strategy.run(self._replica_step, args=(real, self.step + 1))
    # Per-replica means of equal shares: their mean is the global batch's.
    out = {k: self.strategy.reduce(tf.distribute.ReduceOp.MEAN, v, axis=None)
           for k, v in out.items()}
    self.step.assign_add(1)
    if self.ema_generator is not None:
      self._update_ema()
    return out

  def _train_step(self, real):
    return self._one_step(real)

  def _train_steps(self, iterator, k):
    """Up to k steps on (positions, images) batches from `iterator`.

    Returns (last step's metrics, largest position consumed, steps run);
    fewer than k steps run when the iterator ends.
    """
    out = {name: tf.constant(0.0) for name in self.metric_names}
    last, done = tf.constant(-1, tf.int64), tf.constant(0)
    for _ in tf.range(k):  # a graph loop: one call, k steps
      batch = iterator.get_next_as_optional()
      if not batch.has_value():
        break
      positions, images = batch.get_value()
      out = self._one_step(images)
      local = self.strategy.experimental_local_results(positions)
      last = tf.reduce_max(tf.concat([tf.reshape(p, [-1]) for p in local], 0))
      done += 1
    return out, last, done

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
