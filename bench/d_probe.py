"""Can D tell G's fakes apart? Freeze G at a checkpoint and train D alone.

python bench/d_probe.py --checkpoint=runs/157/checkpoints/ckpt-520 --data_dir=<CelebA folder> \
    --set=diffaugment= --set=d_dropout=0.0 ...

Restores a run's whole train state (G, D, both optimizers), sets G's learning
rate to 0 and runs --steps train steps on --num_real training faces held in
memory, so only D learns. Prints mean D(x) / D(G(z)) every 10 steps, first
for the run's own config, then for each --set (one config change each, from
the same restored state). A D that stays near 0.5 / 0.5 against a G it is
not chasing cannot see what separates G's images from real ones under that
config: in the run, G gets no signal about it either.
"""

import dataclasses
import os
import sys

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from absl import app
from absl import flags

flags.DEFINE_string('checkpoint', None, 'A checkpoint prefix inside a run directory.')
flags.DEFINE_string('data_dir', None, 'CelebA folder (the run trained on its train partition).')
flags.DEFINE_multi_string('set', [], 'field=value: one variant per flag (see train.py --set).')
flags.DEFINE_integer('steps', 80, 'D steps per variant.', lower_bound=10)
flags.DEFINE_integer('num_real', 640, 'Training faces cycled through.', lower_bound=32)
flags.mark_flags_as_required(['checkpoint', 'data_dir'])
FLAGS = flags.FLAGS


def main(argv):
  del argv
  import numpy as np
  import tensorflow as tf
  from bench import common
  from configs import presets
  from metrics import evaluation
  from models.gan import GAN
  from training import checkpoints
  from training import rundir

  run_dir, prefix = checkpoints.find_checkpoint(FLAGS.checkpoint)
  base = dataclasses.replace(rundir.load_config(run_dir), data_dir=FLAGS.data_dir)
  real = evaluation.real_images(base, FLAGS.num_real, base.seed + 1).astype(np.float32)
  real = real / 127.5 - 1.0
  batch = base.batch_size
  cycle = len(real) // batch * batch  # whole batches
  variants = [('as trained', {})] + [
    (s, common.parse_overrides([s], presets.Config)) for s in FLAGS.set
  ]
  for name, overrides in variants:
    gan = GAN(dataclasses.replace(base, **overrides))
    tf.train.Checkpoint(**checkpoints.gan_items(gan)).restore(prefix).expect_partial()
    gan.g_optimizer.learning_rate.assign(0.0)
    step = tf.function(lambda x, gan=gan: gan.step_fn(x, with_norms=False))
    readings = []
    for i in range(FLAGS.steps):
      start = (i * batch) % cycle
      out = step(tf.constant(real[start : start + batch]))
      if i % 10 == 9:  # the step's own batch means, in training mode
        readings.append(f'{float(out["d_real"]):.2f}/{float(out["d_fake"]):.2f}')
    print(f'{name:<28} D(x)/D(G(z)) every 10 steps: {" ".join(readings)}', flush=True)


if __name__ == '__main__':
  app.run(main)
