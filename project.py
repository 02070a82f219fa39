"""Project a photo into a run's latent space: python project.py --checkpoint=runs/celeba64 --image=face.jpg.

Finds the latent whose image is closest to the photo (Adam on z from several
starts; see models/projection.py), after the crop and resize the run's data
pipeline applies, and writes into --out (default <run>/projections/):
<name>_z.npy, <name>_reconstruction.png (photo | G(z)) and
<name>_projection.gif (the optimisation). --nearest=K adds
<name>_nearest.png: G(z) beside the K training images closest to it, a
memorisation check.
"""

import os
import sys

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')  # hide TF's C++ chatter

from absl import app
from absl import flags
from absl import logging

from common import interrupts
from configs import definitions
from configs import errors

definitions.define_generator_flags()

flags.DEFINE_string('image', None, 'The photo: JPEG, PNG, WebP...')
flags.DEFINE_string('out', None, 'Output folder (default <run>/projections).')
flags.DEFINE_integer('starts', 4, 'Latents optimised side by side; the best wins.', lower_bound=1)
flags.DEFINE_integer('steps', definitions.PROJECTION_STEPS, 'Adam steps.', lower_bound=1)
definitions.define_finite_float('lr', 0.05, 'Adam learning rate on z.', positive=True)
flags.DEFINE_integer('seed', 0, 'Seed of the starting latents.')
flags.DEFINE_integer(
  'nearest', 0, 'Also show the K training images nearest to the reconstruction.', lower_bound=0
)
flags.DEFINE_integer(
  'nearest_pool',
  10000,
  'Training images searched for --nearest (the first N of a seeded order).',
  lower_bound=1,
)
flags.DEFINE_string(
  'data_dir', '', "Overrides the run's data_dir for --nearest (a run moved to another machine)."
)
flags.mark_flag_as_required('image')
FLAGS = flags.FLAGS


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {" ".join(argv[1:])}')
  logging.set_verbosity(logging.WARNING)
  with interrupts.deferred():  # Imported here so --help answers at once.
    import dataclasses
    from data import photos
    from data import pipeline
    from metrics import evaluation
    from metrics import nearest
    from models import projection
    from pictures import exports
    from models import checkpoint
  try:
    config, run_dir, generator = checkpoint.load_generator(
      FLAGS.checkpoint, use_ema=not FLAGS.no_ema
    )
    target = photos.prepare(photos.read(FLAGS.image, config), config)
    if FLAGS.nearest:  # the training images are checked before any work
      data_config = (
        dataclasses.replace(config, data_dir=FLAGS.data_dir) if FLAGS.data_dir else config
      )
      pool_size = min(FLAGS.nearest_pool, pipeline.open_source(data_config).size)
    out_dir = FLAGS.out or os.path.join(run_dir, 'projections')
    name = os.path.splitext(os.path.basename(FLAGS.image))[0]
    result = projection.project(
      generator,
      target,
      config.latent_dim,
      config.latent_dist,
      starts=FLAGS.starts,
      steps=FLAGS.steps,
      lr=FLAGS.lr,
      seed=FLAGS.seed,
    )
    paths = exports.write_projection(result, target, out_dir, name)
    if FLAGS.nearest:
      pool = evaluation.real_images(data_config, pool_size, config.seed)
      index, distance = nearest.nearest(result.image, pool, FLAGS.nearest)
      paths.append(
        exports.write_nearest(
          result.image, pool[index], distance, os.path.join(out_dir, f'{name}_nearest.png')
        )
      )
  except OSError as e:  # --out (or <run>/projections) cannot be written
    sys.exit(
      f'error: cannot write {e.filename or out_dir!r} ({e.strerror}): pass a writable --out.'
    )
  print(
    f'Projected {FLAGS.image}: RMS error {result.rms:.1f} (of 255) after '
    f'{FLAGS.steps} steps. Wrote {len(paths)} file(s) to {out_dir}:'
  )
  for p in paths:
    print(f'  {os.path.relpath(p, out_dir)}')


if __name__ == '__main__':
  app.run(interrupts.quit_quietly(errors.one_line(main)))
