"""Training's checkpoints: what one holds, which is usable, resuming.

`gan_items` is what a checkpoint holds: each model as models.checkpoint's
`model_state` dict, the optimizers, the step counter. `restore` resumes a
GAN from the newest complete, readable checkpoint. Loading just G for
pictures lives in models/checkpoint.py (re-exported here).
"""

import glob
import json
import math
import os
import re
import shutil
from typing import Dict, List, NamedTuple, Optional, Tuple

import tensorflow as tf

from common import files
from configs.errors import first_line
from configs.run_files import BEST_DIR, CHECKPOINT_DIR, RunDirError

# The loader of G and the checkpoint keys, used here and re-exported.
from models.checkpoint import (  # noqa: F401
  checkpoint_step,
  compare_shapes,
  find_checkpoint,
  generator_key,
  load_generator,
  load_generator_from,
  model_state,
  run_config,
  uses_positional_keys,
  wanted_shapes,
)


# The key of the adaptive augmentation probability, which checkpoints older
# than it lack (restore then starts it afresh).
ADAPTIVE_P = 'augment_p'


def gan_items(gan, positional: bool = False) -> Dict[str, object]:
  """Everything a checkpoint must hold to resume a models.gan.GAN exactly.

  positional: the models keyed as older checkpoints have them (see
    model_state).
  """
  items = dict(
    generator=model_state(gan.generator, positional),
    discriminator=model_state(gan.discriminator, positional),
    g_optimizer=gan.g_optimizer,
    d_optimizer=gan.d_optimizer,
    step=gan.step,
  )
  items[ADAPTIVE_P] = gan.tricks.augment_p
  if gan.ema_generator is not None:
    items['ema_generator'] = model_state(gan.ema_generator, positional)
  return items


def _data_shards(prefix: str) -> Optional[List[str]]:
  """The .data shard files `prefix` needs, or None without any shard."""
  found = glob.glob(glob.escape(prefix) + '.data-*-of-*')
  if not found:
    return None
  total = int(found[0].rsplit('-of-', 1)[1])
  return [f'{prefix}.data-{i:05d}-of-{total:05d}' for i in range(total)]


def complete_checkpoints(ckpt_dir: str) -> List[Tuple[int, str]]:
  """(step, prefix) of each checkpoint with its .index and every .data shard.

  Read from the files themselves, oldest first: the `checkpoint` state file
  can be lost or stale (an interrupted copy), and TensorFlow's
  latest_checkpoint then reports nothing, or a checkpoint that is gone.
  """
  found = []
  for index in glob.glob(os.path.join(glob.escape(ckpt_dir), 'ckpt-*.index')):
    prefix = index[: -len('.index')]
    match = re.fullmatch(r'ckpt-(\d+)', os.path.basename(prefix))
    shards = _data_shards(prefix)
    if match and shards and all(os.path.isfile(p) for p in shards):
      found.append((int(match.group(1)), prefix))
  return sorted(found)


def has_checkpoint_files(ckpt_dir: str) -> bool:
  """Whether `ckpt_dir` holds any checkpoint file, complete or not."""
  return bool(glob.glob(os.path.join(glob.escape(ckpt_dir), 'ckpt-*')))


def write_checkpoint_state(ckpt_dir: str, prefixes: List[str]) -> None:
  """Rewrites `ckpt_dir`/checkpoint to list `prefixes` (oldest first).

  The CheckpointState text proto TensorFlow reads, with each file's time
  after `last_preserved_timestamp`: CheckpointManager rotates only
  checkpoints listed so, and would otherwise keep the old ones forever.
  """
  times = [os.path.getmtime(p + '.index') for p in prefixes]
  lines = [f'model_checkpoint_path: "{os.path.basename(prefixes[-1])}"']
  lines += [f'all_model_checkpoint_paths: "{os.path.basename(p)}"' for p in prefixes]
  lines += [f'all_model_checkpoint_timestamps: {t!r}' for t in times]
  lines.append(f'last_preserved_timestamp: {min(times) - 1!r}')
  files.atomic_write(
    os.path.join(ckpt_dir, 'checkpoint'), lambda f: f.write('\n'.join(lines) + '\n')
  )


def remove_stale_temp(ckpt_dir: str) -> List[str]:
  """Deletes the ckpt-N_temp folders an interrupted save leaves; their names."""
  stale = [
    p for p in glob.glob(os.path.join(glob.escape(ckpt_dir), 'ckpt-*_temp*')) if os.path.isdir(p)
  ]
  for path in stale:
    shutil.rmtree(path, ignore_errors=True)
  return [os.path.basename(p) for p in stale]


def unreadable_reason(prefix: str) -> Optional[str]:
  """None if every tensor of checkpoint `prefix` reads back, else why not.

  A save cut short by a full disk or a crash can leave a .data file that is
  truncated: its index is intact, so only reading the values finds it.
  """
  try:
    reader = tf.train.load_checkpoint(prefix)
    for name in reader.get_variable_to_shape_map():
      reader.get_tensor(name)
  except Exception as e:  # pylint: disable=broad-except
    # The reader raises OpError, IndexError or ValueError depending on
    # where the file is cut.
    return first_line(e, 160)
  return None


def shape_mismatches(
  prefix: str, wanted: Dict[str, Tuple[int, ...]], optional=lambda name: False
) -> List[str]:
  """What of `wanted` ({checkpoint name: shape}) `prefix` lacks or differs
  in, one phrase each (see compare_shapes)."""
  stored = dict(tf.train.list_variables(prefix))
  missing, mismatched = compare_shapes(stored, wanted, optional)
  short = lambda name: name.split('/.ATTRIBUTES')[0]
  return [f'{short(n)} is missing' for n in missing] + [
    f'{short(n)} has shape {tuple(stored[n])}, not {tuple(wanted[n])}' for n in mismatched
  ]


# Counters added to checkpoints since the first release: restoring an older
# checkpoint leaves them at their initial value (training seconds: 0; the
# run's config: set from this call's config before any save).
NEW_COUNTERS = frozenset({'train_seconds', 'run_config'})


class Usable(NamedTuple):
  """The checkpoint to resume from, and what find_usable found on the way."""

  step: int
  prefix: str
  complete: List[Tuple[int, str]]  # (step, prefix) of every complete one
  skipped: List[str]  # unreadable newer ones, with the reason


def find_usable(ckpt_dir: str) -> Optional[Usable]:
  """The newest complete checkpoint of `ckpt_dir` whose tensors all read.

  Never None while checkpoint files exist: a lost `checkpoint` state file
  or a missing .index falls back to the newest complete checkpoint on disk,
  a truncated one to the one before it.

  Raises:
    RunDirError: checkpoint files but none complete, or none readable.
  """
  complete = complete_checkpoints(ckpt_dir)
  if not complete:
    if has_checkpoint_files(ckpt_dir):
      raise RunDirError(
        f'{ckpt_dir} holds checkpoint files but no complete checkpoint (each '
        'needs its .index and .data files): an interrupted copy or save? '
        'Restore the missing files, or pass --overwrite to start again.'
      )
    return None
  skipped = []
  for step, prefix in reversed(complete):
    reason = unreadable_reason(prefix)
    if reason is None:
      return Usable(step, prefix, complete, skipped)
    skipped.append(f'{os.path.basename(prefix)} ({reason})')
  raise RunDirError(
    f'No checkpoint in {ckpt_dir} can be read: {"; ".join(skipped)}. They '
    'are truncated or corrupt; restore them from a backup, or pass '
    '--overwrite to start again.'
  )


def check_fits(prefix: str, items: Dict[str, object]) -> List[str]:
  """The names of `items`' variables that `prefix` lacks but may: the seeds
  of layers added since (dropout), which start afresh.

  Raises:
    RunDirError: a variable is missing or has another shape.
  """
  wanted = wanted_shapes(items)
  optional = lambda name: 'seed_generator_state' in name
  problems = shape_mismatches(prefix, wanted, optional)
  if problems:
    shown = '; '.join(problems[:4]) + ('; ...' if len(problems) > 4 else '')
    raise RunDirError(
      f"The checkpoint {prefix} does not fit this run's models "
      f'({len(problems)} difference(s): {shown}). Was it trained with '
      'another architecture? Pick another --workdir, or pass --overwrite '
      'to start again.'
    )
  names = {n for n, _ in tf.train.list_variables(prefix)}
  return [n for n in wanted if n not in names]


def restore(gan, counters: Dict[str, tf.Variable], workdir: str, chief: bool) -> Optional[str]:
  """Restores the newest usable checkpoint of `workdir` (find_usable).

  The chief first removes the temp folders of interrupted saves, and after
  the restore rewrites the state file so rotation keeps the good
  checkpoints. A counter in NEW_COUNTERS that an older checkpoint lacks
  keeps its initial value.

  Returns:
    The restored prefix, or None for a fresh run.

  Raises:
    RunDirError: checkpoint files but none usable, or a checkpoint
      whose variables do not fit these models.
  """
  ckpt_dir = os.path.join(workdir, CHECKPOINT_DIR)
  if chief:
    for name in remove_stale_temp(ckpt_dir):
      print(f'Removed {name}, left by an interrupted save.', flush=True)
  usable = find_usable(ckpt_dir)
  if usable is None:
    return None
  prefix = usable.prefix
  names = [n for n, _ in tf.train.list_variables(prefix)]
  # Checkpoints from before the models were keyed by layer path.
  items = gan_items(gan, positional=uses_positional_keys(names))
  if f'{ADAPTIVE_P}/.ATTRIBUTES/VARIABLE_VALUE' not in names:
    del items[ADAPTIVE_P]  # older checkpoints: the probability starts afresh
  new_seeds = check_fits(prefix, items)
  counters = {
    k: v
    for k, v in counters.items()
    if k not in NEW_COUNTERS or f'{k}/.ATTRIBUTES/VARIABLE_VALUE' in names
  }
  try:
    status = tf.train.Checkpoint(**counters, **items).restore(prefix)
    status.expect_partial()
    if not new_seeds:
      status.assert_existing_objects_matched()
  except (AssertionError, ValueError, LookupError, IndexError, tf.errors.OpError) as e:
    raise RunDirError(
      f"The checkpoint {prefix} cannot be restored into this run's models "
      f'({first_line(e)}). Pick another --workdir, or pass '
      '--overwrite to start again.'
    ) from e
  for name in usable.skipped:
    print(f'Skipped the unreadable checkpoint {name}.', flush=True)
  if new_seeds:
    print(
      f'{len(new_seeds)} dropout layer(s) are new to this run; their random state starts afresh.',
      flush=True,
    )
  if chief:  # the state file lists what is really there
    write_checkpoint_state(ckpt_dir, [p for s, p in usable.complete if s <= usable.step])
  return prefix


class BestKeeper:
  """Keeps the checkpoint of the best evaluation so far in <run>/best/.

  A run's last checkpoint is not always its best: coverage can fall and
  SWD turn back up late in a run, after the rotation of checkpoints/ has
  dropped the better ones. best/best.json names the metric, its value and
  the step, and survives a resume, so a resumed run only replaces the kept
  checkpoint with a better one.

  Args:
    checkpoint: the run's tf.train.Checkpoint (the whole train state, so
      the kept one resumes as well as it samples).
    workdir: the run directory.
    metric: swd, fid or kid (lower is better) or coverage (higher).
  """

  def __init__(self, checkpoint: tf.train.Checkpoint, workdir: str, metric: str):
    self.metric, self.key = metric, f'eval/{metric}'
    self.folder = os.path.join(workdir, BEST_DIR)
    self.manager = tf.train.CheckpointManager(checkpoint, self.folder, max_to_keep=1)
    self.record_path = os.path.join(self.folder, 'best.json')
    self.best = None
    try:
      with open(self.record_path) as f:
        record = json.load(f)
      if record['metric'] == metric:  # another metric starts afresh
        self.best = float(record['value'])
    except (OSError, ValueError, KeyError, TypeError):
      pass  # none yet, or unreadable: the next evaluation is kept

  def better(self, value: float) -> bool:
    """Whether `value` beats the best kept so far."""
    if self.best is None:
      return True
    return value > self.best if self.metric == 'coverage' else value < self.best

  def offer(self, scores: Dict[str, float], step: int) -> Optional[str]:
    """Checkpoints now if `scores` is the best evaluation; returns the prefix."""
    value = scores.get(self.key)
    if value is None or not math.isfinite(value) or not self.better(value):
      return None
    try:
      prefix = self.manager.save(checkpoint_number=step)
      files.atomic_write(
        self.record_path,
        lambda f: json.dump(
          {
            'metric': self.metric,
            'value': value,
            'step': step,
            'checkpoint': os.path.basename(prefix),
          },
          f,
          indent=1,
        ),
      )
    except (OSError, tf.errors.OpError) as e:
      # The run's own checkpoints matter more: training goes on.
      print(
        f'\nwarning: the best evaluation so far (step {step}) could not '
        f'be kept in {self.folder} ({first_line(e, 160)}); training goes '
        'on.',
        flush=True,
      )
      return None
    self.best = value
    return prefix
