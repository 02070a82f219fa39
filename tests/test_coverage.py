"""Precision, recall, density and coverage, and the watch for partial collapse."""

import os

import numpy as np
import pytest

from metrics import coverage
from metrics import evaluation
from training import collapse

FACES = os.path.join(os.path.dirname(__file__), 'data', 'faces16', 'celeba_train_512_16x16.npy')


@pytest.fixture(scope='module')
def faces():
  """512 real CelebA faces, uint8 16x16 (the metric's own resolution)."""
  return np.load(FACES)


def test_a_tiny_case_matches_the_formulas_exactly():
  # 1-D, k=1. Real balls: radius 1 around 0, 1, 2, 3. Fake 0.1 lies in the
  # balls of 0 and 1; its own ball (radius 9.9, to 10) holds every real.
  real = np.array([[0.0], [1.0], [2.0], [3.0]])
  fake = np.array([[0.1], [10.0], [10.5], [11.0]])
  assert coverage.prdc(real, fake, k=1) == dict(
    precision=0.25,  # only 0.1 is inside a real ball
    recall=1.0,  # every real is inside 0.1's ball
    density=0.5,  # 0.1 is inside 2 real balls: 2 / (k * 4)
    coverage=0.5,
  )  # reals 0 and 1 have a fake inside their ball


def test_two_disjoint_real_sets_reach_the_ceiling(faces):
  result = coverage.pixel_prdc(faces[:256], faces[256:])
  assert coverage.ceiling() == pytest.approx(0.969, abs=1e-3)
  assert result['coverage'] == pytest.approx(coverage.ceiling(), abs=0.04)
  assert 0.6 < result['density'] < 1.5  # 1 in expectation, noisy at n=256


def test_sixteen_faces_repeated_collapse_coverage_not_precision(faces):
  repeated = np.concatenate([faces[496:512]] * 31)
  result = coverage.pixel_prdc(faces[:496], repeated)
  assert result['coverage'] < 0.2
  assert result['recall'] < 0.2
  assert result['precision'] > 0.8  # each face is realistic: only fewer


def test_one_face_under_varied_frames_is_seen_only_by_the_face_region(faces):
  # 48x48 frames of 256 different faces, whose centres are pasted from 8.
  big = np.repeat(np.repeat(faces, 3, axis=1), 3, axis=2)
  real, fake = big[256:], big[:256].copy()
  side = coverage.face_region(fake[:1]).shape[1]
  assert side == round(48 * coverage.FACE_FRACTION)
  top = (48 - side) // 2
  centre = (slice(None), slice(top, top + side), slice(top, top + side))
  fake[centre] = big[np.arange(256) % 8][centre]
  assert coverage.pixel_prdc(real, fake)['coverage'] > 0.85  # the frames differ
  face = coverage.face_prdc(real, fake)
  assert face['coverage'] < 0.3 and face['recall'] < 0.1
  # Fitted once on the reals (as during training), it scores the same.
  assert coverage.PixelCoverage(real, coverage.face_region).score(fake) == face
  # The same frames with their own centres cover the face region too.
  assert coverage.face_prdc(real, big[:256])['coverage'] > 0.85


def test_too_few_or_unequal_sets_are_refused_naming_the_numbers(faces):
  with pytest.raises(coverage.CoverageError, match='at least 6 .* got 5 real'):
    coverage.pixel_prdc(faces[:5], faces[5:10])
  with pytest.raises(evaluation.EvaluationError, match='100 real and 90'):
    evaluation.compute_metrics(faces[:90], faces[100:200], ['coverage'])


def test_compute_metrics_reports_coverage_with_its_ceiling_and_channels(faces):
  result = evaluation.compute_metrics(faces[:256], faces[256:], ['coverage'])
  assert result['coverage']['ceiling'] == coverage.ceiling()
  assert result['coverage']['features'] == 'pixel_pca64'
  assert result['coverage_face']['features'] == 'pixel_pca64_centre45'
  assert result['coverage_face']['coverage'] == pytest.approx(coverage.ceiling(), abs=0.1)
  means = np.asarray(faces[256:], np.float64).reshape(-1, 3).mean(0)
  assert result['channels']['real']['mean'] == pytest.approx(means, abs=0.01)
  table = evaluation.format_table(result)
  assert 'coverage (pixels, k=5)' in table and 'ceiling 0.969' in table
  assert 'coverage (face region, k=5)' in table


def test_downsample_averages_areas_at_any_size():
  x = np.zeros((1, 157, 128, 3), np.uint8)
  x[:, :, :64] = 255  # left half white
  small = coverage.downsample(x).reshape(16, 16, 3)
  np.testing.assert_allclose(small[:, :8], 1.0, atol=1e-6)
  np.testing.assert_allclose(small[:, 8:], 0.0, atol=1e-6)
  assert coverage.downsample(x, side=4).shape == (1, 48)


def _generator(faces, few):
  """n -> n of the first 256 faces in [-1, 1]; with `few`, 7 in 8 of them
  are one of the first `few` faces (the real sets below are faces 256-511).
  7 in 8: coverage ~ 1 - exp(-k * distinct / n) would stay near 0.7 with a
  quarter of the faces distinct; a few faces for most latents is lower.
  """
  images = faces[:256].astype(np.float32) / 127.5 - 1.0

  def generate(n):
    index = np.arange(n)
    if few:
      index = np.where(index % 8 < 7, index % few, index)
    return images[index]

  return generate


def test_the_watch_warns_on_a_generator_of_a_few_faces_only(faces):
  varied, partial = _generator(faces, 0), _generator(faces, 4)
  watch = collapse.CollapseWatch()
  # A fresh G: every sample alike, but no collapse from variety yet.
  fresh = np.repeat(varied(1), 64, axis=0)
  assert collapse.near_duplicate_rate(fresh) == 1.0
  metrics, warnings = watch.observe_samples(fresh, 50)
  assert metrics['collapse/sample_diversity'] < 1e-3 and warnings == []
  metrics, warnings = watch.observe_samples(varied(64), 100)
  assert metrics['collapse/near_duplicates'] == 0.0 and warnings == []
  assert metrics['collapse/sample_diversity'] > 0.3  # real faces: about 0.45
  metrics, warnings = watch.observe_samples(partial(64), 200)
  assert metrics['collapse/near_duplicates'] >= 0.85
  warning = warnings[0]
  assert warning and 'partial mode collapse' in warning
  assert '--d_mbstd_group' in warning
  # With evaluation: coverage falls while density stays high.
  real = faces[256:512]
  real_side = coverage.PixelCoverage(real)
  scores = lambda g: {
    f'eval/{k}': v
    for k, v in real_side.score(((g(256) + 1) * 127.5).round().astype(np.uint8)).items()
  }
  watch = collapse.CollapseWatch()
  assert watch.observe_eval(scores(varied), 100) == []
  warnings = watch.observe_eval(scores(partial), 200)
  assert len(warnings) == 1 and 'coverage fell' in warnings[0]


def test_the_watch_sees_swd_turning_back_and_colour_drift():
  watch = collapse.CollapseWatch()
  steady = [
    {
      'eval/swd': v,
      'eval/channel_mean_diff/r': 1.0,
      'eval/channel_mean_diff/g': -2.0,
      'eval/channel_mean_diff/b': 0.5,
    }
    for v in (50, 40, 41, 42, 35)
  ]
  assert all(watch.observe_eval(s, i) == [] for i, s in enumerate(steady))
  # A rise within the noise of two draws (a celeba48 run's, past its hour) is not a turn.
  noise = collapse.CollapseWatch()
  assert all(
    noise.observe_eval({'eval/swd': v}, i) == [] for i, v in enumerate((19.6, 19.7, 20.2, 20.5))
  )
  rising = [{'eval/swd': v} for v in (37, 38, 39)]
  assert watch.observe_eval(rising[0], 10) == []
  assert watch.observe_eval(rising[1], 11) == []
  warnings = watch.observe_eval(rising[2], 12)
  assert len(warnings) == 1 and 'risen three times' in warnings[0]
  early = collapse.CollapseWatch()
  off = {
    'eval/channel_mean_diff/r': -27.8,
    'eval/channel_mean_diff/g': -13.0,
    'eval/channel_mean_diff/b': -3.0,
  }
  # Off from the start: a young G, no drift, for color_grace evaluations;
  # after them a cast that never went away is reported too.
  assert all(early.observe_eval(off, s) == [] for s in (250, 500, 750, 1000))
  warnings = early.observe_eval(off, 1250)
  assert len(warnings) == 1 and 'after 5 evaluations' in warnings[0]
  drift = {
    'eval/channel_mean_diff/r': 0.0,
    'eval/channel_mean_diff/g': -9.5,
    'eval/channel_mean_diff/b': -11.0,
  }
  warnings = watch.observe_eval(drift, 13)
  assert len(warnings) == 1 and 'G -9.5' in warnings[0]
  assert 'within 6 levels' in warnings[0] and 'best evaluation' in warnings[0]
  assert watch.observe_eval(drift, 14) == []  # once only


def test_with_an_extractor_coverage_is_also_computed_on_its_features(faces):
  # Stands in for InceptionV3: any images -> features function.
  extract = lambda images: coverage.downsample(images, side=4)
  result = evaluation.compute_metrics(faces[:64], faces[64:128], ['coverage'], extract=extract)
  assert result['coverage_inception'] == dict(
    coverage.prdc(extract(faces[64:128]), extract(faces[:64])),
    ceiling=coverage.ceiling(),
    features='inception_pool3',
  )
  assert 'fid' not in result and 'kid' not in result
  assert evaluation.feature_extractor(['swd', 'coverage']) is None
