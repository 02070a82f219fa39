"""The run directory: config.json, checkpoints and how to find them again."""

import os
import shutil
from typing import Tuple

import tensorflow as tf

from flags.presets import Config

CONFIG_FILE = 'config.json'
CHECKPOINT_DIR = 'checkpoints'
SAMPLES_DIR = 'samples'
FIXED_LATENT_FILE = 'fixed_latent.npy'

# Fields whose change makes the checkpoint or the run meaningless to resume.
INCOMPATIBLE_FIELDS = ('preset', 'arch', 'image_height', 'image_width',
                       'latent_dim', 'g_filters', 'd_filters',
                       'g_spectral_norm', 'd_spectral_norm', 'optimizer',
                       'latent_dist', 'crop', 'dataset')


class RunDirError(ValueError):
  """The run directory cannot be used as asked; the message says why."""


def load_config(workdir: str) -> Config:
  """The Config saved in `workdir/config.json`."""
  path = os.path.join(workdir, CONFIG_FILE)
  if not os.path.isfile(path):
    raise RunDirError(f'{workdir!r} has no {CONFIG_FILE}: it is not a facegan '
                      'run directory (train.py writes one at the start).')
  try:
    with open(path) as f:
      return Config.from_json(f.read()).validate()
  except (ValueError, TypeError) as e:
    raise RunDirError(f'{path} cannot be read by this version of facegan: '
                      f'{e}') from e


def prepare(config: Config, workdir: str, overwrite: bool = False) -> None:
  """Creates `workdir` or checks it can resume `config`, then saves config.json.

  A workdir from another preset or with another architecture is refused
  (it would silently restore the wrong weights) unless `overwrite`, which
  deletes its contents first. Other changes (epochs, rates...) are allowed.
  """
  path = os.path.join(workdir, CONFIG_FILE)
  if os.path.isfile(path):
    try:
      old = load_config(workdir)
      diffs = [f'{k}: {getattr(old, k)!r} -> {getattr(config, k)!r}'
               for k in INCOMPATIBLE_FIELDS
               if getattr(old, k) != getattr(config, k)]
      if (old.ema_decay > 0) != (config.ema_decay > 0):
        diffs.append('ema_decay: the EMA generator was turned on or off')
      fp16 = lambda c: c.mixed_precision == 'mixed_float16'
      if fp16(old) != fp16(config):
        # Other precisions share float32 variables and plain optimizers.
        diffs.append('mixed_precision: float16 loss-scale state was added or '
                     'removed')
    except RunDirError as e:
      diffs = [str(e)]
    if diffs and not overwrite:
      raise RunDirError(
          f'{workdir!r} holds a run that this configuration cannot resume '
          f'({"; ".join(diffs)}). Pick another --workdir, or pass --overwrite '
          'to delete that run and start again.')
    if diffs and overwrite:
      shutil.rmtree(workdir)
  os.makedirs(workdir, exist_ok=True)
  atomic_write(path, lambda f: f.write(config.to_json() + '\n'))


def atomic_write(path: str, write, binary: bool = False) -> None:
  """Calls write(file) on a temporary file, then renames it onto `path`.

  A crash mid-write leaves the old file (or none), never a truncated one.
  """
  tmp = f'{path}.tmp{os.getpid()}'
  with open(tmp, 'wb' if binary else 'w') as f:
    write(f)
    f.flush()
    os.fsync(f.fileno())
  os.replace(tmp, path)


def find_checkpoint(path: str) -> Tuple[str, str]:
  """(run dir, checkpoint prefix) from a run dir, checkpoints dir or prefix.

  A directory gives its latest checkpoint. tf.train.latest_checkpoint
  silently skips a latest checkpoint whose .index is gone (an interrupted
  copy or save), which would surface as a misleading "no checkpoint found";
  such a checkpoint is reported as incomplete instead.

  Raises:
    RunDirError: no checkpoint at `path`, or an incomplete one.
  """
  path = os.path.expanduser(path).rstrip('/')
  for run_dir, ckpt_dir in ((path, os.path.join(path, CHECKPOINT_DIR)),
                            (os.path.dirname(path), path)):
    state = (tf.train.get_checkpoint_state(ckpt_dir)
             if os.path.isdir(ckpt_dir) else None)
    if state and state.model_checkpoint_path:
      latest = state.model_checkpoint_path  # already joined to ckpt_dir
      if not os.path.exists(latest + '.index'):
        complete = [p for p in state.all_model_checkpoint_paths
                    if os.path.exists(p + '.index')]
        hint = f' (e.g. {complete[-1]})' if complete else ''
        raise RunDirError(
            f'The latest checkpoint {latest} is incomplete: '
            f'{os.path.basename(latest)}.index is missing (an interrupted copy '
            f'or save?). Pass an older checkpoint prefix as --checkpoint{hint}, '
            'or restore the missing file.')
      return run_dir, latest
  if os.path.exists(path + '.index'):  # a checkpoint prefix
    return os.path.dirname(os.path.dirname(path)), path
  if tf.io.gfile.glob(path + '.data-*'):
    raise RunDirError(f'Checkpoint {path} is incomplete: {path}.index is '
                      'missing, so its weights cannot be read.')
  raise RunDirError(f'No checkpoint found at {path!r}: pass a run directory '
                    '(e.g. runs/celeba64), its checkpoints/ folder or a '
                    'checkpoint prefix such as runs/celeba64/checkpoints/ckpt-1200.')
