"""DiffAugment and x-flip: the transforms, and where the train step applies them."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from data import augment
from configs.presets import DIFFAUGMENT, get_config
from models.gan import GAN


def _const(value):
  """A `uniform` that returns `value` for every draw."""
  return lambda k, shape: tf.fill(shape, tf.constant(value, tf.float32))


def _images(n=4, h=16, w=12, seed=0):
  return tf.random.stateless_uniform((n, h, w, 3), (seed, 1), -1, 1)


def test_middle_draws_are_the_identity():
  x = _images()
  # u = 0.5: brightness +0, saturation x1, contrast x1, shift 0.
  np.testing.assert_allclose(augment.color(x, _const(0.5)), x, atol=1e-6)
  np.testing.assert_array_equal(augment.translation(x, _const(0.5)), x)


def test_translation_shifts_content_and_fills_zeros():
  x = _images(h=16, w=16)
  y = augment.translation(x, _const(0.0)).numpy()  # the largest negative shift
  limit = int(16 * augment.TRANSLATION_RATIO + 0.5)  # 2 pixels
  np.testing.assert_array_equal(y[:, :-limit, :-limit], x.numpy()[:, limit:, limit:])
  assert np.all(y[:, -limit:] == 0) and np.all(y[:, :, -limit:] == 0)


def test_cutout_zeroes_a_quarter_of_the_image():
  x = tf.ones((3, 16, 16, 3))
  y = augment.cutout(x, _const(0.5)).numpy()  # centred: fully inside
  assert np.all((y == 0).mean(axis=(1, 2, 3)) == pytest.approx(0.25))
  assert y[:, 8, 8].sum() == 0 and y[:, 0, 0].min() == 1


def test_each_image_draws_its_own_transform():
  x = tf.ones((64, 16, 16, 3))
  uniform = lambda k, shape: tf.random.stateless_uniform(shape, (k, 7))
  y = augment.diff_augment(x, DIFFAUGMENT, uniform).numpy()
  per_image = y.reshape(64, -1)
  assert len({row.tobytes() for row in per_image}) == 64


def test_diff_augment_is_differentiable():
  x = _images()
  uniform = lambda k, shape: tf.random.stateless_uniform(shape, (k, 3))
  with tf.GradientTape() as tape:
    tape.watch(x)
    y = augment.diff_augment(x, DIFFAUGMENT, uniform)
    loss = tf.reduce_sum(y * y)
  grad = tape.gradient(loss, x).numpy()
  assert np.isfinite(grad).all()
  assert (grad != 0).mean() > 0.3  # everything outside cutout and shift


def test_x_flip_mirrors_about_half_the_images():
  x = _images(n=200)
  uniform = lambda k, shape: tf.random.stateless_uniform(shape, (k, 5))
  y = augment.x_flip(x, uniform).numpy()
  flipped = np.all(y == x.numpy()[:, :, ::-1], axis=(1, 2, 3))
  kept = np.all(y == x.numpy(), axis=(1, 2, 3))
  assert np.all(flipped | kept) and 70 < flipped.sum() < 130


def test_unknown_transform_is_refused():
  with pytest.raises(ValueError, match='unknown transform'):
    get_config('tiny', diffaugment='color,rotate')


def _gan(**overrides):
  keras.utils.set_random_seed(0)
  return GAN(get_config('tiny', d_dropout=0.0, **overrides))


def _logits_seen(monkeypatch, name, **overrides):
  """Trains one step with augment.<name> replaced by 'black out the image'.

  Returns (D's real logits, D's fake logits, whether G's weights changed).
  """
  monkeypatch.setattr(augment, name, lambda x, *a, **k: x * 0.0)
  gan = _gan(**overrides)
  g0 = [v.numpy().copy() for v in gan.generator.trainable_variables]
  seen = {}
  original = gan.discriminator.call

  def spy(x, training=False, return_features=False):
    out = original(x, training=training, return_features=return_features)
    logits = out[0] if return_features else out
    seen.setdefault('calls', []).append(logits)
    return out

  gan.discriminator.call = spy
  real = tf.random.stateless_uniform((8, 32, 32, 3), (1, 2), -1, 1)
  gan.step_fn(real)  # eagerly, so the spy records concrete logits
  changed = any(
    not np.array_equal(a, v.numpy()) for a, v in zip(g0, gan.generator.trainable_variables)
  )
  return seen['calls'], changed


def test_diff_augment_reaches_real_and_fake_in_both_steps(monkeypatch):
  calls, g_changed = _logits_seen(monkeypatch, 'diff_augment', diffaugment='color')
  real, fake, g_fake = (c.numpy() for c in calls)  # D step: real, fake; G step
  # Every image D saw was blacked out, real or fake, in either step...
  np.testing.assert_allclose(real, fake, atol=1e-6)
  np.testing.assert_allclose(g_fake, np.full_like(g_fake, g_fake[0]), atol=1e-6)
  # ... so no gradient reached G through D.
  assert not g_changed


def test_x_flip_touches_only_the_reals(monkeypatch):
  calls, g_changed = _logits_seen(monkeypatch, 'x_flip', x_flip=True)
  real, fake, _ = (c.numpy() for c in calls)
  np.testing.assert_allclose(real, np.full_like(real, real[0]), atol=1e-6)
  assert np.ptp(fake) > 1e-4  # the fakes were not blacked out
  assert g_changed


def test_no_augmentation_by_default_leaves_d_inputs_alone(monkeypatch):
  calls, g_changed = _logits_seen(monkeypatch, 'diff_augment')
  real, fake, _ = (c.numpy() for c in calls)
  assert np.ptp(real) > 1e-4 and np.ptp(fake) > 1e-4 and g_changed


def test_augment_p_applies_each_transform_to_the_drawn_images_only():
  x = _images(n=4, h=16, w=16)

  def uniform(k, shape):
    if k == 8:  # which images each transform reaches: images 0 and 2
      return tf.constant([[0.1] * 3, [0.9] * 3, [0.2] * 3, [0.7] * 3])
    return tf.fill(shape, 0.0)  # strongest colour change, shifts, cutouts

  y = augment.diff_augment(x, ('color', 'translation', 'cutout'), uniform, p=0.5).numpy()
  full = augment.diff_augment(x, ('color', 'translation', 'cutout'), uniform).numpy()
  np.testing.assert_allclose(y[[0, 2]], full[[0, 2]], atol=1e-6)
  np.testing.assert_array_equal(y[[1, 3]], x.numpy()[[1, 3]])
  assert np.abs(full[[1, 3]] - x.numpy()[[1, 3]]).max() > 0.1


def test_a_tensor_probability_of_zero_or_one_is_none_or_every_image():
  x = _images(n=4, h=16, w=16)
  uniform = lambda k, shape: tf.fill(shape, 0.3)
  policy = ('color', 'translation', 'cutout')
  full = augment.diff_augment(x, policy, uniform).numpy()
  none = augment.diff_augment(x, policy, uniform, p=tf.constant(0.0)).numpy()
  every = augment.diff_augment(x, policy, uniform, p=tf.constant(1.0)).numpy()
  np.testing.assert_array_equal(none, x.numpy())
  np.testing.assert_allclose(every, full, atol=1e-6)


def test_ada_raises_p_while_d_overfits_and_lowers_it_while_d_is_blind():
  from models.tricks import ada_adjust

  # 32 images a step, 0 -> 1 over 100k images: 3.2e-4 a step.
  up = ada_adjust(tf.constant(0.5), 1.0, 0.6, 32, 100.0)
  down = ada_adjust(tf.constant(0.5), 0.1, 0.6, 32, 100.0)
  assert float(up) == pytest.approx(0.5 + 3.2e-4) and float(down) == pytest.approx(0.5 - 3.2e-4)
  assert float(ada_adjust(tf.constant(0.0), -1.0, 0.6, 32, 100.0)) == 0.0  # clipped
  assert float(ada_adjust(tf.constant(1.0), 1.0, 0.6, 32, 100.0)) == 1.0


def test_the_train_step_moves_the_adaptive_probability_from_zero():
  # A D that calls every real image real (sign 1 > target) raises p each step.
  gan = _gan(diffaugment='color,translation', augment_target=0.6, augment_kimg=0.1)
  assert gan.tricks.adaptive and float(gan.tricks.augment_p) == 0.0
  real = tf.random.stateless_uniform((8, 32, 32, 3), (1, 2), -1, 1)
  seen = []
  for _ in range(3):
    out = gan.step_fn(real)
    seen.append((float(out['augment_p']), float(out['d_real_sign'])))
  p = float(gan.tricks.augment_p)
  # Each step reports the p its D saw, then moves it by 8 / 100 images.
  assert seen[0][0] == 0.0
  for (before, sign), after in zip(seen, [s[0] for s in seen[1:]] + [p]):
    assert after == pytest.approx(np.clip(before + np.sign(sign - 0.6) * 0.08, 0, 1), abs=1e-6)
  # Without a target the probability is the fixed augment_p, never moved.
  fixed = _gan(diffaugment='color', augment_p=0.5)
  fixed.step_fn(real)
  assert not fixed.tricks.adaptive and float(fixed.tricks.augment_p) == 0.5
