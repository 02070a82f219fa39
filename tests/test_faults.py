"""Fault injection: lost or damaged checkpoint files, NaN, --overwrite,
changed flags on resume, two processes on one run directory."""

import glob
import json
import os
import shutil
import signal
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from configs import presets
from configs.presets import get_config
from models.gan import GAN
from tests import helpers
from common import interrupts
from training import checkpoints, loop, rundir

# End-to-end: training runs, subprocesses (python -m pytest -m "not slow" skips them).
pytestmark = pytest.mark.slow

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _config(**overrides):
  # One checkpoint per step, three kept: ckpt-2, 3 and 4 after one epoch.
  return get_config('tiny', **{'epochs': 1, 'checkpoint_every_steps': 1, **overrides})


def _ckpt(workdir, name=''):
  return os.path.join(workdir, 'checkpoints', name)


@pytest.fixture(scope='module')
def _run4_template(tmp_path_factory):
  workdir = str(tmp_path_factory.mktemp('template') / 'run')
  loop.run(_config(), workdir)
  assert helpers.checkpoint_steps(workdir) == [2, 3, 4]
  return workdir


@pytest.fixture
def run4(_run4_template, tmp_path):
  """A finished one-epoch tiny run (checkpoints at steps 2, 3, 4), a copy
  of its own for each test, trained once per module."""
  workdir = str(tmp_path / 'run')
  shutil.copytree(_run4_template, workdir)
  return workdir


def test_a_lost_state_file_resumes_from_the_newest_checkpoint(run4, capsys):
  os.remove(_ckpt(run4, 'checkpoint'))
  loop.run(_config(epochs=2), run4)
  assert 'Resumed from' in capsys.readouterr().out
  assert helpers.checkpoint_steps(run4) == [6, 7, 8]  # 4 more steps, not 8


def test_a_missing_index_falls_back_to_the_previous_checkpoint(run4, capsys):
  os.remove(_ckpt(run4, 'ckpt-4.index'))
  loop.run(_config(epochs=2), run4)
  assert 'ckpt-3 (step 3' in capsys.readouterr().out
  assert helpers.checkpoint_steps(run4)[-1] == 8


def test_checkpoint_files_without_a_complete_one_never_restart_from_0(run4):
  for index in glob.glob(_ckpt(run4, '*.index')):
    os.remove(index)
  data = sorted(glob.glob(_ckpt(run4, '*.data-*')))
  with pytest.raises(rundir.RunDirError, match='no complete checkpoint'):
    loop.run(_config(epochs=2), run4)
  assert sorted(glob.glob(_ckpt(run4, '*.data-*'))) == data  # nothing rotated


def _truncate(prefix):
  data = glob.glob(prefix + '.data-*')[0]
  with open(data, 'r+b') as f:
    f.truncate(os.path.getsize(data) // 2)


def test_a_truncated_checkpoint_is_skipped_with_a_message(run4, capsys):
  _truncate(_ckpt(run4, 'ckpt-4'))
  loop.run(_config(epochs=2), run4)
  out = capsys.readouterr().out
  assert 'Skipped the unreadable checkpoint ckpt-4' in out
  assert 'ckpt-3 (step 3' in out


def test_all_checkpoints_unreadable_is_one_clear_error(run4):
  before = open(os.path.join(run4, 'config.json')).read()
  for step in (2, 3, 4):
    _truncate(_ckpt(run4, f'ckpt-{step}'))
  with pytest.raises(rundir.RunDirError, match='can be read.*--overwrite'):
    loop.run(_config(epochs=2), run4)
  # config.json is written only once a restore succeeded.
  assert open(os.path.join(run4, 'config.json')).read() == before


def test_stale_temp_folders_of_an_interrupted_save_are_removed(run4, capsys):
  os.makedirs(_ckpt(run4, 'ckpt-5_temp'))
  loop.run(_config(epochs=2), run4)
  assert 'Removed ckpt-5_temp' in capsys.readouterr().out
  assert not os.path.exists(_ckpt(run4, 'ckpt-5_temp'))


def test_non_finite_weights_are_never_saved(run4, monkeypatch):
  def poison_after_step_6(gan):
    if int(gan.step) == 6:  # the loss of step 6 was still finite
      v = gan.discriminator.trainable_variables[0]
      v.assign(tf.fill(v.shape, np.nan))

  helpers.hook_train_steps(monkeypatch, poison_after_step_6)
  with pytest.raises(loop.TrainingDiverged, match='step 6.*ckpt-5'):
    loop.run(_config(epochs=2), run4)
  assert helpers.checkpoint_steps(run4) == [3, 4, 5]
  reader = tf.train.load_checkpoint(_ckpt(run4, 'ckpt-5'))
  assert all(
    np.all(np.isfinite(reader.get_tensor(n)))
    for n, dtype in reader.get_variable_to_dtype_map().items()
    if dtype.is_floating
  )


def test_nan_at_the_first_step_promises_no_checkpoint(tmp_path):
  workdir = str(tmp_path / 'run')
  with pytest.raises(loop.TrainingDiverged, match='no checkpoint had been saved'):
    loop.run(_config(g_lr=1e20, d_lr=1e20), workdir)
  assert not checkpoints.has_checkpoint_files(_ckpt(workdir))


@pytest.mark.slow
def test_train_py_exits_after_nan_with_the_synthetic_source(tmp_path):
  proc = subprocess.run(
    [
      sys.executable,
      'train.py',
      '--preset=tiny',
      '--d_lr=1e20',
      '--g_lr=1e20',
      f'--workdir={tmp_path / "run"}',
    ],
    cwd=ROOT,
    capture_output=True,
    text=True,
    timeout=120,
  )
  assert proc.returncode == 1
  assert 'became nan at step 1' in proc.stderr


def test_overwrite_refuses_a_folder_with_foreign_files(run4):
  os.makedirs(os.path.join(run4, 'src'))
  open(os.path.join(run4, 'thesis.tex'), 'w').close()
  with pytest.raises(rundir.RunDirError, match='2 other item.*src, thesis.tex'):
    loop.run(_config(latent_dim=8), run4, overwrite=True)
  assert os.path.isdir(os.path.join(run4, 'src'))
  assert helpers.checkpoint_steps(run4) == [2, 3, 4]  # nothing deleted


def test_overwrite_of_a_compatible_run_starts_again(run4, capsys):
  open(os.path.join(run4, 'generated.txt'), 'w').close()  # foreign: refused
  with pytest.raises(rundir.RunDirError, match='generated.txt'):
    loop.run(_config(), run4, overwrite=True)
  os.remove(os.path.join(run4, 'generated.txt'))
  capsys.readouterr()
  metrics = loop.run(_config(), run4, overwrite=True)
  assert metrics and 'Resumed' not in capsys.readouterr().out
  assert helpers.checkpoint_steps(run4) == [2, 3, 4]


def test_changed_learning_rates_take_effect_on_resume(run4, capsys):
  loop.run(_config(epochs=2, g_lr=5e-5, d_lr=3e-4), run4)
  assert 'G learning rate 0.0001 -> 5e-05' in capsys.readouterr().out
  g, d = helpers.scalars(run4, 'lr/g'), helpers.scalars(run4, 'lr/d')
  assert g[2] == pytest.approx(1e-4) and g[8] == pytest.approx(5e-5)
  assert d[2] == pytest.approx(2e-4) and d[8] == pytest.approx(3e-4)
  reader = tf.train.load_checkpoint(_ckpt(run4, 'ckpt-8'))
  assert reader.get_tensor(
    'g_optimizer/_learning_rate/.ATTRIBUTES/VARIABLE_VALUE'
  ) == pytest.approx(5e-5)


def test_adding_dropout_to_d_resumes(run4, capsys):
  loop.run(_config(epochs=2, d_dropout=0.3), run4)
  assert 'dropout layer(s) are new' in capsys.readouterr().out
  assert helpers.checkpoint_steps(run4)[-1] == 8
  assert rundir.load_config(run4).d_dropout == 0.3


def test_checkpoints_keyed_by_position_still_resume_and_load(tmp_path):
  # Checkpoints written before the layer-path keys.
  workdir = str(tmp_path / 'old')
  config = _config(epochs=2)
  gan = GAN(config)
  rundir.prepare(config, workdir)
  rundir.save_config(config, workdir)
  gan.step.assign(4)
  counters = dict(
    epoch=tf.Variable(1, dtype=tf.int64),
    epoch_consumed=tf.Variable(0, dtype=tf.int64),
    epoch_images=tf.Variable(0, dtype=tf.int64),
  )
  prefix = tf.train.CheckpointManager(
    tf.train.Checkpoint(**counters, **checkpoints.gan_items(gan, positional=True)),
    _ckpt(workdir),
    max_to_keep=3,
  ).save(checkpoint_number=4)
  names = [n for n, _ in tf.train.list_variables(prefix)]
  assert 'generator/0000/.ATTRIBUTES/VARIABLE_VALUE' in names
  _, _, g = checkpoints.load_generator(prefix)
  np.testing.assert_array_equal(g.variables[0].numpy(), gan.ema_generator.variables[0].numpy())
  loop.run(config, workdir)
  assert helpers.checkpoint_steps(workdir) == [4, 5, 6, 7, 8][-config.keep_checkpoints :]


def test_a_second_process_on_the_run_directory_is_refused(run4):
  held = rundir.RunLock(run4)
  try:
    with pytest.raises(rundir.RunDirError, match=f'being trained by process {os.getpid()}'):
      loop.run(_config(epochs=2), run4)
  finally:
    held.release()
  loop.run(_config(epochs=2), run4)  # released: it trains
  assert helpers.checkpoint_steps(run4)[-1] == 8


@pytest.mark.parametrize('make', ['file', 'readonly'])
def test_an_unusable_workdir_is_one_clear_error(tmp_path, make):
  workdir = tmp_path / 'run'
  if make == 'file':
    workdir.write_text('not a folder')
    match = 'is a file'
  else:
    if os.geteuid() == 0:
      pytest.skip('root writes into read-only folders')
    workdir.mkdir()
    workdir.chmod(0o500)
    match = 'not writable'
  with pytest.raises(rundir.RunDirError, match=match):
    loop.run(_config(), str(workdir))


def test_the_scalars_before_a_checkpoint_survive_a_kill(tmp_path, monkeypatch):
  # Each save flushes the writer first: what a checkpoint covers is on disk.
  workdir = str(tmp_path / 'run')
  saves = []
  manager_save = tf.train.CheckpointManager.save

  def save(self, *a, **k):
    saves.append(sorted(helpers.scalars(workdir, 'd_loss')))
    return manager_save(self, *a, **k)

  monkeypatch.setattr(tf.train.CheckpointManager, 'save', save)
  loop.run(_config(log_every=1), workdir)
  assert saves == [[1], [1, 2], [1, 2, 3], [1, 2, 3, 4], [1, 2, 3, 4]]


def test_a_full_disk_during_a_save_says_what_was_kept(tmp_path, monkeypatch):
  workdir = str(tmp_path / 'run')
  save = tf.train.CheckpointManager.save

  def disk_full_at_step_3(self, checkpoint_number=None, **kwargs):
    if checkpoint_number == 3:
      os.makedirs(os.path.join(self.directory, 'ckpt-3_temp'))  # half written
      raise tf.errors.ResourceExhaustedError(None, None, 'No space left on device')
    return save(self, checkpoint_number=checkpoint_number, **kwargs)

  monkeypatch.setattr(tf.train.CheckpointManager, 'save', disk_full_at_step_3)
  with pytest.raises(rundir.RunDirError, match='step 3 failed.*No space left.*Kept: .*ckpt-2'):
    loop.run(_config(), workdir)
  assert helpers.checkpoint_steps(workdir) == [1, 2]
  assert not os.path.exists(_ckpt(workdir, 'ckpt-3_temp'))


def test_ctrl_c_inside_a_deferred_block_is_raised_when_it_ends():
  previous = signal.getsignal(signal.SIGINT)
  finished = []
  with pytest.raises(KeyboardInterrupt):
    with interrupts.deferred():
      os.kill(os.getpid(), signal.SIGINT)  # as if inside TensorFlow's import
      finished.append(True)  # the block itself is not cut short
  assert finished == [True]
  assert signal.getsignal(signal.SIGINT) is previous


# Runs a script with a SIGINT delivered as it starts importing TensorFlow:
# deterministic, where a timed signal races the import.
_SIGINT_AT_TF_IMPORT = """
import os, runpy, signal, sys
class _Hook:
  def find_spec(self, name, path=None, target=None):
    if name == 'tensorflow':
      sys.meta_path.remove(self)
      os.kill(os.getpid(), signal.SIGINT)
    return None
sys.meta_path.insert(0, _Hook())
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name='__main__')
"""


@pytest.mark.parametrize('script', ['train.py', 'generate.py', 'evaluate.py'])
def test_ctrl_c_while_tensorflow_imports_is_one_line(tmp_path, script):
  # TensorFlow's import swallows a KeyboardInterrupt raised inside it.
  args = {
    'train.py': ['--preset=tiny', f'--workdir={tmp_path}/run'],
    'generate.py': [f'--checkpoint={tmp_path}/run'],
    'evaluate.py': [f'--checkpoint={tmp_path}/run'],
  }[script]
  proc = subprocess.run(
    [sys.executable, '-c', _SIGINT_AT_TF_IMPORT, script, *args],
    cwd=ROOT,
    capture_output=True,
    text=True,
    timeout=120,
  )
  assert proc.returncode != 0
  assert 'Traceback' not in proc.stderr
  assert 'Interrupted' in proc.stdout + proc.stderr
  assert not os.path.exists(tmp_path / 'run' / 'checkpoints')


@pytest.mark.slow
def test_unwritable_outputs_and_bad_counts_are_one_line(run4, tmp_path):
  blocker = tmp_path / 'a_file'
  blocker.write_text('')
  for args, match in (
    (
      ['generate.py', f'--checkpoint={run4}', '--mode=grid', f'--out={blocker}/out'],
      'pass a writable --out',
    ),
    (['evaluate.py', f'--checkpoint={run4}', '--num_samples=0'], 'num_samples'),
    (['evaluate.py', f'--checkpoint={run4}', '--batch_size=-1'], 'batch_size'),
  ):
    proc = subprocess.run(
      [sys.executable, *args], cwd=ROOT, text=True, capture_output=True, timeout=120
    )
    assert proc.returncode != 0, args
    assert 'Traceback' not in proc.stderr and match in proc.stderr, args


def test_a_checkpoint_of_other_shapes_is_refused_by_name_and_shape(run4):
  # Without config.json only the checkpoint itself can tell.
  os.remove(os.path.join(run4, 'config.json'))
  with pytest.raises(
    rundir.RunDirError,
    match=r'does not fit.*stages0_conv2d0'
    r'_kernel has shape \(4, 4, 3, 8\), not \(4, 4, 3, 16\)',
  ):
    loop.run(_config(d_filters=16), run4)
  assert not os.path.exists(os.path.join(run4, 'config.json'))


def test_a_run_made_before_an_architecture_field_resumes_with_its_value(run4, capsys):
  # Runs made before g_upsample and d_mbstd_group existed have neither in
  # config.json; a preset that now turns them on must not rebuild them.
  path = os.path.join(run4, 'config.json')
  with open(path) as f:
    saved = json.load(f)
  for name in presets.ADDED_ARCH_FIELDS:
    del saved[name]
  with open(path, 'w') as f:
    json.dump(saved, f)
  loop.run(_config(epochs=2, g_upsample='nearest', d_mbstd_group=4), run4)
  out = capsys.readouterr().out
  assert "g_upsample='deconv'" in out and 'd_mbstd_group=0' in out
  assert helpers.checkpoint_steps(run4)[-1] == 8  # resumed, not restarted
  config = rundir.load_config(run4)
  assert (config.g_upsample, config.d_mbstd_group) == ('deconv', 0)
  with open(path) as f:
    assert json.load(f)['g_upsample'] == 'deconv'  # recorded
  # Now recorded, a change is an architecture change: refused.
  with pytest.raises(rundir.RunDirError, match='g_upsample'):
    loop.run(_config(epochs=3, g_upsample='nearest'), run4)


def test_every_error_a_user_can_fix_has_the_one_base_the_scripts_catch():
  from configs.errors import FaceganError
  from data import photos, pipeline
  from metrics import coverage, evaluation, inception
  from models import export, hardware, latents
  from pictures import exports

  errors = [
    photos.PhotoError,
    pipeline.DataError,
    coverage.CoverageError,
    evaluation.EvaluationError,
    inception.InceptionWeightsError,
    hardware.UnsupportedSetup,
    latents.LatentError,
    exports.GenerationError,
    export.ExportError,
    rundir.RunDirError,
    loop.TrainingSetupError,
    loop.TrainingDiverged,
  ]
  assert [e for e in errors if not issubclass(e, FaceganError)] == []
  # The scripts name no error class: their main runs through one_line.
  for script in ('train.py', 'generate.py', 'evaluate.py', 'project.py', 'explore.py'):
    with open(os.path.join(ROOT, script)) as f:
      source = f.read()
    assert 'errors.one_line(main)' in source, script
    assert not any(e.__name__ in source for e in errors + [FaceganError]), script


def _old_defaults(preset):
  """The fields `preset` changed after runs existed, with their old values."""
  return {f: old for (p, f), old in presets.CHANGED_DEFAULTS.items() if p == preset}


@pytest.mark.parametrize('preset', sorted({p for p, _ in presets.CHANGED_DEFAULTS}))
def test_a_run_made_under_an_old_preset_default_resumes_with_it(tmp_path, capsys, preset):
  # e.g. celeba157x128 runs made before its D had BatchNorm and adaptive
  # augmentation recorded d_batch_norm='arch' and augment_target=0.
  old = _old_defaults(preset)
  new = {f: getattr(presets.get_config(preset), f) for f in old}
  assert all(new[f] != old[f] for f in old)
  workdir = str(tmp_path / 'run')
  os.makedirs(workdir)
  rundir.save_config(presets.get_config(preset, **old), workdir)
  config = rundir.prepare(presets.get_config(preset, epochs=9), workdir)
  assert {f: getattr(config, f) for f in old} == old and config.epochs == 9
  out = capsys.readouterr().out
  assert all(f'{f}={v!r}' in out for f, v in old.items())
  # A new run gets the new default.
  fresh = str(tmp_path / 'fresh')
  os.makedirs(fresh)
  config = rundir.prepare(presets.get_config(preset), fresh)
  assert {f: getattr(config, f) for f in old} == new


def test_a_value_the_preset_never_had_is_refused_on_resume(tmp_path):
  workdir = str(tmp_path / 'run')
  os.makedirs(workdir)
  rundir.save_config(presets.get_config('celeba157x128', **_old_defaults('celeba157x128')), workdir)
  # An architecture change, not an old default: refused.
  with pytest.raises(rundir.RunDirError, match='d_batch_norm'):
    rundir.prepare(presets.get_config('celeba157x128', d_batch_norm='off'), workdir)
