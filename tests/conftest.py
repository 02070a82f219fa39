"""Shared test setup: quiet TensorFlow, paths to the shipped test data."""

import os
import tempfile

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
# The measured speed choices of --mixed_precision=auto go to a scratch folder,
# not the user's ~/.cache (subprocesses inherit it).
os.environ['FACEGAN_CACHE_DIR'] = tempfile.mkdtemp(prefix='facegan-test-cache-')
# Under pytest-xdist with a worker per core, one thread per op: the tests' tiny
# models gain nothing from splitting an op over cores the other workers are
# using (the suite ran 11% faster so). Subprocesses inherit it.
if int(os.environ.get('PYTEST_XDIST_WORKER_COUNT', '1')) >= (os.cpu_count() or 1) > 1:
  os.environ.setdefault('TF_NUM_INTRAOP_THREADS', '1')

import pytest

TEST_DATA = os.path.join(os.path.dirname(__file__), 'data')
CELEBA_DIR = os.path.join(TEST_DATA, 'celeba')


@pytest.fixture
def celeba_dir():
  """A CelebA folder in the official layout holding 16 real images."""
  return CELEBA_DIR


@pytest.fixture(scope='session')
def tiny_run(tmp_path_factory):
  """A finished tiny run (32x32, latent 16, EMA on, 2 epochs), trained once.

  Tests read it and may add outputs (generated/, eval/), never change it.
  """
  from configs.presets import get_config  # TensorFlow loads on first use
  from training import loop

  workdir = str(tmp_path_factory.mktemp('shared') / 'tiny')
  loop.run(get_config('tiny'), workdir)
  return workdir


# Fixtures that train a run: every test using one is an end-to-end test.
_TRAINING_FIXTURES = {'tiny_run', 'run4'}


def pytest_collection_modifyitems(items):
  """Marks tests that train through a fixture as slow (-m "not slow")."""
  for item in items:
    if _TRAINING_FIXTURES & set(getattr(item, 'fixturenames', ())):
      item.add_marker(pytest.mark.slow)
