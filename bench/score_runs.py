"""Score finished runs side by side on held-out faces: SWD per level, coverage (whole image and face region), colour.

python bench/score_runs.py --data_dir=<CelebA folder> --out=runs/study157 \
    base=runs/study157/base nearest=runs/study157/nearest ...

Each NAME=RUN is a run directory (train.py's or bench/real_faces.py's) or a
checkpoint prefix in one. Every run's newest checkpoint (its EMA generator with
standing BatchNorm statistics; with --saved_stats_too also with the statistics
the file holds, and with --raw_too the raw G) draws --num_eval images on the
evaluation latents; they are compared with --num_eval faces of CelebA's valid
and test partitions (people no run trained on), through each run's own crop
and resize. The reference row "train vs held-out" compares as many training
faces with the same held-out faces: the floor of SWD and the ceiling of
coverage under this protocol. Writes <out>/scores.json, <out>/scores.md (a
Markdown table) and <out>/grids.png (the first 16 samples of every run, one
row each, on the evaluation latents).
"""

import dataclasses
import json
import os
import sys

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from absl import app
from absl import flags

flags.DEFINE_string('data_dir', None, 'CelebA folder with list_eval_partition.txt.')
flags.DEFINE_integer('num_eval', 1024, 'N: generated and held-out images.')
flags.DEFINE_integer('seed', 0, 'Latents, real-image order, SWD draws.')
flags.DEFINE_string('out', None, 'Output folder.')
flags.DEFINE_bool(
  'raw_too',
  False,
  "Also score each checkpoint's raw G (the weights training updates) beside its EMA copy.",
)
flags.DEFINE_bool(
  'saved_stats_too',
  False,
  'Also score each EMA G with the BatchNorm statistics its checkpoint holds (in older '
  "versions' checkpoints, the raw G's) instead of its own standing statistics.",
)
flags.mark_flags_as_required(['data_dir', 'out'])
FLAGS = flags.FLAGS


def _row(name, result, steps):
  swd, cov = result['swd'], result['coverage']
  return dict(
    name=name,
    steps=steps,
    swd=swd,
    coverage=cov['coverage'],
    density=cov['density'],
    precision=cov['precision'],
    recall=cov['recall'],
    face_coverage=result['coverage_face']['coverage'],
    face_recall=result['coverage_face']['recall'],
    channels=result['channels'],
  )


def _markdown(rows):
  levels = [k for k in rows[0]['swd'] if k != 'avg']
  head = (
    ['run', 'steps', 'SWD avg']
    + [f'SWD {l}' for l in levels]
    + ['coverage', 'density', 'precision', 'recall', 'face coverage', 'face recall']
    + ['RGB mean (held-out faces: see the first row)']
  )
  lines = ['| ' + ' | '.join(head) + ' |', '|' + '---|' * len(head)]
  for r in rows:
    cells = (
      [r['name'], str(r['steps']), f'{r["swd"]["avg"]:.1f}']
      + [f'{r["swd"][l]:.1f}' for l in levels]
      + [f'{r[k]:.3f}' for k in ('coverage', 'density', 'precision', 'recall')]
      + [f'{r[k]:.3f}' for k in ('face_coverage', 'face_recall')]
      + [' '.join(f'{m:.0f}' for m in r['channels']['generated']['mean'])]
    )
    lines.append('| ' + ' | '.join(cells) + ' |')
  return '\n'.join(lines) + '\n'


def main(argv):
  import numpy as np
  from metrics import evaluation
  from pictures import images as img
  from training import checkpoints
  from training import rundir

  runs = [a.rsplit('=', 1) for a in argv[1:]]  # names may hold '='
  if not runs or any(len(r) != 2 for r in runs):
    raise app.UsageError('Pass runs as NAME=RUN_DIR arguments.')
  os.makedirs(FLAGS.out, exist_ok=True)
  rows, strips, reference = [], [], None
  for name, path in runs:
    run_dir, prefix = checkpoints.find_checkpoint(path)
    config = dataclasses.replace(
      rundir.load_config(run_dir), data_dir=FLAGS.data_dir, split='train'
    )
    held = evaluation.real_images(
      dataclasses.replace(config, split='heldout'), FLAGS.num_eval, FLAGS.seed
    )
    if reference is None:
      train = evaluation.real_images(config, FLAGS.num_eval, FLAGS.seed)
      reference = _row(
        'train vs held-out',
        evaluation.compute_metrics(train, held, ['swd', 'coverage'], FLAGS.seed),
        0,
      )
      rows.append(reference)
    variants = [(name, True, True)]
    if FLAGS.saved_stats_too:
      variants.append((f'{name} (saved BN statistics)', True, False))
    if FLAGS.raw_too:
      variants.append((f'{name} (raw G)', False, True))
    for label, use_ema, standing in variants:
      _, _, generator = checkpoints.load_generator(prefix, use_ema, standing)
      fake = evaluation.generate_images(generator, config, FLAGS.num_eval, FLAGS.seed)
      rows.append(
        _row(
          label,
          evaluation.compute_metrics(fake, held, ['swd', 'coverage'], FLAGS.seed),
          checkpoints.checkpoint_step(prefix),
        )
      )
      strips.append(img.make_grid(fake[:16], cols=16))
      print(_markdown(rows[-1:]), flush=True)
  with open(os.path.join(FLAGS.out, 'scores.json'), 'w') as f:
    json.dump(
      dict(num_eval=FLAGS.num_eval, seed=FLAGS.seed, rows=rows, command=' '.join(sys.argv)),
      f,
      indent=1,
    )
  with open(os.path.join(FLAGS.out, 'scores.md'), 'w') as f:
    f.write(_markdown(rows))
  img.save_png(os.path.join(FLAGS.out, 'grids.png'), np.concatenate(strips))
  print(_markdown(rows))


if __name__ == '__main__':
  app.run(main)
