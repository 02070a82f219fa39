"""Train a preset on real CelebA for a fixed budget of minutes; SWD on held-out faces.

python bench/real_faces.py --preset=celeba48 --data_dir=<CelebA folder> \
    --minutes=60 --eval_every=400 --out=runs/real_celeba48

The data folder is in CelebA's official layout with its
`list_eval_partition.txt`: training uses the train partition (exactly as
`python train.py --preset=<preset> --data_dir=<folder>` does, through the
same `training.loop.run`), and every quality number compares the EMA
generator with faces of the valid and test partitions ("heldout"), whose
identities CelebA's authors kept out of train. The floor is the SWD between
N train faces and N held-out faces: a generator that reproduced the training
distribution exactly would score about that.

Writes into --out: the run directory itself (checkpoints, samples, TensorBoard),
eval/during_training.jsonl (SWD, coverage and channel means every
--eval_every steps), eval/floor.json (SWD and coverage of train vs held-out),
swd.png (SWD against training minutes, floor dashed), final_grid.png and
summary.json (machine, wall time, steps, final SWD, ratio to the floor, and the
means of SWD and coverage over the last three evaluations).
Rerunning with the same --out resumes the run for another --minutes.
"""

import dataclasses
import json
import os
import shutil
import sys
import time

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from absl import app
from absl import flags

from configs import presets

from bench import plotting
from bench.common import machine, parse_overrides

flags.DEFINE_string('preset', 'celeba48', 'Preset to train.')
flags.DEFINE_string(
  'data_dir', None, 'CelebA folder (official layout, with list_eval_partition.txt).'
)
flags.DEFINE_float('minutes', 60.0, 'Training budget (evaluation excluded).')
flags.DEFINE_integer('eval_every', 400, 'Steps between SWD evaluations.')
flags.DEFINE_integer('num_eval', 1024, 'N: generated and held-out images.')
flags.DEFINE_string('out', None, 'Run directory (default runs/real_<preset>).')
flags.DEFINE_multi_string(
  'set', [], 'Config overrides field=value, for variants of a preset (repeatable).'
)
flags.mark_flag_as_required('data_dir')
FLAGS = flags.FLAGS


def floor(config, out):
  """SWD between N train and N held-out faces (cached in eval/floor.json)."""
  from metrics import evaluation

  path = os.path.join(out, 'eval', 'floor.json')
  if os.path.isfile(path):
    with open(path) as f:
      return json.load(f)
  n = config.eval_num_samples
  train = evaluation.real_images(config, n, config.seed)
  held = evaluation.real_images(dataclasses.replace(config, split='heldout'), n, config.seed)
  scores = evaluation.compute_metrics(train, held, ['swd', 'coverage'], config.seed)
  result = dict(
    num_samples=n,
    train_vs_heldout=scores['swd'],
    coverage_train_vs_heldout=scores['coverage'],
    face_coverage_train_vs_heldout=scores['coverage_face'],
    channels_heldout=scores['channels']['real'],
    # The train faces' own colour offset: what a G that matched its training
    # data exactly would show as channel_mean_diff.
    channels_train=scores['channels']['generated'],
  )
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with open(path, 'w') as f:
    json.dump(result, f, indent=1)
  return result


def train_offset(result):
  """Train minus held-out channel means (levels), None for an older floor.json."""
  if 'channels_train' not in result:
    return None
  pairs = zip(result['channels_train']['mean'], result['channels_heldout']['mean'])
  return [round(t - h, 2) for t, h in pairs]


def main(argv):
  del argv
  import numpy as np
  import tensorflow as tf
  from training import loop

  out = os.path.expanduser(FLAGS.out or f'runs/real_{FLAGS.preset}')
  # The budget, not the preset's epoch count, ends the run: 20 epochs of a
  # few thousand faces take minutes.
  overrides = {'epochs': 1_000_000, **parse_overrides(FLAGS.set, presets.Config)}
  config = presets.get_config(
    FLAGS.preset,
    data_dir=FLAGS.data_dir,
    split='train',
    eval_every=FLAGS.eval_every,
    eval_split='heldout',
    eval_num_samples=FLAGS.num_eval,
    **overrides,
  )
  base = floor(config, out)['train_vs_heldout']['avg']
  print(f'Floor (train vs held-out, N={FLAGS.num_eval}): SWD {base:.2f}', flush=True)
  tick = time.time()
  loop.run(config, out, max_seconds=FLAGS.minutes * 60)
  wall = time.time() - tick
  with open(os.path.join(out, 'eval', 'during_training.jsonl')) as f:
    evals = [json.loads(line) for line in f]
  # The curve against training minutes; a resumed run's clock restarts, so
  # minutes accumulate over the calls.
  points, offset, last = [], 0.0, 0.0
  for e in evals:
    if e['train_seconds'] < last:
      offset += last
    last = e['train_seconds']
    points.append(((offset + last) / 60, e['eval/swd']))
  plotting.swd_plot(
    {FLAGS.preset: points},
    base,
    os.path.join(out, 'swd.png'),
    f'{FLAGS.preset} on real CelebA: SWD x1e3 vs held-out faces, N={FLAGS.num_eval}',
    xlabel='training minutes',
  )
  samples = sorted(os.listdir(os.path.join(out, 'samples')))
  shutil.copy(os.path.join(out, 'samples', samples[-1]), os.path.join(out, 'final_grid.png'))
  final = evals[-1]
  # G's colour swings from one evaluation to the next late in a run, by more
  # than variants differ: their mean over the last three is the steadier figure.
  late = evals[-3:]
  late_mean = lambda key: (
    float(np.mean([e[key] for e in late])) if all(key in e for e in late) else None
  )
  summary = dict(
    preset=FLAGS.preset,
    overrides=FLAGS.set,
    data_dir=FLAGS.data_dir,
    machine=machine(),
    tensorflow=tf.__version__,
    budget_minutes=FLAGS.minutes,
    wall_minutes_this_call=round(wall / 60, 1),
    last_eval_step=final['step'],
    final_swd=final['eval/swd'],
    best_swd=min(e['eval/swd'] for e in evals),
    floor=base,
    final_ratio=final['eval/swd'] / base,
    final_coverage=final.get('eval/coverage'),
    late_steps=[e['step'] for e in late],
    late_mean_swd=late_mean('eval/swd'),
    late_mean_coverage=late_mean('eval/coverage'),
    coverage_ceiling=floor(config, out).get('coverage_train_vs_heldout', {}).get('coverage'),
    final_face_coverage=final.get('eval/face_coverage'),
    late_mean_face_coverage=late_mean('eval/face_coverage'),
    face_coverage_ceiling=floor(config, out)
    .get('face_coverage_train_vs_heldout', {})
    .get('coverage'),
    final_channel_mean_diff=[final.get(f'eval/channel_mean_diff/{c}') for c in 'rgb'],
    train_channel_mean_diff=train_offset(floor(config, out)),
    curve_minutes_swd=[(round(m, 1), round(s, 2)) for m, s in points],
    command=' '.join(sys.argv),
  )
  with open(os.path.join(out, 'summary.json'), 'w') as f:
    json.dump(summary, f, indent=1)
  print(json.dumps(summary, indent=1), flush=True)


if __name__ == '__main__':
  app.run(main)
