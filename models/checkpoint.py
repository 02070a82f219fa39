"""Reading a trained G back: the checkpoint keys of a model and the loader.

A run's checkpoints are `<run>/checkpoints/ckpt-<step>` (TensorFlow's object
checkpoints). Each model is stored as `model_state`'s dict of its
variables, keyed by where each sits. `load_generator` rebuilds G from a run
directory, its checkpoints/ folder, a checkpoint prefix copied anywhere, or
a weights folder (config.json and WEIGHTS_FILE, models.export.export_weights:
what facegan ships pretrained), for pictures, metrics and the explorer: it
needs no training code.
"""

import collections
import os
import zipfile
from typing import Dict, List, Tuple

import keras
import numpy as np
import tensorflow as tf

from configs.errors import first_line
from configs.presets import Config
from configs.run_files import CHECKPOINT_DIR, CONFIG_FILE, RunDirError, load_config
from models.generator import Generator
from models.generator import set_standing_statistics


WEIGHTS_FILE = 'generator.npz'  # beside config.json: a weights folder
GENERATOR_KEY = '__generator__'  # in WEIGHTS_FILE: which G it holds
STEP_KEY = '__step__'  # in WEIGHTS_FILE: the training step of its weights
# In WEIGHTS_FILE, beside an int8 kernel `k`: `k + SCALE_SUFFIX`, its float32
# scale per slice along the last axis (models.export.compact_arrays).
SCALE_SUFFIX = '__scale'

# Layer classes that hold the same variables under one name: fused and Keras
# BatchNorm (XLA runs use Keras'), so checkpoints move between the two.
_KINDS = {'FusedBatchNorm': 'batchnorm', 'BatchNormalization': 'batchnorm'}


def model_state(model: keras.Model, positional: bool = False) -> Dict[str, tf.Variable]:
  """Every variable of `model`, keyed by where it sits, for tf.train.Checkpoint.

  Keras 3 layers kept in Python lists are invisible to TensorFlow's
  checkpoint object graph, so the models are checkpointed as these dicts.
  `model.variables` (unlike `weights`) includes BN statistics, spectral-norm
  vectors and the dropout seeds, which an exact resume needs.

  A key names the stage, the layer kind and its count within the stage, and
  the variable: 'stages2_conv2d0_kernel' is the kernel of the first Conv2D of
  stage 2. Adding a layer to a stage (dropout) leaves every other key as it
  was, and no key depends on Keras' process-wide layer-name counters (which
  `v.path` does).

  Args:
    model: a Generator or Discriminator (layers in `stages`, `head`).
    positional: key by position instead ('0000', '0001'...), as checkpoints
      written before these keys were; only for reading those.
  """
  if positional:
    return {f'{i:04d}': v for i, v in enumerate(model.variables)}
  state = {}
  for group in ('stages', 'head'):
    for i, stage in enumerate(getattr(model, group, ())):
      counts = collections.Counter()
      for layer in stage.stage_layers:
        name = type(layer).__name__
        kind = _KINDS.get(name, name.lower())
        prefix = f'{group}{i}_{kind}{counts[kind]}'
        counts[kind] += 1
        for v in layer.variables:
          key = f'{prefix}_{v.name}'
          if key in state:
            raise ValueError(f'Two variables of {model.name} map to {key}.')
          state[key] = v
  if len(state) != len(model.variables):
    raise ValueError(f'{model.name} has variables outside its stages.')
  return state


def uses_positional_keys(names) -> bool:
  """Whether checkpoint variable `names` come from model_state(positional)."""
  return any(n.startswith('generator/0000/') for n in names)


def wanted_shapes(items: Dict[str, object]) -> Dict[str, Tuple[int, ...]]:
  """{checkpoint name: shape} of every variable of the model_state dicts in
  `items` (a tf.train.Checkpoint's keyword arguments)."""
  return {
    f'{section}/{key}/.ATTRIBUTES/VARIABLE_VALUE': tuple(v.shape)
    for section, state in items.items()
    if isinstance(state, dict)
    for key, v in state.items()
  }


def compare_shapes(
  stored: Dict[str, Tuple[int, ...]],
  wanted: Dict[str, Tuple[int, ...]],
  optional=lambda name: False,
) -> Tuple[List[str], List[str]]:
  """(missing, mismatched): names of `wanted` absent from `stored` (unless
  `optional(name)`: state a new layer starts afresh, such as a dropout
  layer's seed) or stored with another shape."""
  missing = [n for n in wanted if n not in stored and not optional(n)]
  mismatched = [n for n in wanted if n in stored and tuple(stored[n]) != tuple(wanted[n])]
  return missing, mismatched


def find_checkpoint(path: str) -> Tuple[str, str]:
  """(run dir, checkpoint prefix) from a run dir, checkpoints dir or prefix,
  or a weights folder (or its WEIGHTS_FILE), whose prefix is that file.

  A directory gives its latest checkpoint. tf.train.latest_checkpoint
  silently skips a latest checkpoint whose .index is gone (an interrupted
  copy or save), which would surface as a misleading "no checkpoint found";
  such a checkpoint is reported as incomplete instead.

  Raises:
    RunDirError: no checkpoint at `path`, or an incomplete one.
  """
  path = os.path.expanduser(path).rstrip('/')
  if os.path.basename(path) == WEIGHTS_FILE and os.path.isfile(path):
    path = os.path.dirname(path) or '.'  # the file itself: its folder
  weights = os.path.join(path, WEIGHTS_FILE)
  if os.path.isfile(weights) and not os.path.isdir(os.path.join(path, CHECKPOINT_DIR)):
    return path, weights
  for run_dir, ckpt_dir in (
    (path, os.path.join(path, CHECKPOINT_DIR)),
    (os.path.dirname(path), path),
  ):
    state = tf.train.get_checkpoint_state(ckpt_dir) if os.path.isdir(ckpt_dir) else None
    if state and state.model_checkpoint_path:
      latest = state.model_checkpoint_path  # already joined to ckpt_dir
      if not os.path.exists(latest + '.index'):
        complete = [p for p in state.all_model_checkpoint_paths if os.path.exists(p + '.index')]
        hint = f' (e.g. {complete[-1]})' if complete else ''
        raise RunDirError(
          f'The latest checkpoint {latest} is incomplete: '
          f'{os.path.basename(latest)}.index is missing (an interrupted copy '
          f'or save?). Pass an older checkpoint prefix as --checkpoint{hint}, '
          'or restore the missing file.'
        )
      return run_dir, latest
  if os.path.exists(path + '.index'):  # a checkpoint prefix
    folder = os.path.dirname(path)
    # In a run it sits in <run>/checkpoints/; copied out, its folder is the run's.
    in_run = os.path.basename(folder) == CHECKPOINT_DIR
    return (os.path.dirname(folder) if in_run else folder), path
  if tf.io.gfile.glob(path + '.data-*'):
    raise RunDirError(
      f'Checkpoint {path} is incomplete: {path}.index is missing, so its weights cannot be read.'
    )
  raise RunDirError(
    f'No checkpoint found at {path!r}: pass a run directory '
    '(e.g. runs/celeba64), its checkpoints/ folder or a '
    'checkpoint prefix such as runs/celeba64/checkpoints/ckpt-1200.'
  )


def checkpoint_step(prefix: str) -> int:
  """The step counter stored in checkpoint `prefix` (or a WEIGHTS_FILE)."""
  if prefix.endswith(WEIGHTS_FILE):
    with np.load(prefix, allow_pickle=False) as f:
      return int(f[STEP_KEY])
  return int(tf.train.load_variable(prefix, 'step/.ATTRIBUTES/VARIABLE_VALUE'))


def generator_key(config: Config, use_ema: bool = True) -> str:
  """The checkpoint key of the G to sample: the EMA copy when asked and kept."""
  return 'ema_generator' if use_ema and config.ema_decay > 0 else 'generator'


def _unrestorable(prefix: str, key: str, run_dir: str, detail: str) -> RunDirError:
  return RunDirError(
    f'Checkpoint {prefix} cannot be restored into the {key} described by '
    f'{os.path.join(run_dir, CONFIG_FILE)}: {detail}. The '
    'checkpoint files may be truncated or partial, from an older facegan '
    'or from another run than this config.json; pass another checkpoint '
    'prefix or retrain.'
  )


def load_generator(
  path: str, use_ema: bool = True, standing_stats: bool = True
) -> Tuple[Config, str, keras.Model]:
  """Rebuilds a run's generator from config.json and restores its weights.

  facegan's one loader (generate.py, metrics.evaluation). Two checks make
  sure no weight of G is left at its random initialisation: the checkpoint's
  variable list must hold every variable of this G with its shape (which
  gives a precise message), and the restore must then bind every one (which
  also catches a file whose list is intact but whose values cannot be read).
  A run that train.py is still training rotates its checkpoints: one deleted
  while it was being read is replaced by the newest (a few times), unless
  `path` named that very checkpoint.

  Args:
    path: a run directory, its checkpoints/ folder or a checkpoint prefix.
    use_ema: restore the EMA copy of G when the run has one (ema_decay > 0);
      False restores the raw G.
    standing_stats: give the EMA G the BatchNorm statistics of its own
      weights (models.generator.set_standing_statistics) rather than the
      saved ones, which in checkpoints of older versions were the raw G's.

  Returns:
    (config, run directory, generator); see load_generator_from.

  Raises:
    RunDirError: no checkpoint or an incomplete one, a missing or unreadable
      config.json, or a checkpoint that is corrupt, deleted while read, or
      does not hold every weight of this G.
  """
  config, run_dir, _, generator = load_generator_from(path, use_ema, standing_stats)
  return config, run_dir, generator


def load_generator_from(
  path: str, use_ema: bool = True, standing_stats: bool = True
) -> Tuple[Config, str, str, keras.Model]:
  """load_generator, also returning the prefix of the checkpoint it read.

  Returns:
    (config, run directory, checkpoint prefix, generator).
  """
  for attempt in range(_ROTATION_RETRIES + 1):
    run_dir, prefix = find_checkpoint(path)
    try:
      config = run_config(run_dir, prefix)
      generator = _restore_generator(config, run_dir, prefix, use_ema)
      if standing_stats and generator.name == 'ema_generator':
        set_standing_statistics(generator, config)
      return config, run_dir, prefix, generator
    except RunDirError:
      if prefix.endswith(WEIGHTS_FILE) or os.path.exists(f'{prefix}.index'):
        raise  # still there: truly unreadable
      if os.path.abspath(path) == os.path.abspath(prefix):
        raise RunDirError(
          f'The checkpoint {prefix} was deleted while it was being read: a '
          'train.py still training this run keeps only its newest '
          'checkpoints. Pass the run directory to load the newest one.'
        ) from None
      if attempt == _ROTATION_RETRIES:
        raise


def run_config(run_dir: str, prefix: str) -> Config:
  """The run's config.json, or else the config the checkpoint carries.

  Every checkpoint holds the config that trained it (precision and XLA as
  resolved), so a prefix copied out of its run loads on its own; config.json
  wins where both exist, since it may say where the data is now.
  """
  if os.path.isfile(os.path.join(run_dir, CONFIG_FILE)):
    return load_config(run_dir)
  try:
    text = tf.train.load_variable(prefix, _RUN_CONFIG_KEY)
  except (ValueError, tf.errors.OpError):
    raise RunDirError(
      f'{prefix} has no config.json beside it, and it was saved before '
      "checkpoints carried their config: copy its run's config.json into "
      f'{run_dir}.'
    ) from None
  try:
    return Config.from_json(text.decode()).validate()
  except (ValueError, TypeError) as e:
    raise RunDirError(
      f'The config stored in {prefix} cannot be read by this version of facegan: {e}'
    ) from e


_RUN_CONFIG_KEY = 'run_config/.ATTRIBUTES/VARIABLE_VALUE'
# Reads of a rotating run's newest checkpoint retried before giving up.
_ROTATION_RETRIES = 3


def dequantized(arrays: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
  """A WEIGHTS_FILE's variables as floats: each int8 kernel times its scale.

  Folders written before kernels were stored in int8 hold float16 arrays
  and no scales; they come back unchanged.
  """
  out = {}
  for k, a in arrays.items():
    if k.endswith(SCALE_SUFFIX):
      continue
    scale = arrays.get(k + SCALE_SUFFIX)
    out[k] = a if scale is None else a.astype(np.float32) * scale
  return out


def _restore_weights_file(config: Config, path: str, use_ema: bool) -> keras.Model:
  """G of `config` with the weights of a weights folder's WEIGHTS_FILE."""
  folder = os.path.dirname(path)
  try:
    with np.load(path, allow_pickle=False) as f:
      arrays = {k: f[k] for k in f.files}
    key = str(arrays.pop(GENERATOR_KEY))
    arrays.pop(STEP_KEY)
    arrays = dequantized(arrays)
  except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as e:
    raise RunDirError(
      f'{path} cannot be read ({first_line(e, 200)}): the weights folder is damaged or '
      'incomplete; copy it again.'
    ) from e
  if key == 'ema_generator' and not use_ema:
    raise RunDirError(
      f'{folder} holds only the averaged (EMA) G; --no_ema needs a run directory or checkpoint.'
    )
  generator = Generator(config, name=key)
  generator(tf.zeros((1, config.latent_dim)))
  state = model_state(generator)
  wanted = {k: tuple(v.shape) for k, v in state.items()}
  missing, mismatched = compare_shapes({k: a.shape for k, a in arrays.items()}, wanted)
  if missing or mismatched:
    raise RunDirError(
      f'{path} does not fit the G described by {os.path.join(folder, CONFIG_FILE)}: '
      f'{len(missing)} of its {len(wanted)} weights are missing and {len(mismatched)} '
      'have another shape. The two files come from different runs; copy the folder again.'
    )
  for k, v in state.items():
    v.assign(arrays[k].astype(v.dtype))
  return generator


def _restore_generator(config: Config, run_dir: str, prefix: str, use_ema: bool) -> keras.Model:
  """G of `config` with the weights of the checkpoint `prefix` (see above)."""
  if prefix.endswith(WEIGHTS_FILE):
    return _restore_weights_file(config, prefix, use_ema)
  key = generator_key(config, use_ema)
  generator = Generator(config, name=key)
  generator(tf.zeros((1, config.latent_dim)))  # variables exist before restore
  try:
    stored = dict(tf.train.list_variables(prefix))
  except (ValueError, tf.errors.OpError) as e:
    raise _unrestorable(prefix, key, run_dir, first_line(e, 300)) from e
  # The checkpoint holds each model as model_state's dict of its variables
  # (keyed by position in checkpoints written before the layer-path keys).
  state = model_state(generator, positional=uses_positional_keys(stored))
  wanted = wanted_shapes({key: state})
  missing, mismatched = compare_shapes(stored, wanted)
  if missing or mismatched:
    raw_only = (
      key == 'ema_generator'
      and len(missing) == len(wanted)
      and any(k.startswith('generator/') for k in stored)
    )
    raise _unrestorable(
      prefix,
      key,
      run_dir,
      f'{len(missing)} of its {len(wanted)} variables are missing and '
      f'{len(mismatched)} have another shape'
      + (' (the file holds only the raw G, which --no_ema loads)' if raw_only else ''),
    )
  try:
    # expect_partial: D, the optimizers and the counters are in the file on
    # purpose. The assertion fails unless every variable of G was bound.
    tf.train.Checkpoint(**{key: state}).restore(
      prefix
    ).expect_partial().assert_existing_objects_matched()
  except (AssertionError, ValueError, LookupError, tf.errors.OpError) as e:
    raise _unrestorable(prefix, key, run_dir, first_line(e, 300)) from e
  return generator
