import math

import numpy as np
import pytest
import tensorflow as tf

from models import losses


def _bce(x, y):  # by hand: -y log s(x) - (1 - y) log(1 - s(x))
  s = 1 / (1 + math.exp(-x))
  return -y * math.log(s) - (1 - y) * math.log(1 - s)


def test_bce_with_logits_matches_the_formula():
  logits = tf.constant([0.0, 2.0, -3.0])
  assert float(losses.bce_with_logits(logits, 1.0)) == pytest.approx(
    np.mean([_bce(0, 1), _bce(2, 1), _bce(-3, 1)]), rel=1e-5
  )
  # At logit 0, any target gives log 2.
  assert float(losses.bce_with_logits(tf.zeros(4), 0.7)) == pytest.approx(math.log(2))


def test_bce_is_stable_for_huge_logits():
  value = losses.bce_with_logits(tf.constant([1000.0, -1000.0]), tf.constant([1.0, 0.0]))
  assert float(value) == pytest.approx(0.0, abs=1e-6)


def test_discriminator_loss_parts():
  real, fake = tf.constant([1.0, 3.0]), tf.constant([-2.0, 0.5])
  total, r, f = losses.discriminator_loss(real, fake, 0.9)
  assert float(r) == pytest.approx((_bce(1, 0.9) + _bce(3, 0.9)) / 2, rel=1e-5)
  assert float(f) == pytest.approx((_bce(-2, 0) + _bce(0.5, 0)) / 2, rel=1e-5)
  assert float(total) == pytest.approx(float(r) + float(f))
  # Per-example labels (the U(0.7, 1.2) recipe) broadcast elementwise.
  _, r2, _ = losses.discriminator_loss(real, fake, tf.constant([0.7, 1.2]))
  assert float(r2) == pytest.approx((_bce(1, 0.7) + _bce(3, 1.2)) / 2, rel=1e-5)


def test_generator_loss_is_non_saturating():
  assert float(losses.generator_loss(tf.constant([-1.0]))) == pytest.approx(_bce(-1, 1))
  assert float(losses.generator_loss(tf.constant([5.0]))) < 0.01


def test_hinge_losses_match_the_formula():
  real, fake = tf.constant([0.5, 2.0]), tf.constant([-2.0, 0.5])
  total, r, f = losses.hinge_discriminator_loss(real, fake)
  # max(0, 1 - 0.5), max(0, 1 - 2); max(0, 1 - 2), max(0, 1 + 0.5)
  assert (float(r), float(f), float(total)) == pytest.approx((0.25, 0.75, 1.0))
  # Beyond the margin D gets no gradient; G's slope never vanishes.
  with tf.GradientTape(persistent=True) as tape:
    tape.watch([real, fake])
    d_loss = losses.hinge_discriminator_loss(real, fake)[0]
    g_loss = losses.hinge_generator_loss(fake)
  np.testing.assert_allclose(tape.gradient(d_loss, real), [-0.5, 0.0])
  np.testing.assert_allclose(tape.gradient(d_loss, fake), [0.0, 0.5])
  np.testing.assert_allclose(tape.gradient(g_loss, fake), [-0.5, -0.5])


def test_feature_matching_loss():
  real = tf.constant([[1.0, 2.0], [3.0, 4.0]])  # means (2, 3)
  fake = tf.constant([[0.0, 0.0], [2.0, 2.0]])  # means (1, 1)
  assert float(losses.feature_matching_loss(real, fake)) == pytest.approx((1 + 4) / 2)
  assert float(losses.feature_matching_loss(real, real)) == 0.0


def test_r1_penalty_is_the_mean_squared_input_gradient():
  # D(x) = sum(w * x^2) per image: grad_x = 2 w x, so |grad|^2 = 4 sum(w^2 x^2).
  w = tf.Variable(tf.random.stateless_normal((4, 4, 3), (0, 1)))
  d = lambda x, training: tf.reduce_sum(w * x * x, axis=[1, 2, 3])
  x = tf.random.stateless_normal((5, 4, 4, 3), (0, 2))
  expected = np.mean(np.sum(4 * w.numpy() ** 2 * x.numpy() ** 2, (1, 2, 3)))
  with tf.GradientTape() as tape:
    penalty = losses.r1_penalty(d, x)
  assert float(penalty) == pytest.approx(expected, rel=1e-5)
  # Differentiable in D's weights: d/dw = mean_i 8 w x_i^2.
  np.testing.assert_allclose(
    tape.gradient(penalty, w).numpy(),
    np.mean(8 * w.numpy() * x.numpy() ** 2, 0),
    rtol=1e-4,
    atol=1e-6,
  )
