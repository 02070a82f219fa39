import numpy as np
import pytest
import tensorflow as tf

from flags.presets import get_config
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


@pytest.mark.parametrize('preset,arch,g_params,d_params', [
    ('celeba64', 'dcgan', 3_576_704, 2_765_568),        # canonical DCGAN
    ('celeba157x128', 'rect', 9_516_672, 6_958_080),    # the seed notebook's summary
    ('celeba64', 'mlp', 14_327_552, 3_278_081),         # the face-synthesis seed
])
def test_trainable_parameter_counts_match_the_seeds(preset, arch, g_params, d_params):
  c = get_config(preset, arch=arch)
  g, d = Generator(c), Discriminator(c)
  d(g(tf.zeros((1, c.latent_dim))))
  assert (n_trainable(g), n_trainable(d)) == (g_params, d_params)


def test_157x128_stage_shapes():
  c = get_config('celeba157x128')
  g, d = Generator(c), Discriminator(c)
  z = tf.zeros((1, c.latent_dim))
  assert g.stage_shapes(z) == [(4, 4, 512), (9, 8, 512), (19, 16, 256),
                               (39, 32, 128), (79, 64, 64), (157, 128, 3)]
  assert d.stage_shapes(g(z)) == [(78, 64, 64), (39, 32, 128), (19, 16, 256),
                                  (9, 8, 512), (4, 4, 512), (1,)]
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
