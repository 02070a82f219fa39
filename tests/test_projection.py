"""Projection of photos: the optimiser, photo checks, nearest images, project.py."""

import io
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from configs.presets import get_config
from data import photos
from metrics import nearest
from models import projection
from models.generator import Generator

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FACE = os.path.join(ROOT, 'tests', 'data', 'celeba', 'img_align_celeba', '000001.jpg')


@pytest.fixture(scope='module')
def g_and_target():
  """A random tiny G and one of its own images, so a perfect latent exists."""
  config = get_config('tiny')
  tf.keras.utils.set_random_seed(3)  # weights from a fixed seed
  g = Generator(config)
  # BatchNorm statistics of G's own activations, as training would leave
  # them: with the initial ones, every inference image is a flat grey.
  for i in range(40):
    g(tf.random.stateless_normal((64, config.latent_dim), (i, 0)), training=True)
  z_true = np.random.default_rng(7).standard_normal((1, config.latent_dim))
  target = (g(tf.constant(z_true, tf.float32)).numpy()[0] + 1) * 127.5
  return config, g, np.clip(np.round(target), 0, 255).astype(np.uint8)


def test_projection_finds_a_latent_for_g_s_own_image(g_and_target):
  config, g, target = g_and_target
  result = projection.project(
    g, target, config.latent_dim, starts=3, steps=60, lr=0.1, frame_every=20
  )
  assert result.z.shape == (config.latent_dim,) and result.z.dtype == np.float32
  assert np.all(np.abs(result.z) <= 4.0)
  assert result.image.shape == target.shape and result.image.dtype == np.uint8
  assert result.errors.shape == (60,)
  assert result.frame_steps == [0, 20, 40, 60]
  assert result.frames.shape == (4,) + target.shape
  np.testing.assert_array_equal(result.frames[-1], result.image)
  # The error of the best start falls a lot, and the reported one is G(z)'s.
  start = projection.start_latents(config.latent_dim, 'normal', 3, 0)
  first = np.mean((g(tf.constant(start)).numpy() - (target / 127.5 - 1)) ** 2, axis=(1, 2, 3))
  assert result.error < 0.25 * first.min()
  assert result.error == pytest.approx(result.errors[-1])
  mine = np.mean((g(tf.constant(result.z[None])).numpy()[0] - (target / 127.5 - 1)) ** 2)
  assert result.error == pytest.approx(mine, rel=1e-4)
  # Same seed, same answer.
  again = projection.project(
    g, target, config.latent_dim, starts=3, steps=60, lr=0.1, frame_every=20
  )
  np.testing.assert_array_equal(again.z, result.z)


def test_uniform_latents_stay_in_their_box(g_and_target):
  config, g, target = g_and_target
  result = projection.project(g, target, config.latent_dim, 'uniform', starts=2, steps=10, lr=1.0)
  assert np.all(np.abs(result.z) <= 1.0)
  with pytest.raises(ValueError, match='at least 1'):
    projection.project(g, target, config.latent_dim, steps=0)


def _png(size, mode='RGB'):
  buf = io.BytesIO()
  Image.new(mode, size, 128).save(buf, format='PNG')
  return buf.getvalue()


def test_photos_are_decoded_prepared_or_refused_with_a_reason(monkeypatch):
  with open(FACE, 'rb') as f:
    face = photos.decode(f.read())
  assert face.shape == (218, 178, 3) and face.dtype == np.uint8
  gray = photos.decode(_png((20, 10), 'L'))  # any mode becomes RGB
  assert gray.shape == (10, 20, 3)
  config = get_config('tiny')
  prepared = photos.prepare(face, config)
  assert prepared.shape == (32, 32, 3) and prepared.dtype == np.uint8
  with pytest.raises(photos.PhotoError, match='not an image'):
    photos.decode(b'this is not a picture at all')
  with pytest.raises(photos.PhotoError, match='over the 20 MB limit'):
    photos.decode(b'\0' * (photos.MAX_BYTES + 1))
  monkeypatch.setattr(photos, 'MAX_PIXELS', 100)
  with pytest.raises(photos.PhotoError, match='decompression bomb'):
    photos.decode(_png((20, 10)))


def test_a_pil_decompression_bomb_is_refused():
  # Far over PIL's own limit: the file is tiny, the image enormous.
  buf = io.BytesIO()
  Image.new('1', (20000, 20000)).save(buf, format='PNG')
  assert len(buf.getvalue()) < photos.MAX_BYTES
  with pytest.raises(photos.PhotoError, match='decompression bomb'):
    photos.decode(buf.getvalue())


def test_sixteen_bit_grey_is_scaled_and_unreadable_modes_refused():
  for fmt in ('PNG', 'TIFF'):
    buf = io.BytesIO()
    Image.fromarray(np.full((6, 5), 128 * 257, np.uint16)).save(buf, fmt)
    image = photos.decode(buf.getvalue())
    assert image.shape == (6, 5, 3) and np.all(image == 128), fmt
  for array in (np.full((6, 5), 1000, np.int32), np.full((6, 5), 0.5, np.float32)):
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, 'TIFF')
    with pytest.raises(photos.PhotoError, match='8- or 16-bit'):
      photos.decode(buf.getvalue())


def test_a_photo_for_a_run_is_decoded_no_larger_than_the_run_needs():
  config = get_config('tiny')  # 32x32 from a 160-wide crop of 178
  side = photos.needed_side(config)
  assert side == 72  # 2 x 32 x 178 / 160, rounded up
  with open(FACE, 'rb') as f:
    face = np.asarray(Image.open(f).convert('RGB'))
  big = np.asarray(Image.fromarray(face).resize((1780, 2180), Image.LANCZOS))
  buf = io.BytesIO()
  Image.fromarray(big).save(buf, 'JPEG', quality=95)
  reduced = photos.decode(buf.getvalue(), config=config)
  assert reduced.shape == (2180 // 8 + 1, 1780 // 8 + 1, 3)  # 1/8 scale
  assert photos.decode(buf.getvalue()).shape == big.shape  # no config: full
  # The reduced decode makes the same training image as the full one.
  diff = photos.prepare(reduced, config).astype(float) - photos.prepare(big, config)
  assert np.abs(diff).mean() < 2.0
  # Formats without a reduced decode are capped by the run's size.
  cap = photos.run_pixel_cap(config)
  assert cap == photos.MIN_RUN_PIXELS
  buf = io.BytesIO()
  Image.new('1', (2100, 2000)).save(buf, 'PNG')  # 4.2 MP in 1-bit pixels
  with pytest.raises(photos.PhotoError, match='4 megapixel limit for this run'):
    photos.decode(buf.getvalue(), config=config)
  assert photos.decode(buf.getvalue()).shape == (2000, 2100, 3)


def test_nearest_finds_the_copy_first():
  rng = np.random.default_rng(0)
  images = rng.integers(0, 256, (50, 8, 8, 3), dtype=np.uint8)
  query = images[17].copy()
  query[0, 0, 0] ^= 1  # almost a copy
  index, distance = nearest.nearest(query, images, 3)
  assert index[0] == 17 and distance[0] == pytest.approx(np.sqrt(1 / 192))
  assert list(distance) == sorted(distance) and len(index) == 3
  far = np.sqrt(np.mean((images.astype(float) - query) ** 2, axis=(1, 2, 3)))
  np.testing.assert_allclose(distance, np.sort(far)[:3], rtol=1e-5)


def _project(*args):
  return subprocess.run(
    [sys.executable, 'project.py', *args], cwd=ROOT, capture_output=True, text=True, timeout=300
  )


def test_project_py_writes_its_files_and_refuses_bad_photos(tiny_run, tmp_path):
  out = str(tmp_path / 'out')
  r = _project(
    f'--checkpoint={tiny_run}',
    f'--image={FACE}',
    f'--out={out}',
    '--steps=20',
    '--starts=2',
    '--nearest=3',
  )
  assert r.returncode == 0, r.stderr[-2000:]
  assert 'RMS error' in r.stdout
  assert sorted(os.listdir(out)) == [
    '000001_nearest.png',
    '000001_projection.gif',
    '000001_reconstruction.png',
    '000001_z.npy',
  ]
  assert np.load(os.path.join(out, '000001_z.npy')).shape == (16,)
  pair = Image.open(os.path.join(out, '000001_reconstruction.png'))
  assert pair.size == (2 * 34 + 2, 34 + 2 + 14)  # two 32x32 tiles, a caption
  row = Image.open(os.path.join(out, '000001_nearest.png'))
  assert row.size[0] == 4 * 34 + 2
  bad = tmp_path / 'notes.jpg'
  bad.write_text('not a photo')
  for args, message in (
    ([f'--image={bad}'], 'not an image'),
    ([f'--image={tmp_path}/missing.jpg'], 'Cannot read'),
  ):
    r = _project(f'--checkpoint={tiny_run}', *args, f'--out={out}')
    assert r.returncode == 1, r.stderr[-2000:]
    lines = r.stderr.strip().splitlines()
    assert lines[-1].startswith('error: ') and message in lines[-1]
    assert 'Traceback' not in r.stderr
  # Checked before any work, nothing written: a CelebA run moved to a
  # machine without its data, and a NaN rate.
  moved = tmp_path / 'moved'
  shutil.copytree(tiny_run, moved)
  config = json.loads((moved / 'config.json').read_text())
  config.update(dataset='celeba', data_dir=str(tmp_path / 'elsewhere'))
  (moved / 'config.json').write_text(json.dumps(config))
  fresh = str(tmp_path / 'fresh')
  r = _project(f'--checkpoint={moved}', f'--image={FACE}', f'--out={fresh}', '--nearest=3')
  assert r.returncode == 1 and 'No celeba images found' in r.stderr
  assert not os.path.exists(fresh)
  r = _project(f'--checkpoint={tiny_run}', f'--image={FACE}', f'--out={fresh}', '--lr=nan')
  assert r.returncode == 1 and '--lr must be a positive number' in r.stderr
  assert not os.path.exists(fresh)
