"""Tests for the procedural synthetic-faces dataset (data/synthetic.py)."""

import numpy as np
import pytest

from data import synthetic
from data.synthetic import ATTRIBUTE_NAMES, HEIGHT, WIDTH, render_face

N = 64


def render_faces(seed, indices):
  """(uint8 images, float32 attributes) of faces `indices`, stacked."""
  faces = [render_face(seed, i) for i in indices]
  return np.stack([f[0] for f in faces]), np.stack([f[1] for f in faces])


@pytest.fixture(scope='module')
def batch():
  """The first 64 faces of seed 0: (uint8 images, float32 attributes)."""
  return render_faces(0, range(N))


def _attr(attrs, name):
  return attrs[:, ATTRIBUTE_NAMES.index(name)]


def test_constants():
  assert (HEIGHT, WIDTH) == (218, 178)
  assert len(ATTRIBUTE_NAMES) == len(set(ATTRIBUTE_NAMES)) >= 10
  for name in ('skin_tone', 'smile', 'glasses', 'hair_color', 'hair_style'):
    assert name in ATTRIBUTE_NAMES


def test_render_face_shape_dtype_range():
  img, attrs = render_face(0, 0)
  assert img.shape == (218, 178, 3) and img.dtype == np.uint8
  assert attrs.shape == (len(ATTRIBUTE_NAMES),) and attrs.dtype == np.float32
  assert np.all(np.isfinite(attrs))
  # a real image: uses a good part of the intensity range, not a flat fill
  assert int(img.max()) - int(img.min()) > 100
  assert img.reshape(-1, 3).std(axis=0).min() > 10


def test_render_faces_shape_and_attribute_ranges(batch):
  images, attrs = batch
  assert images.shape == (N, 218, 178, 3) and images.dtype == np.uint8
  assert attrs.shape == (N, len(ATTRIBUTE_NAMES)) and attrs.dtype == np.float32
  assert np.all(np.isfinite(attrs))
  smile = _attr(attrs, 'smile')
  assert smile.min() >= -1 and smile.max() <= 1
  assert smile.min() < -0.2 and smile.max() > 0.6  # frowns and big smiles
  assert np.all((_attr(attrs, 'skin_tone') >= 0) & (_attr(attrs, 'skin_tone') <= 1))
  for name, names in (
    ('hair_color', synthetic.HAIR_COLORS),
    ('hair_style', synthetic.HAIR_STYLES),
    ('eye_color', synthetic.EYE_COLORS),
  ):
    codes = _attr(attrs, name)
    assert np.all(codes == np.round(codes)) and codes.min() >= 0
    assert codes.max() <= len(names) - 1


def test_determinism_independent_of_rendering_order():
  a, attrs_a = render_face(3, 17)
  render_face(3, 5)  # another face in between changes nothing
  b, attrs_b = render_face(3, 17)
  assert a.tobytes() == b.tobytes() and attrs_a.tobytes() == attrs_b.tobytes()


def test_different_indices_and_seeds_differ(batch):
  images, _ = batch
  f = images.astype(np.float32)
  diffs = np.abs(f[1:] - f[:-1]).mean(axis=(1, 2, 3))
  assert diffs.min() > 5.0  # measured min ~28 over seed 0
  other, _ = render_faces(1, range(8))
  seed_diff = np.abs(other.astype(np.float32) - f[:8]).mean(axis=(1, 2, 3))
  assert seed_diff.min() > 5.0


def test_pixel_variety_in_centre(batch):
  images, _ = batch
  centre = images[:, 60:180, 40:140].astype(np.float32)
  # measured ~50 (seed 0); a GAN must see varied faces, not one template
  assert centre.std(axis=0).mean() > 30.0


def test_skin_tones_span_wide_range_and_match_attribute(batch):
  images, attrs = batch
  cheek = images[:, 128:135, 64:72].astype(np.float32).mean(axis=(1, 2))
  lum = cheek.mean(axis=1)
  assert np.ptp(lum) > 120  # measured ~186: very light to very dark skin
  # darker sampled tone -> darker rendered cheek (measured r ~ -0.96)
  assert np.corrcoef(lum, _attr(attrs, 'skin_tone'))[0, 1] < -0.8


def test_binary_and_categorical_attributes_vary(batch):
  _, attrs = batch
  assert set(np.unique(_attr(attrs, 'glasses'))) == {0.0, 1.0}
  assert set(np.unique(_attr(attrs, 'bangs'))) == {0.0, 1.0}
  assert len(np.unique(_attr(attrs, 'hair_color'))) == len(synthetic.HAIR_COLORS)
  assert len(np.unique(_attr(attrs, 'hair_style'))) == len(synthetic.HAIR_STYLES)
  assert 0.03 < _attr(attrs, 'glasses').mean() < 0.35  # ~15% requested
  # sunglasses only ever appear as a kind of glasses
  assert np.all(_attr(attrs, 'sunglasses') <= _attr(attrs, 'glasses'))


def test_face_is_framed_like_celeba(batch):
  images, attrs = batch
  f = images.astype(np.float32)
  # Cheek under the left eye is skin (R > G > B) in nearly every image, while
  # the random background in the corner is only by chance (~1/6).
  cheek = f[:, 128:135, 64:72].mean(axis=(1, 2))
  corner = f[:, 2:12, 2:12].mean(axis=(1, 2))

  def skin_like(c):
    return (c[:, 0] > c[:, 1]) & (c[:, 1] > c[:, 2])

  assert skin_like(cheek).mean() > 0.9
  assert skin_like(corner).mean() < 0.5

  # Eyes (white, near-neutral sclera) sit on CelebA's eye line y ~ 100-125,
  # not in the forehead/hair band above it.
  def has_sclera(window):
    return ((window.min(-1) > 195) & (np.ptp(window, axis=-1) < 25)).any(axis=(1, 2))

  visible = _attr(attrs, 'sunglasses') == 0
  assert has_sclera(f[:, 100:126, 50:128])[visible].mean() > 0.9
  assert has_sclera(f[:, 60:95, 50:128]).mean() < 0.25
  # The mean image's centre (face) differs clearly from its side border.
  mean = f.mean(axis=0)
  assert np.abs(mean[100:160, 60:118] - mean[:, :10].mean(axis=(0, 1))).mean() > 15


def test_centre_crop_resize_keeps_whole_face(batch):
  # The training pipeline crops the central 160x160 (rows 29..189) and
  # resizes to 64x64: the face must be inside that crop, i.e. the crop's
  # border rows/cols are mostly non-skin (hair/background), its centre skin.
  images, _ = batch
  crop = images[:, 29:189, 9:169].astype(np.float32)
  centre = crop[:, 95:105, 60:100].mean(axis=(1, 2))  # cheeks/nose level
  assert ((centre[:, 0] > centre[:, 1]) & (centre[:, 1] > centre[:, 2])).mean() > 0.9
  # face is narrower than the crop: the outer 8 columns differ from the centre
  side = np.concatenate([crop[:, 60:120, :8], crop[:, 60:120, -8:]], axis=2).mean(axis=(1, 2))
  assert np.abs(side - centre).sum(axis=1).mean() > 40
