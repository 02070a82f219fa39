"""Nearest neighbours in pixel space: does G reproduce its training images?"""

from typing import Tuple

import numpy as np


def nearest(query: np.ndarray, images: np.ndarray, k: int) -> Tuple[np.ndarray, np.ndarray]:
  """The k images closest to `query` by root-mean-square pixel distance.

  Args:
    query: uint8 (H, W, 3).
    images: uint8 (N, H, W, 3).
    k: how many (at most N).

  Returns:
    (indices into `images`, distances in [0, 255]), closest first.
  """
  q = query.astype(np.float32).reshape(1, -1)
  distances = np.empty(len(images), np.float32)
  for i in range(0, len(images), 1024):  # bounded memory on large sets
    chunk = images[i : i + 1024].astype(np.float32).reshape(-1, q.shape[1])
    distances[i : i + 1024] = np.sqrt(np.mean(np.square(chunk - q), axis=1))
  order = np.argsort(distances, kind='stable')[:k]
  return order, distances[order]
