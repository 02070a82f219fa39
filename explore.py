"""Explore a trained generator in the browser: python explore.py --checkpoint=runs/celeba64.

Starts a local web page (printed URL, 127.0.0.1 by default): a grid of faces
from a seed, a slerp slider between two picked faces, sliders on chosen
latent dimensions and along edit directions found without labels (GANSpace,
cached in the run directory), a truncation slider, PNG and latent (.npy)
downloads, latent uploads, and photo uploads projected into the latent space
(as project.py does). Ctrl-C stops it.
"""

import os
import socket
import sys

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')  # hide TF's C++ chatter

from absl import app
from absl import flags
from absl import logging

from common import interrupts
from configs import definitions
from configs import errors

definitions.define_generator_flags()

flags.DEFINE_string(
  'host',
  '127.0.0.1',
  'Address to listen on (0.0.0.0 '
  'shares the page with the network: anyone who reaches it '
  'can use it).',
)
flags.DEFINE_integer(
  'port', 8000, 'Port to listen on (0: any free one).', lower_bound=0, upper_bound=65535
)
flags.DEFINE_integer(
  'project_steps',
  definitions.EXPLORER_PROJECTION_STEPS,
  'Adam steps of a photo projection in the page.',
  lower_bound=1,
)
FLAGS = flags.FLAGS


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {" ".join(argv[1:])}')
  logging.set_verbosity(logging.WARNING)
  with interrupts.deferred():  # Imported here so --help answers at once.
    from explorer.app import create_app, make_server
    from models import checkpoint
    from models import directions
  config, run_dir, generator = checkpoint.load_generator(FLAGS.checkpoint, use_ema=not FLAGS.no_ema)
  edits = directions.cached_directions(run_dir, generator, config)
  web = create_app(
    generator,
    config,
    os.path.basename(os.path.abspath(run_dir)),
    FLAGS.project_steps,
    host=FLAGS.host,
    directions=edits,
  )
  try:
    # Tried first with a plain socket: werkzeug prints its own message and
    # exits on a busy port.
    socket.create_server((FLAGS.host, FLAGS.port)).close()
    server = make_server(web, FLAGS.host, FLAGS.port)
  except OSError as e:  # in use, or not an address of this machine
    sys.exit(
      f'error: cannot listen on {FLAGS.host}:{FLAGS.port} '
      f'({e.strerror}): pass another --port (or --port=0 for any free '
      'one).'
    )
  print(f'Exploring {run_dir} at http://{FLAGS.host}:{server.port}/ (Ctrl-C stops).', flush=True)
  try:
    server.serve_forever()
  except KeyboardInterrupt:
    print('\nStopped.')


if __name__ == '__main__':
  app.run(errors.one_line(main))
