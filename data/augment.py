"""Small-data augmentation for GANs, applied inside the compiled train step.

DiffAugment (Zhao et al. 2020, "Differentiable Augmentation for
Data-Efficient GAN Training"): the same random colour, translation and
cutout transforms are applied to every image D sees, real and fake, in the
D step and in the G step. Each transform is differentiable in the images,
so G's gradient flows through the augmentation; D never sees an
unaugmented image, so it cannot tell real from fake by the transform, and it
cannot memorise the few thousand training faces pixel for pixel.

The x-flip doubles the real set (faces are nearly symmetric) and is applied
to the real images only: G needs no gradient through it.

Randomness is passed in as a `uniform(k, shape)` callable returning values
in [0, 1) for draw number k, so the caller decides how the numbers are
seeded (the GAN draws them statelessly per step and replica). Images are
NHWC in [-1, 1].
"""

from typing import Callable, Sequence, Tuple

import tensorflow as tf

# The paper's strengths: shifts up to 1/8 of the side, a cutout of half of it.
TRANSLATION_RATIO = 0.125
CUTOUT_RATIO = 0.5

Uniform = Callable[[int, Sequence[int]], tf.Tensor]


def parse_policy(policy: str) -> Tuple[str, ...]:
  """'color,translation,cutout' -> a tuple ('' -> ()); Config validates it."""
  return tuple(p.strip() for p in policy.split(',') if p.strip())


def color(x, uniform: Uniform):
  """Per-image brightness, saturation and contrast.

  x + (u1 - 0.5); then (x - mean_c) * 2 u2 + mean_c over channels; then
  (x - mean) * (u3 + 0.5) + mean over the whole image.
  """
  n = tf.shape(x)[0]
  shape = tf.stack([n, 1, 1, 1])
  x = x + (uniform(0, shape) - 0.5)
  mean = tf.reduce_mean(x, axis=3, keepdims=True)
  x = (x - mean) * (uniform(1, shape) * 2.0) + mean
  mean = tf.reduce_mean(x, axis=[1, 2, 3], keepdims=True)
  return (x - mean) * (uniform(2, shape) + 0.5) + mean


def _shift_axis(x, shift, axis):
  """Shifts each image by its own integer `shift` along `axis`, zero-filled."""
  size = tf.shape(x)[axis]
  src = tf.range(size)[None, :] - shift[:, None]  # source index per output
  inside = tf.logical_and(src >= 0, src < size)
  gathered = tf.gather(x, tf.clip_by_value(src, 0, size - 1), axis=axis, batch_dims=1)
  mask_shape = [-1, 1, 1, 1]
  mask_shape[axis] = size
  return gathered * tf.reshape(tf.cast(inside, x.dtype), mask_shape)


def translation(x, uniform: Uniform, ratio: float = TRANSLATION_RATIO):
  """Shifts each image by up to ratio * side pixels per axis, zero-filled."""
  n = tf.shape(x)[0]
  for k, axis in ((3, 1), (4, 2)):
    side = tf.cast(tf.shape(x)[axis], tf.float32)
    limit = tf.cast(side * ratio + 0.5, tf.int32)
    # Integer shifts uniform in [-limit, limit].
    span = tf.cast(2 * limit + 1, tf.float32)
    shift = tf.cast(tf.floor(uniform(k, tf.reshape(n, [1])) * span), tf.int32) - limit
    x = _shift_axis(x, shift, axis)
  return x


def cutout(x, uniform: Uniform, ratio: float = CUTOUT_RATIO):
  """Zeroes one ratio-sized rectangle per image, centred anywhere in it."""
  n, h, w = tf.shape(x)[0], tf.shape(x)[1], tf.shape(x)[2]
  masks = []
  for k, size in ((5, h), (6, w)):
    cut = tf.cast(tf.cast(size, tf.float32) * ratio + 0.5, tf.int32)
    centre = tf.cast(tf.floor(uniform(k, tf.reshape(n, [1])) * tf.cast(size, tf.float32)), tf.int32)
    start = centre - cut // 2
    idx = tf.range(size)[None, :]
    masks.append(tf.logical_and(idx >= start[:, None], idx < (start + cut)[:, None]))
  hole = tf.logical_and(masks[0][:, :, None], masks[1][:, None, :])
  return x * tf.cast(tf.logical_not(hole), x.dtype)[..., None]


_TRANSFORMS = {'color': color, 'translation': translation, 'cutout': cutout}


def diff_augment(x, policy: Sequence[str], uniform: Uniform, p=1.0):
  """Applies the transforms of `policy` in order (differentiable in x).

  With p < 1 each transform reaches each image with probability p (as ADA
  does, Karras et al. 2020): D then also sees unaugmented images, and a
  transform applied with p below about 0.8 cannot leak into G's images.
  `p` may be a float or a scalar tensor (the adaptive probability).
  """
  every = isinstance(p, (int, float)) and p >= 1
  if not every:  # one draw for every (image, transform) pair
    applied = uniform(8, tf.stack([tf.shape(x)[0], len(_TRANSFORMS)])) < p
  for name in policy:
    y = _TRANSFORMS[name](x, uniform)
    if not every:
      column = list(_TRANSFORMS).index(name)
      y = tf.where(applied[:, column, None, None, None], y, x)
    x = y
  return x


def x_flip(x, uniform: Uniform):
  """Mirrors each image left-right with probability 1/2."""
  flip = uniform(7, tf.shape(x)[:1]) < 0.5
  return tf.where(flip[:, None, None, None], tf.reverse(x, axis=[2]), x)
