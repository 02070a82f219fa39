"""Small layer factories shared by the generator and the discriminator."""

import contextlib

import keras
import tensorflow as tf

# DCGAN initialisation (Radford et al. 2015): weights ~ N(0, 0.02).
def init():
  return keras.initializers.RandomNormal(mean=0.0, stddev=0.02)


_fused = [True]  # see fused_batch_norm()


@contextlib.contextmanager
def fused_batch_norm(fused: bool):
  """Within it, batch_norm() builds the fused layer or (False) Keras' own.

  Under XLA Keras' layer is the faster one: XLA fuses its ops itself, and
  TF's fused kernel inside an XLA cluster made the celeba64 D gradients 7x
  slower on CPU.
  """
  old = _fused[0]
  _fused[0] = fused
  try:
    yield
  finally:
    _fused[0] = old


def batch_norm():
  """BatchNorm with the TF momentum convention (0.9 = PyTorch's 0.1).

  Under a multi-replica strategy the batch statistics are synchronised, so
  N replicas normalise exactly as one device with the whole batch would;
  on one replica the fused kernel does the same job faster (unless turned
  off by fused_batch_norm(False)). All variants have the same variables.
  """
  replicated = tf.distribute.get_strategy().num_replicas_in_sync > 1
  if replicated or not _fused[0]:
    return keras.layers.BatchNormalization(momentum=0.9, epsilon=1e-5,
                                           synchronized=replicated)
  return FusedBatchNorm(momentum=0.9, epsilon=1e-5)


class FusedBatchNorm(keras.layers.Layer):
  """keras.layers.BatchNormalization's maths on TF's fused kernel.

  Keras 3 normalises with several separate ops (and, under mixed precision,
  casts activations to float32 first); `FusedBatchNormV3` does it in one
  kernel on float32, float16 or bfloat16 activations: 5-12% off a celeba64
  train step in float32 and the difference between bfloat16 paying off or
  not on CPU (BENCHMARKS.md). Its variables are Keras BN's, in the same
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
        shape=channels, initializer=init, name=name, trainable=trainable,
        autocast=False)
    self.gamma = add('gamma', 'ones', True)
    self.beta = add('beta', 'zeros', True)
    self.moving_mean = add('moving_mean', 'zeros', False)
    self.moving_variance = add('moving_variance', 'ones', False)

  def call(self, x, training=False):
    shape = tf.shape(x)
    x4 = tf.reshape(x, [-1, 1, tf.reduce_prod(shape[1:-1]), shape[-1]])
    if not training:
      y, _, _ = tf.compat.v1.nn.fused_batch_norm(
          x4, self.gamma, self.beta, self.moving_mean, self.moving_variance,
          epsilon=self.epsilon, is_training=False)
      return tf.reshape(y, shape)
    y, mean, variance = tf.compat.v1.nn.fused_batch_norm(
        x4, self.gamma, self.beta, epsilon=self.epsilon, is_training=True)
    # The kernel returns the unbiased variance; Keras keeps the biased one.
    n = tf.cast(tf.size(x4) // shape[-1], tf.float32)
    variance = tf.math.multiply_no_nan(variance, (n - 1.0) / n)
    m = self.momentum
    self.moving_mean.assign(m * self.moving_mean + (1.0 - m) * mean)
    self.moving_variance.assign(m * self.moving_variance + (1.0 - m) * variance)
    return tf.reshape(y, shape)

  def compute_output_shape(self, input_shape):
    return input_shape


def activation(kind: str, slope: float = 0.2):
  """ReLU, LeakyReLU(slope) or SELU as a layer."""
  if kind == 'relu':
    return keras.layers.ReLU()
  if kind == 'leaky_relu':
    return keras.layers.LeakyReLU(negative_slope=slope)
  if kind == 'selu':
    return keras.layers.Activation('selu')
  raise ValueError(f'Unknown activation {kind!r}.')


def maybe_sn(layer, spectral_norm: bool):
  """Wraps `layer` in spectral normalisation (Miyato et al. 2018) if asked."""
  return keras.layers.SpectralNormalization(layer) if spectral_norm else layer


def conv(filters, kernel, strides, padding='same', use_bias=False, sn=False):
  return maybe_sn(keras.layers.Conv2D(
      filters, kernel, strides=strides, padding=padding, use_bias=use_bias,
      kernel_initializer=init()), sn)


def deconv(filters, kernel, strides, padding='same', use_bias=False, sn=False,
           activation_name=None):
  return maybe_sn(keras.layers.Conv2DTranspose(
      filters, kernel, strides=strides, padding=padding, use_bias=use_bias,
      kernel_initializer=init(), activation=activation_name), sn)


def dense(units, use_bias=True, sn=False, activation_name=None):
  return maybe_sn(keras.layers.Dense(
      units, use_bias=use_bias, kernel_initializer=init(),
      activation=activation_name), sn)


class Stage(keras.layers.Layer):
  """A named sequence of layers; `training` reaches those that take it.

  G and D are lists of stages so tests (and curious users) can read the shape
  after every stage.
  """

  def __init__(self, layers, **kwargs):
    super().__init__(**kwargs)
    self.stage_layers = list(layers)

  def call(self, x, training=False):
    for layer in self.stage_layers:
      x = layer(x, training=training)
    return x
