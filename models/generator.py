"""The generator: a Keras subclassed model mapping z to images in [-1, 1]."""

import keras
from keras import layers

from configs.presets import Config
from models import blocks


def _block(c: Config, k: blocks.Kit, parts):
  """parts + BN + activation, the repeated unit of every conv generator."""
  return k.stage(parts + [k.norm(), k.activation(c.g_activation,
                                                 c.g_leaky_slope)])


# g_spectral_norm normalises G's hidden blocks, as the 157x128 recipe did;
# the projection from z and the output layer stay plain in every arch.


def _tutorial_stages(c: Config, k: blocks.Kit):
  """TF-tutorial DCGAN: Dense -> 5x5 transposed convs, 3 doublings."""
  h, w, f, sn = c.image_height // 8, c.image_width // 8, c.g_filters, c.g_spectral_norm
  return [
      _block(c, k, [k.dense(h * w * 4 * f, use_bias=False),
                 layers.Reshape((h, w, 4 * f), dtype=k.dtype)]),
      _block(c, k, [k.deconv(2 * f, 5, 1, sn=sn)]),
      _block(c, k, [k.deconv(f, 5, 2, sn=sn)]),
      _block(c, k, [k.deconv(max(f // 2, 1), 5, 2, sn=sn)]),
      k.stage([k.deconv(3, 5, 2, activation_name='tanh')]),
  ]


def _dcgan_stages(c: Config, k: blocks.Kit):
  """Canonical DCGAN: 4x4 from z, then stride-2 4x4 transposed convs."""
  n_up = c.image_height.bit_length() - 3  # 64 -> 4 doublings from 4x4
  f, sn = c.g_filters, c.g_spectral_norm
  stages = [_block(c, k, [layers.Reshape((1, 1, c.latent_dim), dtype=k.dtype),
                       k.deconv(f * 2 ** (n_up - 1), 4, 1, 'valid')])]
  for i in range(n_up - 2, -1, -1):
    stages.append(_block(c, k, [k.deconv(f * 2 ** i, 4, 2, sn=sn)]))
  stages.append(k.stage([k.deconv(3, 4, 2, activation_name='tanh')]))
  return stages


def _rect_stages(c: Config, k: blocks.Kit):
  """157x128 DCGAN: (5,4) kernels, 'valid' padding and explicit crops.

  H 4-9-19-39-79-157, W 4-8-16-32-64-128: each valid transposed conv gives
  2n+3 rows and 2n+2 columns; cropping 1 pixel per side gives 2n+1 and 2n,
  the last block crops 2 rows per side to land on 157.
  """
  f, sn = c.g_filters, c.g_spectral_norm
  stages = [k.stage([k.dense(4 * 4 * 8 * f),
                          layers.Reshape((4, 4, 8 * f), dtype=k.dtype)])]
  for filters in (8 * f, 4 * f, 2 * f, f):
    stages.append(_block(c, k, [k.deconv(filters, (5, 4), 2, 'valid', sn=sn),
                             layers.Cropping2D(((1, 1), (1, 1)), dtype=k.dtype)]))
  stages.append(k.stage([
      k.deconv(3, (5, 4), 2, 'valid', activation_name='tanh'),
      layers.Cropping2D(((2, 2), (1, 1)), dtype=k.dtype)]))
  return stages


def _mlp_stages(c: Config, k: blocks.Kit):
  """The face-synthesis recipe's fully connected G: 256-512-1024-1024-HxWx3."""
  act = lambda: k.activation(c.g_activation, c.g_leaky_slope)
  stages = [k.stage([k.dense(u, sn=c.g_spectral_norm and i > 0),
                          act()])
            for i, u in enumerate((256, 512, 1024, 1024))]
  stages.append(k.stage([
      k.dense(c.image_height * c.image_width * 3, activation_name='tanh'),
      layers.Reshape((c.image_height, c.image_width, 3), dtype=k.dtype)]))
  return stages


_ARCHS = {'tutorial': _tutorial_stages, 'dcgan': _dcgan_stages,
          'rect': _rect_stages, 'mlp': _mlp_stages}


class Generator(keras.Model):
  """z (batch, latent_dim) -> images (batch, H, W, 3) in [-1, 1]."""

  def __init__(self, config: Config, kit: blocks.Kit = blocks.Kit(),
               name='generator'):
    super().__init__(name=name, dtype=kit.dtype)
    self.latent_dim = config.latent_dim
    self.stages = _ARCHS[config.arch](config, kit)

  def call(self, z, training=False):
    x = z
    for stage in self.stages:
      x = stage(x, training=training)
    return x
