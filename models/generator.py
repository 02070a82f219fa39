"""The generator: a Keras subclassed model mapping z to images in [-1, 1]."""

import keras
from keras import layers
import numpy as np
import tensorflow as tf

from configs.presets import Config
from models import blocks
from models import latents
from models import streams

# Latents whose batch statistics give the EMA G its BatchNorm statistics, run
# in as few forward passes as keep each under 2**20 output pixels (64 images
# of 128x128): one pass up to 64x64, eight at 157x128.
STANDING_STATS_LATENTS = 256
_STANDING_STATS_PIXELS = 2**20


def _block(c: Config, k: blocks.Kit, parts):
  """parts + BN + activation, the repeated unit of every conv generator."""
  return k.stage(parts + [k.norm(), k.activation(c.g_activation, c.g_leaky_slope)])


# g_spectral_norm normalises G's hidden blocks, as the 157x128 recipe did;
# the projection from z and the output layer stay plain in every arch.


def _up(
  c: Config,
  k: blocks.Kit,
  filters,
  size,
  deconv_kernel,
  deconv_padding,
  resize_kernel,
  sn=False,
  activation_name=None,
  crop=None,
  method=None,
):
  """The layers that double the resolution to `size` (H, W), by `method`
  (default: c.g_upsample).

  'deconv' is the arch's stride-2 transposed conv (the published
  recipes), then Cropping2D(`crop`) if given; 'deconv4' the same with a 4x4
  kernel (see _deconv4); 'nearest', 'bilinear' or 'nearest2x' resize to
  `size`, then a stride-1 conv with an odd kernel (no checkerboard: see
  Kit.upconv).
  """
  method = method or c.g_upsample
  if method == 'deconv4':
    return _deconv4(k, filters, size, deconv_padding, sn, activation_name)
  if method != 'deconv':
    return k.upconv(filters, size, resize_kernel, method, sn=sn, activation_name=activation_name)
  nearest = c.g_deconv_init == 'nearest'
  kwargs = dict(sn=sn, activation_name=activation_name, nearest_init=nearest)
  up = [k.deconv(filters, deconv_kernel, 2, deconv_padding, **kwargs)]
  if crop:
    up.append(layers.Cropping2D(crop, dtype=k.dtype))
  return up


def _out(c: Config):
  """_up's arguments for the doubling that writes the image: tanh, and
  c.g_out_upsample where set. That layer alone draws the one-pixel
  checkerboard: a stride-2 transposed conv gives each of its four output
  phases its own response to a flat input, a resize-conv gives them one."""
  return dict(activation_name='tanh', method=c.g_out_upsample or None)


def _deconv4(k: blocks.Kit, filters, size, padding, sn, activation_name):
  """A stride-2 transposed conv with a 4x4 kernel, cropped to `size`.

  The stride divides the kernel, so every pixel away from the border gets
  two taps per axis: no uneven overlap, the checkerboard's cause with the
  rect arch's 5-row kernels (Odena et al. 2016). 'valid' padding gives
  2n + 2 pixels; the crop drops the first, as 'same' padding would, and as
  many at the far end as `size` needs, so an odd size keeps its extra
  border row at the bottom, as 'nearest2x' does.
  """
  up = [k.deconv(filters, 4, 2, padding, sn=sn, activation_name=activation_name)]
  if padding == 'valid':
    up.append(_EdgeCrop(size, dtype=k.dtype))
  return up


class _EdgeCrop(layers.Layer):
  """Crops NHWC maps to `size`: one pixel off the top and left, the rest
  off the bottom and right."""

  def __init__(self, size, **kwargs):
    super().__init__(**kwargs)
    self.size = tuple(size)

  def call(self, x):
    h, w = self.size
    return x[:, 1 : 1 + h, 1 : 1 + w]

  def compute_output_shape(self, input_shape):
    return (input_shape[0], *self.size, input_shape[-1])


def _tutorial_stages(c: Config, k: blocks.Kit):
  """TF-tutorial DCGAN: Dense -> 5x5 transposed convs, 3 doublings."""
  h, w, f, sn = c.image_height // 8, c.image_width // 8, c.g_filters, c.g_spectral_norm
  return [
    _block(
      c, k, [k.dense(h * w * 4 * f, use_bias=False), layers.Reshape((h, w, 4 * f), dtype=k.dtype)]
    ),
    _block(c, k, [k.deconv(2 * f, 5, 1, sn=sn)]),
    _block(c, k, _up(c, k, f, (2 * h, 2 * w), 5, 'same', 5, sn=sn)),
    _block(c, k, _up(c, k, max(f // 2, 1), (4 * h, 4 * w), 5, 'same', 5, sn=sn)),
    k.stage(_up(c, k, 3, (8 * h, 8 * w), 5, 'same', 5, **_out(c))),
  ]


def _dcgan_stages(c: Config, k: blocks.Kit):
  """Canonical DCGAN: 4x4 from z, then stride-2 4x4 transposed convs."""
  n_up = c.image_height.bit_length() - 3  # 64 -> 4 doublings from 4x4
  f, sn = c.g_filters, c.g_spectral_norm
  stages = [
    _block(
      c,
      k,
      [
        layers.Reshape((1, 1, c.latent_dim), dtype=k.dtype),
        k.deconv(f * 2 ** (n_up - 1), 4, 1, 'valid'),
      ],
    )
  ]
  size = 4
  for i in range(n_up - 2, -1, -1):
    size *= 2
    stages.append(_block(c, k, _up(c, k, f * 2**i, (size, size), 4, 'same', 3, sn=sn)))
  stages.append(k.stage(_up(c, k, 3, (2 * size, 2 * size), 4, 'same', 3, **_out(c))))
  return stages


def _rect_stages(c: Config, k: blocks.Kit):
  """157x128 DCGAN: (5,4) kernels, 'valid' padding and explicit crops.

  H 4-9-19-39-79-157, W 4-8-16-32-64-128: each valid transposed conv gives
  2n+3 rows and 2n+2 columns; cropping 1 pixel per side gives 2n+1 and 2n,
  the last block crops 2 rows per side to land on 157. A resize-conv G
  resizes straight to those sizes.
  """
  f, sn = c.g_filters, c.g_spectral_norm
  stages = [k.stage([k.dense(4 * 4 * 8 * f), layers.Reshape((4, 4, 8 * f), dtype=k.dtype)])]
  sizes = [(9, 8), (19, 16), (39, 32), (79, 64), (157, 128)]
  for filters, size in zip((8 * f, 4 * f, 2 * f, f), sizes):
    stages.append(
      _block(c, k, _up(c, k, filters, size, (5, 4), 'valid', 3, sn=sn, crop=((1, 1), (1, 1))))
    )
  stages.append(
    k.stage(_up(c, k, 3, sizes[-1], (5, 4), 'valid', 3, crop=((2, 2), (1, 1)), **_out(c)))
  )
  return stages


def _mlp_stages(c: Config, k: blocks.Kit):
  """The face-synthesis recipe's fully connected G: 256-512-1024-1024-HxWx3."""
  act = lambda: k.activation(c.g_activation, c.g_leaky_slope)
  stages = [
    k.stage([k.dense(u, sn=c.g_spectral_norm and i > 0), act()])
    for i, u in enumerate((256, 512, 1024, 1024))
  ]
  stages.append(
    k.stage(
      [
        k.dense(c.image_height * c.image_width * 3, activation_name='tanh'),
        layers.Reshape((c.image_height, c.image_width, 3), dtype=k.dtype),
      ]
    )
  )
  return stages


_ARCHS = {
  'tutorial': _tutorial_stages,
  'dcgan': _dcgan_stages,
  'rect': _rect_stages,
  'mlp': _mlp_stages,
}


class Generator(keras.Model):
  """z (batch, latent_dim) -> images (batch, H, W, 3) in [-1, 1]."""

  def __init__(self, config: Config, kit: blocks.Kit = blocks.Kit(), name='generator'):
    super().__init__(name=name, dtype=kit.dtype)
    self.latent_dim = config.latent_dim
    self.stages = _ARCHS[config.arch](config, kit)
    if config.g_blur:
      self.stages.append(kit.stage([blocks.Blur(dtype=kit.dtype)]))

  def call(self, z, training=False):
    x = z
    for stage in self.stages:
      x = stage(x, training=training)
    return x

  def batch_norms(self):
    """G's BatchNorm layers (either kind), input to output."""
    kinds = (blocks.FusedBatchNorm, keras.layers.BatchNormalization)
    return [l for s in self.stages for l in s.stage_layers if isinstance(l, kinds)]


def standing_statistics_latents(config: Config) -> np.ndarray:
  """The STANDING_STATS_LATENTS latents of the standing statistics: antithetic
  pairs (z, -z), interleaved so that every chunk holds whole pairs.

  Their mean is exactly the distribution's, 0. The first BatchNorm follows a
  linear layer, so its mean is then exact too; with independent latents it is
  off by W times their random mean, a shift of every picture's colour (2-3
  levels of 255 either way at 256 latents on a trained celeba48 G, ~0.5 with
  pairs: docs/results.md).
  """
  half = latents.sample_latents(
    config, STANDING_STATS_LATENTS // 2, config.seed, streams.STANDING_STATS
  )
  return np.stack([half, -half], axis=1).reshape(-1, config.latent_dim)


def set_standing_statistics(generator: Generator, config: Config) -> None:
  """Sets G's BatchNorm moving statistics to its own, on fixed latents.

  The EMA copy of G averages the weights of the last 1 / (1 - decay) steps,
  but moving statistics belong to the weights that produced them: taken
  from the raw G, they normalise the EMA G's activations with another
  network's means and variances, a colour and contrast cast that swings with
  the raw G (measured in docs/results.md). Standing statistics (BigGAN's
  name; SWA's update_bn) are the EMA G's own: the mean, over
  STANDING_STATS_LATENTS latents of the run's distribution in antithetic pairs
  (standing_statistics_latents), of its batch statistics in training mode,
  over chunks of them. The latents are the same at
  every call, so the result depends on the weights alone. Under a
  distribution strategy it runs in cross-replica context: each worker
  computes the same statistics locally, with no collective to wait on.

  Args:
    generator: a Generator.
    config: its run's config (latent size and distribution, seed).
  """
  z = standing_statistics_latents(config)
  norms = generator.batch_norms()
  momenta = [n.momentum for n in norms]
  chunks = 1
  while len(z) // chunks * config.image_height * config.image_width > _STANDING_STATS_PIXELS:
    chunks *= 2
  try:
    for i, chunk in enumerate(np.split(z, chunks)):
      for n in norms:  # a running mean: chunk i gets weight 1 / (i + 1)
        n.momentum = i / (i + 1.0)
      generator(tf.constant(chunk), training=True)
  finally:
    for n, m in zip(norms, momenta):
      n.momentum = m
