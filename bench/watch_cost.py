"""What the collapse watch, coverage and the EMA G's statistics cost per call.

python bench/watch_cost.py --height=157 --width=128 [--preset=celeba157x128]

Times training.collapse.near_duplicate_rate on 64 samples (once per
--log_every steps) and coverage on N vs N images: fitting the real side once
per run (PCA axes, features, k-NN radii) and scoring one generated set (once
per --eval_every steps). Random pixels stand in for images: the cost does not
depend on what they show. With --preset, also times
models.generator.set_standing_statistics on that preset's G (random weights,
the precision --mixed_precision=auto picks here), which runs at most once per
logged step, grid, evaluation or checkpoint.
"""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from absl import app
from absl import flags
import numpy as np

from metrics import coverage
from training import collapse

flags.DEFINE_integer('height', 157, 'Image height.')
flags.DEFINE_integer('width', 128, 'Image width.')
flags.DEFINE_integer('num_eval', 1024, 'N of coverage.')
flags.DEFINE_string('preset', None, "Also time this preset's standing statistics.")
FLAGS = flags.FLAGS


def _seconds(fn, repeats):
  tick = time.perf_counter()
  for _ in range(repeats):
    fn()
  return (time.perf_counter() - tick) / repeats


def main(argv):
  del argv
  rng = np.random.default_rng(0)
  h, w, n = FLAGS.height, FLAGS.width, FLAGS.num_eval
  samples = rng.uniform(-1, 1, (64, h, w, 3)).astype(np.float32)
  real = rng.integers(0, 256, (n, h, w, 3), dtype=np.uint8)
  fake = rng.integers(0, 256, (n, h, w, 3), dtype=np.uint8)
  print(
    f'near-duplicate rate, 64 samples: '
    f'{_seconds(lambda: collapse.near_duplicate_rate(samples), 10):.3f} s'
  )
  tick = time.perf_counter()
  pixels = coverage.PixelFeatures(real)
  balls = coverage.RealBalls(pixels(real))
  print(f'coverage, fit the real side ({n} images): {time.perf_counter() - tick:.2f} s')
  print(
    f'coverage, score {n} generated images: {_seconds(lambda: balls.score(pixels(fake)), 3):.2f} s'
  )
  if FLAGS.preset:
    from configs.presets import get_config
    from models.gan import GAN
    from models.generator import set_standing_statistics

    gan = GAN(get_config(FLAGS.preset))
    g = gan.ema_generator or gan.generator
    set_standing_statistics(g, gan.config)  # the first call builds the eager kernels
    seconds = _seconds(lambda: set_standing_statistics(g, gan.config), 3)
    print(f'standing statistics, {FLAGS.preset} ({gan.mixed_precision}): {seconds:.2f} s')


if __name__ == '__main__':
  app.run(main)
