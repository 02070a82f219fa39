import os

import numpy as np
import pytest
import tensorflow as tf

from common import files


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temp(tmp_path):
  path = str(tmp_path / 'sub' / 'out.txt')
  files.atomic_write(path, lambda f: f.write('old'))

  def fail(f):
    f.write('half')
    raise OSError('disk full')

  with pytest.raises(OSError, match='disk full'):
    files.atomic_write(path, fail)
  assert open(path).read() == 'old'
  assert os.listdir(tmp_path / 'sub') == ['out.txt']
  # Writers that pick a format by the name get the path's extension.
  files.write_whole(
    str(tmp_path / 'z.npy'),
    lambda p: np.save(p, np.arange(3)) or (os.path.splitext(p)[1] == '.npy' or 1 / 0),
  )
  np.testing.assert_array_equal(np.load(tmp_path / 'z.npy'), [0, 1, 2])


def test_pixels_round_trip_and_clip():
  x = tf.constant([0, 1, 127, 128, 254, 255], tf.uint8)
  f = files.to_float(x)
  assert float(f[0]) == -1.0 and float(f[-1]) == 1.0
  np.testing.assert_array_equal(files.from_float(f).numpy(), x.numpy())
  np.testing.assert_array_equal(files.from_float(tf.constant([-3.0, 3.0])).numpy(), [0, 255])
