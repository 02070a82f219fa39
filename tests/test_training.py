import json
import os
import signal
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from configs.presets import get_config
from models import losses
from tests import helpers
from training import collapse, loop, rundir

# End-to-end: training runs, subprocesses (python -m pytest -m "not slow" skips them).
pytestmark = pytest.mark.slow

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_tiny_run_fills_the_run_directory_and_resumes(tmp_path):
  workdir = str(tmp_path / 'run')
  metrics = loop.run(get_config('tiny'), workdir)
  assert np.isfinite(metrics['d_loss'])
  assert os.path.isfile(os.path.join(workdir, 'config.json'))
  assert rundir.load_config(workdir) == get_config('tiny')
  assert helpers.checkpoint_step(workdir) == 8  # 2 epochs x 4 steps
  samples = sorted(os.listdir(os.path.join(workdir, 'samples')))
  assert samples == ['epoch_0001.png', 'epoch_0002.png']
  grid = Image.open(os.path.join(workdir, 'samples', 'epoch_0001.png'))
  assert grid.size == (4 * 34 + 2, 4 * 34 + 2)  # 16 tiles of 32 + padding
  gif = Image.open(os.path.join(workdir, 'progress.gif'))
  assert gif.n_frames >= 2
  tags = helpers.scalar_tags(workdir)
  assert {
    'd_loss',
    'g_loss',
    'd_real',
    'd_fake',
    'grad_norm/g',
    'lr/g',
    'images_per_sec',
    'samples',
    'collapse/d_wins',
    'collapse/sample_diversity',
  } <= tags
  # Resuming with more epochs continues the step count and the same latents.
  z = np.load(os.path.join(workdir, 'fixed_latent.npy'))
  loop.run(get_config('tiny', epochs=3), workdir)
  assert helpers.checkpoint_step(workdir) == 12
  np.testing.assert_array_equal(z, np.load(os.path.join(workdir, 'fixed_latent.npy')))
  assert len(os.listdir(os.path.join(workdir, 'samples'))) == 3


def test_a_resume_with_other_settings_is_recorded_and_checkpoints_carry_config(tmp_path, capsys):
  import shutil
  from training import checkpoints

  workdir = str(tmp_path / 'run')
  loop.run(get_config('tiny', epochs=1), workdir)
  loop.run(get_config('tiny', epochs=2, g_lr=5e-5), workdir)
  assert (
    'Resumed with changed settings: epochs 1 -> 2, g_lr 0.0001 -> 5e-05 '
    '(recorded in config_history.jsonl)'
  ) in capsys.readouterr().out
  loop.run(get_config('tiny', epochs=2, g_lr=5e-5), workdir)  # nothing new
  with open(os.path.join(workdir, 'config_history.jsonl')) as f:
    history = [json.loads(line) for line in f]
  assert [h['step'] for h in history] == [0, 4]
  assert history[0]['config'] == json.loads(get_config('tiny', epochs=1).to_json())
  assert history[1]['changed'] == {'epochs': [1, 2], 'g_lr': [1e-4, 5e-5]}
  assert rundir.load_config(workdir).g_lr == 5e-5  # config.json: the latest
  # A checkpoint copied out of its run loads on its own, with the config
  # that trained it (precision and XLA resolved).
  elsewhere = tmp_path / 'elsewhere'
  elsewhere.mkdir()
  prefix = os.path.join(workdir, 'checkpoints', 'ckpt-8')
  for f in os.listdir(os.path.dirname(prefix)):
    if f.startswith('ckpt-8.'):
      shutil.copy(os.path.join(os.path.dirname(prefix), f), elsewhere)
  config, run_dir, g = checkpoints.load_generator(str(elsewhere / 'ckpt-8'))
  assert run_dir == str(elsewhere)
  assert config == get_config('tiny', epochs=2, g_lr=5e-5, jit_compile='off')
  _, _, in_run = checkpoints.load_generator(prefix)
  for a, b in zip(g.variables, in_run.variables):
    np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_collapse_watch_warns_once_and_does_not_stop_the_run(tmp_path, monkeypatch, capsys):
  # A floor of 1.0 makes any D(G(z)) count as "D wins"; a diversity bar of
  # 10 makes any samples count as collapsed.
  watch = collapse.CollapseWatch(d_fake_floor=1.0, patience=2, min_diversity=10.0)
  watch.observe_diversity(20.0, 0)  # arm it: the samples "were" diverse
  monkeypatch.setattr(collapse, 'CollapseWatch', lambda **_: watch)
  workdir = str(tmp_path / 'run')
  loop.run(get_config('tiny', log_every=1), workdir)
  out = capsys.readouterr().out
  assert out.count('D is winning outright') == 1
  assert out.count('lost their diversity') == 1
  assert helpers.checkpoint_step(workdir) == 8  # the run went on to its end
  values = helpers.scalars(workdir, 'collapse/d_wins')
  assert values[min(values)] == 0.0 and values[max(values)] == 1.0


def test_time_budget_saves_and_stops(tmp_path, capsys):
  workdir = str(tmp_path / 'run')
  loop.run(get_config('tiny', epochs=50), workdir, max_seconds=0)
  assert 'Time budget of 0 min spent' in capsys.readouterr().out
  assert helpers.checkpoint_step(workdir) == 1  # stopped after the first step, checkpointed
  assert os.listdir(os.path.join(workdir, 'samples')) == ['epoch_0001.png']
  loop.run(get_config('tiny', epochs=50, eval_every=4, eval_num_samples=16), workdir, max_seconds=0)
  assert helpers.checkpoint_step(workdir) == 2  # rerunning continues
  # With evaluation on, the budget's end is evaluated too.
  with open(os.path.join(workdir, 'eval', 'during_training.jsonl')) as f:
    assert [json.loads(line)['step'] for line in f] == [2]


def test_incompatible_run_dir_is_refused_unless_overwrite(tmp_path):
  workdir = str(tmp_path / 'run')
  loop.run(get_config('tiny', epochs=1), workdir)
  other = get_config('tiny', epochs=1, latent_dim=8)
  with pytest.raises(rundir.RunDirError, match='latent_dim'):
    loop.run(other, workdir)
  # The old run's best evaluation goes too: it is no checkpoint of the new G.
  os.makedirs(os.path.join(workdir, 'best'))
  open(os.path.join(workdir, 'best', 'best.json'), 'w').write('{}')
  loop.run(other, workdir, overwrite=True)
  assert rundir.load_config(workdir).latent_dim == 8
  assert helpers.checkpoint_step(workdir) == 4  # started again
  assert not os.path.exists(os.path.join(workdir, 'best'))


def test_interrupt_saves_a_checkpoint_and_resume_finishes_the_epoch(tmp_path, monkeypatch):
  workdir = str(tmp_path / 'run')
  calls = {'n': 0}

  def interrupt_third_call(gan):
    calls['n'] += 1
    if calls['n'] == 3:  # Ctrl-C: the step in flight still completes
      os.kill(os.getpid(), signal.SIGINT)

  helpers.hook_train_steps(monkeypatch, interrupt_third_call, before=True)
  loop.run(get_config('tiny', epochs=1), workdir)
  assert helpers.checkpoint_step(workdir) == 3  # saved on the interrupt
  monkeypatch.undo()
  loop.run(get_config('tiny', epochs=1), workdir)
  assert helpers.checkpoint_step(workdir) == 4  # the rest of epoch 1, not a new epoch
  assert os.listdir(os.path.join(workdir, 'samples')) == ['epoch_0001.png']


def test_the_evaluation_log_is_single_valued_and_its_clock_runs_on(tmp_path, monkeypatch):
  import time
  from metrics.evaluation import TrainingEvaluator

  workdir = str(tmp_path / 'run')
  score = TrainingEvaluator.__call__

  def slow_score(self, generate):
    time.sleep(1.5)  # evaluation is paused out of the training clock
    return score(self, generate)

  monkeypatch.setattr(TrainingEvaluator, '__call__', slow_score)
  config = dict(eval_every=2, eval_metrics='swd', eval_num_samples=8)
  start = time.perf_counter()
  loop.run(get_config('tiny', epochs=1, **config), workdir)
  log = os.path.join(workdir, 'eval', 'during_training.jsonl')
  # Evaluations after the checkpoint of step 4, lost to a kill mid-line.
  with open(log, 'a') as f:
    f.write(json.dumps(dict(step=6, train_seconds=1e6)) + '\n{"step": 8, "ev')
  loop.run(get_config('tiny', epochs=2, **config), workdir)
  wall = time.perf_counter() - start
  with open(log) as f:
    logged = [json.loads(line) for line in f]
  assert [e['step'] for e in logged] == [2, 4, 6, 8]
  seconds = [e['train_seconds'] for e in logged]
  assert seconds == sorted(seconds) and seconds[2] > seconds[1]
  # Four evaluations of 1.5 s, none counted, the last one's included.
  assert seconds[-1] < wall - 4 * 1.5


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
  workdir = str(tmp_path / 'run')
  loop.run(get_config('tiny', epochs=1), workdir)
  monkeypatch.setattr(
    losses, 'generator_loss', lambda logits, targets=1.0: tf.reduce_mean(logits) * np.nan
  )
  with pytest.raises(loop.TrainingDiverged, match='g_loss .* step 5'):
    loop.run(get_config('tiny', epochs=2), workdir)
  assert helpers.checkpoint_step(workdir) == 4


def _train_py(*args, timeout=120):
  return subprocess.run(
    [sys.executable, os.path.join(ROOT, 'train.py'), *args],
    capture_output=True,
    text=True,
    timeout=timeout,
    cwd=ROOT,
  )


def test_train_py_without_celeba_fails_fast_with_the_three_ways(tmp_path):
  result = _train_py('--preset=celeba48', f'--workdir={tmp_path}/run')
  assert result.returncode == 1
  assert 'No celeba images found' in result.stderr
  assert '--dataset=synthetic' in result.stderr and '--dataset=tfds' in result.stderr
  assert not os.path.exists(tmp_path / 'run')  # nothing created


def test_train_py_dry_run_and_bad_flags():
  result = _train_py('--preset=celeba157x128', '--batch_size=8', '--dry_run')
  assert result.returncode == 0
  assert '"batch_size": 8' in result.stdout and '"image_height": 157' in result.stdout
  result = _train_py('--preset=celeba99', '--dry_run')
  assert result.returncode != 0 and 'celeba99' in result.stderr
  result = _train_py('--preset=tiny', '--d_dropout=1.5', '--dry_run')
  assert result.returncode != 0 and 'd_dropout' in result.stderr
  assert 'Traceback' not in result.stderr
  # Numbers that compare false both ways, or mean no budget at all.
  for flag, message in (
    ('--max_minutes=nan', 'max_minutes must be a positive'),
    ('--max_minutes=-1', 'max_minutes must be a positive'),
    ('--max_minutes=0', 'max_minutes must be a positive'),
    ('--noise_sd=nan', 'noise_sd must be a finite'),
    ('--g_lr=inf', 'g_lr must be a finite'),
  ):
    result = _train_py('--preset=tiny', flag, '--dry_run')
    assert result.returncode == 1 and message in result.stderr, flag
    assert 'Traceback' not in result.stderr


def test_grids_and_checkpoints_follow_their_time_intervals(tmp_path):
  # A long interval: only the first epoch's grid and the last epoch's grid
  # and checkpoint come; step checkpoints still do.
  workdir = str(tmp_path / 'run')
  loop.run(
    get_config(
      'tiny',
      epochs=4,
      steps_per_epoch=2,
      checkpoint_every_steps=3,
      grid_every_secs=3600,
      checkpoint_every_secs=3600,
    ),
    workdir,
  )
  assert sorted(os.listdir(os.path.join(workdir, 'samples'))) == [
    'epoch_0001.png',
    'epoch_0004.png',
  ]
  assert helpers.checkpoint_steps(workdir) == [3, 6, 8]
  assert helpers.summary_steps(workdir, 'samples') == [2, 8]


def test_gradient_norms_are_logged_on_logging_steps_only(tmp_path):
  workdir = str(tmp_path / 'run')
  loop.run(get_config('tiny', epochs=2, steps_per_epoch=5, log_every=3, steps_per_call=2), workdir)
  for tag in ('grad_norm/g', 'grad_norm/d', 'd_loss'):
    values = helpers.scalars(workdir, tag)
    assert sorted(values) == [3, 6, 9]
    assert all(v > 0 for v in values.values()) or tag == 'd_loss'


def test_cached_and_tfds_sources_train_over_several_epochs(tmp_path):
  # Each streams one epoch per dataset; the default seed 0 once broke their
  # shuffles inside a multi-epoch dataset.
  loop.run(
    get_config('tiny', cache='memory', epochs=3, steps_per_epoch=2), str(tmp_path / 'cached')
  )
  assert helpers.checkpoint_step(str(tmp_path / 'cached')) == 6
  tfds = pytest.importorskip('tensorflow_datasets')
  with tfds.testing.mock_data(num_examples=12):
    loop.run(
      get_config('tiny', dataset='tfds', batch_size=4, epochs=2, steps_per_epoch=0),
      str(tmp_path / 'tfds'),
    )
  assert helpers.checkpoint_step(str(tmp_path / 'tfds')) == 6


def test_the_adaptive_augmentation_probability_resumes_where_it_was(tmp_path):
  from models.gan import GAN
  from training import checkpoints

  workdir = str(tmp_path / 'run')
  config = get_config('tiny', diffaugment='translation', augment_target=0.6, augment_kimg=0.05)
  loop.run(config, workdir)  # 8 steps of 8 images: p moves by 0.16 a step
  logged = helpers.scalars(workdir, 'augment_p')
  assert sorted(logged) == [2, 4, 6, 8] and all(0.0 <= v <= 1.0 for v in logged.values())
  prefix = tf.train.latest_checkpoint(os.path.join(workdir, 'checkpoints'))
  saved = tf.train.load_checkpoint(prefix).get_tensor('augment_p/.ATTRIBUTES/VARIABLE_VALUE')
  assert abs(saved - logged[8]) == pytest.approx(0.16, abs=1e-6) or saved in (0.0, 1.0)
  gan = GAN(config)
  checkpoints.restore(gan, {}, workdir, chief=False)
  assert float(gan.tricks.augment_p) == pytest.approx(saved)
  # A checkpoint from before the adaptive probability still restores; p starts at 0.
  old = str(tmp_path / 'old')
  items = checkpoints.gan_items(gan)
  del items[checkpoints.ADAPTIVE_P]
  old_prefix = tf.train.Checkpoint(**items).save(os.path.join(old, 'checkpoints', 'ckpt'))
  checkpoints.write_checkpoint_state(os.path.join(old, 'checkpoints'), [old_prefix])
  fresh = GAN(config)
  assert checkpoints.restore(fresh, {}, old, chief=False) == old_prefix
  assert float(fresh.tricks.augment_p) == 0.0 and int(fresh.step) == int(gan.step)
