"""The discriminator: a Keras subclassed model mapping images to one logit."""

import keras
from keras import layers

from configs.presets import Config
from models import blocks


def _act_drop(c: Config, first: bool = False, arch_bn: bool = False):
  """[BatchNorm] LeakyReLU [Dropout], after one hidden layer of D.

  BatchNorm never follows the first layer (the DCGAN paper's placement: a
  normalised input layer makes samples oscillate).
  """
  bn = {'on': True, 'off': False, 'arch': arch_bn}[c.d_batch_norm]
  parts = [blocks.batch_norm()] if bn and not first else []
  parts.append(layers.LeakyReLU(negative_slope=c.d_leaky_slope))
  if c.d_dropout > 0:
    parts.append(layers.Dropout(c.d_dropout))
  return parts


def _tutorial_stages(c: Config):
  """TF-tutorial D: 5x5 stride-2 convs, LeakyReLU, Dropout; Dense(1)."""
  f, sn = c.d_filters, c.d_spectral_norm
  stages = [blocks.Stage([blocks.conv(f * m, 5, 2, use_bias=True, sn=sn)]
                         + _act_drop(c, first=m == 1)) for m in (1, 2, 4)]
  return stages, [blocks.Stage([layers.Flatten(), blocks.dense(1, sn=sn)])]


def _dcgan_stages(c: Config):
  """Canonical DCGAN D: 4x4 stride-2 convs down to 4x4, BN after all but one."""
  n_down = c.image_height.bit_length() - 3
  f, sn = c.d_filters, c.d_spectral_norm
  stages = [blocks.Stage([blocks.conv(f, 4, 2, sn=sn)]
                         + _act_drop(c, first=True))]
  for i in range(1, n_down):
    stages.append(blocks.Stage([blocks.conv(f * 2 ** i, 4, 2, sn=sn)]
                               + _act_drop(c, arch_bn=True)))
  return stages, [blocks.Stage([blocks.conv(1, 4, 1, 'valid', sn=sn),
                                layers.Flatten()])]


def _rect_stages(c: Config):
  """157x128 D: explicit 1-pixel padding (H 157-78-39-19-9-4), then 4x4 valid.

  'same' padding would give 79 rows after the first conv, not 78.
  """
  f, sn = c.d_filters, c.d_spectral_norm
  stages = [blocks.Stage([layers.ZeroPadding2D(1),
                          blocks.conv(f * m, 4, 2, 'valid', sn=sn)]
                         + _act_drop(c, first=i == 0))
            for i, m in enumerate((1, 2, 4, 8, 8))]
  return stages, [blocks.Stage([blocks.conv(1, 4, 1, 'valid', sn=sn),
                                layers.Flatten()])]


def _mlp_stages(c: Config):
  """The face-synthesis recipe's D: flatten -> 256 -> 512 -> 1."""
  sn = c.d_spectral_norm
  stages = [blocks.Stage([layers.Flatten(), blocks.dense(256, sn=sn)]
                         + _act_drop(c, first=True)),
            blocks.Stage([blocks.dense(512, sn=sn)] + _act_drop(c))]
  return stages, [blocks.Stage([blocks.dense(1, sn=c.d_spectral_norm)])]


_ARCHS = {'tutorial': _tutorial_stages, 'dcgan': _dcgan_stages,
          'rect': _rect_stages, 'mlp': _mlp_stages}


class Discriminator(keras.Model):
  """Images (batch, H, W, 3) in [-1, 1] -> logits (batch,).

  With `return_features=True` also returns the flattened output of the last
  hidden stage, the features that feature matching compares.
  """

  def __init__(self, config: Config, name='discriminator', **kwargs):
    super().__init__(name=name, **kwargs)
    self.stages, self.head = _ARCHS[config.arch](config)

  def call(self, x, training=False, return_features=False):
    for stage in self.stages:
      x = stage(x, training=training)
    features = x
    for stage in self.head:
      x = stage(x, training=training)
    logits = keras.ops.reshape(x, (-1,))
    if return_features:
      return logits, keras.ops.reshape(features, (keras.ops.shape(features)[0], -1))
    return logits

  def stage_shapes(self, x):
    """Output shape (without batch) after each stage, for shape tests."""
    shapes = []
    for stage in self.stages + self.head:
      x = stage(x, training=False)
      shapes.append(tuple(x.shape[1:]))
    return shapes
