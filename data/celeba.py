"""CelebA from a local folder: official and Kaggle layouts, official splits."""

import os
from typing import Dict, List, Optional

from data.folder import IMAGE_EXTENSIONS

# Split name -> partition ids. CelebA's authors partitioned by identity, so
# no person of valid or test ('heldout') appears in train.
SPLITS = {'train': (0,), 'valid': (1,), 'test': (2,), 'heldout': (1, 2)}


def find_image_dir(data_dir: str) -> Optional[str]:
  """The folder holding CelebA's JPEGs, whichever layout `data_dir` uses.

  Accepts the folder that contains `img_align_celeba/` (official download),
  Kaggle's nested `img_align_celeba/img_align_celeba/`, or the image folder
  itself. Returns None when none of these holds images.
  """
  candidates = [
    os.path.join(data_dir, 'img_align_celeba', 'img_align_celeba'),
    os.path.join(data_dir, 'img_align_celeba'),
    data_dir,
  ]
  for path in candidates:
    if os.path.isdir(path) and any(f.lower().endswith(IMAGE_EXTENSIONS) for f in os.listdir(path)):
      return path
  return None


def find_partition_file(data_dir: str, image_dir: str) -> Optional[str]:
  """list_eval_partition.txt or .csv beside the images or above them."""
  for folder in (
    data_dir,
    image_dir,
    os.path.dirname(image_dir),
    os.path.dirname(os.path.dirname(image_dir)),
  ):
    for name in ('list_eval_partition.txt', 'list_eval_partition.csv'):
      path = os.path.join(folder, name)
      if os.path.isfile(path):
        return path
  return None


def read_partition(path: str) -> Dict[str, int]:
  """Maps file name -> split (0 train, 1 valid, 2 test).

  The official file has lines '000001.jpg 0'; Kaggle's CSV has a header
  'image_id,partition' and lines '000001.jpg,0'.

  Raises:
    ValueError: a line that is not '<file name> <0, 1 or 2>'.
  """
  partition = {}
  with open(path, newline='') as f:
    for number, line in enumerate(f, 1):
      fields = [x.strip() for x in line.replace(',', ' ').split()]
      if not fields or (number == 1 and path.endswith('.csv') and not fields[-1].isdigit()):
        continue  # a blank line, or the CSV header
      if len(fields) != 2 or fields[1] not in ('0', '1', '2'):
        raise ValueError(
          f'{path}, line {number}, reads {line.strip()[:60]!r}: every line '
          "of a partition file is '<image file> <0, 1 or 2>'. Restore the "
          'official file, or delete it to train on every image (--split '
          'is then ignored).'
        )
      partition[fields[0]] = int(fields[1])
  return partition


def list_files(data_dir: str, split: str = 'train') -> List[str]:
  """Paths of the CelebA images of `split` (train, valid, test, heldout, all).

  Without a partition file every image is used. Files the partition lists
  but the folder lacks are ignored (a partial copy is fine).

  Raises:
    ValueError: a malformed partition file, or one that puts none of the
      images present in `split`.
  """
  image_dir = find_image_dir(data_dir)
  if image_dir is None:
    return []
  names = sorted(f for f in os.listdir(image_dir) if f.lower().endswith(IMAGE_EXTENSIONS))
  partition_file = find_partition_file(data_dir, image_dir)
  if split != 'all' and partition_file is not None:
    partition = read_partition(partition_file)
    chosen = [n for n in names if partition.get(n) in SPLITS[split]]
    if names and not chosen:
      listed = sum(n in partition for n in names)
      raise ValueError(
        f'{image_dir} holds {len(names)} images, but {partition_file} puts '
        f'none of them in the {split!r} split ({listed} of them are listed '
        'at all). Pick the split your copy holds with --split (train, '
        'valid, test, heldout or all), or remove the partition file.'
      )
    names = chosen
  return [os.path.join(image_dir, n) for n in names]
