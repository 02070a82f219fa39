"""Shared test setup: quiet TensorFlow, paths to the shipped test data."""

import os

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

import pytest

TEST_DATA = os.path.join(os.path.dirname(__file__), 'data')
CELEBA_DIR = os.path.join(TEST_DATA, 'celeba')


@pytest.fixture
def celeba_dir():
  """A CelebA folder in the official layout holding 16 real images."""
  return CELEBA_DIR
