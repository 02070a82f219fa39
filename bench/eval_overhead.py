"""What --eval_every costs next to training: python bench/eval_overhead.py --preset=celeba48 --data_dir=<CelebA folder>.

Times, on this machine, facegan's training step for the preset (as train.py
runs it) and each part of one evaluation during training: drawing the N
generated images, SWD, coverage with the channel means (the mode-coverage
metric), and the collapse watch reading the scores. Prints each part's
seconds and its share of the training time between two evaluations at each
--eval_every given. The generator is the preset's at initialisation: the
parts' cost does not depend on what G has learnt.
"""

import os
import sys
import tempfile
import time

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from absl import app
from absl import flags
import numpy as np

from bench import common

flags.DEFINE_string('preset', 'celeba48', 'Preset to time.')
flags.DEFINE_string('data_dir', '', 'CelebA folder with a partition file.')
flags.DEFINE_list('eval_every', ['400', '500'], 'Intervals to report.')
flags.DEFINE_integer('repeats', 3, 'Timings of each part (the median is kept).')
FLAGS = flags.FLAGS


def _median_seconds(fn, repeats):
  times = []
  for _ in range(repeats):
    tick = time.perf_counter()
    fn()
    times.append(time.perf_counter() - tick)
  return float(np.median(times))


def main(argv):
  del argv
  import tensorflow as tf
  from configs import presets
  from metrics import coverage, evaluation
  from metrics import swd as swd_lib
  from models.gan import GAN
  from training import autotune, collapse

  config = presets.get_config(FLAGS.preset, data_dir=FLAGS.data_dir, eval_split='heldout')
  with tempfile.TemporaryDirectory() as scratch:  # its speed_choice.json
    models = autotune.resolve(config, scratch, False)
  real = tf.cast(evaluation.real_images(config, config.batch_size, 0), tf.float32) / 127.5 - 1.0
  run, policy = common.facegan_step_fn(models, real)
  run(10)  # traced and warm
  step = _median_seconds(lambda: run(10), FLAGS.repeats) / 10
  evaluator = evaluation.TrainingEvaluator(config)
  sample = GAN(models).sample
  n = len(evaluator.real)
  fake = evaluation.generate_images(sample, config, n, config.seed)
  watch = collapse.CollapseWatch()
  scores = evaluator(sample)
  parts = {
    f'generate {n} images': lambda: evaluation.generate_images(sample, config, n, config.seed),
    'SWD': lambda: swd_lib.swd(fake, evaluator.real, seed=config.seed),
    'coverage (whole, face) + channel means': lambda: (
      [real_side.score(fake) for real_side in evaluator.coverage.values()],
      coverage.channel_stats(fake),
    ),
    'collapse watch': lambda: watch.observe_eval(scores, 0),
  }
  seconds = {name: _median_seconds(fn, FLAGS.repeats) for name, fn in parts.items()}
  print(
    f'{common.machine()}; {FLAGS.preset}, {policy}, batch '
    f'{config.batch_size}: {step:.3f} s a step; N = {n}'
  )
  for name, s in seconds.items():
    shares = ', '.join(f'{100 * s / (int(e) * step):.2f}% at every {e}' for e in FLAGS.eval_every)
    print(f'  {name:26s} {s:7.2f} s  ({shares})')


if __name__ == '__main__':
  app.run(main)
