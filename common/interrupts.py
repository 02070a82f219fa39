"""Ctrl-C in the entry scripts (no TensorFlow here: imported first)."""

import contextlib
import signal
import sys
import threading


@contextlib.contextmanager
def deferred():
  """Holds Ctrl-C until the block ends, then raises KeyboardInterrupt.

  TensorFlow's import swallows a KeyboardInterrupt raised inside it and goes
  on loading, so a Ctrl-C while the entry scripts import it would be lost
  and the command would run anyway.
  """
  if threading.current_thread() is not threading.main_thread():
    yield
    return
  hits = []
  previous = signal.signal(signal.SIGINT, lambda signum, frame: hits.append(1))
  try:
    yield
  finally:
    signal.signal(signal.SIGINT, previous)
  if hits:
    raise KeyboardInterrupt


def quit_quietly(main):
  """`main` for absl's app.run, ending on Ctrl-C with one line, no traceback.

  For the scripts that only write files whole (or not at all), so an
  interrupt leaves nothing to clean up.
  """

  def run(argv):
    try:
      main(argv)
    except KeyboardInterrupt:
      sys.exit('\nInterrupted.')

  return run
