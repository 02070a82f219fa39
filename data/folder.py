"""Any folder tree of images (JPEG, PNG, BMP, GIF, WebP)."""

import os
from typing import List

from absl import logging

IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.gif', '.webp')


def list_images(root: str) -> List[str]:
  """All image files under `root`, recursively, sorted for a stable order.

  Symlinks are followed, but each real folder and each real file is taken
  once: a link back to a parent (a loop) or two names of one file would
  otherwise repeat images, silently weighting them.
  """
  paths, seen_dirs, seen_files, repeats = [], set(), set(), 0
  for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
    real = os.path.realpath(dirpath)
    if real in seen_dirs:
      dirnames[:] = []  # a loop or a second link to a folder already listed
      repeats += 1
      continue
    seen_dirs.add(real)
    dirnames.sort()
    for f in sorted(filenames):
      if not f.lower().endswith(IMAGE_EXTENSIONS):
        continue
      path = os.path.join(dirpath, f)
      target = os.path.realpath(path)
      if target in seen_files:
        repeats += 1
        continue
      seen_files.add(target)
      paths.append(path)
  if repeats:
    logging.warning(
      '%s: skipped %d symlinked folder(s) or file(s) already listed under another path.',
      root,
      repeats,
    )
  return paths
