"""SWD, FID and KID against closed forms, and evaluate.py on a tiny run."""

import dataclasses
import glob
import json
import math
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from configs.presets import get_config
from metrics import evaluation, fid, inception, swd
from tests import helpers
from models import latents
from models.checkpoint import load_generator_from
from training import checkpoints, loop, rundir
from metrics import run_eval

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

_FILTER = np.outer([1, 4, 6, 4, 1], [1, 4, 6, 4, 1]).astype(np.float32) / 256


def _mirror_conv(x):
  """The reference's scipy.ndimage.convolve(mode='mirror') with the 5x5 filter."""
  p = np.pad(x, ((0, 0), (2, 2), (2, 2), (0, 0)), mode='reflect')
  h, w = x.shape[1:3]
  return sum(_FILTER[i, j] * p[:, i : i + h, j : j + w] for i in range(5) for j in range(5))


@pytest.fixture(scope='module')
def faces():
  """64 synthetic faces, uint8 48x48, through the training pipeline."""
  return evaluation.real_images(get_config('quick48'), 64, seed=0)


# --- SWD ---------------------------------------------------------------------


def test_pyramid_matches_the_reference_filter_and_reconstructs():
  rng = np.random.default_rng(0)
  x = rng.random((2, 16, 20, 3)).astype(np.float32)
  np.testing.assert_allclose(swd.pyr_down(x), _mirror_conv(x)[:, ::2, ::2], atol=1e-6)
  coarse = rng.random((2, 8, 10, 3)).astype(np.float32)
  zeros = np.zeros_like(x)
  zeros[:, ::2, ::2] = coarse
  np.testing.assert_allclose(swd.pyr_up(coarse, (16, 20)), 4 * _mirror_conv(zeros), atol=1e-6)
  # Odd, non-square: the Laplacian levels still add back to the image.
  y = rng.random((2, 157, 128, 3)).astype(np.float32)
  levels = swd.laplacian_pyramid(y, 4)
  assert [l.shape[1:3] for l in levels] == [(157, 128), (79, 64), (40, 32), (20, 16)]
  image = levels[-1]
  for level in levels[-2::-1]:
    image = swd.pyr_up(image, level.shape[1:3]) + level
  np.testing.assert_allclose(image, y, atol=1e-5)


def test_level_sizes_stop_at_16():
  assert swd.level_sizes(48, 48) == [(48, 48), (24, 24)]
  assert swd.level_sizes(64, 64) == [(64, 64), (32, 32), (16, 16)]
  assert swd.level_sizes(157, 128) == [(157, 128), (79, 64), (40, 32), (20, 16)]


def test_sliced_wasserstein_is_zero_for_a_permuted_set_and_exact_for_a_shift():
  rng = np.random.default_rng(0)
  a = rng.standard_normal((5000, 20)).astype(np.float32)
  # Not exactly 0: BLAS may block the permuted rows' projections differently
  # (the kernel differs between CPUs), so the sorted values differ by ulps.
  assert swd.sliced_wasserstein(a, a[rng.permutation(5000)], rng) == (pytest.approx(0.0, abs=1e-6))
  # Shifting every point by v moves each projection by d.v, so SWD =
  # E|d.v| = |v| E|d_1| with d uniform on the sphere in D dimensions:
  # E|d_1| = Gamma(D/2) / (sqrt(pi) Gamma((D+1)/2)).
  v = np.full(20, 0.3, np.float32)
  expected = np.linalg.norm(v) * math.exp(math.lgamma(10) - math.lgamma(10.5)) / math.sqrt(math.pi)
  got = swd.sliced_wasserstein(a, a + v, rng, dir_repeats=8, dirs_per_repeat=512)
  assert got == pytest.approx(expected, rel=0.05)


def test_swd_identical_sets_only_see_patch_sampling_noise(faces):
  # Real and fake patches are drawn independently (as in the reference), so
  # identical sets are not exactly 0: the noise shrinks with more patches.
  few = swd.swd(faces, faces, seed=1, patches_per_image=16)['avg']
  many = swd.swd(faces, faces, seed=1, patches_per_image=256)['avg']
  assert many < few / 2.5  # ~ 1/sqrt(patches): 4x expected
  assert swd.swd(faces, faces, seed=1) == swd.swd(faces, faces, seed=1)


def test_swd_grows_with_noise_and_blur(faces):
  rng = np.random.default_rng(0)
  x = faces.astype(np.float32)
  noise = rng.standard_normal(x.shape).astype(np.float32)
  by_noise = [
    swd.swd(faces, np.clip(x + sd * noise, 0, 255), seed=2, patches_per_image=64)['avg']
    for sd in (0, 4, 12, 36)
  ]
  assert by_noise == sorted(by_noise), by_noise
  assert by_noise[-1] > 3 * by_noise[0]
  blurred, by_blur = x, [swd.swd(faces, x, 2, 64)['48x48']]
  for _ in range(3):
    blurred = swd._blur(swd._blur(blurred))
    by_blur.append(swd.swd(faces, blurred, 2, 64)['48x48'])
  assert by_blur == sorted(by_blur), by_blur
  assert by_blur[-1] > 3 * by_blur[0]


def test_descriptor_normalisation_is_exact_on_a_colour_shifted_set():
  # Large offset, small spread: the coarse level of a colour-shifted set.
  rng = np.random.default_rng(0)
  desc = (200 + 0.5 * rng.standard_normal((20000, 7, 7, 3))).astype(np.float32)
  out = swd.normalize(desc).reshape(-1, 3).astype(np.float64)
  np.testing.assert_allclose(out.mean(axis=0), 0, atol=1e-4)
  np.testing.assert_allclose(out.std(axis=0), 1, atol=1e-4)


def test_swd_handles_odd_sizes_and_refuses_mismatched_sets():
  rng = np.random.default_rng(0)
  a = rng.integers(0, 256, (8, 157, 128, 3), dtype=np.uint8)
  out = swd.swd(a, a[::-1], patches_per_image=8)
  assert list(out) == ['157x128', '79x64', '40x32', '20x16', 'avg']
  assert out['avg'] == pytest.approx(np.mean(list(out.values())[:-1]))
  with pytest.raises(ValueError, match='same shape'):
    swd.swd(a, a[:4])


# --- FID / KID ---------------------------------------------------------------


def _random_spd(rng, d):
  q, _ = np.linalg.qr(rng.standard_normal((d, d)))
  return q, rng.uniform(0.2, 3.0, d)


def test_frechet_distance_of_identical_statistics_is_zero():
  rng = np.random.default_rng(0)
  feats = rng.standard_normal((500, 64))
  assert fid.fid(feats, feats) == pytest.approx(0.0, abs=1e-6)


def test_frechet_distance_closed_forms():
  rng = np.random.default_rng(0)
  d = 32
  mu1, mu2 = rng.standard_normal(d), rng.standard_normal(d)
  # Commuting covariances (same eigenvectors): sqrt terms are per eigenvalue,
  # d^2 = |mu1 - mu2|^2 + sum_i (sqrt(a_i) - sqrt(b_i))^2.
  q, a = _random_spd(rng, d)
  b = rng.uniform(0.2, 3.0, d)
  s1, s2 = (q * a) @ q.T, (q * b) @ q.T
  expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
  assert fid.frechet_distance(mu1, s1, mu2, s2) == pytest.approx(expected, rel=1e-9)
  # General 2x2 (non-commuting): Tr(sqrt(M)) = sqrt(Tr M + 2 sqrt(det M)).
  s1 = np.array([[2.0, 0.7], [0.7, 1.0]])
  s2 = np.array([[0.5, -0.3], [-0.3, 1.5]])
  assert not np.allclose(s1 @ s2, s2 @ s1)
  tr_sqrt = math.sqrt(np.trace(s1 @ s2) + 2 * math.sqrt(np.linalg.det(s1) * np.linalg.det(s2)))
  expected = 1.0 + np.trace(s1) + np.trace(s2) - 2 * tr_sqrt
  got = fid.frechet_distance(np.zeros(2), s1, np.array([1.0, 0.0]), s2)
  assert got == pytest.approx(expected, rel=1e-9)


def test_fid_of_large_gaussian_samples_matches_the_closed_form():
  rng = np.random.default_rng(1)
  d = 8
  q, a = _random_spd(rng, d)
  _, b = _random_spd(rng, d)
  s1, s2 = (q * a) @ q.T, np.diag(b)  # not commuting
  mu1, mu2 = np.zeros(d), np.full(d, 0.5)
  x = rng.multivariate_normal(mu1, s1, 200_000)
  y = rng.multivariate_normal(mu2, s2, 200_000)
  exact = fid.frechet_distance(mu1, s1, mu2, s2)
  assert exact > 2.0
  assert fid.fid(x, y) == pytest.approx(exact, rel=0.02)


def test_mmd2_unbiased_matches_the_definition():
  rng = np.random.default_rng(0)
  x, y = rng.standard_normal((7, 5)), rng.standard_normal((9, 5)) + 0.3
  k = lambda u, v: (u @ v / 5 + 1) ** 3
  xx = sum(k(x[i], x[j]) for i in range(7) for j in range(7) if i != j) / 42
  yy = sum(k(y[i], y[j]) for i in range(9) for j in range(9) if i != j) / 72
  xy = sum(k(x[i], y[j]) for i in range(7) for j in range(9)) / 63
  assert fid.mmd2_unbiased(x, y) == pytest.approx(xx + yy - 2 * xy, rel=1e-9)


def test_kid_is_unbiased_for_one_distribution_and_positive_for_two():
  rng = np.random.default_rng(0)
  d = 16
  same = [
    fid.mmd2_unbiased(rng.standard_normal((50, d)), rng.standard_normal((50, d)))
    for _ in range(400)
  ]
  shifted = [
    fid.mmd2_unbiased(rng.standard_normal((50, d)), rng.standard_normal((50, d)) + 0.3)
    for _ in range(400)
  ]
  se = np.std(same) / math.sqrt(len(same))
  assert abs(np.mean(same)) < 3 * se  # E = 0: unbiased
  assert np.mean(shifted) > 10 * se
  # The subset-averaged KID on one pair of sets behaves the same way.
  a, b = rng.standard_normal((600, d)), rng.standard_normal((600, d))
  same_kid = fid.kid(a, b, subsets=20, subset_size=300)
  far_kid = fid.kid(a, b + 0.3, subsets=20, subset_size=300)
  assert abs(same_kid['mean']) < 0.2 * far_kid['mean']
  assert far_kid['mean'] > 3 * far_kid['std']


def test_kid_on_fewer_images_than_a_subset_says_so_instead_of_std_0():
  rng = np.random.default_rng(0)
  a, b = rng.standard_normal((40, 8)), rng.standard_normal((40, 8))
  whole = fid.kid(a, b, subset_size=1000)
  assert whole['std'] is None and whole['subset_size'] == 40
  assert whole['mean'] == pytest.approx(fid.mmd2_unbiased(a, b))
  smaller = fid.kid(a, b[:30], subset_size=1000)  # subsets of a still vary
  assert smaller['subset_size'] == 30 and smaller['std'] > 0
  assert 'no spread' in evaluation.format_table({'kid': whole})


def test_fid_and_kid_need_two_images_per_set():
  one, two = np.zeros((1, 4)), np.ones((2, 4))
  for metric in (fid.fid, fid.kid):
    with pytest.raises(ValueError, match='at least 2 images'):
      metric(one, two)
  with pytest.raises(evaluation.EvaluationError, match='--num_samples'):
    evaluation.compute_metrics(
      np.zeros((1, 8, 8, 3), np.uint8), np.zeros((1, 8, 8, 3), np.uint8), ['fid']
    )


# --- InceptionV3 ------------------------------------------------------------


def test_missing_inception_weights_give_a_clear_error(tmp_path):
  missing = str(tmp_path / 'nope.h5')
  with pytest.raises(inception.InceptionWeightsError) as info:
    inception.load_inception(missing)
  message = str(info.value)
  assert missing in message and '--inception_weights' in message
  assert inception.WEIGHTS_URL in message and '\n' not in message


def test_failed_download_gives_the_same_error(monkeypatch):
  def offline(**kwargs):
    raise Exception('URL fetch failure on https://storage.googleapis.com/...')

  monkeypatch.setattr(inception.keras.applications, 'InceptionV3', offline)
  with pytest.raises(
    inception.InceptionWeightsError, match='downloading them failed.*URL fetch failure'
  ):
    inception.load_inception('imagenet')


def test_inception_features_shape_with_random_weights():
  extract = inception.InceptionFeatures(weights=None, batch_size=2)
  images = np.random.default_rng(0).integers(0, 256, (3, 48, 40, 3), dtype=np.uint8)
  feats = extract(images)
  assert feats.shape == (3, inception.FEATURE_DIM)
  assert np.all(np.isfinite(feats)) and feats.std() > 0


# --- evaluate_run and evaluate.py -------------------------------------------


def test_evaluate_run_writes_swd_for_ema_and_raw_g(tiny_run):
  result = run_eval.evaluate_run(tiny_run, ['swd'], num_samples=32, seed=0)
  assert result['generator'] == 'ema_generator' and result['step'] == 8
  path = os.path.join(tiny_run, 'eval', 'metrics_step8_n32_seed0.json')
  assert result['output'] == path
  with open(path) as f:
    saved = json.load(f)
  assert list(saved['swd']) == ['32x32', '16x16', 'avg']
  # An 8-step G is far from the data: well above the real-vs-real floor.
  floor = run_eval.evaluate_run(tiny_run, ['swd'], 32, compare_real=True)
  assert os.path.isfile(os.path.join(tiny_run, 'eval', 'real_vs_real_n32_seed0.json'))
  assert saved['swd']['avg'] > 2 * floor['swd']['avg']
  raw = run_eval.evaluate_run(tiny_run, ['swd'], 32, use_ema=False)
  assert raw['generator'] == 'generator'
  assert raw['output'].endswith('metrics_step8_n32_seed0_no_ema.json')
  assert raw['swd'] != saved['swd']
  # Another N or seed adds a file; the first stays as it was.
  other = run_eval.evaluate_run(tiny_run, ['swd'], 16, seed=1)
  assert other['output'].endswith('metrics_step8_n16_seed1.json')
  with open(path) as f:
    assert json.load(f) == saved
  assert not glob.glob(os.path.join(tiny_run, 'eval', '*.tmp*'))


def test_evaluate_run_plumbs_fid_and_kid(tiny_run):
  # Random InceptionV3 weights: checks the path, not the values.
  result = run_eval.evaluate_run(tiny_run, ['fid', 'kid'], 8, inception_weights=None, write=False)
  assert result['fid'] > 0 and np.isfinite(result['kid']['mean'])
  assert 'output' not in result and 'swd' not in result
  table = evaluation.format_table(result)
  assert 'FID' in table and 'KID x1e3' in table


def test_the_loaded_generator_redraws_the_runs_last_sample_grid(tiny_run):
  from PIL import Image
  from pictures import images as img

  _, _, generator = checkpoints.load_generator(tiny_run)
  z = np.load(os.path.join(tiny_run, rundir.FIXED_LATENT_FILE))
  grid = img.make_grid(latents.render(generator, z))
  saved = np.asarray(Image.open(os.path.join(tiny_run, 'samples', 'epoch_0002.png')))
  assert grid.shape == saved.shape
  # Random weights would differ everywhere; allow float rounding at .5.
  assert np.abs(grid.astype(int) - saved).max() <= 1


def test_a_checkpoint_without_the_generator_is_refused(tiny_run, tmp_path):
  run = str(tmp_path / 'run')
  os.makedirs(os.path.join(run, rundir.CHECKPOINT_DIR))
  shutil.copy(os.path.join(tiny_run, rundir.CONFIG_FILE), run)
  tf.train.Checkpoint(step=tf.Variable(5, dtype=tf.int64)).save(
    os.path.join(run, rundir.CHECKPOINT_DIR, 'ckpt')
  )
  # The shared loader refuses it (RunDirError) before any image is drawn.
  with pytest.raises(
    rundir.RunDirError,
    match=r'into the ema_generator .*: (\d+) of its \1 '
    'variables are missing',
  ):
    run_eval.evaluate_run(run, ['swd'], 16)
  assert not os.path.exists(os.path.join(run, rundir.EVAL_DIR))
  with pytest.raises(rundir.RunDirError, match='No checkpoint found'):
    run_eval.evaluate_run(str(tmp_path / 'missing'), ['swd'], 16)
  with pytest.raises(evaluation.EvaluationError, match='choose from'):
    evaluation.parse_metrics(['swd', 'is'])


def test_evaluate_py_prints_a_table_and_fails_clearly(tiny_run, tmp_path):
  out = str(tmp_path / 'm.json')
  cmd = [
    sys.executable,
    os.path.join(ROOT, 'evaluate.py'),
    f'--checkpoint={tiny_run}',
    '--metrics=swd,coverage',
    '--num_samples=16',
    '--seed=3',
    f'--output={out}',
  ]
  proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120)
  assert proc.returncode == 0, proc.stderr[-2000:]
  assert 'SWD x1e3 avg' in proc.stdout and 'ema_generator at step 8' in proc.stdout
  assert 'coverage (pixels, k=5)' in proc.stdout
  with open(out) as f:
    result = json.load(f)
  assert result['seed'] == 3 and 0 <= result['coverage']['coverage'] <= 1
  few = subprocess.run(
    cmd[:-2] + ['--num_samples=5'], cwd=ROOT, capture_output=True, text=True, timeout=120
  )
  assert few.returncode == 1 and few.stderr.strip().splitlines()[-1] == (
    'error: coverage with k=5 needs at least 6 images in each set, got 5 '
    'real and 5 generated: raise --num_samples.'
  )
  bad = subprocess.run(
    cmd[:2] + ['--checkpoint=/no/such/run', '--metrics=fid'],
    cwd=ROOT,
    capture_output=True,
    text=True,
    timeout=120,
  )
  assert bad.returncode != 0 and 'error: No checkpoint found' in bad.stderr


@pytest.mark.slow
def test_eval_every_logs_swd_to_tensorboard(tmp_path):
  workdir = str(tmp_path / 'run')
  loop.run(get_config('tiny', eval_every=4, eval_num_samples=32), workdir)
  swd_steps = helpers.scalars(workdir, 'eval/swd')
  assert sorted(swd_steps) == [4, 8]
  assert all(np.isfinite(v) and v > 0 for v in swd_steps.values())
  with open(os.path.join(workdir, 'eval', 'during_training.jsonl')) as f:
    logged = [json.loads(line) for line in f]
  assert [e['step'] for e in logged] == [4, 8]
  assert [e['eval/swd'] for e in logged] == pytest.approx([swd_steps[4], swd_steps[8]], rel=1e-5)
  # Coverage and the colour check are on by default (eval_metrics).
  coverage = helpers.scalars(workdir, 'eval/coverage')
  assert sorted(coverage) == [4, 8]
  assert all(0 <= v <= 1 for v in coverage.values())
  assert all(0 <= e['eval/face_coverage'] <= 1 and 'eval/face_recall' in e for e in logged)
  assert all(abs(e['eval/channel_mean_diff/g']) < 255 for e in logged)
  # The better of the two SWDs is kept in best/ (--keep_best=swd by default)
  # and loads like a run directory.
  with open(os.path.join(workdir, 'best', 'best.json')) as f:
    best = json.load(f)
  best_step = min(swd_steps, key=swd_steps.get)
  assert best['step'] == best_step and best['metric'] == 'swd'
  assert best['value'] == pytest.approx(swd_steps[best_step], rel=1e-5)
  _, run_dir, prefix, _ = load_generator_from(os.path.join(workdir, 'best'))
  assert run_dir == workdir and prefix.endswith(f'ckpt-{best_step}')


def test_eval_split_draws_the_real_set_from_held_out_faces(celeba_dir, tmp_path):
  from PIL import Image
  from metrics.evaluation import TrainingEvaluator

  images = tmp_path / 'img_align_celeba'
  images.mkdir()
  names = sorted(os.listdir(os.path.join(celeba_dir, 'img_align_celeba')))
  for n in names:
    os.symlink(os.path.join(celeba_dir, 'img_align_celeba', n), images / n)
  for n in ('900001.jpg', '900002.jpg'):  # held out: plain red frames
    Image.new('RGB', (178, 218), (255, 0, 0)).save(images / n)
  (tmp_path / 'list_eval_partition.txt').write_text(
    ''.join(f'{n} 0\n' for n in names) + '900001.jpg 1\n900002.jpg 2\n'
  )
  config = get_config(
    'tiny', dataset='celeba', data_dir=str(tmp_path), eval_num_samples=2, eval_metrics='swd'
  )
  held = TrainingEvaluator(dataclasses.replace(config, eval_split='heldout'))
  assert held.real[..., 0].min() > 240 and held.real[..., 1:].max() < 15
  default = TrainingEvaluator(config)  # the training split: real faces
  assert default.real[..., 1].max() > 100


def test_a_held_out_split_that_cannot_exist_is_refused_before_training(celeba_dir, tmp_path):
  from data.pipeline import DataError
  from metrics.evaluation import TrainingEvaluator
  from training import loop

  images = tmp_path / 'faces' / 'img_align_celeba'
  images.mkdir(parents=True)
  for n in sorted(os.listdir(os.path.join(celeba_dir, 'img_align_celeba'))):
    os.symlink(os.path.join(celeba_dir, 'img_align_celeba', n), images / n)
  no_partition = get_config(
    'tiny',
    dataset='celeba',
    eval_every=2,
    data_dir=str(tmp_path / 'faces'),
    eval_split='heldout',
    eval_num_samples=4,
    eval_metrics='swd',
  )
  with pytest.raises(DataError, match='has no list_eval_partition.txt'):
    TrainingEvaluator(no_partition)
  for config, message in (
    (no_partition, 'every split is every image'),
    (
      get_config('tiny', eval_every=2, eval_split='valid', eval_metrics='swd'),
      'the synthetic source has no partitions',
    ),
  ):
    workdir = tmp_path / 'run'
    with pytest.raises(DataError, match=message):
      loop.run(config, str(workdir))
    assert not workdir.exists()  # refused before the run directory
  # Scoring on the training split itself needs no partitions.
  same = dataclasses.replace(no_partition, eval_split='train')
  assert len(TrainingEvaluator(same).real) == 4
