"""Edit directions (GANSpace): the PCA, the directions' algebra, the cache."""

import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from configs.presets import get_config
from models import directions
from models import latents
from models.generator import Generator


@pytest.fixture(scope='module')
def tiny_g():
  config = get_config('tiny')
  keras.utils.set_random_seed(0)
  generator = Generator(config)
  generator(tf.zeros((1, config.latent_dim)))
  return config, generator


def test_top_components_match_a_full_svd():
  rng = np.random.default_rng(0)
  # A known spectrum: 6 strong axes over weak noise.
  basis = np.linalg.qr(rng.standard_normal((300, 300)))[0][:6]
  y = (rng.standard_normal((500, 6)) * [9, 7, 5, 4, 3, 2]) @ basis
  y += 0.1 * rng.standard_normal((500, 300))
  y -= y.mean(axis=0)
  s, axes = directions.top_components(y, 4, seed=1)
  _, s_full, vt = np.linalg.svd(y, full_matrices=False)
  np.testing.assert_allclose(s, s_full[:4], rtol=1e-6)
  np.testing.assert_allclose(np.abs(np.sum(axes * vt[:4], axis=1)), 1.0, atol=1e-6)
  # Signs are fixed: each axis' largest entry is positive.
  assert all(a[np.argmax(np.abs(a))] > 0 for a in axes)


def test_directions_are_orthonormal_deterministic_and_seeded(tiny_g):
  config, g = tiny_g
  a = directions.find_directions(g, config, components=6, num_samples=512)
  assert a.vectors.shape == (6, config.latent_dim) and a.vectors.dtype == np.float32
  np.testing.assert_allclose(a.vectors @ a.vectors.T, np.eye(6), atol=1e-5)
  assert np.all(np.diff(a.variance) <= 0) and 0 < a.variance.sum() <= 1
  again = directions.find_directions(g, config, components=6, num_samples=512)
  np.testing.assert_array_equal(a.vectors, again.vectors)
  other = directions.find_directions(g, config, components=6, num_samples=512, seed=1)
  assert not np.allclose(np.abs(other.vectors[-1] @ a.vectors[-1]), 1.0, atol=1e-3)


def test_the_first_direction_is_the_latent_axis_g_amplifies(tiny_g):
  config, _ = tiny_g
  keras.utils.set_random_seed(1)
  g = Generator(config)
  g(tf.zeros((1, config.latent_dim)))
  # G's first layer made to respond 4x as strongly to latent dimension 5.
  kernel = g.stages[0].trainable_variables[0]  # (4, 4, filters, latent_dim)
  assert kernel.shape[-1] == config.latent_dim
  kernel.assign(kernel.numpy() * np.where(np.arange(config.latent_dim) == 5, 4.0, 1.0))
  found = directions.find_directions(g, config, components=3, num_samples=1024)
  assert abs(found.vectors[0][5]) > 0.95
  assert found.variance[0] > 3 * found.variance[1]
  # It moves the picture more than random directions of the same length.
  z = latents.sample_latents(config, 64, 7, stream=99)
  random = np.linalg.qr(np.random.default_rng(3).standard_normal((config.latent_dim, 8)))[0].T
  image = lambda x: g(tf.constant(x, tf.float32)).numpy()
  change = lambda u: float(np.sqrt(np.mean((image(z + 1.5 * u) - image(z - 1.5 * u)) ** 2)))
  assert change(found.vectors[0]) > 1.5 * np.mean([change(u) for u in random])


def test_directions_are_cached_per_weights(tiny_g, tmp_path, monkeypatch):
  config, g = tiny_g
  monkeypatch.setattr(directions, 'NUM_SAMPLES', 256)
  run = str(tmp_path)
  first = directions.cached_directions(run, g, config, components=4)
  assert os.path.isfile(os.path.join(run, directions.DIRECTIONS_FILE))

  def fail(*args, **kwargs):
    raise AssertionError('computed again')

  with monkeypatch.context() as m:
    m.setattr(directions, 'find_directions', fail)
    cached = directions.cached_directions(run, g, config, components=3)
  np.testing.assert_array_equal(cached.vectors, first.vectors[:3])
  # Other weights (a run that trained on) get directions of their own.
  kernel = g.trainable_variables[0]
  saved = kernel.numpy()
  try:
    kernel.assign(saved * 1.5)
    moved = directions.cached_directions(run, g, config, components=4)
    assert moved.fingerprint != first.fingerprint
  finally:
    kernel.assign(saved)
  # A damaged cache is computed again, and so is one asked for more directions.
  with open(os.path.join(run, directions.DIRECTIONS_FILE), 'wb') as f:
    f.write(b'not a zip')
  np.testing.assert_array_equal(
    directions.cached_directions(run, g, config, components=4).vectors, first.vectors
  )
  assert len(directions.cached_directions(run, g, config, components=5).vectors) == 5
  # Never more directions than the latent has dimensions.
  assert len(directions.find_directions(g, config, 40, num_samples=256).vectors) == 16


def test_a_read_only_run_still_gets_its_directions(tiny_g, tmp_path, monkeypatch):
  config, g = tiny_g
  monkeypatch.setattr(directions, 'NUM_SAMPLES', 256)

  def read_only(path, write):
    raise PermissionError(13, 'Permission denied', path)

  monkeypatch.setattr(directions.files, 'write_whole', read_only)
  found = directions.cached_directions(str(tmp_path), g, config, components=2)
  assert found.vectors.shape == (2, config.latent_dim)
  assert os.listdir(tmp_path) == []
