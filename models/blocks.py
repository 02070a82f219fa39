"""The layers G and D are built from, made by a `Kit` that says how.

A Kit carries the two choices that depend on where a model runs, the Keras
dtype policy and the kind of BatchNorm, so `Generator(config, kit)` builds
the same layers wherever it is called: no global policy, no ambient
distribution strategy is read.
"""

import dataclasses

import keras
import numpy as np
import tensorflow as tf

BATCH_NORMS = ('fused', 'keras', 'synchronized')


def init():
  """DCGAN initialisation (Radford et al. 2015): weights ~ N(0, 0.02)."""
  return keras.initializers.RandomNormal(mean=0.0, stddev=0.02)


class NearestUpsampleInit(keras.initializers.Initializer):
  """A stride-2 transposed conv's kernel that starts as nearest-neighbour
  upsampling followed by a conv (ICNR, Aitken et al. 2017, for transposed
  convolutions).

  A kernel one tap smaller per axis is drawn from `base` and summed at the
  four offsets of a 2x2 box. Each of the four output phases of the stride-2
  layer then starts with the same weights, so G starts without the
  checkerboard that four independently drawn phases make; training can still
  learn one.
  """

  def __init__(self, base=None):
    self.base = base or init()

  def __call__(self, shape, dtype=None):
    small = self.base((shape[0] - 1, shape[1] - 1) + tuple(shape[2:]), dtype=dtype)
    pad = lambda top, left: tf.pad(small, [[top, 1 - top], [left, 1 - left], [0, 0], [0, 0]])
    return pad(0, 0) + pad(0, 1) + pad(1, 0) + pad(1, 1)


@dataclasses.dataclass(frozen=True)
class Kit:
  """Makes layers under one dtype policy and one kind of BatchNorm.

  Attributes:
    dtype: a Keras dtype policy name ('float32', 'mixed_bfloat16', ...);
      every layer gets it, weight-free ones included, as a global policy
      would give them.
    batch_norm: 'fused' (TF's fused kernel; fastest on one device without
      XLA), 'keras' (Keras' layer: under XLA it is the faster one, since
      XLA fuses its ops itself and the fused kernel inside an XLA cluster
      was far slower on CPU) or 'synchronized' (statistics over all
      replicas, so N replicas normalise as one device with the whole batch
      would). All three have the same variables.
  """

  dtype: str = 'float32'
  batch_norm: str = 'fused'

  def __post_init__(self):
    if self.batch_norm not in BATCH_NORMS:
      raise ValueError(
        f'Unknown batch_norm {self.batch_norm!r}; choose from {", ".join(BATCH_NORMS)}.'
      )

  def norm(self):
    """BatchNorm with the TF momentum convention (0.9 = PyTorch's 0.1)."""
    if self.batch_norm == 'fused':
      return FusedBatchNorm(momentum=0.9, epsilon=1e-5, dtype=self.dtype)
    return keras.layers.BatchNormalization(
      momentum=0.9, epsilon=1e-5, dtype=self.dtype, synchronized=self.batch_norm == 'synchronized'
    )

  def activation(self, kind: str, slope: float = 0.2):
    """ReLU, LeakyReLU(slope) or SELU as a layer."""
    if kind == 'relu':
      return keras.layers.ReLU(dtype=self.dtype)
    if kind == 'leaky_relu':
      return keras.layers.LeakyReLU(negative_slope=slope, dtype=self.dtype)
    if kind == 'selu':
      return keras.layers.Activation('selu', dtype=self.dtype)
    raise ValueError(f'Unknown activation {kind!r}.')

  def _sn(self, layer, spectral_norm: bool):
    """`layer`, wrapped in spectral normalisation (Miyato et al. 2018) if asked."""
    if not spectral_norm:
      return layer
    return SpectralNormalization(layer, dtype=self.dtype)

  def conv(self, filters, kernel, strides, padding='same', use_bias=False, sn=False):
    return self._sn(
      keras.layers.Conv2D(
        filters,
        kernel,
        strides=strides,
        padding=padding,
        use_bias=use_bias,
        kernel_initializer=init(),
        dtype=self.dtype,
      ),
      sn,
    )

  def deconv(
    self,
    filters,
    kernel,
    strides,
    padding='same',
    use_bias=False,
    sn=False,
    activation_name=None,
    nearest_init=False,
  ):
    """Conv2DTranspose; `nearest_init` starts it as upsampling then a conv."""
    return self._sn(
      keras.layers.Conv2DTranspose(
        filters,
        kernel,
        strides=strides,
        padding=padding,
        use_bias=use_bias,
        kernel_initializer=NearestUpsampleInit() if nearest_init else init(),
        activation=activation_name,
        dtype=self.dtype,
      ),
      sn,
    )

  def dense(self, units, use_bias=True, sn=False, activation_name=None):
    return self._sn(
      keras.layers.Dense(
        units,
        use_bias=use_bias,
        kernel_initializer=init(),
        activation=activation_name,
        dtype=self.dtype,
      ),
      sn,
    )

  def upconv(self, filters, size, kernel, method, sn=False, activation_name=None):
    """Resize-convolution (Odena et al. 2016): resize to `size`, then a conv.

    Every output pixel sees the same number of input pixels, so unlike a
    stride-2 transposed conv whose kernel the stride does not divide, it
    cannot draw a checkerboard.
    """
    return [
      Resize(size, method, dtype=self.dtype),
      self._sn(
        keras.layers.Conv2D(
          filters,
          kernel,
          padding='same',
          use_bias=False,
          kernel_initializer=init(),
          activation=activation_name,
          dtype=self.dtype,
        ),
        sn,
      ),
    ]

  def stage(self, layers):
    """A Stage of `layers` under this kit's policy."""
    return Stage(layers, dtype=self.dtype)


class SpectralNormalization(keras.layers.SpectralNormalization):
  """Keras' layer, with its power-iteration vector in the variable dtype.

  Keras creates the vector in the kernel's dtype as read at build time,
  which under a mixed policy is the compute dtype (bfloat16) when the layer
  happens to be built inside another layer's call: checkpoints would then
  hold it in either dtype, depending on the order Keras built the layers,
  and a float32 G could not read a bfloat16 run's.
  """

  def add_weight(self, *args, dtype=None, **kwargs):
    return super().add_weight(*args, dtype=self.variable_dtype, **kwargs)


class FusedBatchNorm(keras.layers.Layer):
  """keras.layers.BatchNormalization's maths on TF's fused kernel.

  Keras 3 normalises with several separate ops (and, under mixed precision,
  casts activations to float32 first); `FusedBatchNormV3` does it in one
  kernel on float32, float16 or bfloat16 activations, which is what makes
  bfloat16 pay off on CPU (measured in BENCHMARKS.md). Its variables are Keras BN's, in the same
  order (gamma, beta, moving_mean, moving_variance), so checkpoints carry
  over, and the moving variance is the biased batch variance as in Keras.
  Inputs of any rank >= 2 are normalised over all axes but the last.
  """

  def __init__(self, momentum=0.99, epsilon=1e-3, **kwargs):
    super().__init__(**kwargs)
    self.momentum, self.epsilon = momentum, epsilon

  def build(self, input_shape):
    channels = (input_shape[-1],)
    # float32 even under a mixed policy: the fused kernel wants them so.
    add = lambda name, init, trainable: self.add_weight(
      shape=channels, initializer=init, name=name, trainable=trainable, autocast=False
    )
    self.gamma = add('gamma', 'ones', True)
    self.beta = add('beta', 'zeros', True)
    self.moving_mean = add('moving_mean', 'zeros', False)
    self.moving_variance = add('moving_variance', 'ones', False)

  def call(self, x, training=False):
    shape = tf.shape(x)
    x4 = tf.reshape(x, [-1, 1, tf.reduce_prod(shape[1:-1]), shape[-1]])
    if not training:
      y, _, _ = tf.compat.v1.nn.fused_batch_norm(
        x4,
        self.gamma,
        self.beta,
        self.moving_mean,
        self.moving_variance,
        epsilon=self.epsilon,
        is_training=False,
      )
      return tf.reshape(y, shape)
    y, mean, variance = tf.compat.v1.nn.fused_batch_norm(
      x4, self.gamma, self.beta, epsilon=self.epsilon, is_training=True
    )
    # The kernel returns the unbiased variance; Keras keeps the biased one.
    n = tf.cast(tf.size(x4) // shape[-1], tf.float32)
    variance = tf.math.multiply_no_nan(variance, (n - 1.0) / n)
    m = self.momentum
    self.moving_mean.assign(m * self.moving_mean + (1.0 - m) * mean)
    self.moving_variance.assign(m * self.moving_variance + (1.0 - m) * variance)
    return tf.reshape(y, shape)

  def compute_output_shape(self, input_shape):
    return input_shape


class Stage(keras.layers.Layer):
  """A sequence of layers; `training` reaches those that take it.

  G and D are lists of stages, so the shape after every stage can be read
  and checkpoint keys can name where a variable sits.
  """

  def __init__(self, layers, **kwargs):
    super().__init__(**kwargs)
    self.stage_layers = list(layers)

  def call(self, x, training=False):
    for layer in self.stage_layers:
      x = layer(x, training=training)
    return x


class Resize(keras.layers.Layer):
  """Resizes NHWC images to a fixed (height, width).

  'nearest' and 'bilinear' are tf.image.resize's. 'nearest2x' copies every
  pixel exactly twice along each axis, then repeats the last row or column
  (or drops the surplus) to reach the size: where the size is not a whole
  multiple (the rect G's 4-9-19-39-79-157 rows), plain nearest resizing
  doubles some rows and triples others at fixed places in the image, which
  draws seams; this keeps the unevenness at the bottom edge. Keras' Resizing
  layer computes in float32 under a mixed policy; this one keeps the
  input's dtype, so a bfloat16 G stays bfloat16.
  """

  def __init__(self, size, method, **kwargs):
    super().__init__(**kwargs)
    self.size, self.method = tuple(size), method

  def call(self, x):
    if self.method == 'nearest2x':
      for axis, size in ((1, self.size[0]), (2, self.size[1])):
        # Output row i is input row i // 2, the last one where that runs out.
        index = np.minimum(np.arange(size) // 2, x.shape[axis] - 1)
        x = tf.gather(x, index, axis=axis)
      return x
    y = tf.image.resize(x, self.size, method=self.method)
    return tf.cast(y, x.dtype)

  def compute_output_shape(self, input_shape):
    return (input_shape[0], *self.size, input_shape[-1])


class Blur(keras.layers.Layer):
  """A fixed binomial low-pass filter, [1, 2, 1] / 4 along each axis.

  Its response is zero at the Nyquist frequency, so the one-pixel
  checkerboard a stride-2 transposed conv learns (its four output phases
  drifting apart) cannot reach the output; StyleGAN blurs after each of
  its upsamplings for the same reason (Karras et al. 2019, after Zhang
  2019). Reflect padding keeps the size and passes a checkerboard at the
  border to zero too. Every output is a convex mix of inputs, so tanh's
  [-1, 1] range holds.
  """

  def call(self, x):
    taps = tf.constant([1.0, 2.0, 1.0]) / 4.0
    kernel = tf.tile((taps[:, None] * taps[None, :])[:, :, None, None], [1, 1, x.shape[-1], 1])
    padded = tf.pad(x, [[0, 0], [1, 1], [1, 1], [0, 0]], mode='REFLECT')
    return tf.nn.depthwise_conv2d(padded, tf.cast(kernel, x.dtype), [1, 1, 1, 1], 'VALID')

  def compute_output_shape(self, input_shape):
    return input_shape


class MinibatchStddev(keras.layers.Layer):
  """Appends one channel: the features' spread across a group of images.

  Karras et al. 2017 (ProGAN): the batch is split into groups of `group`
  images; the std over each group, averaged over every feature and
  position, becomes a constant extra channel of each image of the group.
  A D that sees it can tell a batch of near-copies from a varied real batch,
  so a partly collapsed G is penalised. A group the batch size does not
  divide falls back to the whole batch when that divides, else to no
  grouping (std 0).
  """

  def __init__(self, group, **kwargs):
    super().__init__(**kwargs)
    self.group = group

  def call(self, x):
    shape = tf.shape(x)
    n = shape[0]
    g = tf.minimum(self.group, n)
    g = tf.where(n % g == 0, g, 1)
    y = tf.reshape(tf.cast(x, tf.float32), tf.stack([g, -1, shape[1], shape[2], shape[3]]))
    std = tf.sqrt(tf.reduce_mean(tf.square(y - tf.reduce_mean(y, 0)), 0) + 1e-8)
    std = tf.reduce_mean(std, axis=[1, 2, 3])  # (n / g,)
    std = tf.tile(std, [g])  # image i -> group i % (n/g)
    channel = tf.ones_like(x[..., :1]) * tf.cast(std, x.dtype)[:, None, None, None]
    return tf.concat([x, channel], axis=-1)

  def compute_output_shape(self, input_shape):
    return (*input_shape[:-1], input_shape[-1] + 1)


class Dropout(keras.layers.Layer):
  """Dropout with a cheaper mask than Keras' on a CPU; same distribution.

  Keras' Dropout draws one float per element with TensorFlow's stateless
  Philox op, a few nanoseconds per element on a CPU core: with D's three
  passes a step, a fifth of celeba64's bfloat16 step (BENCHMARKS.md). This
  draws 32 random bits per two elements and keeps an element where its
  16 bits are at least round(rate * 2^16): the same Bernoulli(1 - rate)
  keep mask (the rate exact to 1/65,536), scaled by 1 / (1 - rate). Its
  seed state is Keras' SeedGenerator, as in Keras' Dropout, so an exact
  resume and the checkpoint keys are unchanged.
  """

  def __init__(self, rate: float, seed=None, **kwargs):
    super().__init__(**kwargs)
    if not 0 <= rate < 1:
      raise ValueError(f'Dropout rate must be in [0, 1), got {rate}.')
    self.rate = rate
    self.seed_generator = keras.random.SeedGenerator(seed)

  def call(self, x, training=False):
    if not training or self.rate == 0:
      return x
    seed = tf.cast(self.seed_generator.next(), tf.int64)
    n = tf.size(x)
    bits = tf.random.stateless_uniform(
      [(n + 1) // 2], seed, minval=None, maxval=None, dtype=tf.uint32
    )
    halves = tf.reshape(tf.bitcast(bits, tf.uint16), [-1])[:n]
    keep = tf.reshape(halves >= round(self.rate * 2**16), tf.shape(x))
    return tf.where(keep, x * tf.cast(1 / (1 - self.rate), x.dtype), tf.zeros_like(x))

  def compute_output_shape(self, input_shape):
    return input_shape
