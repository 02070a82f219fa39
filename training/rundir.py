"""The run directory: its file names, config.json, the lock, atomic writes.

What is inside checkpoints/ is training/checkpoints.py's business.
"""

import dataclasses
import datetime
import fnmatch
import json
import os
import shutil
import socket
from typing import Dict

from common.files import atomic_write
from configs.presets import ADDED_ARCH_FIELDS, CHANGED_DEFAULTS, PRESETS, Config
from configs.run_files import (
  BEST_DIR,
  CHECKPOINT_DIR,
  CONFIG_FILE,
  EVAL_DIR,
  RunDirError,
  load_config,
)
from pictures.images import SAMPLES_DIR

FIXED_LATENT_FILE = 'fixed_latent.npy'
LOCK_FILE = 'train.lock'
SPEED_CHOICE_FILE = 'speed_choice.json'
CONFIG_HISTORY_FILE = 'config_history.jsonl'
# Everything train.py, generate.py and evaluate.py write into a run
# directory: what --overwrite may delete.
RUN_FILES = (
  CONFIG_FILE,
  f'{CONFIG_FILE}.tmp*',
  CHECKPOINT_DIR,
  BEST_DIR,
  SAMPLES_DIR,
  FIXED_LATENT_FILE,
  f'{FIXED_LATENT_FILE}.tmp*',
  'progress.gif',
  'events.out.tfevents.*',
  EVAL_DIR,
  'generated',
  LOCK_FILE,
  SPEED_CHOICE_FILE,
  f'{SPEED_CHOICE_FILE}.tmp*',
  CONFIG_HISTORY_FILE,
)

# Fields whose change makes the checkpoint or the run meaningless to resume.
INCOMPATIBLE_FIELDS = (
  'preset',
  'arch',
  'image_height',
  'image_width',
  'latent_dim',
  'g_filters',
  'd_filters',
  'g_spectral_norm',
  'd_spectral_norm',
  'd_batch_norm',
  'optimizer',
  'latent_dist',
  'crop',
  'dataset',
  'g_upsample',
  'g_blur',
  'g_out_upsample',
  'd_mbstd_group',
)


def _is_run_file(name: str) -> bool:
  return any(fnmatch.fnmatchcase(name, pattern) for pattern in RUN_FILES)


def _check_writable_dir(workdir: str) -> None:
  """Creates `workdir`, or says in one paragraph why it cannot be used."""
  if os.path.exists(workdir) and not os.path.isdir(workdir):
    raise RunDirError(
      f'--workdir {workdir!r} is a file, not a folder: pick another --workdir for the run.'
    )
  try:
    os.makedirs(workdir, exist_ok=True)
  except OSError as e:
    raise RunDirError(
      f'Cannot create the run directory {workdir!r} ({e.strerror}): pick another --workdir.'
    ) from e
  if not os.access(workdir, os.W_OK | os.X_OK):
    raise RunDirError(
      f'The run directory {workdir!r} is not writable: fix '
      'its permissions or pick another --workdir.'
    )


def prepare(config: Config, workdir: str, overwrite: bool = False) -> Config:
  """Creates `workdir`, or checks that its run can be resumed with `config`.

  Returns the config to train with: `config`, except that a run made before
  an architecture field existed (presets.ADDED_ARCH_FIELDS) or before its
  preset's default changed (presets.CHANGED_DEFAULTS) keeps the value it was
  trained with, and says so. A run from another preset or with
  another architecture is refused (it would restore the wrong weights);
  other changes (epochs, rates...) are allowed. `overwrite` deletes the run
  first, compatible or not, but only the files facegan writes (RUN_FILES):
  a folder that also holds anything else is refused, with the list. config.json is not written here: see
  save_config, called once the checkpoint has been restored.
  """
  _check_writable_dir(workdir)
  entries = sorted(os.listdir(workdir))
  is_run = any(_is_run_file(e) and e != LOCK_FILE for e in entries)
  if overwrite:
    foreign = [e for e in entries if not _is_run_file(e)]
    if is_run and foreign:
      shown = ', '.join(foreign[:8]) + (', ...' if len(foreign) > 8 else '')
      raise RunDirError(
        f'--overwrite deletes only what facegan wrote, and {workdir!r} also '
        f'holds {len(foreign)} other item(s): {shown}. Move them out or '
        'pick another --workdir; nothing was deleted.'
      )
    for e in entries:
      if _is_run_file(e) and e != LOCK_FILE:  # the lock is this process's
        path = os.path.join(workdir, e)
        if os.path.isdir(path) and not os.path.islink(path):
          shutil.rmtree(path)
        else:
          os.remove(path)
    return config
  if not os.path.isfile(os.path.join(workdir, CONFIG_FILE)):
    return config
  try:
    old = load_config(workdir)
    config = _keep_old_recipe(config, old, workdir)
    diffs = [
      f'{k}: {getattr(old, k)!r} -> {getattr(config, k)!r}'
      for k in INCOMPATIBLE_FIELDS
      if getattr(old, k) != getattr(config, k)
    ]
    if (old.ema_decay > 0) != (config.ema_decay > 0):
      diffs.append('ema_decay: the EMA generator was turned on or off')
    fp16 = lambda c: c.mixed_precision == 'mixed_float16'
    if fp16(old) != fp16(config):
      # Other precisions share float32 variables and plain optimizers.
      diffs.append('mixed_precision: float16 loss-scale state was added or removed')
  except RunDirError as e:
    diffs = [str(e)]
  if diffs:
    raise RunDirError(
      f'{workdir!r} holds a run that this configuration cannot resume '
      f'({"; ".join(diffs)}). Pick another --workdir, or pass --overwrite '
      'to delete that run and start again.'
    )
  return config


def _keep_old_recipe(config: Config, old: Config, workdir: str) -> Config:
  """`config` with the old run's value of the arch fields its config.json
  lacks, and of the fields whose preset default changed since it was made."""
  with open(os.path.join(workdir, CONFIG_FILE)) as f:
    saved = json.load(f)
  kept = {
    name: value
    for name, value in ADDED_ARCH_FIELDS.items()
    if name not in saved and getattr(config, name) != value
  }
  for (preset, name), before in CHANGED_DEFAULTS.items():
    now = PRESETS[preset][name]
    if config.preset == preset and getattr(old, name) == before and getattr(config, name) == now:
      kept[name] = before
  if not kept:
    return config
  print(
    'This run was trained with '
    + ', '.join(f'{k}={v!r}' for k, v in kept.items())
    + ', from before a field existed or a preset default changed: it resumes '
    f'as it was trained (recorded in {CONFIG_FILE}); pass --overwrite or '
    'another --workdir to train the new recipe.',
    flush=True,
  )
  return dataclasses.replace(config, **{name: getattr(old, name) for name in kept})


def save_config(config: Config, workdir: str, step: int = 0) -> Dict[str, list]:
  """Writes <workdir>/config.json (atomically) and keeps its history.

  config.json holds the latest settings. config_history.jsonl keeps the
  first ones in full and, for every call that changed some, the step it
  resumed from and each changed field's old and new value, so nothing
  about what trained a run is lost.

  Returns:
    {field: [old, new]} for the fields this call changed (empty if none).
  """
  path = os.path.join(workdir, CONFIG_FILE)
  history = os.path.join(workdir, CONFIG_HISTORY_FILE)
  new = json.loads(config.to_json())
  entries = []
  if os.path.isfile(path):
    with open(path) as f:
      old = json.load(f)
    if not os.path.isfile(history):  # a run from before the history
      entries.append(dict(step=None, config=old))
    changed = {k: [old.get(k), v] for k, v in new.items() if old.get(k) != v}
    if changed:
      entries.append(dict(step=step, time=_now(), changed=changed))
  else:
    changed = {}
    entries.append(dict(step=step, time=_now(), config=new))
  if entries:
    with open(history, 'a') as f:
      f.writelines(json.dumps(e) + '\n' for e in entries)
  atomic_write(path, lambda f: f.write(config.to_json() + '\n'))
  return changed


def _now() -> str:
  return datetime.datetime.now().astimezone().isoformat(timespec='seconds')


class RunLock:
  """An exclusive lock on a run directory, held while train.py trains it.

  Two processes training one directory would both write checkpoints. The
  lock is an flock on <workdir>/train.lock, which the OS releases when the
  process dies (kill -9 included), so it never goes stale; the file holds
  the owner's host and PID for the message. Where flock does not exist
  (Windows) no lock is taken.
  """

  def __init__(self, workdir: str):
    _check_writable_dir(workdir)
    self._file = None
    try:
      import fcntl
    except ImportError:
      return
    path = os.path.join(workdir, LOCK_FILE)
    f = open(path, 'a+')
    try:
      fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
      f.seek(0)
      owner = f.read().strip() or 'another process'
      f.close()
      raise RunDirError(
        f'{workdir!r} is being trained by {owner}: two processes on one '
        "run would overwrite each other's checkpoints. Wait for it to "
        'finish or stop it (Ctrl-C saves), or pick another --workdir.'
      ) from None
    f.seek(0)
    f.truncate()
    f.write(f'process {os.getpid()} on {socket.gethostname()}\n')
    f.flush()
    self._file = f

  def release(self) -> None:
    if self._file is not None:
      self._file.close()  # closing releases the flock
      self._file = None
