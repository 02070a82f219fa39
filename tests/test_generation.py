import dataclasses
import json
import os
import shutil
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from configs.presets import get_config
from models import checkpoint
from models import export
from models import latents
from models.gan import GAN
from models.generator import Generator
from pictures import exports
from training import checkpoints
from training import rundir
from training.rundir import RunDirError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FAST = exports.Options(
  num=6,
  grid_cols=3,
  num_interpolations=2,
  frames=5,
  fps=10,
  dims=(1, 5),
  range=2.0,
  walk_steps=4,
  num_directions=2,
  direction_bases=3,
)


@pytest.fixture(scope='module')
def tiny(tiny_run):
  return checkpoints.load_generator(tiny_run)


def _gif(path):
  im = Image.open(path)
  frames = []
  for i in range(im.n_frames):
    im.seek(i)
    frames.append(np.asarray(im.convert('RGB')))
  return frames


def _tile(n, size, cols):
  """Size of make_grid's picture of n tiles of size (h, w) in cols columns."""
  rows = -(-n // cols)
  return rows * (size[0] + 2) + 2, cols * (size[1] + 2) + 2


def _run_generate(*args):
  return subprocess.run(
    [sys.executable, os.path.join(ROOT, 'generate.py'), *args],
    cwd=ROOT,
    capture_output=True,
    text=True,
    timeout=240,
  )


# Latent math on known vectors.


def test_slerp_endpoints_midpoint_and_norms():
  z1, z2 = np.array([2.0, 0.0, 0.0]), np.array([0.0, 2.0, 0.0])
  path = latents.slerp(z1, z2, [0.0, 0.5, 1.0])
  np.testing.assert_allclose(path[0], z1, atol=1e-12)
  np.testing.assert_allclose(path[-1], z2, atol=1e-12)
  np.testing.assert_allclose(path[1], [np.sqrt(2), np.sqrt(2), 0.0])
  rng = np.random.default_rng(0)
  a, b = rng.standard_normal((2, 3, 50))
  b *= np.linalg.norm(a, axis=-1, keepdims=True) / np.linalg.norm(
    b, axis=-1, keepdims=True
  )  # equal norms, pair by pair
  norms = np.linalg.norm(latents.slerp(a, b, np.linspace(0, 1, 7)), axis=-1)
  np.testing.assert_allclose(norms, np.broadcast_to(norms[0], norms.shape))
  # Linear interpolation between the same pairs dips in norm in the middle.
  assert np.all(np.linalg.norm(latents.lerp(a, b, [0.5]), axis=-1) < norms[0] - 1)
  # Parallel latents (w = 0) fall back to the straight line.
  np.testing.assert_allclose(latents.slerp(z1, 3 * z1, [0.5])[0], 2 * z1)


def test_circle_keeps_the_norm_and_closes_the_loop():
  rng = np.random.default_rng(1)
  z1, z2 = rng.standard_normal((2, 2, 16))
  theta = latents.circle_angles(8)
  path = latents.circle(z1, z2, theta)
  assert path.shape == (8, 2, 16)
  np.testing.assert_allclose(path[0], z1, atol=1e-12)
  np.testing.assert_allclose(
    np.linalg.norm(path, axis=-1), np.broadcast_to(np.linalg.norm(z1, axis=-1), (8, 2))
  )
  # No repeated start frame, but one step after the last frame is frame 0.
  assert not np.allclose(path[-1], path[0])
  step = theta[1] - theta[0]
  np.testing.assert_allclose(latents.circle(z1, z2, [theta[-1] + step])[0], path[0], atol=1e-12)
  # A quarter turn is orthogonal to z1.
  quarter = latents.circle(z1, z2, [np.pi / 2])[0]
  np.testing.assert_allclose(np.sum(quarter * z1, axis=-1), 0, atol=1e-9)
  with pytest.raises(latents.LatentError, match='parallel'):
    latents.circle(z1[0], -2 * z1[0], theta)


def test_walk_changes_only_one_dimension():
  z = np.arange(6.0)
  path = latents.walk(z, 3, [-1.0, 0.0, 2.5])
  np.testing.assert_array_equal(path[:, 3], [-1.0, 0.0, 2.5])
  np.testing.assert_array_equal(np.delete(path, 3, axis=1), np.tile(np.delete(z, 3), (3, 1)))
  with pytest.raises(latents.LatentError, match='latent_dim=6'):
    latents.walk(z, 6, [0.0])


def test_latents_are_seeded_and_truncated():
  c = get_config('tiny')
  a = latents.sample_latents(c, 500, seed=3, stream=1)
  np.testing.assert_array_equal(a, latents.sample_latents(c, 500, 3, 1))
  assert not np.array_equal(a, latents.sample_latents(c, 500, 4, 1))
  assert a.dtype == np.float32 and np.abs(a).max() > 2.5
  t = latents.sample_latents(c, 500, 3, 1, truncation=0.5)
  assert np.abs(t).max() <= 0.5 and t.std() > 0.2
  u = get_config('tiny', latent_dist='uniform')
  np.testing.assert_allclose(
    latents.sample_latents(u, 50, 3, 1, truncation=0.5),
    0.5 * latents.sample_latents(u, 50, 3, 1),
    rtol=1e-6,
  )
  with pytest.raises(latents.LatentError, match='positive'):
    latents.sample_latents(c, 1, 0, 1, truncation=0.0)
  assert latents.default_dims(100) == (25, 50, 75)
  assert latents.default_dims(16) == (4, 8, 12)


# Outputs of a trained run.


def test_every_mode_writes_its_files(tiny, tmp_path):
  config, run_dir, g = tiny
  out = str(tmp_path)
  paths = exports.generate(exports.ALL_MODES, g, config, run_dir, out, FAST)
  names = sorted(os.path.relpath(p, out) for p in paths)
  assert names == [
    'circle.gif',
    'direction_00.png',
    'direction_01.png',
    'directions.png',
    'grid.png',
    'interpolation_slerp.gif',
    'progress.gif',
    'walk_dim001.gif',
    'walk_dim001.png',
    'walk_dim005.gif',
    'walk_dim005.png',
  ]
  assert Image.open(os.path.join(out, 'grid.png')).size[::-1] == _tile(6, (32, 32), 3)
  pair_grid = _tile(2, (32, 32), 2)
  for name in ('interpolation_slerp.gif', 'circle.gif'):
    frames = _gif(os.path.join(out, name))
    assert len(frames) == 5 and frames[0].shape[:2] == pair_grid
  circle = _gif(os.path.join(out, 'circle.gif'))
  assert np.abs(circle[0].astype(int) - circle[-1]).max() > 0
  walk = _gif(os.path.join(out, 'walk_dim005.gif'))
  assert len(walk) == 5 and walk[0].shape[:2] == (32, 32)
  assert not np.array_equal(walk[0], walk[-1])
  # A strip per direction (3 faces x 4 steps, captioned), and the first
  # face along each direction, one row each.
  strip = np.asarray(Image.open(os.path.join(out, 'direction_01.png')))
  assert strip.shape[:2] == (_tile(12, (32, 32), 4)[0] + 14, _tile(12, (32, 32), 4)[1])
  overview = np.asarray(Image.open(os.path.join(out, 'directions.png')))
  assert overview.shape[:2] == _tile(8, (32, 32), 4)
  assert not np.array_equal(overview[2:34, 2:34], overview[2:34, -34:-2])
  strip = Image.open(os.path.join(out, 'walk_dim005.png'))
  assert strip.size[::-1] == _tile(4, (32, 32), 4)
  # Two epochs, labelled (the caption strip adds 14 rows), last one held.
  progress = _gif(os.path.join(out, 'progress.gif'))
  assert len(progress) >= 2 and progress[0].shape[0] == 4 * 34 + 2 + 14
  linear = exports.write_interpolation(
    g, config, out, dataclasses.replace(FAST, interpolation='linear')
  )
  assert os.path.basename(linear) == 'interpolation_linear.gif'
  assert len(_gif(linear)) == 5


def test_interpolation_ends_on_the_pair_images(tiny, tmp_path):
  config, run_dir, g = tiny
  z1, z2 = exports._pairs(config, FAST)
  path = latents.slerp(z1, z2, np.linspace(0, 1, FAST.frames))
  first, last = latents.render(g, path[0]), latents.render(g, path[-1])
  np.testing.assert_array_equal(first, latents.render(g, z1))
  np.testing.assert_array_equal(last, latents.render(g, z2))


def test_same_seed_same_bytes_across_processes(tiny, tiny_run, tmp_path):
  config, run_dir, g = tiny
  opts = exports.Options(num=9, seed=5)
  a = exports.write_grid(g, config, str(tmp_path / 'a'), opts)
  other = exports.write_grid(g, config, str(tmp_path / 'b'), exports.Options(num=9, seed=6))
  out = str(tmp_path / 'cli')
  r = _run_generate(
    f'--checkpoint={tiny_run}', f'--out={out}', '--mode=grid', '--num=9', '--seed=5'
  )
  assert r.returncode == 0, r.stderr[-2000:]
  read = lambda p: open(p, 'rb').read()
  assert read(os.path.join(out, 'grid.png')) == read(a)
  assert read(other) != read(a)


def test_ema_and_raw_generator_load_their_own_weights(tiny_run, tiny):
  _, _, ema = checkpoints.load_generator(tiny_run, standing_stats=False)
  _, _, raw = checkpoints.load_generator(tiny_run, use_ema=False)
  prefix = tf.train.latest_checkpoint(os.path.join(tiny_run, 'checkpoints'))
  for key, g in (('ema_generator', ema), ('generator', raw)):
    for name, v in checkpoints.model_state(g).items():
      np.testing.assert_array_equal(
        v.numpy(), tf.train.load_variable(prefix, f'{key}/{name}/.ATTRIBUTES/VARIABLE_VALUE')
      )
  assert any(
    not np.array_equal(a.numpy(), b.numpy())
    for a, b in zip(ema.trainable_variables, raw.trainable_variables)
  )
  # The EMA G's statistics are its own, not the raw G's: the checkpoint
  # holds them as a load measures them again.
  _, _, standing = tiny
  for s, e, r in zip(standing.batch_norms(), ema.batch_norms(), raw.batch_norms()):
    np.testing.assert_allclose(s.moving_mean, e.moving_mean, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(s.moving_variance, e.moving_variance, rtol=1e-4, atol=1e-6)
    assert np.abs(e.moving_mean.numpy() - r.moving_mean.numpy()).max() > 1e-4


def test_loading_replaces_an_ema_g_s_saved_statistics_with_its_own(tiny_run, tiny, tmp_path):
  """Checkpoints of older versions hold the raw G's statistics in the EMA G."""
  config, _, standing = tiny
  _, _, ema = checkpoints.load_generator(tiny_run, standing_stats=False)
  _, _, raw = checkpoints.load_generator(tiny_run, use_ema=False)
  for e, r in zip(ema.batch_norms(), raw.batch_norms()):
    e.moving_mean.assign(r.moving_mean)
    e.moving_variance.assign(r.moving_variance)
  shutil.copy(os.path.join(tiny_run, 'config.json'), tmp_path)
  prefix = tf.train.Checkpoint(ema_generator=checkpoints.model_state(ema)).save(
    str(tmp_path / 'checkpoints' / 'ckpt')
  )
  z = tf.constant(latents.sample_latents(config, 16, 0, 2))
  _, _, saved = checkpoints.load_generator(prefix, standing_stats=False)
  _, _, loaded = checkpoints.load_generator(prefix)
  assert np.abs(saved(z).numpy() - standing(z).numpy()).max() > 1e-3
  np.testing.assert_allclose(loaded(z), standing(z), atol=1e-5)


def test_rectangular_157x128_run(tmp_path):
  # A run directory without training: config.json and an initial checkpoint.
  workdir = str(tmp_path / 'rect')
  config = get_config('celeba157x128', g_filters=4, d_filters=4, dataset='synthetic')
  rundir.prepare(config, workdir)
  rundir.save_config(config, workdir)
  tf.train.Checkpoint(**checkpoints.gan_items(GAN(config))).save(
    os.path.join(workdir, 'checkpoints', 'ckpt')
  )
  config, run_dir, g = checkpoints.load_generator(os.path.join(workdir, 'checkpoints'))
  assert run_dir == workdir
  opts = exports.Options(num=2, num_interpolations=2, frames=3, dims=(99,), walk_steps=2)
  paths = exports.generate(
    ('grid', 'circle', 'walk'), g, config, run_dir, str(tmp_path / 'out'), opts
  )
  assert Image.open(paths[0]).size[::-1] == _tile(2, (157, 128), 2)
  frames = _gif(paths[1])
  assert len(frames) == 3 and frames[0].shape[:2] == _tile(2, (157, 128), 2)
  assert _gif(paths[2])[0].shape[:2] == (157, 128)


def test_a_weights_folder_loads_like_its_run(tiny, tmp_path):
  config, run_dir, g = tiny
  pack = str(tmp_path / 'pretrained')
  # The trainer's own paths stay behind: the folder is made to be shipped.
  trained = dataclasses.replace(
    config, data_dir='/home/me/celeba', inception_weights='/home/me/i.h5'
  )
  paths = exports.generate(('weights',), g, trained, run_dir, pack, FAST, step=7)
  assert sorted(os.path.basename(p) for p in paths) == ['config.json', 'generator.npz']
  loaded_config, folder, prefix, loaded = checkpoint.load_generator_from(pack)
  assert loaded_config == config and folder == pack and checkpoint.checkpoint_step(prefix) == 7
  assert loaded.name == 'ema_generator'
  # The prefix it returns loads again (as bench/score_runs.py does).
  assert checkpoint.find_checkpoint(prefix) == (pack, prefix)
  z = latents.sample_latents(config, 16, 0, 99)
  # int8 kernels: the images within a level or two of the run's.
  diff = latents.render(loaded, z).astype(int) - latents.render(g, z)
  assert np.abs(diff).max() <= 3 and np.abs(diff).mean() < 0.5
  ckpt = sum(os.path.getsize(p) for p in tf.io.gfile.glob(_latest(run_dir) + '*'))
  assert os.path.getsize(os.path.join(pack, 'generator.npz')) < ckpt / 6
  # Every tool takes it as --checkpoint; it holds the EMA G alone.
  r = _run_generate(f'--checkpoint={pack}', '--mode=grid', '--num=4')
  assert r.returncode == 0, r.stderr[-2000:]
  assert os.path.isfile(os.path.join(pack, 'generated', 'grid.png'))
  r = _run_generate(f'--checkpoint={pack}', '--mode=grid', '--no_ema')
  assert r.returncode == 1 and 'holds only the averaged (EMA) G' in r.stderr, r.stderr[-2000:]


def test_weights_are_stored_as_int8_kernels_and_read_back_within_half_a_step():
  rng = np.random.default_rng(0)
  kernel = rng.normal(0, 0.02, (5, 5, 8, 3)).astype(np.float32)
  kernel[..., 1] = 0  # an all-zero slice keeps a usable scale
  stored = export.compact_arrays('stage_conv_kernel', kernel)
  q, scale = stored['stage_conv_kernel'], stored['stage_conv_kernel' + checkpoint.SCALE_SUFFIX]
  assert q.dtype == np.int8 and scale.shape == (1, 1, 1, 3) and np.abs(q).max() == 127
  back = checkpoint.dequantized(stored)
  assert sorted(back) == ['stage_conv_kernel']
  assert np.all(np.abs(back['stage_conv_kernel'] - kernel) <= scale / 2 + 1e-9)
  assert np.all(back['stage_conv_kernel'][..., 1] == 0)
  # Everything else: float16, float32 where float16 overflows, integers as they are.
  assert export.compact_arrays('bn_gamma', np.ones(4, np.float32))['bn_gamma'].dtype == np.float16
  assert export.compact_arrays('sn_vector_u', np.ones((1, 4)))['sn_vector_u'].dtype == np.float16
  big = export.compact_arrays('bn_moving_variance', np.array([1e6], np.float32))
  assert big['bn_moving_variance'].dtype == np.float32
  assert export.compact_arrays('seed', np.array([3, 4]))['seed'].dtype.kind == 'i'
  # A folder written before (float16 kernels, no scales) reads back unchanged.
  old = {'stage_conv_kernel': kernel.astype(np.float16)}
  assert checkpoint.dequantized(old)['stage_conv_kernel'] is old['stage_conv_kernel']


def test_a_damaged_or_mismatched_weights_folder_is_refused(tiny, tmp_path):
  config, run_dir, g = tiny
  pack = str(tmp_path / 'pack')
  exports.generate(('weights',), g, config, run_dir, pack, FAST)
  weights = os.path.join(pack, 'generator.npz')
  data = open(weights, 'rb').read()
  with open(weights, 'wb') as f:
    f.write(data[: len(data) // 2])
  with pytest.raises(RunDirError, match='damaged or incomplete'):
    checkpoint.load_generator(pack)
  # A config.json of another architecture beside the weights.
  with open(weights, 'wb') as f:
    f.write(data)
  other = dataclasses.replace(config, g_filters=2 * config.g_filters)
  with open(os.path.join(pack, 'config.json'), 'w') as f:
    f.write(other.to_json())
  with pytest.raises(RunDirError, match='different runs'):
    checkpoint.load_generator(pack)


def test_savedmodel_serves_uint8_images_in_a_fresh_process(tiny, tmp_path):
  config, run_dir, g = tiny
  path = export.export_savedmodel(g, config, str(tmp_path))
  z = latents.sample_latents(config, 3, 0, 1)
  expected = latents.render(g, z)
  np.save(tmp_path / 'z.npy', z)
  code = (
    'import sys, numpy as np, tensorflow as tf\n'
    'm = tf.saved_model.load(sys.argv[1])\n'
    'out = m.signatures["serving_default"](z=tf.constant(np.load(sys.argv[2])))\n'
    'np.save(sys.argv[3], out["images"].numpy())\n'
  )
  r = subprocess.run(
    [sys.executable, '-c', code, path, str(tmp_path / 'z.npy'), str(tmp_path / 'x.npy')],
    capture_output=True,
    text=True,
    timeout=240,
    cwd=str(tmp_path),
    env={**os.environ, 'TF_CPP_MIN_LOG_LEVEL': '2'},
  )
  assert r.returncode == 0, r.stderr[-2000:]
  images = np.load(tmp_path / 'x.npy')
  assert images.dtype == np.uint8 and images.shape == (3, 32, 32, 3)
  np.testing.assert_allclose(images, expected, atol=1)


def test_tflite_model_matches_the_savedmodel(tiny, tmp_path):
  config, run_dir, g = tiny
  saved = tf.saved_model.load(export.export_savedmodel(g, config, str(tmp_path)))
  paths = exports.generate(('tflite',), g, config, run_dir, str(tmp_path), FAST)
  assert paths == [str(tmp_path / 'generator.tflite')]
  runner = tf.lite.Interpreter(model_path=paths[0]).get_signature_runner('serving_default')
  z = latents.sample_latents(config, 3, 0, 1)
  got = runner(z=z)['images']
  expected = saved.signatures['serving_default'](z=tf.constant(z))['images']
  assert got.dtype == np.uint8 and got.shape == (3, 32, 32, 3)
  np.testing.assert_allclose(got, expected.numpy(), atol=1)


def test_an_export_replaces_the_last_only_once_complete(tiny, tmp_path, monkeypatch):
  config, _, g = tiny
  path = export.export_savedmodel(g, config, str(tmp_path))
  (tmp_path / 'savedmodel' / 'stray.txt').write_text('from an older export')
  archive = type(keras.export.ExportArchive())  # the backend's

  def cut_short(self, folder, **kwargs):
    os.makedirs(os.path.join(folder, 'variables', 'variables_temp'))
    raise KeyboardInterrupt  # Ctrl-C while TensorFlow writes

  monkeypatch.setattr(archive, 'write_out', cut_short)
  with pytest.raises(KeyboardInterrupt):
    export.export_savedmodel(g, config, str(tmp_path))
  assert sorted(os.listdir(tmp_path)) == ['savedmodel']  # nothing beside it
  assert (tmp_path / 'savedmodel' / 'stray.txt').exists()  # the old one, whole
  monkeypatch.undo()
  assert export.export_savedmodel(g, config, str(tmp_path)) == path
  assert sorted(os.listdir(tmp_path)) == ['savedmodel']
  assert not (tmp_path / 'savedmodel' / 'stray.txt').exists()  # replaced
  z = latents.sample_latents(config, 2, 0, 1)
  loaded = tf.saved_model.load(path)  # held: its variables live in it
  images = loaded.serve(tf.constant(z))['images']
  np.testing.assert_allclose(images.numpy(), latents.render(g, z), atol=1)


def test_ctrl_c_during_the_tflite_conversion_writes_nothing(tiny, tmp_path, monkeypatch):
  import signal

  config, run_dir, g = tiny

  class Converter:
    def convert(self):
      os.kill(os.getpid(), signal.SIGINT)  # arrives inside TensorFlow's C++
      return b'a converted model'

  monkeypatch.setattr(tf.lite.TFLiteConverter, 'from_saved_model', lambda path: Converter())
  with pytest.raises(KeyboardInterrupt):
    exports.generate(('tflite',), g, config, run_dir, str(tmp_path), FAST)
  assert os.listdir(tmp_path) == []


def test_an_unwritable_out_is_one_line_for_every_export(tiny, tiny_run, tmp_path):
  blocker = tmp_path / 'a_file'
  blocker.write_text('not a folder')
  config, run_dir, g = tiny
  # Every export fails with an OSError (not a TensorFlow error), which
  # generate.py turns into its one line, shown once end to end.
  for mode in exports.ALL_MODES + ('savedmodel', 'tflite', 'weights'):
    with pytest.raises(OSError):
      exports.generate((mode,), g, config, run_dir, f'{blocker}/out', FAST)
  r = _run_generate(f'--checkpoint={tiny_run}', '--mode=grid', f'--out={blocker}/out')
  assert r.returncode == 1 and 'Traceback' not in r.stderr, r.stderr[-2000:]
  assert r.stderr.strip().splitlines()[-1].startswith('error: cannot write')


# Errors: one clear message each, never a G left at its random init.


def _copy(run, tmp_path, name):
  dst = str(tmp_path / name)
  shutil.copytree(run, dst)
  return dst


def _latest(run):
  return tf.train.latest_checkpoint(os.path.join(run, 'checkpoints'))


def test_a_checkpoint_rotated_away_while_read_falls_back_to_the_newest(
  tiny_run, tmp_path, monkeypatch
):
  # A train.py still training the run saves ckpt-12 and deletes ckpt-8
  # between the reader's pick of ckpt-8 and its read.
  run = _copy(tiny_run, tmp_path, 'training')
  ckpt_dir = os.path.join(run, 'checkpoints')
  find = checkpoints.find_checkpoint
  picked = []

  def rotated(path):
    run_dir, prefix = find(path)
    if not picked:
      for suffix in ('.index', '.data-00000-of-00001'):
        os.replace(prefix + suffix, os.path.join(ckpt_dir, 'ckpt-12' + suffix))
      checkpoints.write_checkpoint_state(
        ckpt_dir, [os.path.join(ckpt_dir, 'ckpt-4'), os.path.join(ckpt_dir, 'ckpt-12')]
      )
    picked.append(os.path.basename(prefix))
    return run_dir, prefix

  monkeypatch.setattr(checkpoint, 'find_checkpoint', rotated)
  _, _, g = checkpoints.load_generator(run)
  assert picked == ['ckpt-8', 'ckpt-12']
  # evaluate.py reads the same way.
  from metrics import run_eval

  picked.clear()
  second = _copy(tiny_run, tmp_path, 'training_too')
  ckpt_dir = os.path.join(second, 'checkpoints')
  result = run_eval.evaluate_run(second, ('swd',), num_samples=16)
  assert picked == ['ckpt-8', 'ckpt-12']
  assert result['swd']['avg'] > 0 and os.path.exists(result['output'])
  ckpt_dir = os.path.join(run, 'checkpoints')
  _, _, newest = checkpoints.load_generator(os.path.join(ckpt_dir, 'ckpt-12'))
  for a, b in zip(g.variables, newest.variables):
    np.testing.assert_array_equal(a.numpy(), b.numpy())
  # Named by its prefix, the deleted checkpoint is not swapped for another.
  for suffix in ('.index', '.data-00000-of-00001'):
    shutil.copy(
      os.path.join(ckpt_dir, 'ckpt-4' + suffix), os.path.join(ckpt_dir, 'ckpt-8' + suffix)
    )
  picked.clear()
  latest = os.path.join(ckpt_dir, 'ckpt-8')
  with pytest.raises(
    RunDirError, match='ckpt-8 was deleted while it was being read.*Pass the run directory'
  ):
    checkpoints.load_generator(latest)


def test_broken_run_directories_are_refused(tiny_run, tmp_path):
  with pytest.raises(RunDirError, match='No checkpoint found'):
    checkpoints.load_generator(str(tmp_path))
  # Without config.json, the config the checkpoint carries; a checkpoint
  # from before checkpoints carried one cannot be placed.
  no_config = _copy(tiny_run, tmp_path, 'no_config')
  os.remove(os.path.join(no_config, 'config.json'))
  config, _, _ = checkpoints.load_generator(no_config)
  assert config == dataclasses.replace(
    rundir.load_config(tiny_run), jit_compile='off'
  )  # as resolved
  prefix = _latest(no_config)
  reader = tf.train.load_checkpoint(prefix)
  names = [n for n in reader.get_variable_to_shape_map() if not n.startswith('run_config/')]
  old_style = tf.train.Checkpoint(
    **{str(i): tf.Variable(reader.get_tensor(n)) for i, n in enumerate(names)}
  )
  with pytest.raises(RunDirError, match='saved before checkpoints carried their config'):
    checkpoints.run_config(no_config, old_style.write(str(tmp_path / 'old_ckpt')))
  old = _copy(tiny_run, tmp_path, 'old')
  cfg = os.path.join(old, 'config.json')
  fields = json.load(open(cfg))
  json.dump({**fields, 'version': 0}, open(cfg, 'w'))
  with pytest.raises(RunDirError, match='version'):
    checkpoints.load_generator(old)
  json.dump({**fields, 'g_filters': 4}, open(cfg, 'w'))  # not this run's G
  with pytest.raises(
    RunDirError,
    match=r'cannot be restored.*: 0 of its '
    r'(\d+) variables are missing and [1-9]\d* have another '
    'shape',
  ):
    checkpoints.load_generator(old)


def test_corrupt_or_partial_checkpoints_are_refused(tiny_run, tmp_path):
  truncated = _copy(tiny_run, tmp_path, 'truncated')
  data = _latest(truncated) + '.data-00000-of-00001'
  with open(data, 'r+b') as f:
    f.truncate(os.path.getsize(data) // 2)
  with pytest.raises(RunDirError, match='truncated or partial'):
    checkpoints.load_generator(truncated)
  no_index = _copy(tiny_run, tmp_path, 'no_index')
  prefix = _latest(no_index)
  os.remove(prefix + '.index')
  # Found by checkpoints.find_checkpoint itself, so every caller gets this message
  # rather than "no checkpoint found" or a silent fall-back to ckpt-4.
  for load in (checkpoints.load_generator, checkpoints.find_checkpoint):
    with pytest.raises(RunDirError, match=r'ckpt-8\.index is missing.*ckpt-4'):
      load(no_index)
  with pytest.raises(RunDirError, match=r'\.index is missing'):
    checkpoints.load_generator(prefix)


def test_a_checkpoint_without_the_generator_is_refused(tiny_run, tmp_path):
  # Only the raw G saved, while config.json promises an EMA copy: the restore
  # must fail instead of returning an EMA G at its random initialisation.
  run = str(tmp_path / 'raw_only')
  os.makedirs(os.path.join(run, 'checkpoints'))
  shutil.copy(os.path.join(tiny_run, 'config.json'), run)
  g = Generator(get_config('tiny'))
  g(tf.zeros((1, 16)))
  tf.train.Checkpoint(generator=checkpoints.model_state(g)).save(
    os.path.join(run, 'checkpoints', 'ckpt')
  )
  with pytest.raises(
    RunDirError,
    match=r'into the ema_generator .*: (\d+) of '
    r'its \1 variables are missing.*only the raw G.*--no_ema',
  ):
    checkpoints.load_generator(run)
  assert checkpoints.load_generator(run, use_ema=False)[2] is not None


def test_cli_errors_exit_1_with_one_line_and_no_traceback(tiny_run, tmp_path):
  for args, message in (
    ([f'--checkpoint={tmp_path}'], 'No checkpoint found'),
    (
      [f'--checkpoint={tiny_run}', '--mode=walk', '--dims=3,16', f'--out={tmp_path}'],
      'out of range',
    ),
  ):
    r = _run_generate(*args)
    assert r.returncode == 1
    assert 'error: ' in r.stderr and message in r.stderr
    assert 'Traceback' not in r.stderr + r.stdout
  assert not os.listdir(tmp_path)  # nothing written before the dims check
