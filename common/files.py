"""The leaf of facegan's imports: pixel conversion and whole-file (and
whole-folder) writes.

Every package may import it; it imports no facegan module.
"""

import glob
import os
import shutil

import tensorflow as tf


def to_float(images):
  """uint8 [0, 255] -> float32 [-1, 1]."""
  return tf.cast(images, tf.float32) / 127.5 - 1.0


def from_float(images):
  """float [-1, 1] -> uint8 [0, 255] (rounded, clipped)."""
  x = (tf.cast(images, tf.float32) + 1.0) * 127.5
  return tf.cast(tf.clip_by_value(tf.round(x), 0, 255), tf.uint8)


def write_whole(path: str, write) -> None:
  """write(temp_path), fsync, then a rename onto `path`.

  A crash or kill mid-write leaves the old file (or none), never a
  truncated one; the temp file keeps `path`'s extension, for writers that
  pick a format by it, and is removed if `write` fails.
  """
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  root, ext = os.path.splitext(path)
  tmp = f'{root}.tmp{os.getpid()}{ext}'
  try:
    write(tmp)
    with open(tmp, 'rb+') as f:  # on disk before the rename makes it live
      os.fsync(f.fileno())
    os.replace(tmp, path)
  finally:
    if os.path.exists(tmp):
      os.remove(tmp)


def atomic_write(path: str, write, binary: bool = False) -> None:
  """write_whole for writers of an open file: calls write(file)."""

  def to_path(tmp):
    with open(tmp, 'wb' if binary else 'w') as f:
      write(f)

  write_whole(path, to_path)


def write_folder(path: str, write) -> None:
  """write(tmp) into a new folder beside `path`, then puts it in its place.

  The folder at `path` (an earlier export) stays whole and loadable until
  the new one is complete; an error or Ctrl-C removes the new one.
  """
  parent, name = os.path.split(os.path.abspath(path))
  os.makedirs(parent, exist_ok=True)
  for stale in glob.glob(os.path.join(parent, f'.{name}.*')):
    if stale.rsplit('.', 1)[-1].startswith('old') and not os.path.exists(path):
      os.replace(stale, path)  # killed between the two renames below
    else:
      shutil.rmtree(stale, ignore_errors=True)  # an export cut short
  tmp = os.path.join(parent, f'.{name}.tmp{os.getpid()}')
  old = os.path.join(parent, f'.{name}.old{os.getpid()}')
  os.mkdir(tmp)  # a read-only --out fails here, with a plain OSError
  try:
    write(tmp)
    if os.path.exists(path):
      os.replace(path, old)
    os.replace(tmp, path)
  finally:
    for folder in (tmp, old):
      shutil.rmtree(folder, ignore_errors=True)
