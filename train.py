"""Train a face GAN: python train.py --preset=celeba64 --data_dir=<CelebA>.

Flags override any preset field (python train.py --helpfull lists them);
--dry_run prints the resolved config. Rerunning the same command resumes.
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

definitions.define_config_flags()
flags.DEFINE_string('workdir', None, 'Run directory (default runs/<preset>).')
flags.DEFINE_bool('dry_run', False, 'Print the resolved config and exit.')
definitions.define_finite_float(
  'max_minutes',
  None,
  'Stop after this many minutes of training '
  '(evaluation not counted), saving a checkpoint; rerunning continues.',
  positive=True,
)
flags.DEFINE_bool('overwrite', False, 'Delete an incompatible run in --workdir and start again.')
FLAGS = flags.FLAGS


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {" ".join(argv[1:])}')
  try:
    config = definitions.config_from_flags(FLAGS)
  except ValueError as e:  # one line, not absl's usage text
    sys.exit(f'error: {e}')
  workdir = os.path.expanduser(FLAGS.workdir or os.path.join('runs', config.preset))
  if FLAGS.dry_run:
    print(config.to_json())
    print(f'workdir: {workdir}')
    return
  try:
    _train(config, workdir)
  except KeyboardInterrupt:  # setup, or a third Ctrl-C: no save is running
    print(f'\nInterrupted: quit without saving; checkpoints already in {workdir} are kept.')
    sys.exit(130)


def _train(config, workdir):
  # Imported here so --help and --dry_run answer without loading TensorFlow.
  with interrupts.deferred():
    from training import loop
  logging.set_verbosity(logging.WARNING)  # progress is printed, not logged
  loop.run(
    config,
    workdir,
    overwrite=FLAGS.overwrite,
    max_seconds=FLAGS.max_minutes and FLAGS.max_minutes * 60,
  )


if __name__ == '__main__':
  app.run(errors.one_line(main))
