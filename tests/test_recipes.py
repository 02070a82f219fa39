"""The recipe flagfiles (flags/<recipe>.cfg): parse, settings, dry run, a short run.

Each flagfile reproduces one published recipe. The tests check that every
recipe field is pinned in the file (so an edit to the preset table cannot
silently change what a recipe command trains) and that the published
numbers are the ones set.
"""

import dataclasses
import glob
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from absl import flags as absl_flags

from configs import definitions, presets
from training import loop, rundir

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FLAGS_DIR = os.path.join(ROOT, 'flags')

# Fields a recipe leaves to the command: data, length, hardware, logging and
# evaluation. Layer widths come from the preset (their parameter counts are
# checked in test_models.py). Every other field is pinned by every flagfile,
# so a change to the preset table cannot leak into a recipe; a new Config
# field fails test_every_recipe_field_is_pinned until it is placed.
# Packed, not one per line: not reformatted.
# fmt: off
COMMAND_FIELDS = {
  'g_filters', 'd_filters', 'dataset', 'data_dir', 'split', 'tfds_data_dir',
  'tfds_download', 'synthetic_size', 'cache', 'jit_compile',
  'mixed_precision', 'steps_per_call', 'strategy', 'epochs',
  'steps_per_epoch', 'seed', 'num_samples', 'log_every',
  'checkpoint_every_steps', 'checkpoint_every_secs', 'grid_every_secs',
  'keep_checkpoints', 'keep_best', 'eval_every',
  'eval_metrics', 'eval_split', 'eval_num_samples', 'inception_weights'}
# fmt: on

# What each publication states, the numbers a reader checks against it; the
# flagfile's other values are its own comments' business.
# One recipe per entry, packed: not reformatted.
# fmt: off
PUBLISHED = {
  'celeba48_instance_noise': dict(
      arch='tutorial', image_height=48, image_width=48, latent_dim=200,
      batch_size=256, instance_noise='additive', noise_sd=0.1, g_lr=1e-4,
      d_lr=2e-4),
  'celeba64_mlp_base': dict(
      arch='mlp', image_height=64, latent_dim=100, batch_size=64,
      real_label_low=1.0, d_dropout=0.0, g_lr=2e-4, d_lr=2e-4),
  'celeba64_mlp_improved': dict(
      arch='mlp', image_height=64, latent_dim=100, batch_size=64,
      g_activation='leaky_relu', d_dropout=0.1, real_label_low=0.7,
      real_label_high=1.2),
  'celeba64_feature_matching': dict(
      arch='dcgan', image_height=64, crop=108, latent_dist='uniform',
      feature_matching=0.1, g_steps_per_d=2, g_lr=2e-4, g_beta1=0.5),
  'celeba157x128_gan_hacks': dict(
      arch='rect', image_height=157, image_width=128, batch_size=32,
      d_spectral_norm=True, g_spectral_norm=True,
      instance_noise='multiplicative', real_label_low=0.9,
      smooth_g_targets=True, optimizer='adamw', g_lr=2e-4, d_lr=2e-3),
}
# fmt: on

# Overrides of the short CPU run; conv archs are also narrowed.
SMOKE = [
  '--batch_size=2',
  '--epochs=1',
  '--steps_per_epoch=2',
  '--dataset=synthetic',
  '--synthetic_size=4',
  '--num_samples=4',
]
NARROW = ['--g_filters=4', '--d_filters=4']


def _path(name):
  return os.path.join(FLAGS_DIR, f'{name}.cfg')


def _parse(path, *extra):
  """(Config, workdir) from a flagfile as train.py reads it, on fresh flags."""
  values = absl_flags.FlagValues()
  definitions.define_config_flags(values)
  # train.py's own flag: each flagfile names a run directory of its own.
  absl_flags.DEFINE_string('workdir', None, 'Run directory.', flag_values=values)
  values(['prog', f'--flagfile={path}', *extra])
  return definitions.config_from_flags(values), values.workdir


def test_the_expected_flagfiles_exist_and_no_others():
  # Also fails when the folder is empty or missing (a glob alone would pass).
  found = sorted(
    os.path.basename(p)[: -len('.cfg')] for p in glob.glob(os.path.join(FLAGS_DIR, '*.cfg'))
  )
  assert found == sorted(PUBLISHED)


@pytest.mark.parametrize('name', sorted(PUBLISHED))
def test_flagfile_is_well_formed(name):
  fields = {f.name for f in dataclasses.fields(presets.Config)} | {'workdir'}
  with open(_path(name)) as f:
    lines = [l.rstrip('\n') for l in f]
  flag_lines = [l for l in lines if l.strip() and not l.startswith(('#', '//'))]
  for line in flag_lines:
    # absl only skips whole-line comments: a trailing '# ...' or indentation
    # would end up inside the value.
    assert line.startswith('--') and '#' not in line and line == line.strip(), line
    flag = line[2:].split('=', 1)[0]
    if '=' not in line and flag.startswith('no'):  # --noFLAG for a bool
      flag = flag if flag in fields else flag[2:]
    assert flag in fields, line
  assert flag_lines[0] == f'--preset={name.split("_")[0]}'


def _pinned(path):
  """The Config fields a flagfile sets (--flag=value, --flag or --noflag)."""
  fields = {f.name for f in dataclasses.fields(presets.Config)}
  pinned = set()
  with open(path) as f:
    for line in f:
      if line.startswith('--'):
        flag = line[2:].strip().split('=', 1)[0]
        if flag not in fields and flag.startswith('no') and '=' not in line:
          flag = flag[2:]
        pinned.add(flag)
  return pinned & fields


@pytest.mark.parametrize('name', sorted(PUBLISHED))
def test_every_recipe_field_is_pinned(name):
  config, _ = _parse(_path(name))
  wanted = {f.name for f in dataclasses.fields(presets.Config)} - COMMAND_FIELDS
  # Settings that mean nothing in this recipe may stay at their defaults.
  if config.instance_noise == 'none':
    wanted -= {'noise_sd', 'noise_decay_steps'}
  if config.g_activation != 'leaky_relu':
    wanted -= {'g_leaky_slope'}
  assert sorted(wanted - _pinned(_path(name))) == []


@pytest.mark.parametrize('name', sorted(PUBLISHED))
def test_flagfile_parses_to_the_published_settings(name):
  config, workdir = _parse(_path(name))
  assert workdir == f'runs/recipes/{name}'
  got = {k: getattr(config, k) for k in PUBLISHED[name]}
  assert got == PUBLISHED[name]
  # No recipe augmented its data, whatever the preset now does.
  assert config.diffaugment == '' and not config.x_flip
  # Flags after the flagfile override it (how the README tells users to
  # add --data_dir, --epochs or turn EMA samples back on).
  config, workdir = _parse(_path(name), '--ema_decay=0.999', '--epochs=3', '--workdir=elsewhere')
  assert (config.ema_decay, config.epochs, workdir) == (0.999, 3, 'elsewhere')


@pytest.mark.slow
def test_dry_run_prints_the_resolved_config():
  name = 'celeba157x128_gan_hacks'
  result = subprocess.run(
    [sys.executable, 'train.py', f'--flagfile=flags/{name}.cfg', '--dry_run'],
    cwd=ROOT,
    capture_output=True,
    text=True,
    timeout=120,
  )
  assert result.returncode == 0, result.stderr
  text, _, workdir = result.stdout.rpartition('workdir: ')
  assert workdir.strip() == f'runs/recipes/{name}'
  printed = json.loads(text)
  assert printed['version'] == presets.CONFIG_VERSION
  for key, value in PUBLISHED[name].items():
    assert printed[key] == value, key
  # The printed JSON is exactly what the run directory would hold.
  config, _ = _parse(_path(name))
  assert presets.Config.from_json(text) == config


@pytest.mark.slow
@pytest.mark.parametrize('name', sorted(PUBLISHED))
def test_short_cpu_run_of_every_flagfile(name, tmp_path):
  extra = SMOKE + ([] if PUBLISHED[name]['arch'] == 'mlp' else NARROW)
  config, _ = _parse(_path(name), *extra)
  workdir = str(tmp_path / name)
  metrics = loop.run(config, workdir)
  for key in ('d_loss', 'g_loss', 'd_real', 'd_fake'):
    assert np.isfinite(metrics[key]), (key, metrics)
  if config.feature_matching:
    assert np.isfinite(metrics['g_loss_fm'])
  assert rundir.load_config(workdir) == config
  assert tf.train.latest_checkpoint(os.path.join(workdir, 'checkpoints'))
  assert os.path.isfile(os.path.join(workdir, 'samples', 'epoch_0001.png'))
  assert os.path.isfile(os.path.join(workdir, 'progress.gif'))
  assert glob.glob(os.path.join(workdir, '**', 'events.out.tfevents.*'), recursive=True)
