"""Where in frequency G's images differ from held-out faces: the checkerboard check.

python bench/spectrum.py --data_dir=<CelebA folder> --checkpoint=runs/157 [--blur_swd]

Draws --num_eval images from a run's newest checkpoint (its EMA G, standing
statistics, the evaluation latents) and as many held-out faces (CelebA's
valid and test partitions, through the run's crop and resize), and prints
the mean power spectrum of the samples over that of the faces (grey level,
each image's mean removed): in radial bands from 0 to the corner
(sqrt(2)/2 cycles per pixel), and the frequencies where the ratio peaks.
A one-pixel checkerboard shows as a peak at 0.5 cycles per pixel. With
--blur_swd it also prints SWD per level of the samples as drawn, of the
samples through a [1, 2, 1] binomial blur per axis (what --g_blur puts at
G's output), and of as many training faces, plain and blurred: how much of
each level a blur would win back and what it costs real faces.
"""

import dataclasses
import os
import sys

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from absl import app
from absl import flags

flags.DEFINE_string('checkpoint', None, 'A run directory or a checkpoint prefix in one.')
flags.DEFINE_string('data_dir', None, 'CelebA folder with list_eval_partition.txt.')
flags.DEFINE_integer('num_eval', 256, 'Generated and held-out images.', lower_bound=16)
flags.DEFINE_integer('seed', 0, 'Latents, real-image order, SWD draws.')
flags.DEFINE_integer('bands', 14, 'Radial bands.', lower_bound=2)
flags.DEFINE_bool('blur_swd', False, 'Also score the samples and training faces blurred (slow).')
flags.mark_flags_as_required(['checkpoint', 'data_dir'])
FLAGS = flags.FLAGS


def power_spectrum(images):
  """Mean centred power spectrum of (N, H, W, 3) images' grey level."""
  import numpy as np

  grey = images.astype(np.float32).mean(-1)
  grey -= grey.mean(axis=(1, 2), keepdims=True)
  return np.fft.fftshift((np.abs(np.fft.fft2(grey)) ** 2).mean(0))


def radial_ratio(fake_power, real_power, bands):
  """fake / real power in `bands` rings of radius 0 to sqrt(2)/2 cycles/pixel."""
  import numpy as np

  h, w = fake_power.shape
  yy, xx = np.mgrid[:h, :w]
  radius = np.hypot((yy - h // 2) / h, (xx - w // 2) / w)
  edges = np.linspace(0, 0.5**0.5, bands + 1)
  rings = [(radius >= a) & (radius < b) for a, b in zip(edges[:-1], edges[1:])]
  return edges, [fake_power[r].mean() / real_power[r].mean() for r in rings]


def binomial_blur(images):
  """uint8 images through the [1, 2, 1] / 4 filter per axis (reflect padding)."""
  import numpy as np
  import tensorflow as tf
  from models import blocks

  x = tf.constant(images.astype(np.float32))
  return np.clip(np.round(blocks.Blur()(x).numpy()), 0, 255).astype(np.uint8)


def main(argv):
  del argv
  import numpy as np
  from metrics import evaluation
  from metrics import swd
  from training import checkpoints
  from training import rundir

  run_dir, prefix = checkpoints.find_checkpoint(FLAGS.checkpoint)
  config = dataclasses.replace(rundir.load_config(run_dir), data_dir=FLAGS.data_dir)
  held = evaluation.real_images(
    dataclasses.replace(config, split='heldout'), FLAGS.num_eval, FLAGS.seed
  )
  _, _, generator = checkpoints.load_generator(prefix, True, True)
  fake = evaluation.generate_images(generator, config, FLAGS.num_eval, FLAGS.seed)
  fake_power, real_power = power_spectrum(fake), power_spectrum(held)
  print(f'{prefix} (step {checkpoints.checkpoint_step(prefix)}), N={FLAGS.num_eval}')
  edges, ratios = radial_ratio(fake_power, real_power, FLAGS.bands)
  print('cycles/pixel  fake/real power')
  for a, b, r in zip(edges[:-1], edges[1:], ratios):
    print(f'{a:.2f}-{b:.2f}  {r:8.2f}')
  ratio = fake_power / real_power
  h, w = ratio.shape
  print('Peaks of fake/real (vertical, horizontal cycles/pixel: ratio):')
  for i in np.argsort(ratio.ravel())[::-1][:6]:
    y, x = divmod(int(i), w)
    print(f'  {(y - h // 2) / h:+.3f}, {(x - w // 2) / w:+.3f}: {ratio[y, x]:.0f}')
  if FLAGS.blur_swd:
    train = evaluation.real_images(
      dataclasses.replace(config, split='train'), FLAGS.num_eval, FLAGS.seed
    )
    for name, images in (
      ('samples', fake),
      ('samples blurred', binomial_blur(fake)),
      ('train faces', train),
      ('train faces blurred', binomial_blur(train)),
    ):
      levels = swd.swd(images, held, FLAGS.seed)
      print(f'SWD {name}: ' + ', '.join(f'{k} {v:.1f}' for k, v in levels.items()))


if __name__ == '__main__':
  app.run(main)
