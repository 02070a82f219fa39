"""Any folder tree of images (JPEG, PNG, BMP, GIF, WebP)."""

import os
from typing import List

IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.gif', '.webp')


def list_images(root: str) -> List[str]:
  """All image files under `root`, recursively, sorted for a stable order."""
  paths = []
  for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
    dirnames.sort()
    paths.extend(os.path.join(dirpath, f) for f in sorted(filenames)
                 if f.lower().endswith(IMAGE_EXTENSIONS))
  return paths
