import dataclasses
import io
import os
import shutil

import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from data import celeba, folder, pipeline
from configs.presets import get_config


def _celeba_copy(src, dst_images, n=None):
  os.makedirs(dst_images, exist_ok=True)
  names = sorted(os.listdir(os.path.join(src, 'img_align_celeba')))
  names = [x for x in names if x.endswith('.jpg')][:n]
  for name in names:
    shutil.copy(os.path.join(src, 'img_align_celeba', name), dst_images)
  return names


def _epoch_arrays(pipe, epoch=0, start=0):
  positions, images = [], []
  for p, x in pipe.epoch(epoch, start):
    positions.append(p.numpy())
    images.append(x.numpy())
  return np.concatenate(positions), np.concatenate(images)


def test_official_layout_with_txt_partition(celeba_dir, tmp_path):
  names = _celeba_copy(celeba_dir, tmp_path / 'img_align_celeba')
  # Split file lists more files than present (as a user's partial copy).
  lines = [f'{n} {1 if i < 3 else 2 if i < 5 else 0}' for i, n in enumerate(names)]
  lines.append('999999.jpg 0')
  (tmp_path / 'list_eval_partition.txt').write_text('\n'.join(lines) + '\n')
  train = celeba.list_files(str(tmp_path), 'train')
  valid = celeba.list_files(str(tmp_path), 'valid')
  heldout = celeba.list_files(str(tmp_path), 'heldout')
  assert [os.path.basename(p) for p in valid] == names[:3]
  assert [os.path.basename(p) for p in heldout] == names[:5]  # valid + test
  assert len(train) == len(names) - 5 and not set(train) & set(heldout)
  assert len(celeba.list_files(str(tmp_path), 'all')) == len(names)


def test_a_malformed_partition_file_names_its_line(celeba_dir, tmp_path):
  shutil.copytree(celeba_dir, tmp_path / 'c')
  (tmp_path / 'c' / 'list_eval_partition.txt').write_text('000001.jpg 0\n000002.jpg train\n')
  config = get_config('tiny', dataset='celeba', data_dir=str(tmp_path / 'c'))
  with pytest.raises(pipeline.DataError, match='line 2'):
    pipeline.Pipeline(config)


def test_a_split_without_any_image_present_points_at_split(celeba_dir, tmp_path):
  shutil.copytree(celeba_dir, tmp_path / 'c')
  names = os.listdir(tmp_path / 'c' / 'img_align_celeba')
  (tmp_path / 'c' / 'list_eval_partition.txt').write_text(''.join(f'{n} 2\n' for n in names))
  config = get_config('tiny', dataset='celeba', data_dir=str(tmp_path / 'c'))
  with pytest.raises(pipeline.DataError, match="none of them in the 'train' split.*--split") as e:
    pipeline.Pipeline(config)
  assert 'download' not in str(e.value)
  assert pipeline.Pipeline(dataclasses.replace(config, split='test')).size


def test_kaggle_nested_layout_with_csv_partition(celeba_dir, tmp_path):
  names = _celeba_copy(celeba_dir, tmp_path / 'img_align_celeba' / 'img_align_celeba')
  rows = ['image_id,partition'] + [f'{n},{2 if i == 0 else 0}' for i, n in enumerate(names)]
  (tmp_path / 'list_eval_partition.csv').write_text('\r\n'.join(rows) + '\r\n')
  assert celeba.find_image_dir(str(tmp_path)).endswith(
    os.path.join('img_align_celeba', 'img_align_celeba')
  )
  assert [os.path.basename(p) for p in celeba.list_files(str(tmp_path), 'test')] == names[:1]
  assert len(celeba.list_files(str(tmp_path), 'train')) == len(names) - 1


def test_data_dir_with_a_tilde_is_expanded(celeba_dir, tmp_path, monkeypatch):
  shutil.copytree(celeba_dir, tmp_path / 'celeba')
  monkeypatch.setenv('HOME', str(tmp_path))
  config = get_config('tiny', dataset='celeba', data_dir='~/celeba')
  assert pipeline.Pipeline(config).size == 16


def test_no_partition_file_uses_every_image(celeba_dir):
  assert len(celeba.list_files(celeba_dir, 'train')) == 16


@pytest.mark.parametrize('dataset', ['celeba', 'folder'])
def test_missing_or_empty_source_is_a_clear_error(tmp_path, dataset):
  for data_dir in (str(tmp_path / 'nope'), str(tmp_path), ''):
    config = get_config('tiny', dataset=dataset, data_dir=data_dir)
    with pytest.raises(pipeline.DataError, match='--dataset=synthetic'):
      pipeline.Pipeline(config)


def test_crop_scales_with_the_image():
  config = get_config('celeba64')  # crop 160 of 178 -> 64: x0.4
  assert [int(v) for v in pipeline.resized_frame_size(218, 178, config)] == [87, 71]
  assert [int(v) for v in pipeline.resized_frame_size(109, 89, config)] == [87, 71]
  config = get_config('celeba64', crop=108)  # the feature-matching recipe
  assert [int(v) for v in pipeline.resized_frame_size(218, 178, config)] == [129, 105]


def test_half_size_copy_gives_the_same_faces(celeba_dir):
  config = get_config('celeba64')
  path = os.path.join(celeba_dir, 'img_align_celeba', '000001.jpg')
  full = np.asarray(Image.open(path).convert('RGB'))
  half = np.asarray(Image.open(path).convert('RGB').resize((89, 109), Image.BILINEAR))
  a = pipeline.crop_and_resize(tf.constant(full), config).numpy().astype(float)
  b = pipeline.crop_and_resize(tf.constant(half), config).numpy().astype(float)
  assert a.shape == b.shape == (64, 64, 3)
  assert np.abs(a - b).mean() < 4  # out of 255: same face, same framing


@pytest.mark.parametrize('preset', ['celeba48', 'celeba64', 'celeba157x128'])
def test_celeba_pipeline_shapes_and_range(celeba_dir, preset):
  config = get_config(preset, dataset='celeba', data_dir=celeba_dir, batch_size=4)
  pipe = pipeline.Pipeline(config)
  assert pipe.steps_per_epoch() == 4
  positions, images = _epoch_arrays(pipe)
  assert images.shape == (16, config.image_height, config.image_width, 3)
  assert images.dtype == np.float32
  assert -1.0 <= images.min() < -0.5 and 0.5 < images.max() <= 1.0
  assert sorted(positions) == list(range(16))


def test_epochs_are_shuffled_reproducibly_and_resume_exactly(celeba_dir):
  config = get_config('tiny', dataset='celeba', data_dir=celeba_dir, batch_size=2)
  pipe = pipeline.Pipeline(config)
  _, e0 = _epoch_arrays(pipe, 0)
  _, e0_again = _epoch_arrays(pipe, 0)
  _, e1 = _epoch_arrays(pipe, 1)
  np.testing.assert_array_equal(e0, e0_again)
  assert not np.array_equal(e0, e1)
  positions, resumed = _epoch_arrays(pipe, 0, start=6)
  np.testing.assert_array_equal(resumed, e0[6:])
  assert positions[0] == 6


def _stream_arrays(pipe, *args, **kwargs):
  epochs, positions, images = zip(
    *((e.numpy(), p.numpy(), x.numpy()) for e, p, x in pipe.stream(*args, **kwargs))
  )
  return np.concatenate(epochs), np.concatenate(positions), np.concatenate(images)


def test_the_stream_is_the_epochs_one_after_another(celeba_dir):
  config = get_config(
    'tiny', dataset='celeba', data_dir=celeba_dir, batch_size=3, epochs=3, steps_per_epoch=0
  )
  pipe = pipeline.Pipeline(config)  # 16 faces: 5 batches an epoch, 1 left out
  assert pipe.spans_epochs
  epochs, positions, images = _stream_arrays(pipe)
  np.testing.assert_array_equal(epochs, np.repeat([0, 1, 2], 15))
  for e in range(3):
    p, x = _epoch_arrays(pipe, e)
    np.testing.assert_array_equal(positions[epochs == e], p)
    np.testing.assert_array_equal(images[epochs == e], x)
  # Resumed inside epoch 1, after 2 of its batches (6 images) were trained.
  epochs2, positions2, images2 = _stream_arrays(pipe, 1, start=6, skip_batches=2)
  np.testing.assert_array_equal(epochs2, np.repeat([1, 2], [9, 15]))
  np.testing.assert_array_equal(images2, images[epochs >= 1][6:])
  np.testing.assert_array_equal(positions2[:9], positions[epochs == 1][6:])


def test_the_cache_keeps_the_uncached_order_across_epochs_and_resumes(celeba_dir, tmp_path):
  _celeba_copy(celeba_dir, tmp_path, n=10)
  (tmp_path / 'broken.jpg').write_bytes(b'not a jpeg')  # skipped either way
  keras.utils.set_random_seed(0)  # as the loop does; a seed of 0 once broke it
  config = lambda cache: get_config(
    'tiny',
    dataset='folder',
    data_dir=str(tmp_path),
    batch_size=3,
    epochs=3,
    steps_per_epoch=0,
    cache=cache,
  )
  plain = pipeline.Pipeline(config(''))
  for cache in ('memory', str(tmp_path / 'cache' / 'c')):
    cached = pipeline.Pipeline(config(cache))
    assert cached.spans_epochs and cached.size == 10
    for e in (0, 1):
      for got, want in zip(_epoch_arrays(cached, e), _epoch_arrays(plain, e)):
        np.testing.assert_array_equal(got, want)
    resumed = _stream_arrays(cached, 1, start=6, skip_batches=2)
    for got, want in zip(resumed, _stream_arrays(plain, 1, start=6, skip_batches=2)):
      np.testing.assert_array_equal(got, want)
  # Read back from the file cache, memory-mapped, in the same order.
  again = pipeline.Pipeline(config(str(tmp_path / 'cache' / 'c')))
  np.testing.assert_array_equal(_epoch_arrays(again, 2)[1], _epoch_arrays(plain, 2)[1])


def test_the_stream_caps_each_epoch_at_steps_per_epoch(celeba_dir):
  config = get_config(
    'tiny', dataset='celeba', data_dir=celeba_dir, batch_size=2, epochs=2, steps_per_epoch=3
  )
  epochs, _, _ = _stream_arrays(pipeline.Pipeline(config))
  np.testing.assert_array_equal(epochs, np.repeat([0, 1], 6))


def test_corrupt_files_are_skipped_and_counted(celeba_dir, tmp_path):
  _celeba_copy(celeba_dir, tmp_path, n=6)
  data = open(os.path.join(celeba_dir, 'img_align_celeba', '000007.jpg'), 'rb').read()
  (tmp_path / 'truncated.jpg').write_bytes(data[: len(data) // 2])
  (tmp_path / 'empty.jpg').write_bytes(b'')
  (tmp_path / 'text.png').write_bytes(b'not an image at all')
  rgba = io.BytesIO()
  Image.new('RGBA', (40, 50), (200, 10, 10, 128)).save(rgba, 'PNG')
  (tmp_path / 'alpha.png').write_bytes(rgba.getvalue())
  Image.new('L', (60, 60), 128).save(tmp_path / 'gray.bmp')
  config = get_config('tiny', dataset='folder', data_dir=str(tmp_path), batch_size=1)
  pipe = pipeline.Pipeline(config)
  assert pipe.size == 11
  positions, images = _epoch_arrays(pipe)
  assert len(images) == 8  # 6 JPEGs + RGBA PNG + grayscale BMP, converted to RGB
  # The gaps in the positions are exactly where the three bad files fell in
  # the epoch's shuffled order.
  _, order = pipeline._epoch_order(pipe.size, config.seed, 0, 0)
  bad = {
    i
    for i, k in enumerate(order)
    if os.path.basename(pipe.source.paths[k]) in ('truncated.jpg', 'empty.jpg', 'text.png')
  }
  assert set(range(11)) - set(positions) == bad and len(bad) == 3
  assert images.shape[1:] == (32, 32, 3)


def test_folder_source_reads_every_format(tmp_path):
  (tmp_path / 'a' / 'b').mkdir(parents=True)
  colors = {
    'x.jpg': 'JPEG',
    'a/y.png': 'PNG',
    'a/b/z.bmp': 'BMP',
    'a/w.gif': 'GIF',
    'a/b/v.webp': 'WEBP',
  }
  for name, fmt in colors.items():
    Image.new('RGB', (100, 120), (0, 200, 0)).save(tmp_path / name, fmt)
  (tmp_path / 'notes.txt').write_text('ignored')
  assert len(folder.list_images(str(tmp_path))) == 5
  config = get_config('tiny', dataset='folder', data_dir=str(tmp_path), batch_size=5)
  _, images = _epoch_arrays(pipeline.Pipeline(config))
  assert images.shape == (5, 32, 32, 3)
  green = (images[..., 1].mean(), images[..., 0].mean())
  assert green[0] > 0.4 and green[1] < -0.9  # decoded colours survive


def test_memory_cache_gives_the_same_images_reshuffled_per_epoch(celeba_dir):
  cached = get_config('tiny', dataset='celeba', data_dir=celeba_dir, batch_size=4, cache='memory')
  pipe = pipeline.Pipeline(cached)
  _, b = _epoch_arrays(pipe, 0)
  _, c = _epoch_arrays(pipe, 1)
  key = lambda x: np.sort(x.reshape(len(x), -1).sum(1))
  np.testing.assert_allclose(key(b), key(c), atol=1e-3)
  assert not np.array_equal(b, c)  # still reshuffled per epoch
  assert pipe.cached_images().shape == (pipe.size, 32, 32, 3)


def test_file_cache_is_written_and_reused(celeba_dir, tmp_path):
  config = get_config(
    'tiny',
    dataset='celeba',
    data_dir=celeba_dir,
    batch_size=4,
    cache=str(tmp_path / 'cache' / 'tiny'),
  )
  _, a = _epoch_arrays(pipeline.Pipeline(config))
  assert any(f.startswith('tiny') for f in os.listdir(tmp_path / 'cache'))
  _, b = _epoch_arrays(pipeline.Pipeline(config))
  np.testing.assert_array_equal(a, b)


def _jpeg_folder(root, colours):
  os.makedirs(root, exist_ok=True)
  for i, colour in enumerate(colours):
    Image.new('RGB', (40, 48), colour).save(os.path.join(root, f'{i}.jpg'))
  return str(root)


def test_a_file_cache_is_never_served_to_another_dataset(tmp_path):
  red = _jpeg_folder(tmp_path / 'red', [(250, 0, 0)] * 4)
  blue = _jpeg_folder(tmp_path / 'blue', [(0, 0, 250)] * 4)
  cache = str(tmp_path / 'cache' / 'c')
  config = lambda d: get_config('tiny', dataset='folder', data_dir=d, batch_size=4, cache=cache)
  _, a = _epoch_arrays(pipeline.Pipeline(config(red)))
  _, b = _epoch_arrays(pipeline.Pipeline(config(blue)))
  assert a[..., 0].mean() > 0.8 and b[..., 2].mean() > 0.8
  assert pipeline.Pipeline(config(red)).cache_path() != pipeline.Pipeline(config(blue)).cache_path()


def test_leftovers_of_a_killed_cache_fill_are_removed(tmp_path):
  red = _jpeg_folder(tmp_path / 'red', [(250, 0, 0)] * 4)
  config = get_config(
    'tiny', dataset='folder', data_dir=red, batch_size=4, cache=str(tmp_path / 'cache' / 'c')
  )
  path = pipeline.Pipeline(config).cache_path()
  for name in os.listdir(tmp_path / 'cache'):  # back to before the fill
    os.remove(tmp_path / 'cache' / name)
  # What a process killed while filling leaves: a half-written images file.
  open(f'{path}.images.tmp123.npy', 'wb').write(b'\x93NUMPY half')
  _, images = _epoch_arrays(pipeline.Pipeline(config))
  assert images.shape[0] == 4
  assert sorted(os.listdir(tmp_path / 'cache')) == [
    f'{os.path.basename(path)}.{end}' for end in ('facegan-lock', 'images.npy', 'readable.npy')
  ]


def test_symlink_loops_and_repeated_links_are_listed_once(tmp_path):
  root = tmp_path / 'faces'
  _jpeg_folder(root / 'a', [(250, 0, 0)] * 3)
  os.symlink(root, root / 'a' / 'loop')  # a link back to a parent
  os.symlink(root / 'a', root / 'b')  # a second name for a folder
  os.symlink(root / 'a' / '0.jpg', root / 'same.jpg')
  paths = folder.list_images(str(root))
  assert len(paths) == 3
  assert len({os.path.realpath(p) for p in paths}) == 3


def test_tfds_source_with_mock_data():
  tfds = pytest.importorskip('tensorflow_datasets')
  with tfds.testing.mock_data(num_examples=12):
    config = get_config('celeba64', dataset='tfds', batch_size=4)
    pipe = pipeline.Pipeline(config)
    assert pipe.size == 12
    positions, images = _epoch_arrays(pipe)
    assert not pipe.spans_epochs
    epochs, _, streamed = _stream_arrays(pipe, 1)
    _, again = _epoch_arrays(pipe, 1)
    # --cache gives the same order: the buffer shuffle's permutation.
    cached = pipeline.Pipeline(dataclasses.replace(config, cache='memory'))
    for e in (0, 1):
      for got, want in zip(_epoch_arrays(cached, e), _epoch_arrays(pipe, e)):
        np.testing.assert_array_equal(got, want)
  assert images.shape == (12, 64, 64, 3)
  assert -1 <= images.min() and images.max() <= 1
  assert sorted(positions) == list(range(12))
  np.testing.assert_array_equal(epochs, np.ones(12))
  np.testing.assert_array_equal(streamed, again)


def test_tfds_without_data_is_a_clear_error(tmp_path):
  pytest.importorskip('tensorflow_datasets')
  config = get_config('celeba64', dataset='tfds', tfds_data_dir=str(tmp_path))
  with pytest.raises(pipeline.DataError, match='--dataset=synthetic'):
    pipeline.Pipeline(config)


def test_synthetic_source_through_the_pipeline():
  config = get_config('tiny', synthetic_size=8, batch_size=4)
  pos, a = _epoch_arrays(pipeline.Pipeline(config))
  _, b = _epoch_arrays(pipeline.Pipeline(config))
  np.testing.assert_array_equal(a, b)  # deterministic per seed
  assert a.shape == (8, 32, 32, 3) and sorted(pos) == list(range(8))
  _, c = _epoch_arrays(
    pipeline.Pipeline(get_config('tiny', synthetic_size=8, batch_size=4, seed=1))
  )
  assert not np.array_equal(np.sort(a, 0), np.sort(c, 0))
