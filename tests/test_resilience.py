"""Never lose a run: kill -9, interrupts, bad data, NaN, reused run dirs."""

import dataclasses
import glob
import io
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from data import pipeline
from configs.presets import get_config
from tests import helpers
from training import loop, summaries

# End-to-end: training runs, subprocesses (python -m pytest -m "not slow" skips them).
pytestmark = pytest.mark.slow

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Slow enough (~0.1 s a step) that the kill lands mid-run; dropout and
# instance noise make the RNG state matter for an exact resume.
RUN_FLAGS = [
  '--preset=tiny',
  '--image_height=64',
  '--image_width=64',
  '--g_filters=16',
  '--d_filters=16',
  '--batch_size=16',
  '--synthetic_size=160',
  '--epochs=3',
  '--steps_per_epoch=10',
  '--checkpoint_every_steps=2',
  '--log_every=1',
  '--d_dropout=0.2',
  '--instance_noise=additive',
]


def _newest(workdir):
  return max(helpers.checkpoint_steps(workdir), default=0)


def _train(workdir, **kwargs):
  return subprocess.Popen(
    [sys.executable, os.path.join(ROOT, 'train.py'), *RUN_FLAGS, f'--workdir={workdir}'],
    cwd=ROOT,
    stdout=subprocess.PIPE,
    stderr=subprocess.PIPE,
    **kwargs,
  )


def _wait_for_checkpoint(proc, workdir, step, what):
  """Waits for a checkpoint at `step` or later; the run must still be going."""
  deadline = time.time() + 240
  while _newest(workdir) < step and proc.poll() is None and time.time() < deadline:
    time.sleep(0.02)
  assert proc.poll() is None, f'the run finished before it could be {what}'


def _config_from_flags(argv):
  """The Config train.py builds from `argv` (its --workdir left out)."""
  from absl import flags as absl_flags
  from configs import definitions

  values = absl_flags.FlagValues()
  definitions.define_config_flags(values)
  values(['prog'] + argv)
  return definitions.config_from_flags(values)


def test_sigterm_then_kill_9_then_rerun_continues_exactly_like_one_run(tmp_path, capsys):
  reference, killed = str(tmp_path / 'reference'), str(tmp_path / 'killed')
  # The same flags in this process (train.py only parses them).
  config = _config_from_flags(RUN_FLAGS)
  loop.run(config, reference)
  # SIGTERM (a scheduler's stop): a checkpoint, one line, exit code 0.
  proc = _train(killed)
  _wait_for_checkpoint(proc, killed, 2, 'stopped')
  proc.send_signal(signal.SIGTERM)
  out, _ = proc.communicate(timeout=120)
  assert proc.returncode == 0
  lines = [l for l in out.decode().splitlines() if l.startswith('Interrupted')]
  assert len(lines) == 1 and 'rerun the same command' in lines[0]
  stopped_at = _newest(killed)
  assert 2 <= stopped_at < 12
  # kill -9 of the resumed run: nothing is saved, the rerun resumes anyway.
  proc = _train(killed)
  _wait_for_checkpoint(proc, killed, 12, 'killed')
  proc.send_signal(signal.SIGKILL)
  proc.wait()
  killed_at = _newest(killed)
  assert 12 <= killed_at < 30
  # The rerun, in this process (what train.py runs): one TF start fewer.
  capsys.readouterr()
  loop.run(config, killed)
  assert 'Resumed from' in capsys.readouterr().out
  assert _newest(killed) == 30
  # Same curve step for step: the data order, RNG, optimiser state and epoch
  # counters all continued where each checkpoint left them.
  ref, got = helpers.scalars(reference, 'd_loss'), helpers.scalars(killed, 'd_loss')
  assert sorted(got) == list(range(1, 31))
  np.testing.assert_allclose(
    [got[s] for s in range(1, 31)], [ref[s] for s in range(1, 31)], rtol=1e-5
  )
  assert sorted(os.listdir(os.path.join(killed, 'samples'))) == [
    'epoch_0001.png',
    'epoch_0002.png',
    'epoch_0003.png',
  ]
  last = lambda d: np.asarray(Image.open(os.path.join(d, 'samples', 'epoch_0003.png')))
  np.testing.assert_allclose(last(killed), last(reference), atol=2)


def test_purge_events_after_drops_later_steps_and_partial_records(tmp_path):
  writer = tf.summary.create_file_writer(str(tmp_path))
  with writer.as_default():
    for step in range(1, 11):
      tf.summary.scalar('x', float(step), step=step)
  writer.close()
  path = glob.glob(str(tmp_path / 'events.out.tfevents.*'))[0]
  with open(path, 'ab') as f:
    f.write(b'\x10\x00\x00')  # a record cut short by a crash
  assert summaries.purge_events_after(str(tmp_path), 6) == 4  # steps 7-10
  assert not open(path, 'rb').read().endswith(b'\x10\x00\x00')  # tail gone
  assert sorted(helpers.scalars(str(tmp_path), 'x')) == [1, 2, 3, 4, 5, 6]
  assert summaries.purge_events_after(str(tmp_path), 6) == 0


def test_checkpoint_every_steps_and_keep_checkpoints(tmp_path):
  workdir = str(tmp_path / 'run')
  loop.run(
    get_config(
      'tiny',
      epochs=1,
      steps_per_epoch=6,
      synthetic_size=48,
      checkpoint_every_steps=2,
      keep_checkpoints=2,
    ),
    workdir,
  )
  names = sorted(
    os.path.basename(p)[:-6] for p in glob.glob(os.path.join(workdir, 'checkpoints', '*.index'))
  )
  assert names == ['ckpt-4', 'ckpt-6']  # 2 and 4 and 6 written, 2 kept


def _bad_files_folder(root, n_good):
  root.mkdir()
  src = os.path.join(os.path.dirname(__file__), 'data', 'celeba', 'img_align_celeba')
  for name in sorted(os.listdir(src))[:n_good]:
    (root / name).write_bytes(open(os.path.join(src, name), 'rb').read())
  (root / 'truncated.jpg').write_bytes(open(os.path.join(src, '000001.jpg'), 'rb').read()[:3000])
  (root / 'zero.jpg').write_bytes(b'')
  (root / 'notes.png').write_bytes(b'this is text')
  Image.new('RGB', (3, 2), (9, 9, 9)).save(root / 'tiny.png')  # tiny: upscaled, kept
  rgba = io.BytesIO()
  Image.new('RGBA', (178, 218), (10, 200, 10, 0)).save(rgba, 'PNG')
  (root / 'alpha.png').write_bytes(rgba.getvalue())
  Image.new('L', (178, 218), 100).save(root / 'gray.jpg')
  return root


def test_bad_files_are_skipped_counted_and_reported(tmp_path, capsys):
  folder = _bad_files_folder(tmp_path / 'imgs', n_good=5)
  config = get_config(
    'tiny', dataset='folder', data_dir=str(folder), batch_size=1, epochs=1, steps_per_epoch=0
  )
  loop.run(config, str(tmp_path / 'run'))
  out = capsys.readouterr().out
  assert 'Epoch 1: skipped' in out
  # 5 JPEGs + tiny + RGBA + grayscale trained on; truncated, zero, text skipped.
  prefix = tf.train.latest_checkpoint(str(tmp_path / 'run' / 'checkpoints'))
  assert int(tf.train.load_variable(prefix, 'step/.ATTRIBUTES/VARIABLE_VALUE')) == 8


def test_epochs_shortened_by_bad_files_follow_each_other_exactly(tmp_path, capsys):
  # 8 usable files of 11: 4 batches of 2 an epoch where 5 were planned, so
  # each epoch's fifth call gets the next epoch's first batch.
  folder = _bad_files_folder(tmp_path / 'imgs', n_good=5)
  config = get_config(
    'tiny', dataset='folder', data_dir=str(folder), batch_size=2, epochs=3, steps_per_epoch=0
  )
  loop.run(config, str(tmp_path / 'run'))
  out = capsys.readouterr().out
  assert 'Done: 12 steps, 3 epochs' in out
  # Each epoch-end checkpoint holds the next epoch's first step too.
  assert helpers.checkpoint_steps(str(tmp_path / 'run')) == [5, 9, 12]
  # Two epochs, then one more: the same 12 batches in the same order.
  loop.run(dataclasses.replace(config, epochs=2), str(tmp_path / 'two'))
  assert helpers.checkpoint_steps(str(tmp_path / 'two')) == [5, 8]
  loop.run(config, str(tmp_path / 'two'))
  assert helpers.checkpoint_steps(str(tmp_path / 'two'))[-1] == 12
  a = tf.train.load_checkpoint(tf.train.latest_checkpoint(str(tmp_path / 'run' / 'checkpoints')))
  b = tf.train.load_checkpoint(tf.train.latest_checkpoint(str(tmp_path / 'two' / 'checkpoints')))
  names = [n for n in a.get_variable_to_shape_map() if 'generator' in n]
  assert names
  for n in names:
    np.testing.assert_allclose(a.get_tensor(n), b.get_tensor(n), rtol=1e-4, atol=1e-6)


@pytest.mark.skipif(os.geteuid() == 0, reason='root reads any file')
def test_unreadable_permissions_are_skipped(tmp_path):
  folder = _bad_files_folder(tmp_path / 'imgs', n_good=4)
  locked = folder / '000001.jpg'
  locked.chmod(0)
  config = get_config('tiny', dataset='folder', data_dir=str(folder), batch_size=1)
  positions = np.concatenate([p.numpy() for p, _ in pipeline.Pipeline(config).epoch(0)])
  assert len(positions) == 6


def test_a_folder_of_only_bad_files_is_a_clear_error(tmp_path):
  root = tmp_path / 'bad'
  root.mkdir()
  for i in range(4):
    (root / f'{i}.jpg').write_bytes(b'\xff\xd8\xff garbage')
  config = get_config('tiny', dataset='folder', data_dir=str(root), batch_size=2)
  with pytest.raises(pipeline.DataError, match='all 4 folder files are unreadable'):
    loop.run(config, str(tmp_path / 'run'))


_SIGNAL_CONFIG = dict(
  epochs=2, d_dropout=0.2, instance_noise='additive', real_label_low=0.8, real_label_high=1.0
)


@pytest.fixture(scope='module')
def uninterrupted(tmp_path_factory):
  """The last metrics of the signal tests' run, never interrupted."""
  config = get_config('tiny', **_SIGNAL_CONFIG)
  return loop.run(config, str(tmp_path_factory.mktemp('full')))


def test_a_signal_inside_a_step_saves_that_whole_step_and_resumes_exactly(
  tmp_path, monkeypatch, capsys, uninterrupted
):
  # Ctrl-C here; SIGTERM has the same handler (training.loop._StopRequest)
  # and its end to end test above.
  config = get_config('tiny', **_SIGNAL_CONFIG)
  full = uninterrupted

  def signal_after_step_4(gan):
    if int(gan.step) == 4:  # the weights and step counter have changed, the
      os.kill(os.getpid(), signal.SIGINT)  # position bookkeeping has not

  helpers.hook_train_steps(monkeypatch, signal_after_step_4)
  loop.run(config, str(tmp_path / 'split'))
  assert 'saved' in capsys.readouterr().out
  assert _newest(str(tmp_path / 'split')) == 4
  monkeypatch.undo()
  resumed = loop.run(config, str(tmp_path / 'split'))
  # Exact: step 4's batch was counted as consumed, so none is trained twice.
  assert resumed['d_loss'] == pytest.approx(full['d_loss'], rel=1e-5)
  assert resumed['g_loss'] == pytest.approx(full['g_loss'], rel=1e-5)
