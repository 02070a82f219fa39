"""Small layer factories shared by the generator and the discriminator."""

import keras
import tensorflow as tf

# DCGAN initialisation (Radford et al. 2015): weights ~ N(0, 0.02).
def init():
  return keras.initializers.RandomNormal(mean=0.0, stddev=0.02)


def batch_norm():
  """BatchNorm with the TF momentum convention (0.9 = PyTorch's 0.1).

  Under a multi-replica strategy the batch statistics are synchronised, so
  N replicas normalise exactly as one device with the whole batch would.
  """
  replicas = tf.distribute.get_strategy().num_replicas_in_sync
  return keras.layers.BatchNormalization(momentum=0.9, epsilon=1e-5,
                                         synchronized=replicas > 1)


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
