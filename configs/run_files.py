"""What a run directory holds, as far as reading it back needs: its
config.json, checkpoints/, best/ and eval/ folders (training writes them)."""

import os

from configs.errors import FaceganError
from configs.presets import Config

CONFIG_FILE = 'config.json'
CHECKPOINT_DIR = 'checkpoints'
EVAL_DIR = 'eval'  # evaluations: during training and by evaluate.py
BEST_DIR = 'best'  # the checkpoint of the best evaluation (--keep_best)


class RunDirError(FaceganError, ValueError):
  """The run directory cannot be used as asked; the message says why."""


def load_config(workdir: str) -> Config:
  """The Config saved in `workdir/config.json`."""
  path = os.path.join(workdir, CONFIG_FILE)
  if not os.path.isfile(path):
    raise RunDirError(
      f'{workdir!r} has no {CONFIG_FILE}: it is not a facegan '
      'run directory (train.py writes one at the start).'
    )
  try:
    with open(path) as f:
      return Config.from_json(f.read()).validate()
  except (ValueError, TypeError) as e:
    raise RunDirError(f'{path} cannot be read by this version of facegan: {e}') from e
