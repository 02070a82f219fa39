"""The generators shipped in pretrained/: they load, draw what they drew when
shipped, are not collapsed, and their first edit direction does something."""

import os

import numpy as np
from PIL import Image
import pytest

from models import checkpoint
from models import directions
from models import latents
from training import collapse

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REFERENCES = os.path.join(ROOT, 'tests', 'data', 'pretrained')
SHIPPED = {'celeba48': (48, 5639), 'celeba64': (64, 9027)}  # preset: size, step


@pytest.fixture(scope='module', params=sorted(SHIPPED))
def shipped(request):
  folder = os.path.join(ROOT, 'pretrained', request.param)
  config, run_dir, prefix, g = checkpoint.load_generator_from(folder)
  return request.param, config, run_dir, prefix, g


def test_each_folder_loads_as_its_preset_and_stays_small(shipped):
  name, config, run_dir, prefix, _ = shipped
  size, step = SHIPPED[name]
  assert config.preset == name and (config.image_height, config.image_width) == (size, size)
  assert checkpoint.checkpoint_step(prefix) == step
  assert config.data_dir == ''  # no path of the machine that trained it
  folder_bytes = sum(os.path.getsize(os.path.join(run_dir, f)) for f in os.listdir(run_dir))
  assert folder_bytes < 8e6


def test_a_known_latent_batch_draws_the_shipped_faces(shipped):
  name, config, _, _, g = shipped
  images = latents.render(g, latents.sample_latents(config, 8, 0, 0))
  stored = np.asarray(Image.open(os.path.join(REFERENCES, f'{name}_seed0.png')))
  drawn = np.concatenate(list(images), axis=1)
  assert drawn.shape == stored.shape
  diff = np.abs(drawn.astype(int) - stored)
  # float32 everywhere; kernels differ between CPUs by float round-off only.
  assert diff.mean() < 1.0 and np.percentile(diff, 99.9) <= 8, (diff.mean(), diff.max())


def test_the_samples_are_distinct_faces(shipped):
  _, config, _, _, g = shipped
  x = g(latents.sample_latents(config, 64, 0, 1)).numpy()
  assert collapse.near_duplicate_rate(x) == 0.0
  assert collapse.sample_diversity(x) > 0.3  # real faces: 0.45; collapsed: under 0.1


def test_the_first_direction_moves_the_face_more_than_random_ones(shipped):
  _, config, run_dir, _, g = shipped
  found = directions.cached_directions(run_dir, g, config)
  base = latents.sample_latents(config, 8, 0, 2)
  before = latents.render(g, base).astype(float)

  def change(v):
    return np.abs(latents.render(g, base + 3.0 * v[None]).astype(float) - before).mean()

  rng = np.random.default_rng(0)
  random = [rng.standard_normal(config.latent_dim) for _ in range(8)]
  moved = [change((v / np.linalg.norm(v)).astype(np.float32)) for v in random]
  first = change(found.vectors[0])
  assert first > max(moved) and first > 2 * np.mean(moved), (first, moved)
