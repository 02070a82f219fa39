import keras
import numpy as np
import pytest
import tensorflow as tf

from data import pipeline
from configs.presets import get_config
from models import generator
from models import losses
from models import streams
from models.gan import GAN
from tests import helpers

MAIN_KEYS = {
  'd_loss',
  'd_loss_real',
  'd_loss_fake',
  'g_loss',
  'g_loss_adv',
  'g_loss_fm',
  'd_real',
  'd_fake',
  'noise_sd',
  'grad_norm/g',
  'grad_norm/d',
}


def _gan(**overrides):
  keras.utils.set_random_seed(0)
  return GAN(get_config('tiny', **overrides))


def _real(batch=8, size=32):
  return tf.random.uniform((batch, size, size, 3), -1, 1, seed=0)


def test_train_step_updates_both_networks_and_reports_scalars():
  gan = _gan()
  g0 = [v.numpy().copy() for v in gan.generator.trainable_variables]
  d0 = [v.numpy().copy() for v in gan.discriminator.trainable_variables]
  out = helpers.loop_step(gan, _real())
  assert MAIN_KEYS <= set(out)
  assert any(k.startswith('grad_norm/g/') for k in out)  # per layer
  assert all(np.isfinite(float(v)) for v in out.values())
  assert 0 < float(out['d_real']) < 1 and 0 < float(out['d_fake']) < 1
  assert float(out['d_loss']) == pytest.approx(
    float(out['d_loss_real']) + float(out['d_loss_fake']), rel=1e-5
  )
  assert int(gan.step) == 1
  assert all(
    not np.array_equal(a, v.numpy()) for a, v in zip(g0, gan.generator.trainable_variables)
  )
  assert all(
    not np.array_equal(a, v.numpy()) for a, v in zip(d0, gan.discriminator.trainable_variables)
  )


def test_per_layer_gradient_norms_add_up_to_the_global_norm():
  out = helpers.loop_step(_gan(), _real())
  for net in ('g', 'd'):
    layers = [float(v) for k, v in out.items() if k.startswith(f'grad_norm/{net}/')]
    assert len(layers) >= 3 and all(x > 0 for x in layers)
    assert float(out[f'grad_norm/{net}']) == pytest.approx(
      np.sqrt(np.sum(np.square(layers))), rel=1e-4
    )


def test_ema_generator_follows_the_warmed_up_average_of_g():
  decay = 0.99
  gan = _gan(ema_decay=decay)
  flat = lambda vs: np.concatenate([v.numpy().ravel() for v in vs])
  expected = flat(gan.generator.trainable_variables)  # the EMA starts at G
  for step in range(1, 6):
    helpers.loop_step(gan, _real())
    d = min(decay, (1 + step) / (10 + step))  # warm-up, at the new step
    expected = d * expected + (1 - d) * flat(gan.generator.trainable_variables)
  ema = flat(gan.ema_generator.trainable_variables)
  np.testing.assert_allclose(ema, expected, rtol=1e-4, atol=1e-6)
  assert np.abs(ema - flat(gan.generator.trainable_variables)).max() > 1e-5
  # BN statistics are neither averaged nor copied: the EMA G's own come when
  # its pictures are asked for.
  ema_stats = lambda: [n.moving_mean.numpy().copy() for n in gan.ema_generator.batch_norms()]
  raw_stats = [n.moving_mean.numpy() for n in gan.generator.batch_norms()]
  assert all(not a.any() for a in ema_stats())  # still the initial zeros
  z = tf.random.normal((4, 16), seed=1)
  pictures = gan.sample(z).numpy()
  own = ema_stats()
  assert all(np.abs(a - r).max() > 1e-4 for a, r in zip(own, raw_stats))
  generator.set_standing_statistics(gan.ema_generator, gan.config)
  np.testing.assert_allclose(pictures, gan.ema_generator(z).numpy(), atol=1e-5)
  gan.sample(z)  # no step since: the statistics stay
  for a, b in zip(own, ema_stats()):
    np.testing.assert_array_equal(a, b)
  helpers.loop_step(gan, _real())  # a step later the watch keeps them...
  gan.sample(z, refresh=False)
  for a, b in zip(own, ema_stats()):
    np.testing.assert_array_equal(a, b)
  gan.sample(z)  # ...and a grid or an evaluation measures them again
  assert all(np.abs(a - b).max() > 0 for a, b in zip(own, ema_stats()))
  assert gan.sampler is gan.ema_generator
  plain = _gan(ema_decay=0.0)
  assert plain.ema_generator is None and plain.sampler is plain.generator


def test_instance_noise_decays_linearly():
  gan = _gan(instance_noise='additive', noise_sd=0.2, noise_decay_steps=100)
  sd = lambda step: float(gan.tricks.noise_sd(tf.constant(step, tf.int64)))
  assert sd(0) == pytest.approx(0.2)
  assert sd(50) == pytest.approx(0.1)
  assert sd(500) == 0.0
  assert float(_gan().tricks.noise_sd(0)) == 0.0  # instance_noise='none'


def test_feature_matching_and_extra_g_steps():
  gan = _gan(feature_matching=0.1, fm_ramp_steps=0, g_steps_per_d=2)
  out = helpers.loop_step(gan, _real())
  assert float(out['g_loss_fm']) > 0
  assert float(out['g_loss']) == pytest.approx(
    float(out['g_loss_adv']) + 0.1 * float(out['g_loss_fm']), rel=1e-5
  )
  assert int(gan.g_optimizer.iterations) == 2 * int(gan.d_optimizer.iterations)


@pytest.mark.parametrize(
  'loss, g_loss',
  [
    ('nonsaturating', lambda logits: losses.generator_loss(logits, 1.0)),
    ('hinge', losses.hinge_generator_loss),
  ],
)
def test_reuse_fake_trains_g_on_the_d_step_fakes_with_one_forward_pass(loss, g_loss):
  gan = _gan(reuse_fake=True, ema_decay=0.0, loss=loss)
  calls = []
  call = gan.generator.call
  gan.generator.call = lambda *a, **k: calls.append(1) or call(*a, **k)
  g0 = [v.numpy() for v in gan.generator.variables]
  out = helpers.loop_step(gan, _real())
  assert len(calls) == 1  # traced once: one G forward pass per step
  # The G loss is D's verdict, after its update, on G(z of the D step)
  # made by G before its update.
  for v, value in zip(gan.generator.variables, g0):
    v.assign(value)
  z = gan.tricks.latent(streams.Z_D, tf.constant(8), tf.constant(1, tf.int64))
  logits = gan.discriminator(gan.generator(z, training=True), training=True)
  assert float(out['g_loss']) == pytest.approx(float(g_loss(logits)), rel=1e-4)


@pytest.mark.parametrize(
  'overrides',
  [
    dict(real_label_low=0.7, real_label_high=1.2, smooth_g_targets=True),
    dict(instance_noise='multiplicative', d_spectral_norm=True, g_spectral_norm=True),
    dict(optimizer='adamw', weight_decay=0.01, latent_dist='uniform', reuse_fake=True),
    dict(g_activation='selu', d_dropout=0.3),
    dict(
      g_upsample='bilinear',
      d_mbstd_group=4,
      r1_gamma=1.0,
      r1_every=1,
      diffaugment='color,translation,cutout',
      augment_p=0.5,
    ),
  ],
)
def test_every_stabilising_option_trains(overrides):
  gan = _gan(**overrides)
  for _ in range(2):
    out = helpers.loop_step(gan, _real())
  assert all(np.isfinite(float(v)) for v in out.values())


@pytest.mark.slow
def test_overfit_one_real_batch_d_and_g_learn(celeba_dir):
  """As the PyTorch recipe's mini_data run: one batch of real faces, many steps."""
  c = get_config(
    'tiny',
    dataset='celeba',
    data_dir=celeba_dir,
    batch_size=16,
    g_filters=16,
    d_filters=16,
    g_lr=1e-3,
    d_lr=1e-3,
    g_beta1=0.5,
    d_beta1=0.5,
    ema_decay=0.0,
  )
  _, real = next(iter(pipeline.Pipeline(c).epoch(0)))
  keras.utils.set_random_seed(0)
  gan = GAN(c)
  z = tf.random.normal((64, c.latent_dim), seed=3)
  target = real.numpy().mean(0)

  def distance():  # mean |E[G(z)] - E[x]| per pixel, in [-1, 1] units
    return np.abs(gan.generator(z, training=False).numpy().mean(0) - target).mean()

  d0 = distance()
  d_losses = [float(helpers.loop_step(gan, real)['d_loss']) for _ in range(300)]
  # D learns to tell this batch from fakes: its loss falls well below log 4.
  assert min(d_losses[:50]) < 0.5 * d_losses[0]
  # G learns: its average image moves most of the way towards the batch's.
  assert distance() < 0.65 * d0


def test_r1_is_lazy_and_adds_to_d_gradients_only_on_its_steps():
  plain, r1 = _gan(), _gan(r1_gamma=10.0, r1_every=2)
  real, fake = _real(), _real() * 0.5

  def grads(gan, step):
    g, _, _ = gan.d_gradients(real, fake, tf.constant(step, tf.int64))
    return [x.numpy() for x in g]

  for a, b in zip(grads(plain, 3), grads(r1, 3)):  # 3 % 2: no R1
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-7)
  extra = [b - a for a, b in zip(grads(plain, 4), grads(r1, 4))]
  assert max(np.abs(e).max() for e in extra) > 1e-4


def test_a_step_without_norms_skips_only_the_norms():
  full, light = _gan(), _gan()
  real = _real()
  out_full = helpers.loop_step(full, real)
  out_light = helpers.loop_step(light, real, with_norms=False)
  norms = lambda gan, out: [float(out[k]) for k in gan.metric_names if k.startswith('grad_norm/')]
  assert len(norms(full, out_full)) > 2 and min(norms(full, out_full)) > 0
  assert norms(light, out_light) == [0.0] * len(norms(full, out_full))
  for k in ('d_loss', 'g_loss', 'd_real', 'd_fake'):  # the same step
    assert float(out_light[k]) == pytest.approx(float(out_full[k]), rel=1e-4)
  for a, b in zip(full.generator.weights, light.generator.weights):
    np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-4, atol=1e-6)
