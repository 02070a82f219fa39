"""Projection: the latent whose image is closest to a photo.

Adam on z from several starts at once, G frozen in inference mode: the loss
of each start is the mean squared pixel error between G(z) and the target
(both in [-1, 1]); the best start wins. Latents are kept where training drew
them (|z| <= 4 for normal latents, [-1, 1] for uniform ones), so the answer
stays a latent G has seen the like of.
"""

import dataclasses
from typing import List

import keras
import numpy as np
import tensorflow as tf

from common.files import from_float, to_float
from models import latents
from models import streams

# Normal latents beyond 4 sd are drawn about once in 16,000 components.
_NORMAL_BOUND = 4.0


@dataclasses.dataclass
class Projection:
  """The outcome of project().

  Attributes:
    z: float32 (latent_dim,), the best start's latent.
    image: uint8 (H, W, 3), G(z).
    error: the mean squared error of G(z) against the target, in [-1, 1]
      pixel units (0: identical; 4: every pixel the opposite extreme).
    errors: float32 (steps,), the best start's error after each step.
    frames: uint8 (F, H, W, 3), the best start's image after 0,
      frame_every, 2 * frame_every... updates, and after the last one.
    frame_steps: the number of updates behind each frame.
  """

  z: np.ndarray
  image: np.ndarray
  error: float
  errors: np.ndarray
  frames: np.ndarray
  frame_steps: List[int]

  @property
  def rms(self) -> float:
    """The root-mean-square pixel error of G(z), on the 0-255 scale."""
    return 255.0 * float(np.sqrt(self.error)) / 2.0


def start_latents(latent_dim: int, latent_dist: str, starts: int, seed: int) -> np.ndarray:
  """The starting latents (starts, latent_dim), drawn on their own stream."""
  return latents.draw_latents(latent_dim, latent_dist, starts, seed, streams.PROJECTION)


def _errors(images, goal):
  """Mean squared error of each image against the goal, in [-1, 1] units."""
  return tf.reduce_mean(tf.square(images - goal), axis=[1, 2, 3])


def _adam_step(generate, z, goal, optimizer, bound):
  """A compiled Adam update of z, clipped to [-bound, bound].

  Each call returns the errors and uint8 images of the latents it starts from.
  """

  @tf.function
  def step():
    with tf.GradientTape() as tape:
      tape.watch(z)
      images = tf.cast(generate(z), tf.float32)
      errors = _errors(images, goal)
      # A sum, not a mean: each start's gradient is its own error's.
      loss = tf.reduce_sum(errors)
    optimizer.apply_gradients([(tape.gradient(loss, z), z)])
    z.assign(tf.clip_by_value(z, -bound, bound))
    return errors, from_float(images)

  return step


def project(
  generate,
  target: np.ndarray,
  latent_dim: int,
  latent_dist: str = 'normal',
  starts: int = 4,
  *,
  steps: int,
  lr: float = 0.05,
  seed: int = 0,
  frame_every: int = 10,
) -> Projection:
  """Finds z with G(z) close to `target`.

  Args:
    generate: a generator in inference mode (a Keras G, called with its
      default training=False), float32 (N, latent_dim) -> (N, H, W, 3) in
      [-1, 1].
    target: uint8 (H, W, 3), already cropped and resized as the run's data.
    latent_dim, latent_dist: the run's latent space.
    starts: latents optimised side by side; the best one is returned.
    steps: Adam steps.
    lr: Adam's learning rate.
    seed: seeds the starts.
    frame_every: steps between the frames kept for a GIF.
  """
  if starts < 1 or steps < 1 or frame_every < 1:
    raise ValueError('starts, steps and frame_every must be at least 1.')
  bound = 1.0 if latent_dist == 'uniform' else _NORMAL_BOUND
  z = tf.Variable(start_latents(latent_dim, latent_dist, starts, seed))
  goal = to_float(tf.constant(target))[None]
  step = _adam_step(generate, z, goal, keras.optimizers.Adam(lr), bound)
  history, frames, frame_steps = [], [], []
  for i in range(steps):
    # Each call returns the error and images of the latents it starts from:
    # those after i updates.
    errors, images = step()
    history.append(errors.numpy())
    if i % frame_every == 0:
      frames.append(images.numpy())
      frame_steps.append(i)
  final = tf.cast(generate(z), tf.float32)
  final_errors = _errors(final, goal).numpy()
  frames.append(from_float(final).numpy())
  frame_steps.append(steps)
  best = int(np.argmin(final_errors))
  # Errors after each update: history[i] is the error after i updates.
  errors = np.stack(history[1:] + [final_errors])[:, best].astype(np.float32)
  return Projection(
    z=z.numpy()[best],
    image=frames[-1][best],
    error=float(final_errors[best]),
    errors=errors,
    frames=np.stack([f[best] for f in frames]),
    frame_steps=frame_steps,
  )
