"""Pictures from a trained run: python generate.py --checkpoint=runs/celeba64.

Rebuilds G (the EMA copy when the run has one) from the run's config.json
alone and writes a sample grid, interpolation and circle GIFs, latent walks,
edit directions found without labels (GANSpace: --mode=directions) and the
progress GIF into --out (default <run>/generated/); --mode picks one,
--export_savedmodel adds a TensorFlow SavedModel and --export_tflite a TFLite
model; --mode=weights writes a weights folder (config.json and G's weights,
kernels in int8) that every tool takes as --checkpoint. Same --seed, same files.
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

flags.DEFINE_string('out', None, 'Output folder (default <run dir>/generated).')
flags.DEFINE_enum(
  'mode',
  'all',
  ['all', *definitions.GENERATE_MODES],
  'What to write; all = grid, interpolate, circle, walk, directions and '
  'progress (plus savedmodel and tflite when their --export_ '
  'flags ask).',
)
flags.DEFINE_integer('seed', 0, 'Seed of every latent drawn.')
flags.DEFINE_integer('num', 64, 'Images in the sample grid.', lower_bound=1)
flags.DEFINE_integer('grid_cols', 0, 'Grid columns (0: square-ish).', lower_bound=0)
definitions.define_finite_float(
  'truncation',
  None,
  'Truncate latents: normal components with |z| above '
  'this are redrawn; uniform latents are scaled by min(this, 1). Default: '
  'off.',
  positive=True,
)
flags.DEFINE_enum('interpolation', 'slerp', ['slerp', 'linear'], 'Path between two latents.')
flags.DEFINE_integer(
  'num_interpolations',
  4,
  'Latent pairs side by side in the interpolation and circle GIFs.',
  lower_bound=1,
)
flags.DEFINE_integer('frames', 48, 'Frames per GIF.', lower_bound=2)
definitions.define_finite_float(
  'fps', 12.0, "GIF frames per second (progress.gif keeps training's 4).", lower_bound=0.1
)
flags.DEFINE_list(
  'dims',
  None,
  'Latent dimensions to walk (default 25,50,75, or the quarter points of a latent of 75 or fewer).',
)
definitions.define_finite_float(
  'range',
  3.0,
  'Walks sweep a dimension over [-range, range]; --mode=directions moves faces as far.',
  lower_bound=0.0,
)
flags.DEFINE_integer('walk_steps', 9, 'Images in each walk and direction PNG strip.', lower_bound=2)
flags.DEFINE_integer(
  'num_directions',
  10,
  'Edit directions drawn by --mode=directions, by decreasing variance (at most 50).',
  lower_bound=1,
  upper_bound=50,
)
flags.DEFINE_integer(
  'direction_bases', 4, 'Faces moved along each direction (rows of its strip).', lower_bound=1
)
flags.DEFINE_integer('batch_size', 64, 'Latents per generator call.', lower_bound=1)
flags.DEFINE_bool(
  'export_savedmodel',
  False,
  'Also export G as a SavedModel (<out>/savedmodel) mapping float32 z to uint8 images.',
)
flags.DEFINE_bool(
  'export_tflite',
  False,
  "Also export G as a TFLite model (<out>/generator.tflite) with the SavedModel's signature.",
)
FLAGS = flags.FLAGS


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {" ".join(argv[1:])}')
  try:
    dims = tuple(int(d) for d in FLAGS.dims) if FLAGS.dims is not None else None
  except ValueError:
    raise app.UsageError(f'--dims must be integers, got {FLAGS.dims}.') from None
  if not FLAGS['verbosity'].present:  # SavedModel export logs at INFO
    logging.set_verbosity(logging.WARNING)
  # Imported here so --help answers without loading TensorFlow.
  with interrupts.deferred():
    from models import latents
    from pictures import exports
    from models import checkpoint
  extra = tuple(
    m
    for m, asked in (('savedmodel', FLAGS.export_savedmodel), ('tflite', FLAGS.export_tflite))
    if asked and m != FLAGS.mode
  )
  modes = (exports.ALL_MODES if FLAGS.mode == 'all' else (FLAGS.mode,)) + extra
  try:
    config, run_dir, prefix, generator = checkpoint.load_generator_from(
      FLAGS.checkpoint, use_ema=not FLAGS.no_ema
    )
    opts = exports.Options(
      seed=FLAGS.seed,
      num=FLAGS.num,
      grid_cols=FLAGS.grid_cols,
      truncation=FLAGS.truncation,
      interpolation=FLAGS.interpolation,
      num_interpolations=FLAGS.num_interpolations,
      frames=FLAGS.frames,
      fps=FLAGS.fps,
      dims=dims or latents.default_dims(config.latent_dim),
      range=FLAGS.range,
      walk_steps=FLAGS.walk_steps,
      batch_size=FLAGS.batch_size,
      num_directions=FLAGS.num_directions,
      direction_bases=FLAGS.direction_bases,
    )
    out_dir = FLAGS.out or os.path.join(run_dir, 'generated')
    step = checkpoint.checkpoint_step(prefix)
    paths = exports.generate(modes, generator, config, run_dir, out_dir, opts, step)
  except OSError as e:  # --out (or <run>/generated) cannot be written
    sys.exit(
      f'error: cannot write {e.filename or out_dir!r} ({e.strerror}): pass a writable --out.'
    )
  print(f'Wrote {len(paths)} file(s) to {out_dir}:')
  for p in paths:
    print(f'  {os.path.relpath(p, out_dir)}')


if __name__ == '__main__':
  app.run(interrupts.quit_quietly(errors.one_line(main)))
