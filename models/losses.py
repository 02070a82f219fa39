"""Pure GAN loss functions on logits (no sigmoid + BCE anywhere), and R1."""

import tensorflow as tf


def bce_with_logits(logits, targets):
  """Mean binary cross-entropy with logits.

  l = mean_i [ max(x_i, 0) - x_i * y_i + log(1 + exp(-|x_i|)) ],
  the numerically stable form of -y log s(x) - (1 - y) log(1 - s(x)).
  Targets may lie outside [0, 1] (labels ~ U(0.7, 1.2) in a seed recipe).
  """
  targets = tf.broadcast_to(tf.cast(targets, logits.dtype), tf.shape(logits))
  return tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(labels=targets, logits=logits))


def discriminator_loss(real_logits, fake_logits, real_labels=1.0):
  """Standard GAN D loss: -log D(x) - log(1 - D(G(z))).

  Returns:
    (total, real_part, fake_part) with total = real_part + fake_part,
    real_part = BCE(real_logits, real_labels), fake_part = BCE(fake_logits, 0).
  """
  real = bce_with_logits(real_logits, real_labels)
  fake = bce_with_logits(fake_logits, 0.0)
  return real + fake, real, fake


def generator_loss(fake_logits, targets=1.0):
  """Non-saturating G loss: -log D(G(z)) = BCE(fake_logits, targets)."""
  return bce_with_logits(fake_logits, targets)


def hinge_discriminator_loss(real_logits, fake_logits):
  """Hinge D loss (Lim & Ye 2017; SN-GAN, BigGAN): max(0, 1 - D(x)) + max(0, 1 + D(G(z))).

  D stops being pushed on a face once its logit clears the margin, so on a
  small set it has no reason to drive real logits ever higher. No labels:
  label smoothing has no meaning here.

  Returns:
    (total, real_part, fake_part), each part a batch mean.
  """
  real = tf.reduce_mean(tf.nn.relu(1.0 - real_logits))
  fake = tf.reduce_mean(tf.nn.relu(1.0 + fake_logits))
  return real + fake, real, fake


def hinge_generator_loss(fake_logits):
  """Hinge G loss: -mean D(G(z)), D's raw logit on the fakes."""
  return -tf.reduce_mean(fake_logits)


def adversarial_d_loss(kind, real_logits, fake_logits, real_labels):
  """D's loss of `kind` (Config.loss): (total, real part, fake part)."""
  if kind == 'hinge':
    return hinge_discriminator_loss(real_logits, fake_logits)
  return discriminator_loss(real_logits, fake_logits, real_labels)


def adversarial_g_loss(kind, fake_logits, targets):
  """G's loss of `kind` (Config.loss); `targets` only for nonsaturating."""
  if kind == 'hinge':
    return hinge_generator_loss(fake_logits)
  return generator_loss(fake_logits, targets)


def feature_matching_loss(real_features, fake_features):
  """Feature matching (Salimans et al. 2016) on D's last hidden features.

  l = mean_j ( mean_i f_ij(x) - mean_i f_ij(G(z)) )^2, the squared L2 between
  the batch-mean features, divided by the feature count so the weight does
  not depend on D's width.
  """
  diff = tf.reduce_mean(real_features, 0) - tf.reduce_mean(fake_features, 0)
  return tf.reduce_mean(tf.square(diff))


def r1_penalty(discriminator, images):
  """R1 (Mescheder et al. 2018): mean_i |grad_x D(x_i)|^2 on real images.

  Penalising D's slope at the data flattens D around it, so D cannot
  sharpen on a few thousand training faces and G keeps a useful gradient.
  Differentiable in D's weights (a gradient of a gradient).
  """
  with tf.GradientTape() as tape:
    tape.watch(images)
    total = tf.reduce_sum(tf.cast(discriminator(images, training=True), tf.float32))
  slopes = tf.cast(tape.gradient(total, images), tf.float32)
  return tf.reduce_mean(tf.reduce_sum(tf.square(slopes), axis=[1, 2, 3]))
