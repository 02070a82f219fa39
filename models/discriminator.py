"""The discriminator: a Keras subclassed model mapping images to one logit."""

import keras
from keras import layers

from configs.presets import Config
from models import blocks


def _act_drop(c: Config, k: blocks.Kit, first: bool = False):
  """[BatchNorm] LeakyReLU [Dropout], after one hidden layer of D.

  BatchNorm never follows the first layer (the DCGAN paper's placement: a
  normalised input layer makes samples oscillate).
  """
  parts = [k.norm()] if c.d_has_batch_norm() and not first else []
  parts.append(layers.LeakyReLU(negative_slope=c.d_leaky_slope, dtype=k.dtype))
  if c.d_dropout > 0:
    parts.append(blocks.Dropout(c.d_dropout, dtype=k.dtype))
  return parts


def _tutorial_stages(c: Config, k: blocks.Kit):
  """TF-tutorial D: 5x5 stride-2 convs, LeakyReLU, Dropout; Dense(1)."""
  f, sn = c.d_filters, c.d_spectral_norm
  stages = [
    k.stage([k.conv(f * m, 5, 2, use_bias=True, sn=sn)] + _act_drop(c, k, first=m == 1))
    for m in (1, 2, 4)
  ]
  return stages, [k.stage([layers.Flatten(dtype=k.dtype), k.dense(1, sn=sn)])]


def _dcgan_stages(c: Config, k: blocks.Kit):
  """Canonical DCGAN D: 4x4 stride-2 convs down to 4x4, BN after all but one."""
  n_down = c.image_height.bit_length() - 3
  f, sn = c.d_filters, c.d_spectral_norm
  stages = [k.stage([k.conv(f, 4, 2, sn=sn)] + _act_drop(c, k, first=True))]
  for i in range(1, n_down):
    stages.append(k.stage([k.conv(f * 2**i, 4, 2, sn=sn)] + _act_drop(c, k)))
  return stages, [k.stage([k.conv(1, 4, 1, 'valid', sn=sn), layers.Flatten(dtype=k.dtype)])]


def _rect_stages(c: Config, k: blocks.Kit):
  """157x128 D: explicit 1-pixel padding (H 157-78-39-19-9-4), then 4x4 valid.

  'same' padding would give 79 rows after the first conv, not 78.
  """
  f, sn = c.d_filters, c.d_spectral_norm
  stages = [
    k.stage(
      [layers.ZeroPadding2D(1, dtype=k.dtype), k.conv(f * m, 4, 2, 'valid', sn=sn)]
      + _act_drop(c, k, first=i == 0)
    )
    for i, m in enumerate((1, 2, 4, 8, 8))
  ]
  return stages, [k.stage([k.conv(1, 4, 1, 'valid', sn=sn), layers.Flatten(dtype=k.dtype)])]


def _mlp_stages(c: Config, k: blocks.Kit):
  """The face-synthesis recipe's D: flatten -> 256 -> 512 -> 1."""
  sn = c.d_spectral_norm
  stages = [
    k.stage([layers.Flatten(dtype=k.dtype), k.dense(256, sn=sn)] + _act_drop(c, k, first=True)),
    k.stage([k.dense(512, sn=sn)] + _act_drop(c, k)),
  ]
  return stages, [k.stage([k.dense(1, sn=c.d_spectral_norm)])]


_ARCHS = {
  'tutorial': _tutorial_stages,
  'dcgan': _dcgan_stages,
  'rect': _rect_stages,
  'mlp': _mlp_stages,
}


def _with_mbstd(c: Config, k: blocks.Kit, head):
  """D's head, after a minibatch-stddev channel when d_mbstd_group > 0."""
  if c.d_mbstd_group > 0:
    head = [k.stage([blocks.MinibatchStddev(c.d_mbstd_group, dtype=k.dtype)])] + head
  return head


class Discriminator(keras.Model):
  """Images (batch, H, W, 3) in [-1, 1] -> logits (batch,).

  With `return_features=True` also returns the flattened output of the last
  hidden stage, the features that feature matching compares.
  """

  def __init__(self, config: Config, kit: blocks.Kit = blocks.Kit(), name='discriminator'):
    super().__init__(name=name, dtype=kit.dtype)
    self.stages, head = _ARCHS[config.arch](config, kit)
    self.head = _with_mbstd(config, kit, head)

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
