"""The tf.data input pipeline shared by every data source.

list -> per-epoch shuffle -> parallel decode -> crop -> resize -> [-1, 1]
-> batch (drop remainder) -> prefetch, with an optional cache of decoded,
resized uint8 images. Unreadable files are skipped and counted.
"""

import glob
import hashlib
import json
import os

import numpy as np
import tensorflow as tf
from absl import logging

from common import files
from common.files import to_float
from configs.errors import FaceganError
from data import celeba, folder
from configs.presets import FRAME_WIDTH, Config, missing_data_message

AUTOTUNE = tf.data.AUTOTUNE
TFDS_SPLITS = {
  'train': 'train',
  'valid': 'validation',
  'test': 'test',
  'heldout': 'validation+test',
  'all': 'all',
}


class DataError(FaceganError, ValueError):
  """No usable training data: the message says how to get some."""


def epoch_seed(seed: int, epoch: int) -> int:
  """A per-epoch seed: each epoch has its own, reproducible order."""
  return int(np.random.SeedSequence([seed, epoch]).generate_state(1)[0])


def _decode(contents):
  # expand_animations=False: the first GIF frame, as a 3-D image like the rest.
  return tf.io.decode_image(contents, channels=3, expand_animations=False)


def _epoch_order(size, seed, epoch, start):
  """(positions, item indices) of an epoch's shuffled order from `start` on.

  `epoch` and `start` may be tensors (the multi-epoch stream builds each
  epoch inside tf.data); the permutation itself is numpy's, seeded per
  epoch, so every way of reading an epoch gives the same order.
  """

  def permutation(e):
    return np.random.default_rng(epoch_seed(seed, int(e))).permutation(size).astype(np.int64)

  order = tf.numpy_function(permutation, [epoch], tf.int64, stateful=False)
  order = tf.ensure_shape(order, [size])
  start = tf.cast(start, tf.int64)
  return tf.range(start, size, dtype=tf.int64), order[start:]


class FileSource:
  """Images read from a list of files.

  Each source's `stream(seed, epoch, start)` yields (position, uint8 image)
  in the epoch's order, starting after `start` consumed elements. Where
  `tensor_epochs` holds, `epoch` and `start` may be tensors (so one dataset
  can hold every epoch).
  """

  tensor_epochs = True

  def __init__(self, paths):
    self.paths = np.asarray(paths)
    self.size = len(paths)

  def fingerprint(self):
    """Every file's path, size and modification time."""
    stats = []
    for p in self.paths:
      try:
        st = os.stat(p)
        stats.append((os.path.abspath(p), st.st_size, st.st_mtime_ns))
      except OSError:  # unreadable: skipped while caching, keyed as such
        stats.append((os.path.abspath(p), -1, -1))
    return stats

  def order(self, seed, epoch):
    """The item indices of `epoch` in its order (a dataset)."""
    return tf.data.Dataset.from_tensor_slices(_epoch_order(self.size, seed, epoch, 0)[1])

  def stream(self, seed, epoch, start):
    positions, order = _epoch_order(self.size, seed, epoch, start)
    paths = tf.gather(tf.constant(self.paths), order)
    ds = tf.data.Dataset.from_tensor_slices((positions, paths))
    return ds.map(
      lambda i, p: (i, _decode(tf.io.read_file(p))), num_parallel_calls=AUTOTUNE, deterministic=True
    )


class SyntheticSource:
  """The procedural faces, rendered on the fly (deterministic per seed)."""

  tensor_epochs = True

  def __init__(self, seed, size):
    from data import synthetic  # numpy/PIL only; imported where needed

    self.synthetic = synthetic
    self.seed, self.size = seed, size

  def fingerprint(self):
    return ('synthetic', self.seed, self.size)

  order = FileSource.order  # the same seeded permutation of its items

  def stream(self, seed, epoch, start):
    positions, order = _epoch_order(self.size, seed, epoch, start)
    render = lambda i: self.synthetic.render_face(self.seed, int(i))[0]
    shape = (self.synthetic.HEIGHT, self.synthetic.WIDTH, 3)
    ds = tf.data.Dataset.from_tensor_slices((positions, order))
    return ds.map(
      lambda i, k: (i, tf.ensure_shape(tf.numpy_function(render, [k], tf.uint8), shape)),
      num_parallel_calls=AUTOTUNE,
      deterministic=True,
    )


class TfdsSource:
  """CelebA through TensorFlow Datasets (`celeb_a`).

  Its epochs need Python ints: a buffer shuffle takes its seed as one.
  """

  tensor_epochs = False

  def __init__(self, split, data_dir, download):
    import tensorflow_datasets as tfds

    self.key = ('tfds', split, os.path.abspath(os.path.expanduser(data_dir)))
    try:
      self.ds, info = tfds.load(
        'celeb_a',
        split=TFDS_SPLITS[split],
        data_dir=os.path.expanduser(data_dir) or None,
        download=download,
        shuffle_files=False,
        with_info=True,
      )
    except Exception as e:  # TFDS raises AssertionError/FileNotFound/...
      raise DataError(
        missing_data_message('tfds', data_dir) + f' (TFDS said: {str(e).splitlines()[0][:300]})'
      ) from e
    try:
      self.size = info.splits[TFDS_SPLITS[split]].num_examples
    except KeyError:  # no split metadata (tfds.testing.mock_data): count
      self.size = int(self.ds.reduce(0, lambda n, _: n + 1))

  def fingerprint(self):
    return (*self.key, self.size)

  def order(self, seed, epoch):
    """The item indices of `epoch` in the order `stream` gives its images: a
    buffer shuffle's permutation depends on the count, buffer and seed, not
    on the elements."""
    return self._shuffled(tf.data.Dataset.range(self.size), seed, epoch)

  def stream(self, seed, epoch, start):
    # No random access in TFRecords: a seeded buffer shuffle, then skip.
    ds = self._shuffled(self.ds, seed, epoch)
    return ds.skip(start).enumerate(start).map(lambda i, ex: (i, ex['image']))

  @staticmethod
  def _shuffled(ds, seed, epoch):
    return ds.shuffle(10_000, seed=epoch_seed(seed, epoch), reshuffle_each_iteration=False)


def open_source(config: Config):
  """The configured data source; raises DataError if it holds no images."""
  if config.dataset == 'synthetic':
    return SyntheticSource(config.seed, config.synthetic_size)
  if config.dataset == 'tfds':
    return TfdsSource(config.split, config.tfds_data_dir, config.tfds_download)
  data_dir = os.path.expanduser(config.data_dir)  # '--data_dir=~/x' is not
  if not data_dir or not os.path.isdir(data_dir):  # expanded by the shell
    raise DataError(missing_data_message(config.dataset, config.data_dir))
  if config.dataset == 'celeba':
    try:
      paths = celeba.list_files(data_dir, config.split)
    except ValueError as e:  # the partition file: its own message
      raise DataError(str(e)) from e
  else:
    paths = folder.list_images(data_dir)
  if not paths:
    raise DataError(missing_data_message(config.dataset, config.data_dir))
  return FileSource(paths)


def check_eval_split(config: Config) -> None:
  """Raises DataError if config.eval_split cannot be told from the training data.

  Without partitions (a CelebA folder with no list_eval_partition file, a
  plain folder, the synthetic faces) every split is every image, so
  "held-out" scores would be scores on the training images.
  """
  if config.eval_split in ('', config.split) or config.dataset == 'tfds':
    return
  if config.dataset == 'celeba':
    data_dir = os.path.expanduser(config.data_dir)
    image_dir = celeba.find_image_dir(data_dir) if data_dir else None
    if image_dir and celeba.find_partition_file(data_dir, image_dir):
      return
    why = (
      f'{config.data_dir or "the data folder"} has no '
      'list_eval_partition.txt, so every split is every image'
    )
  else:
    why = f'the {config.dataset} source has no partitions'
  raise DataError(
    f'--eval_split={config.eval_split} cannot hold images out of training: '
    f"{why}, and the scores would be on training images. Put CelebA's "
    'list_eval_partition.txt beside img_align_celeba/ (or use '
    '--dataset=tfds), or drop --eval_split to score against the training '
    'images knowingly.'
  )


def resized_frame_size(height, width, config: Config):
  """Size to resize a whole frame to, so its centre crop is the output size.

  The crop is given in pixels of the 178-wide CelebA frame and scaled by
  width / 178, so copies of CelebA at other resolutions give the same faces.
  Resizing the whole frame first (rather than cropping first) puts the
  crop's rounding at output resolution, where every copy rounds alike.
  """
  side = config.crop / FRAME_WIDTH * tf.cast(width, tf.float32)
  sy = config.image_height / side
  sx = config.image_width / side
  new_h = tf.cast(tf.round(tf.cast(height, tf.float32) * sy), tf.int32)
  new_w = tf.cast(tf.round(tf.cast(width, tf.float32) * sx), tf.int32)
  return (tf.maximum(new_h, config.image_height), tf.maximum(new_w, config.image_width))


def crop_and_resize(image, config: Config):
  """uint8 image of any size -> uint8 (H, W, 3): centre crop, antialiased resize."""
  h, w = config.image_height, config.image_width
  if config.crop > 0:
    new_h, new_w = resized_frame_size(tf.shape(image)[0], tf.shape(image)[1], config)
    image = tf.image.resize(image, (new_h, new_w), antialias=True)
    top, left = (new_h - h) // 2, (new_w - w) // 2
    image = image[top : top + h, left : left + w]
  else:
    image = tf.image.resize(image, (h, w), antialias=True)
  image = tf.ensure_shape(image, (h, w, 3))
  return tf.cast(tf.clip_by_value(tf.round(image), 0, 255), tf.uint8)


class _CacheLock:
  """Held while a file cache fills, so two processes never fill one.

  A flock, released by the OS when its process dies: while it is held no
  other facegan process is filling `path`, so the temp files of an
  unfinished fill (a killed process) are stale and are removed.
  """

  def __init__(self, path: str):
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    self._file = open(f'{path}.facegan-lock', 'a+')
    try:
      import fcntl

      try:
        fcntl.flock(self._file, fcntl.LOCK_EX | fcntl.LOCK_NB)
      except OSError:
        logging.warning('Waiting for another process to fill the cache %s.', path)
        fcntl.flock(self._file, fcntl.LOCK_EX)
    except ImportError:  # no flock (Windows): leftovers are kept
      return
    stale = glob.glob(glob.escape(path) + '.*tmp*')
    for leftover in stale:
      os.remove(leftover)
    if stale:
      logging.warning('Removed %d file(s) of an unfinished cache fill (%s).', len(stale), path)

  def release(self):
    self._file.close()


def _load_cache(path: str, shape):
  """(images, readable) of a complete file cache at `path`, memory-mapped,
  or None."""
  try:
    readable = np.load(f'{path}.readable.npy')
    images = np.load(f'{path}.images.npy', mmap_mode='r')
  except (OSError, ValueError):
    return None
  if images.shape != shape or readable.shape != shape[:1]:
    return None
  return images, readable


class Pipeline:
  """Builds each epoch's dataset of (positions, images) batches.

  `positions` is each image's index in the epoch's order; a gap between
  consecutive positions is an unreadable file skipped by `ignore_errors`, so
  the loop counts skips exactly and knows where to resume.
  """

  def __init__(self, config: Config, source=None):
    self.config = config
    self.source = source or open_source(config)
    self._cache = None  # (images, readable) in item order
    self.size = self.source.size
    if config.cache:
      self._fill_cache()
    if self.size < config.batch_size:
      raise DataError(
        f'The {config.dataset} source has {self.size} usable images, fewer '
        f'than one batch of {config.batch_size}: lower --batch_size or add '
        f'images.'
      )

  def steps_per_epoch(self) -> int:
    """Full batches in an epoch, capped by config.steps_per_epoch."""
    steps = self.size // self.config.batch_size
    if self.config.steps_per_epoch > 0:
      steps = min(steps, self.config.steps_per_epoch)
    return steps

  def _images(self, seed, epoch, start):
    """(position, uint8 image) pairs, unreadable files dropped."""
    ds = self.source.stream(seed, epoch, start)
    ds = ds.map(
      lambda i, x: (i, crop_and_resize(x, self.config)),
      num_parallel_calls=AUTOTUNE,
      deterministic=True,
    )
    return ds.ignore_errors(log_warning=True)

  def cache_path(self) -> str:
    """The file cache of this source and these settings: <--cache>-<key>.

    The key hashes the source's fingerprint (every file's path, size and
    time; or the synthetic or TFDS settings) with the crop, size and seed,
    so a cache is never served to a run that would decode other images.
    """
    c = self.config
    key = json.dumps([self.source.fingerprint(), c.crop, c.image_height, c.image_width, c.seed])
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    return f'{os.path.expanduser(c.cache)}-{digest}'

  def _fill_cache(self):
    """Decodes every image once into an array in item order.

    Epochs then read it in the order the uncached pipeline gives (the
    source's `order`), so --cache changes the speed, never the data order.
    A file cache is two .npy files (images, memory-mapped on reuse, and
    which items were readable); the readable list is written last, so a
    cache is complete when it exists.
    """
    c = self.config
    shape = (self.source.size, c.image_height, c.image_width, 3)
    path = '' if c.cache == 'memory' else self.cache_path()
    lock = _CacheLock(path) if path else None
    try:
      cache = _load_cache(path, shape) if path else None
      if cache is None:
        logging.info('Caching %d images (%s)...', shape[0], path or 'memory')
        cache = self._decode_all(shape, path)
    finally:
      if lock:
        lock.release()
    self._cache = cache
    count = int(cache[1].sum())
    if count < self.size:
      logging.warning('Skipped %d unreadable image(s) while caching.', self.size - count)
    self.size = count

  def _decode_all(self, shape, path):
    """(images, readable) of every item, written to `path` when given."""
    c = self.config
    tmp = f'{path}.images.tmp{os.getpid()}.npy'
    images = (
      np.lib.format.open_memmap(tmp, 'w+', np.uint8, shape) if path else np.zeros(shape, np.uint8)
    )
    readable = np.zeros(shape[0], bool)
    # Epoch 0's order, decoded in parallel; its positions give the items.
    items = next(iter(self.source.order(c.seed, 0).batch(shape[0]))).numpy()
    for positions, batch in self._images(c.seed, 0, 0).batch(256).prefetch(2):
      k = items[positions.numpy()]
      images[k], readable[k] = batch.numpy(), True
    if path:
      images.flush()
      del images
      os.replace(tmp, f'{path}.images.npy')
      files.write_whole(f'{path}.readable.npy', lambda p: np.save(p, readable))
      return _load_cache(path, shape)
    return images, readable

  def cached_images(self) -> np.ndarray:
    """Every readable image of the cache, in item order (uint8)."""
    images, readable = self._cache
    return images[readable]

  @property
  def spans_epochs(self) -> bool:
    """Whether `stream` gives every remaining epoch in one dataset.

    A buffer shuffle (TFDS) takes its seed as a Python int, so that source
    is streamed one epoch per dataset.
    """
    return self.source.tensor_epochs

  def _epoch_images(self, epoch, start):
    """(position, uint8 image) of `epoch` after `start` (tensors only where
    spans_epochs holds); with a cache, (position, item index), which
    _batched turns into images a batch at a time."""
    c = self.config
    if self._cache is None:
      return self._images(c.seed, epoch, start)
    # Positions count unreadable items too, as the uncached epoch's do.
    ds = self.source.order(c.seed, epoch).enumerate().skip(start)
    readable = tf.constant(self._cache[1])
    return ds.filter(lambda i, k: tf.gather(readable, k))

  def _batched(self, ds):
    images = self._cache[0] if self._cache is not None else None

    def to_float_batch(*xs):
      x = xs[-1]
      if images is not None:  # item indices: one numpy read per batch
        x = tf.ensure_shape(
          tf.numpy_function(lambda k: np.asarray(images[k]), [x], tf.uint8, stateful=False),
          (self.config.batch_size, *images.shape[1:]),
        )
      # Converted to float per batch: one vectorised op, not one per image.
      return (*xs[:-1], to_float(x))

    ds = ds.batch(self.config.batch_size, drop_remainder=True)
    return ds.map(to_float_batch, num_parallel_calls=AUTOTUNE)

  def epoch(self, epoch: int, start: int = 0) -> tf.data.Dataset:
    """Batches (positions, images) of epoch `epoch`, after `start` consumed."""
    return self._batched(self._epoch_images(epoch, start)).prefetch(AUTOTUNE)

  def stream(
    self, epoch: int = 0, start: int = 0, skip_batches: int = 0, epochs: int = None
  ) -> tf.data.Dataset:
    """Batches (epochs, positions, images) of every epoch from `epoch` on.

    One dataset for the rest of the run, so one iterator serves every epoch
    and the next epoch's first images are decoded while this one's last
    steps train (a fresh pipeline per epoch started each epoch empty).
    Each epoch has the order `epoch()` gives and at most steps_per_epoch
    batches; the first resumes after `start` consumed elements with
    `skip_batches` of its batches already trained. `epochs` (per image)
    tells the loop which epoch a batch belongs to. Ends after epoch
    `epochs` - 1 (default: config.epochs), or after epoch `epoch` where
    spans_epochs does not hold.
    """
    steps = self.steps_per_epoch()
    if not self.spans_epochs:
      ds = self._epoch_images(epoch, start).map(lambda i, x: (tf.constant(epoch, tf.int64), i, x))
      return self._batched(ds).take(steps - skip_batches).prefetch(AUTOTUNE)
    first = tf.constant(epoch, tf.int64)

    def one_epoch(e):
      resuming = tf.equal(e, first)
      ds = self._epoch_images(
        e, tf.where(resuming, tf.constant(start, tf.int64), tf.constant(0, tf.int64))
      )
      ds = self._batched(ds.map(lambda i, x: (e, i, x)))
      return ds.take(
        tf.where(
          resuming, tf.constant(steps - skip_batches, tf.int64), tf.constant(steps, tf.int64)
        )
      )

    last = self.config.epochs if epochs is None else epochs
    return tf.data.Dataset.range(epoch, last).flat_map(one_epoch).prefetch(AUTOTUNE)
