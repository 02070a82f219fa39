"""CelebA from a local folder: official and Kaggle layouts, official splits."""

import csv
import os
from typing import Dict, List, Optional

from data.folder import IMAGE_EXTENSIONS

# Split name -> partition ids. CelebA's authors partitioned by identity, so
# no person of valid or test ('heldout') appears in train.
SPLITS = {'train': (0,), 'valid': (1,), 'test': (2,), 'heldout': (1, 2)}
# Width of the aligned 178x218 frame every crop is expressed in.
FRAME_WIDTH = 178


def find_image_dir(data_dir: str) -> Optional[str]:
  """The folder holding CelebA's JPEGs, whichever layout `data_dir` uses.

  Accepts the folder that contains `img_align_celeba/` (official download),
  Kaggle's nested `img_align_celeba/img_align_celeba/`, or the image folder
  itself. Returns None when none of these holds images.
  """
  candidates = [os.path.join(data_dir, 'img_align_celeba', 'img_align_celeba'),
                os.path.join(data_dir, 'img_align_celeba'), data_dir]
  for path in candidates:
    if os.path.isdir(path) and any(
        f.lower().endswith(IMAGE_EXTENSIONS) for f in os.listdir(path)):
      return path
  return None


def find_partition_file(data_dir: str, image_dir: str) -> Optional[str]:
  """list_eval_partition.txt or .csv beside the images or above them."""
  for folder in (data_dir, image_dir, os.path.dirname(image_dir),
                 os.path.dirname(os.path.dirname(image_dir))):
    for name in ('list_eval_partition.txt', 'list_eval_partition.csv'):
      path = os.path.join(folder, name)
      if os.path.isfile(path):
        return path
  return None


def read_partition(path: str) -> Dict[str, int]:
  """Maps file name -> split (0 train, 1 valid, 2 test).

  The official file has lines '000001.jpg 0'; Kaggle's CSV has a header
  'image_id,partition' and lines '000001.jpg,0'.
  """
  with open(path, newline='') as f:
    if path.endswith('.csv'):
      rows = [(r[0], r[1]) for r in csv.reader(f) if len(r) >= 2]
      rows = [r for r in rows if r[1].strip().isdigit()]  # drop the header
    else:
      rows = [tuple(line.split()[:2]) for line in f if line.strip()]
  return {name.strip(): int(split) for name, split in rows}


def list_files(data_dir: str, split: str = 'train') -> List[str]:
  """Paths of the CelebA images of `split` (train, valid, test, heldout, all).

  Without a partition file every image is used. Files the partition lists
  but the folder lacks are ignored (a partial copy is fine).
  """
  image_dir = find_image_dir(data_dir)
  if image_dir is None:
    return []
  names = sorted(f for f in os.listdir(image_dir)
                 if f.lower().endswith(IMAGE_EXTENSIONS))
  partition_file = find_partition_file(data_dir, image_dir)
  if split != 'all' and partition_file is not None:
    partition = read_partition(partition_file)
    names = [n for n in names if partition.get(n) in SPLITS[split]]
  return [os.path.join(image_dir, n) for n in names]
