"""The seed-exact flagfiles (flags/seeds/*.cfg): parse, settings, dry run, a short run.

Each flagfile reproduces one published recipe; the tests
pin the settings that define each recipe so an edit to a flagfile or to the
preset table cannot silently change what a seed command trains.
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

from flags import definitions, presets
from training import loop, rundir

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SEEDS_DIR = os.path.join(ROOT, 'flags', 'seeds')

_ADAM_2E4_B05 = dict(optimizer='adam', g_lr=2e-4, d_lr=2e-4, g_beta1=0.5,
                     d_beta1=0.5, g_beta2=0.999, d_beta2=0.999,
                     weight_decay=0.0)
_NO_TRICKS = dict(instance_noise='none', feature_matching=0.0,
                  g_steps_per_d=1, smooth_g_targets=False, reuse_fake=False,
                  d_spectral_norm=False, g_spectral_norm=False,
                  d_batch_norm='off')
_MLP64 = dict(preset='celeba64', arch='mlp', image_height=64, image_width=64,
              crop=160, latent_dim=100, latent_dist='normal', batch_size=64,
              adam_epsilon=1e-8, ema_decay=0.0, **_ADAM_2E4_B05, **_NO_TRICKS)

# The settings that define each recipe, written out (not read from presets).
EXPECTED = {
    'celeba48_instance_noise': dict(
        preset='celeba48', arch='tutorial', image_height=48, image_width=48,
        crop=160, latent_dim=200, latent_dist='normal', batch_size=256,
        g_activation='leaky_relu', g_leaky_slope=0.3, d_leaky_slope=0.3,
        d_dropout=0.3, instance_noise='additive', noise_sd=0.1,
        noise_decay_steps=0, real_label_low=1.0, real_label_high=1.0,
        smooth_g_targets=False, feature_matching=0.0, g_steps_per_d=1,
        d_spectral_norm=False, g_spectral_norm=False, d_batch_norm='off',
        optimizer='adam', g_lr=1e-4, d_lr=2e-4, g_beta1=0.9, d_beta1=0.9,
        g_beta2=0.999, d_beta2=0.999, adam_epsilon=1e-7, weight_decay=0.0,
        ema_decay=0.0),
    'celeba64_mlp_base': dict(
        _MLP64, g_activation='relu', d_leaky_slope=0.01, d_dropout=0.0,
        real_label_low=1.0, real_label_high=1.0),
    'celeba64_mlp_improved': dict(
        _MLP64, g_activation='leaky_relu', g_leaky_slope=0.01,
        d_leaky_slope=0.01, d_dropout=0.1, real_label_low=0.7,
        real_label_high=1.2),
    'celeba64_feature_matching': dict(
        preset='celeba64', arch='dcgan', image_height=64, image_width=64,
        crop=108, latent_dim=100, latent_dist='uniform', batch_size=64,
        g_activation='relu', d_leaky_slope=0.2, d_dropout=0.0,
        instance_noise='none', real_label_low=1.0, real_label_high=1.0,
        smooth_g_targets=False, feature_matching=0.1, fm_ramp_steps=0,
        g_steps_per_d=2, d_spectral_norm=False, g_spectral_norm=False,
        d_batch_norm='on', adam_epsilon=1e-7, ema_decay=0.0, **_ADAM_2E4_B05),
    'celeba157x128_gan_hacks': dict(
        preset='celeba157x128', arch='rect', image_height=157,
        image_width=128, crop=0, latent_dim=100, latent_dist='normal',
        batch_size=32, g_activation='relu', d_leaky_slope=0.2, d_dropout=0.3,
        d_spectral_norm=True, g_spectral_norm=True, d_batch_norm='off',
        instance_noise='multiplicative', noise_sd=0.1, noise_decay_steps=0,
        real_label_low=0.9, real_label_high=0.9, smooth_g_targets=True,
        feature_matching=0.0, g_steps_per_d=1, reuse_fake=False,
        optimizer='adamw', g_lr=2e-4, d_lr=2e-3, g_beta1=0.5, d_beta1=0.5,
        g_beta2=0.999, d_beta2=0.999, adam_epsilon=1e-8, weight_decay=0.01,
        ema_decay=0.0),
}

# Overrides of the short CPU run; conv archs are also narrowed.
SMOKE = ['--batch_size=2', '--epochs=1', '--steps_per_epoch=2',
         '--dataset=synthetic', '--synthetic_size=4', '--num_samples=4']
NARROW = ['--g_filters=4', '--d_filters=4']


def _path(name):
  return os.path.join(SEEDS_DIR, f'{name}.cfg')


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
  found = sorted(os.path.basename(p)[:-len('.cfg')]
                 for p in glob.glob(os.path.join(SEEDS_DIR, '*.cfg')))
  assert found == sorted(EXPECTED)


@pytest.mark.parametrize('name', sorted(EXPECTED))
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
  assert flag_lines[0] == f'--preset={EXPECTED[name]["preset"]}'


@pytest.mark.parametrize('name', sorted(EXPECTED))
def test_flagfile_parses_to_the_seed_settings(name):
  config, workdir = _parse(_path(name))
  assert workdir == f'runs/seeds/{name}'
  got = {k: getattr(config, k) for k in EXPECTED[name]}
  assert got == EXPECTED[name]
  # No recipe augmented its data, whatever the preset now does.
  assert config.diffaugment == '' and not config.x_flip
  # Flags after the flagfile override it (how the README tells users to
  # add --data_dir, --epochs or turn EMA samples back on).
  config, workdir = _parse(_path(name), '--ema_decay=0.999', '--epochs=3',
                           '--workdir=elsewhere')
  assert (config.ema_decay, config.epochs, workdir) == (0.999, 3, 'elsewhere')


@pytest.mark.slow
def test_dry_run_prints_the_resolved_config():
  name = 'celeba157x128_gan_hacks'
  result = subprocess.run(
      [sys.executable, 'train.py', f'--flagfile=flags/seeds/{name}.cfg',
       '--dry_run'], cwd=ROOT, capture_output=True, text=True, timeout=120)
  assert result.returncode == 0, result.stderr
  text, _, workdir = result.stdout.rpartition('workdir: ')
  assert workdir.strip() == f'runs/seeds/{name}'
  printed = json.loads(text)
  assert printed['version'] == presets.CONFIG_VERSION
  for key, value in EXPECTED[name].items():
    assert printed[key] == value, key
  # The printed JSON is exactly what the run directory would hold.
  config, _ = _parse(_path(name))
  assert presets.Config.from_json(text) == config


@pytest.mark.slow
@pytest.mark.parametrize('name', sorted(EXPECTED))
def test_short_cpu_run_of_every_flagfile(name, tmp_path):
  extra = SMOKE + ([] if EXPECTED[name]['arch'] == 'mlp' else NARROW)
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
  assert glob.glob(os.path.join(workdir, '**', 'events.out.tfevents.*'),
                   recursive=True)
