"""Reconstruction error of projected faces: training faces against held-out ones.

python bench/projection_study.py --checkpoint=runs/real_celeba64 --num=32 \
    --out=docs/results/projection

Projects --num faces of the run's train partition and --num faces of the
held-out partitions (valid + test: people CelebA kept out of train) into the
run's generator with project.py's code, and reports the RMS pixel error (of
255) of each set. A generator that memorised its training faces would
reconstruct those far better than held-out ones; similar errors mean the
latent space covers new people about as well as the ones it was trained on.
Writes <out>.json (every error, the settings, the machine) and <out>.png
(photo above reconstruction, the first 8 faces of each set).
"""

import dataclasses
import json
import os
import platform
import sys
import time

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from absl import app
from absl import flags

flags.DEFINE_string('checkpoint', None, 'Run directory or checkpoint prefix.')
flags.DEFINE_string('data_dir', '', "Overrides the run's data_dir.")
flags.DEFINE_integer('num', 32, 'Faces per set.')
flags.DEFINE_integer('steps', 300, 'Adam steps per face.')
flags.DEFINE_integer('starts', 4, 'Starting latents per face.')
flags.DEFINE_float('lr', 0.05, 'Adam learning rate on z.')
flags.DEFINE_string('out', 'docs/results/projection', 'Output path without extension.')
flags.mark_flag_as_required('checkpoint')
FLAGS = flags.FLAGS


def main(argv):
  del argv
  import numpy as np
  from metrics import evaluation
  from models import projection
  from pictures import images as img
  from training import checkpoints

  config, run_dir, generator = checkpoints.load_generator(FLAGS.checkpoint)
  if FLAGS.data_dir:
    config = dataclasses.replace(config, data_dir=FLAGS.data_dir)
  result = dict(
    checkpoint=FLAGS.checkpoint,
    preset=config.preset,
    num=FLAGS.num,
    steps=FLAGS.steps,
    starts=FLAGS.starts,
    lr=FLAGS.lr,
    machine=platform.processor() or platform.machine(),
  )
  rows = []
  for split in ('train', 'heldout'):
    faces = evaluation.real_images(dataclasses.replace(config, split=split), FLAGS.num, seed=1)
    errors, recons, tick = [], [], time.perf_counter()
    for face in faces:
      p = projection.project(
        generator,
        face,
        config.latent_dim,
        config.latent_dist,
        starts=FLAGS.starts,
        steps=FLAGS.steps,
        lr=FLAGS.lr,
      )
      errors.append(p.rms)
      recons.append(p.image)
    seconds = (time.perf_counter() - tick) / len(faces)
    result[split] = dict(
      rms_mean=float(np.mean(errors)),
      rms_median=float(np.median(errors)),
      rms=[round(float(e), 2) for e in errors],
      seconds_per_face=round(seconds, 2),
    )
    print(
      f'{split}: RMS error mean {np.mean(errors):.1f}, median '
      f'{np.median(errors):.1f} (of 255), {seconds:.1f} s a face',
      flush=True,
    )
    rows += [faces[:8], np.stack(recons[:8])]
  os.makedirs(os.path.dirname(os.path.abspath(FLAGS.out)), exist_ok=True)
  with open(FLAGS.out + '.json', 'w') as f:
    json.dump(result, f, indent=2)
  img.save_png(FLAGS.out + '.png', img.make_grid(np.concatenate(rows), cols=8))


if __name__ == '__main__':
  app.run(main)
