"""InceptionV3 pool features (2048-d) for FID and KID.

Keras' InceptionV3 (include_top=False, pooling='avg') on images resized to
299x299 (bilinear) and scaled by its preprocess_input. Its ImageNet weights
are Keras' own, not the 2015 TF-Slim graph that published FIDs use, so the
numbers compare between runs of this code, not with papers.
"""

import os
from typing import Optional

import keras
import numpy as np
import tensorflow as tf

from configs.errors import FaceganError

INPUT_SIZE = 299
FEATURE_DIM = 2048
WEIGHTS_FILE = 'inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5'
WEIGHTS_URL = (
  'https://storage.googleapis.com/tensorflow/keras-applications/inception_v3/' + WEIGHTS_FILE
)


class InceptionWeightsError(FaceganError, RuntimeError):
  """InceptionV3 weights could not be loaded; the message says how to fix it."""


def weights_help(reason: str) -> str:
  """The one-paragraph error shown when the InceptionV3 weights are missing."""
  return (
    f'FID and KID need ImageNet weights for InceptionV3, and {reason}. On a '
    f'machine with internet access, download {WEIGHTS_URL} (about 84 MB, '
    'the file Keras itself fetches for InceptionV3(include_top=False)), '
    'copy it here and pass --inception_weights=<path to the .h5 file> '
    f'(inception_weights=... in Python); or put it in ~/.keras/models/ '
    "under its own name, where weights='imagenet' finds it offline. SWD "
    'needs no weights: --metrics=swd works without it.'
  )


def load_inception(weights: Optional[str] = 'imagenet') -> keras.Model:
  """InceptionV3 without its head, average-pooled: (N, 299, 299, 3) -> (N, 2048).

  Args:
    weights: a local weights file, 'imagenet' (Keras' cache or download), or
      None (random initialisation: shapes and plumbing only, for tests).

  Raises:
    InceptionWeightsError: the file is missing or unreadable, or the download
      failed.
  """
  if weights not in ('imagenet', None) and not os.path.isfile(weights):
    raise InceptionWeightsError(weights_help(f'the weights file {weights!r} does not exist'))
  try:
    return keras.applications.InceptionV3(
      include_top=False, pooling='avg', weights=weights, input_shape=(INPUT_SIZE, INPUT_SIZE, 3)
    )
  except Exception as e:  # URL fetch failure, HDF5 errors, layer mismatch...
    if weights is None:
      raise
    what = (
      'downloading them failed'
      if weights == 'imagenet'
      else f'{weights!r} could not be loaded as its weights'
    )
    raise InceptionWeightsError(
      weights_help(what) + f' (Keras said: {str(e).splitlines()[0][:300]})'
    ) from e


class InceptionFeatures:
  """Callable: uint8 (N, H, W, 3) images -> float64 (N, 2048) pool features."""

  def __init__(self, weights: Optional[str] = 'imagenet', batch_size: int = 50):
    self.model = load_inception(weights)
    self.batch_size = batch_size
    self._features = tf.function(self._batch_features, reduce_retracing=True)

  def _batch_features(self, images):
    x = tf.image.resize(tf.cast(images, tf.float32), (INPUT_SIZE, INPUT_SIZE), method='bilinear')
    x = keras.applications.inception_v3.preprocess_input(x)  # [0,255]->[-1,1]
    return self.model(x, training=False)

  def __call__(self, images: np.ndarray) -> np.ndarray:
    out = [
      self._features(tf.constant(images[i : i + self.batch_size])).numpy()
      for i in range(0, len(images), self.batch_size)
    ]
    return np.concatenate(out).astype(np.float64)
