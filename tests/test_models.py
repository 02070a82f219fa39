import numpy as np
import pytest
import tensorflow as tf

from configs.presets import get_config
from models import blocks
from models import generator
from models import latents
from models import streams
from models.discriminator import Discriminator
from models.generator import Generator

PRESETS = ('celeba48', 'celeba64', 'celeba157x128')


def n_trainable(model):
  return sum(int(np.prod(v.shape)) for v in model.trainable_weights)


@pytest.mark.parametrize('preset', PRESETS)
def test_generator_and_discriminator_shapes_and_ranges(preset):
  c = get_config(preset)
  g, d = Generator(c), Discriminator(c)
  z = tf.random.normal((3, c.latent_dim), seed=1)
  x = g(z, training=True)
  assert tuple(x.shape) == (3, c.image_height, c.image_width, 3)
  x = g(z, training=False).numpy()
  assert x.min() >= -1.0 and x.max() <= 1.0  # tanh output
  assert x.std() > 0  # not a constant image
  logits = d(tf.constant(x), training=False)
  assert tuple(logits.shape) == (3,)
  logits, features = d(tf.constant(x), training=True, return_features=True)
  assert features.shape[0] == 3 and features.shape[1] > 1
  assert np.all(np.isfinite(logits.numpy()))


@pytest.mark.parametrize(
  'preset,arch,g_params,d_params',
  [
    ('celeba64', 'dcgan', 3_576_704, 2_765_568),  # canonical DCGAN
    ('celeba157x128', 'rect', 9_516_672, 6_958_080),  # the original notebook's summary
    ('celeba64', 'mlp', 14_327_552, 3_278_081),  # the face-synthesis recipe
  ],
)
def test_trainable_parameter_counts_match_the_recipes(preset, arch, g_params, d_params):
  # The published architectures: no minibatch-stddev channel (it adds one
  # input channel, so 16 weights, to the 157x128 D's last conv), and the
  # arch's own BatchNorm placement in D (celeba157x128 adds it).
  c = get_config(preset, arch=arch, d_mbstd_group=0, d_batch_norm='arch')
  g, d = Generator(c), Discriminator(c)
  d(g(tf.zeros((1, c.latent_dim))))
  assert (n_trainable(g), n_trainable(d)) == (g_params, d_params)


@pytest.mark.parametrize(
  'preset,arch',
  [('celeba48', 'tutorial'), ('celeba64', 'dcgan'), ('celeba157x128', 'rect'), ('celeba64', 'mlp')],
)
def test_d_batch_norm_follows_every_hidden_layer_but_the_first(preset, arch):
  def bn_stages(setting):
    d = Discriminator(get_config(preset, arch=arch, d_batch_norm=setting, g_filters=4, d_filters=4))
    return [any('batchnorm' in type(l).__name__.lower() for l in s.stage_layers) for s in d.stages]

  on = bn_stages('on')
  assert on == [False] + [True] * (len(on) - 1)
  assert not any(bn_stages('off'))
  assert bn_stages('arch') == (on if arch == 'dcgan' else [False] * len(on))


def _stage_shapes(stages, x):
  """Output shape (without batch) after each of `stages`."""
  shapes = []
  for stage in stages:
    x = stage(x, training=False)
    shapes.append(tuple(x.shape[1:]))
  return shapes


def test_157x128_stage_shapes():
  c = get_config('celeba157x128')
  g, d = Generator(c), Discriminator(c)
  z = tf.zeros((1, c.latent_dim))
  assert _stage_shapes(g.stages, z) == [
    (4, 4, 512),
    (9, 8, 512),
    (19, 16, 256),
    (39, 32, 128),
    (79, 64, 64),
    (157, 128, 3),
  ]
  assert _stage_shapes(d.stages + d.head, g(z)) == [
    (78, 64, 64),
    (39, 32, 128),
    (19, 16, 256),
    (9, 8, 512),
    (4, 4, 512),
    (1,),
  ]
  # Spectral norm's power-iteration vectors exist but are not trainable.
  assert any('vector_u' in v.path for v in d.non_trainable_weights)


def test_spectral_norm_bounds_the_layer_gain():
  c = get_config('celeba157x128')
  d = Discriminator(c)
  x = tf.random.normal((2, 157, 128, 3))
  for _ in range(20):  # power iteration converges over training calls
    d(x, training=True)
  kernel = d.stages[0].stage_layers[1].layer.kernel.numpy()
  sigma = np.linalg.svd(kernel.reshape(-1, kernel.shape[-1]), compute_uv=False)[0]
  assert sigma == pytest.approx(1.0, abs=0.05)


@pytest.mark.parametrize('shape', [(8, 4, 4, 6), (16, 6)])
def test_fused_batch_norm_matches_keras_batch_norm(shape):
  import keras
  from models.blocks import FusedBatchNorm

  x = tf.random.normal(shape, seed=1) * 3 + 1
  fused = FusedBatchNorm(momentum=0.9, epsilon=1e-5)
  ref = keras.layers.BatchNormalization(momentum=0.9, epsilon=1e-5)
  fused.build(shape)
  ref.build(shape)
  assert [v.name for v in fused.variables] == [v.name for v in ref.variables]
  for layer in (fused, ref):  # a non-trivial affine part
    layer.gamma.assign(tf.range(1.0, shape[-1] + 1.0))
    layer.beta.assign(tf.fill([shape[-1]], 0.5))
  grads = []
  for layer in (fused, ref):
    with tf.GradientTape() as tape:
      tape.watch(x)
      y = layer(x, training=True)
      loss = tf.reduce_sum(tf.sin(y) * x)
    grads.append((y, *tape.gradient(loss, [x, layer.gamma, layer.beta])))
  for a, b in zip(*grads):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4 * float(tf.reduce_max(tf.abs(b))))
  np.testing.assert_allclose(fused.moving_mean, ref.moving_mean, atol=1e-6)
  np.testing.assert_allclose(fused.moving_variance, ref.moving_variance, rtol=1e-5)
  np.testing.assert_allclose(fused(x), ref(x), atol=1e-5)  # inference


def test_fused_batch_norm_keeps_bfloat16_activations_and_float32_weights():
  import keras
  from models.blocks import FusedBatchNorm

  layer = FusedBatchNorm(dtype='mixed_bfloat16')
  y = layer(tf.random.normal((4, 2, 2, 3)), training=True)
  assert y.dtype == tf.bfloat16
  assert all(v.dtype == 'float32' for v in layer.variables)
  assert isinstance(layer.dtype_policy, keras.DTypePolicy)


def _layers(model):
  """Every layer of a G or D: stages, their layers, wrapped layers."""
  out = [model]
  for stage in model.stages + getattr(model, 'head', []):
    out.append(stage)
    for layer in stage.stage_layers:
      out.append(layer)
      if hasattr(layer, 'layer'):  # SpectralNormalization
        out.append(layer.layer)
  return out


@pytest.mark.parametrize('arch', ['tutorial', 'dcgan', 'rect', 'mlp'])
def test_the_kit_alone_decides_dtype_and_batch_norm(arch):
  import keras

  preset = 'celeba157x128' if arch == 'rect' else 'celeba64'
  c = get_config(
    preset, arch=arch, g_filters=4, d_filters=4, d_batch_norm='on', d_spectral_norm=True
  )
  kit = blocks.Kit('mixed_bfloat16', 'keras')
  g, d = Generator(c, kit), Discriminator(c, kit)
  d(g(tf.zeros((1, c.latent_dim))))
  for layer in _layers(g) + _layers(d):
    assert layer.dtype_policy.name == 'mixed_bfloat16', layer.name
  norms = {type(l) for l in _layers(g) + _layers(d) if 'BatchNorm' in type(l).__name__}
  assert norms == {keras.layers.BatchNormalization}
  # Nothing global changed: a default build is float32 with the fused BN.
  assert keras.config.dtype_policy().name == 'float32'
  plain = Generator(c)
  assert all(l.dtype_policy.name == 'float32' for l in _layers(plain))
  if arch != 'mlp':
    assert {type(l) for l in _layers(plain) if 'BatchNorm' in type(l).__name__} == {
      blocks.FusedBatchNorm
    }
  with pytest.raises(ValueError, match='batch_norm'):
    blocks.Kit(batch_norm='sync')


@pytest.mark.parametrize('preset', PRESETS)
@pytest.mark.parametrize('upsample', ['nearest', 'bilinear', 'nearest2x'])
def test_resize_convolution_generators_keep_every_size(preset, upsample):
  c = get_config(preset, g_upsample=upsample, d_mbstd_group=4, g_filters=8, d_filters=8)
  g, d = Generator(c), Discriminator(c)
  x = g(tf.random.normal((4, c.latent_dim), seed=1), training=True)
  assert tuple(x.shape) == (4, c.image_height, c.image_width, 3)
  layers = [
    getattr(layer, 'layer', layer)  # inside spectral norm
    for stage in g.stages
    for layer in stage.stage_layers
  ]
  assert not any(
    isinstance(layer, tf.keras.layers.Conv2DTranspose) and layer.strides == (2, 2)
    for layer in layers
  )
  assert tuple(d(x, training=True).shape) == (4,)


@pytest.mark.parametrize('preset', PRESETS)
@pytest.mark.parametrize('field', [dict(g_upsample='deconv4'), dict(g_deconv_init='nearest')])
def test_deconv4_and_nearest_init_generators_keep_every_size(preset, field):
  c = get_config(preset, g_filters=8, d_filters=8, **field)
  g = Generator(c)
  x = g(tf.random.normal((2, c.latent_dim), seed=1), training=True)
  assert tuple(x.shape) == (2, c.image_height, c.image_width, 3)
  layers = [
    getattr(layer, 'layer', layer)  # inside spectral norm
    for stage in g.stages
    for layer in stage.stage_layers
  ]
  strided = [
    l for l in layers if isinstance(l, tf.keras.layers.Conv2DTranspose) and l.strides == (2, 2)
  ]
  if 'g_upsample' in field:
    assert all(l.kernel_size == (4, 4) for l in strided)
  else:
    assert all(isinstance(l.kernel_initializer, blocks.NearestUpsampleInit) for l in strided)
  assert len(strided) == {'mlp': 0, 'tutorial': 3, 'dcgan': 4}.get(c.arch, 5)


def test_deconv4_overlaps_evenly_where_the_rect_kernel_does_not():
  """A constant map through all-ones kernels: with deconv4 every row away
  from the border gets the same sum, as with 'same' padding; the rect
  arch's (5,4) kernel alternates between two sums."""

  def rows(config, size, crop):
    n = (size[0] - 1) // 2 if size[0] < 157 else 79
    x = tf.ones((1, n, size[1] // 2, 1))
    up = generator._up(config, blocks.Kit(), 1, size, (5, 4), 'valid', 3, crop=crop)
    y = x
    for layer in up:
      y = layer(y)
      if isinstance(layer, tf.keras.layers.Conv2DTranspose):
        layer.kernel.assign(tf.ones_like(layer.kernel))
    for layer in up:  # again, now with the kernel set
      x = layer(x)
    assert tuple(x.shape) == (1, *size, 1)
    return x.numpy()[0, :, size[1] // 2, 0]

  c = get_config('celeba157x128', g_upsample='deconv4')
  last = rows(c, (157, 128), ((2, 2), (1, 1)))
  assert last[0] == 2.0 and np.all(last[1:] == 4.0)  # 2 taps per axis
  inner = rows(c, (9, 8), ((1, 1), (1, 1)))  # 4 -> 9 rows: 10 cropped to 9
  np.testing.assert_array_equal(inner, [2, 4, 4, 4, 4, 4, 4, 2, 2])
  uneven = rows(get_config('celeba157x128'), (157, 128), ((2, 2), (1, 1)))
  assert set(np.unique(uneven)) == {4.0, 6.0}  # 2 or 3 rows x 2 columns


def test_nearest2x_copies_every_pixel_twice_and_fits_at_the_edge():
  rows = tf.reshape(tf.range(4, dtype=tf.float32), (1, 4, 1, 1))
  x = tf.tile(rows, (1, 1, 4, 1))  # row r holds r
  up = blocks.Resize((9, 8), 'nearest2x')(x)
  assert tuple(up.shape) == (1, 9, 8, 1)
  np.testing.assert_array_equal(up.numpy()[0, :, 0, 0], [0, 0, 1, 1, 2, 2, 3, 3, 3])
  # 79 -> 157 rows: every row twice but the last, once; nearest resizing
  # instead repeats an interior row a different number of times.
  tall = tf.reshape(tf.range(79, dtype=tf.float32), (1, 79, 1, 1))
  twice = blocks.Resize((157, 1), 'nearest2x')(tall).numpy().ravel()
  assert list(np.bincount(twice.astype(int))) == [2] * 78 + [1]
  plain = blocks.Resize((157, 1), 'nearest')(tall).numpy().ravel()
  counts = np.bincount(plain.astype(int))
  assert set(counts[:-1]) != {2}  # an uneven interior row: a seam


def test_a_resize_conv_g_draws_no_checkerboard_from_a_flat_input():
  # A 1-pixel input upsampled by a stride-2 transposed conv whose kernel
  # the stride does not divide gives a periodic pattern (Odena et al.
  # 2016); resize-convolution keeps a flat input flat away from the border.
  ones = tf.ones((1, 4, 4, 1))
  deconv = blocks.Kit().deconv(1, 5, 2)
  deconv.build(ones.shape)
  deconv.kernel.assign(tf.ones_like(deconv.kernel))
  up = deconv(ones).numpy()[0, 2:-2, 2:-2, 0]
  assert up.max() - up.min() > 0.5  # the checkerboard
  resize, conv = blocks.Kit().upconv(1, (8, 8), 3, 'nearest')
  conv.build((1, 8, 8, 1))
  conv.kernel.assign(tf.ones_like(conv.kernel))
  flat = conv(resize(ones)).numpy()[0, 1:-1, 1:-1, 0]
  np.testing.assert_allclose(flat, 9.0)


def _nyquist(x):
  """Per image and channel, the amplitude of the one-pixel checkerboards
  (rows, columns and diagonal) in NHWC maps."""
  h, w = x.shape[1:3]
  sy = (-1.0) ** np.arange(h)[:, None, None]
  sx = (-1.0) ** np.arange(w)[None, :, None]
  return np.stack([np.abs((x * s).mean(axis=(1, 2))) for s in (sy, sx, sy * sx)])


def test_blur_removes_one_pixel_checkerboards_and_keeps_smooth_maps():
  h, w = 9, 8  # odd and even sizes, as the rect G's
  yy, xx = np.mgrid[:h, :w].astype(np.float32)
  ramp = 0.05 * yy - 0.03 * xx
  checks = np.stack([(-1.0) ** yy, (-1.0) ** xx, (-1.0) ** (yy + xx)], axis=-1)[None]
  blur = blocks.Blur()
  # Every checkerboard gone, at the border too; a ramp kept inside.
  np.testing.assert_allclose(blur(tf.constant(0.4 * checks, tf.float32)), 0.0, atol=1e-6)
  smooth = blur(tf.constant(ramp[None, :, :, None])).numpy()[0, :, :, 0]
  np.testing.assert_allclose(smooth[1:-1, 1:-1], ramp[1:-1, 1:-1], atol=1e-6)
  x = ramp[None, :, :, None] + 0.4 * checks
  y = blur(tf.constant(x, tf.float32)).numpy()
  assert tuple(y.shape) == x.shape
  assert y.min() >= x.min() and y.max() <= x.max()  # a convex mix


@pytest.mark.parametrize('preset', PRESETS)
def test_g_blur_takes_the_checkerboard_out_of_every_preset_at_no_weight_cost(preset):
  plain = Generator(get_config(preset, g_filters=8))
  blurred = Generator(get_config(preset, g_filters=8, g_blur=True))
  z = tf.random.normal((4, plain.latent_dim), seed=3)
  a, b = plain(z, training=True).numpy(), blurred(z, training=True).numpy()
  assert a.shape == b.shape and b.min() >= -1 and b.max() <= 1
  assert [v.shape for v in plain.weights] == [v.shape for v in blurred.weights]
  # Untrained G draws checkerboards of its own; the blurred one none.
  assert _nyquist(b).max() < 0.1 * _nyquist(a).max()


@pytest.mark.parametrize('preset', PRESETS)
def test_g_out_upsample_changes_only_the_layer_that_writes_the_image(preset):
  plain = Generator(get_config(preset, g_filters=8))
  out = Generator(get_config(preset, g_filters=8, g_out_upsample='nearest2x'))
  kinds = lambda g: [[type(l).__name__ for l in s.stage_layers] for s in g.stages]
  assert kinds(out)[:-1] == kinds(plain)[:-1]
  assert kinds(out)[-1] == ['Resize', 'Conv2D']
  z = tf.random.normal((4, plain.latent_dim), seed=3)
  a, b = plain(z, training=True).numpy(), out(z, training=True).numpy()
  assert a.shape == b.shape and b.min() >= -1 and b.max() <= 1
  # The random deconv's four phases draw a checkerboard; the resize-conv's
  # share one response, so what is left is tanh's bend and the edge row.
  assert _nyquist(b).max() < 0.1 * _nyquist(a).max()


@pytest.mark.parametrize('kernel', [(5, 4), (5, 5), (4, 4)])
def test_nearest_init_starts_a_stride_2_deconv_as_upsampling_then_a_conv(kernel):
  # A flat input through a stride-2 transposed conv: with a random kernel the
  # four output phases differ (the checkerboard), with the nearest init not.
  flat = tf.ones((1, 6, 6, 3))
  for nearest, uneven in ((False, True), (True, False)):
    deconv = blocks.Kit().deconv(4, kernel, 2, 'valid', nearest_init=nearest)
    inner = deconv(flat).numpy()[0, 4:-4, 4:-4]
    assert (np.ptp(inner, axis=(0, 1)).max() > 1e-3) == uneven
  # The layer is nearest-neighbour upsampling, then a stride-1 (transposed)
  # conv with the kernel drawn one tap smaller.
  small = np.random.default_rng(0).normal(size=(kernel[0] - 1, kernel[1] - 1, 4, 3))
  init = blocks.NearestUpsampleInit(lambda shape, dtype=None: tf.constant(small, tf.float32))
  deconv = tf.keras.layers.Conv2DTranspose(4, kernel, 2, 'valid', kernel_initializer=init)
  then = tf.keras.layers.Conv2DTranspose(4, small.shape[:2], 1, 'valid', use_bias=False)
  then.build((None, None, None, 3))
  then.kernel.assign(small)
  x = tf.random.normal((1, 5, 5, 3), seed=2)
  upsampled = tf.repeat(tf.repeat(x, 2, axis=1), 2, axis=2)
  np.testing.assert_allclose(deconv(x), then(upsampled), atol=1e-4)


def test_minibatch_stddev_sees_the_spread_of_each_group():
  layer = blocks.MinibatchStddev(2)
  same = tf.ones((4, 3, 3, 2))
  varied = tf.concat([tf.zeros((2, 3, 3, 2)), 2 * tf.ones((2, 3, 3, 2))], 0)
  # Groups are images (0, 2) and (1, 3): identical pairs give std ~0.
  out = layer(same).numpy()
  assert out.shape == (4, 3, 3, 3)
  np.testing.assert_allclose(out[..., 2], 0.0, atol=1e-3)
  out = layer(varied).numpy()  # pairs (0, 2), (1, 3) differ by 2: std 1
  np.testing.assert_allclose(out[..., 2], 1.0, atol=1e-3)
  np.testing.assert_array_equal(out[..., :2], varied.numpy())
  assert layer(tf.ones((3, 3, 3, 2))).shape == (3, 3, 3, 3)  # 3 % 2: no groups


def test_the_minibatch_stddev_channel_adds_one_input_channel_to_the_head():
  plain = get_config('celeba157x128', d_mbstd_group=0)
  with_std = get_config('celeba157x128', d_mbstd_group=4)
  counts = []
  for c in (plain, with_std):
    d = Discriminator(c)
    d(tf.zeros((4, 157, 128, 3)))
    counts.append(n_trainable(d))
  assert counts[1] - counts[0] == 4 * 4 * 1  # one 4x4 slice of the last conv


@pytest.mark.parametrize('upsample', ['deconv', 'deconv4', 'nearest2x'])
def test_mixed_precision_models_store_every_variable_in_float32(upsample):
  """So a checkpoint reads into a float32 G whatever built it (the rect G
  with deconv4 once built its spectral-norm vectors in bfloat16)."""
  kit = blocks.Kit('mixed_bfloat16')
  for preset in ('celeba157x128', 'celeba64'):
    c = get_config(
      preset,
      g_upsample=upsample,
      g_spectral_norm=True,
      d_spectral_norm=True,
      g_filters=8,
      d_filters=8,
    )
    g, d = Generator(c, kit), Discriminator(c, kit)
    d(g(tf.zeros((1, c.latent_dim))))
    stored = {
      v.path: v.dtype for m in (g, d) for v in m.variables if 'seed_generator' not in v.path
    }
    assert set(stored.values()) == {'float32'}, stored


@pytest.mark.parametrize('rate', [0.1, 0.3])
def test_dropout_keeps_1_minus_rate_scaled_and_draws_a_new_mask_each_call(rate):
  layer = blocks.Dropout(rate, seed=3)
  x = tf.ones([4, 64, 64, 64])  # 1,048,576 elements
  y1, y2 = layer(x, training=True).numpy(), layer(x, training=True).numpy()
  for y in (y1, y2):
    kept = y != 0
    assert abs(kept.mean() - (1 - rate)) < 0.003  # 6 standard deviations
    np.testing.assert_allclose(y[kept], 1 / (1 - rate), rtol=1e-6)
    assert abs(y.mean() - 1) < 0.005  # the scale keeps the expectation
  # Independent masks: they agree on (1-r)^2 + r^2 of the elements.
  agree = ((y1 != 0) == (y2 != 0)).mean()
  assert abs(agree - ((1 - rate) ** 2 + rate**2)) < 0.003
  np.testing.assert_array_equal(layer(x, training=False), x)
  # The same seed state gives the same masks: an exact resume needs that.
  again = blocks.Dropout(rate, seed=3)
  np.testing.assert_array_equal(again(x, training=True), y1)
  # The gradient passes where the element was kept, scaled alike.
  fresh = blocks.Dropout(rate, seed=3)
  with tf.GradientTape() as tape:
    tape.watch(x)
    y = fresh(x, training=True)
  np.testing.assert_allclose(tape.gradient(y, x), y1, rtol=1e-6)


def test_dropout_keeps_the_seed_variable_checkpoints_name():
  d = Discriminator(get_config('celeba64', d_dropout=0.1))
  d(tf.zeros([2, 64, 64, 3]), training=True)
  seeds = [v for v in d.variables if 'seed_generator_state' in v.path]
  assert seeds and all(v.name == 'seed_generator_state' for v in seeds)
  assert any(isinstance(l, blocks.Dropout) for s in d.stages for l in s.stage_layers)


def _scrambled_statistics(g):
  for n in g.batch_norms():
    n.moving_mean.assign(tf.fill(n.moving_mean.shape, 5.0))
    n.moving_variance.assign(tf.fill(n.moving_variance.shape, 9.0))


def test_standing_statistics_are_the_generators_own_over_fixed_latents():
  config = get_config('tiny')
  g = Generator(config)
  g(tf.zeros((1, config.latent_dim)))
  _scrambled_statistics(g)
  generator.set_standing_statistics(g, config)
  stats = [n.moving_mean.numpy().copy() for n in g.batch_norms()]
  assert len(stats) >= 3 and all(n.momentum == 0.9 for n in g.batch_norms())  # restored
  # The first BN's mean is exactly the mean of its input over all the
  # latents, which come in pairs (z, -z): the mean of a linear layer's
  # output over them is its bias alone (none here), not W times their mean.
  z = generator.standing_statistics_latents(config)
  assert len(z) == generator.STANDING_STATS_LATENTS
  np.testing.assert_array_equal(z[0::2], -z[1::2])
  np.testing.assert_array_equal(
    z[0::2], latents.sample_latents(config, len(z) // 2, config.seed, streams.STANDING_STATS)
  )
  x = tf.constant(z)
  for layer in g.stages[0].stage_layers[:2]:  # the layers before the first BN
    x = layer(x)
  np.testing.assert_allclose(stats[0], tf.reduce_mean(x, axis=(0, 1, 2)), rtol=1e-4, atol=1e-5)
  assert np.abs(stats[0]).max() < 1e-4 * np.abs(x).mean()
  # The result does not depend on the statistics it replaces.
  _scrambled_statistics(g)
  generator.set_standing_statistics(g, config)
  for a, n in zip(stats, g.batch_norms()):
    np.testing.assert_allclose(a, n.moving_mean, rtol=1e-5, atol=1e-6)
  # Inference on them matches G normalising 512 new latents by their own
  # batch statistics; the scrambled ones are far off.
  z = tf.constant(latents.sample_latents(config, 512, 7, streams.EVALUATION))
  own = g(z, training=False).numpy()
  batch = g(z, training=True).numpy()
  scale = np.abs(batch).mean()  # an untrained G's pictures are faint
  assert np.abs(own - batch).mean() < 0.05 * scale
  _scrambled_statistics(g)
  assert np.abs(g(z, training=False).numpy() - batch).mean() > 0.5 * scale
