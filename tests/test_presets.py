import dataclasses
import os
import subprocess
import sys

import pytest
from absl import flags as absl_flags

from configs import definitions, presets

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.parametrize('name', sorted(presets.PRESETS))
def test_every_preset_resolves_and_round_trips(name):
  config = presets.get_config(name)
  assert config.preset == name
  assert presets.Config.from_json(config.to_json()) == config


def test_preset_table_sizes_are_the_documented_ones():
  sizes = {
    n: (presets.get_config(n).image_height, presets.get_config(n).image_width)
    for n in ('celeba48', 'celeba64', 'celeba157x128')
  }
  assert sizes == {'celeba48': (48, 48), 'celeba64': (64, 64), 'celeba157x128': (157, 128)}
  for name in sizes:  # separate Adam, G 1e-4 / D 2e-4, everywhere
    c = presets.get_config(name)
    assert (c.optimizer, c.g_lr, c.d_lr) == ('adam', 1e-4, 2e-4)
  assert presets.get_config('celeba157x128').crop == 0


@pytest.mark.parametrize('name', ['celeba48', 'celeba64', 'celeba157x128'])
def test_celeba_presets_augment_small_data_and_flags_turn_it_off(name):
  c = presets.get_config(name)
  assert c.diffaugment == 'color,translation,cutout' and c.x_flip
  assert (c.g_beta1, c.d_beta1) == (0.5, 0.5)
  values = absl_flags.FlagValues()
  definitions.define_config_flags(values)
  values(['prog', f'--preset={name}', '--diffaugment=', '--nox_flip'])
  off = definitions.config_from_flags(values)
  assert off.diffaugment == '' and not off.x_flip


def test_unknown_preset_and_bad_values_are_value_errors():
  with pytest.raises(ValueError, match='Unknown preset'):
    presets.get_config('celeba32')
  with pytest.raises(ValueError, match='batch_size must be positive'):
    presets.get_config('tiny', batch_size=0)
  with pytest.raises(ValueError, match='arch=rect'):
    presets.get_config('celeba64', arch='rect')
  with pytest.raises(ValueError, match='power-of-two'):
    presets.get_config('celeba64', image_height=48, image_width=48)
  with pytest.raises(ValueError, match='Unknown config fields'):
    presets.get_config('tiny', not_a_field=1)


@pytest.mark.parametrize(
  'field,value,match',
  [
    ('crop', 200, 'crop must be between 0'),
    ('crop', -1, 'crop must be between 0'),
    ('steps_per_epoch', -1, 'steps_per_epoch must not be negative'),
    ('g_beta1', 1.0, r'g_beta1 must be in \[0, 1\)'),
    ('d_beta1', -0.1, r'd_beta1 must be in \[0, 1\)'),
    ('noise_sd', -0.1, 'noise_sd must not be negative'),
    ('weight_decay', 0.01, 'needs --optimizer=adamw'),
    ('adam_epsilon', 0.0, 'adam_epsilon must be positive'),
    ('eval_num_samples', 5, 'eval_num_samples=5 is too few for coverage'),
    ('augment_p', 0.0, r'augment_p must be in \(0, 1\]'),
    ('d_mbstd_group', -1, 'd_mbstd_group must not be negative'),
    ('r1_every', 0, 'r1_every must be positive'),
    ('g_upsample', 'pixelshuffle', 'g_upsample=.* is not one of'),
    ('keep_best', 'median', 'keep_best=.* is not one of'),
    ('loss', 'wasserstein', 'loss=.* is not one of'),
  ],
)
def test_nonsense_values_are_refused(field, value, match):
  with pytest.raises(ValueError, match=match):
    presets.get_config('tiny', **{field: value})


def test_hinge_loss_refuses_label_smoothing():
  presets.get_config('celeba48', loss='hinge')  # real labels 1: fine
  with pytest.raises(ValueError, match=r'loss=hinge has no labels.*now 0.9, 0.9, False'):
    presets.get_config('celeba157x128', loss='hinge')
  presets.get_config('celeba157x128', loss='hinge', real_label_low=1.0, real_label_high=1.0)
  with pytest.raises(ValueError, match='loss=hinge has no labels'):
    presets.get_config('tiny', loss='hinge', smooth_g_targets=True)


def test_keep_best_needs_its_metric_only_when_evaluating():
  presets.get_config('tiny', keep_best='fid')  # no --eval_every: unused
  with pytest.raises(ValueError, match='keep_best=fid ranks evaluations'):
    presets.get_config('tiny', keep_best='fid', eval_every=100)
  presets.get_config('tiny', keep_best='', eval_every=100, eval_metrics='swd')


@pytest.mark.slow
def test_a_config_error_is_one_line_without_usage_text(tmp_path):
  proc = subprocess.run(
    [sys.executable, 'train.py', '--preset=tiny', '--crop=300', '--dry_run'],
    cwd=ROOT,
    capture_output=True,
    text=True,
    timeout=60,
  )
  assert proc.returncode == 1
  assert proc.stderr.strip().splitlines() == [
    'error: crop must be between 0 (whole frame) and 178 (the frame width), got 300.'
  ]


def test_config_json_refuses_other_versions():
  text = (
    presets.get_config('tiny')
    .to_json()
    .replace(f'"version": {presets.CONFIG_VERSION}', '"version": 999')
  )
  with pytest.raises(ValueError, match='version 999'):
    presets.Config.from_json(text)


def test_flags_override_the_preset_and_unset_flags_keep_it():
  values = absl_flags.FlagValues()
  definitions.define_config_flags(values)
  values(
    [
      'prog',
      '--preset=celeba48',
      '--batch_size=32',
      '--g_lr=0.0005',
      '--dataset=synthetic',
      '--d_spectral_norm',
      '--seed=7',
    ]
  )
  config = definitions.config_from_flags(values)
  assert (config.batch_size, config.g_lr, config.dataset, config.seed) == (
    32,
    0.0005,
    'synthetic',
    7,
  )
  assert config.d_spectral_norm is True
  assert config.latent_dim == 200  # from the preset
  required = {
    'preset',
    'dataset',
    'data_dir',
    'epochs',
    'steps_per_epoch',
    'batch_size',
    'latent_dim',
    'g_lr',
    'd_lr',
    'seed',
  }
  assert required <= set(values)
  assert {f.name for f in dataclasses.fields(presets.Config)} <= set(values)
