"""`--mixed_precision=auto` and `--jit_compile=auto`, chosen by measurement.

The first run of a model on a machine times a few train steps of each
candidate (float32 and bfloat16; XLA off and on where a GPU is the device)
and keeps the fastest (float32 unless another is MIN_GAIN faster), caching
the choice per machine and model in ~/.cache/facegan/speed_choices.json
($FACEGAN_CACHE_DIR overrides the folder); a result too close to call is
used but not cached, since a busy machine makes one. A run planned for
fewer than SHORT_RUN_STEPS steps (a smoke test, a CI check) cannot win the
timing back and takes the fixed rule (`_rule`).
A run records what it trained with in <workdir>/speed_choice.json, and a
resumed run keeps it, whatever the cache or the machine now says: a choice
never changes a run silently. Flags given explicitly always win.
"""

import dataclasses
import hashlib
import json
import os
import time
from typing import Callable, Dict, Optional, Tuple

import keras
import tensorflow as tf

from common import files
from configs.presets import Config
from models import hardware
from training import rundir

RECORD_FILE = rundir.SPEED_CHOICE_FILE
CACHE_FILE = 'speed_choices.json'
# A lower precision is kept only when this much faster: timing noise on a
# busy machine is a few percent, and float32 is the safer default.
MIN_GAIN = 1.05
# Timing costs two model builds, traces and a few steps (10-20 s on a
# 2-core CPU, some 20 steps of a preset); choosing right saves at most a
# third of each step, so a run shorter than this cannot win it back.
SHORT_RUN_STEPS = 100
# Settings that do not change what a train step computes.
_NOT_STEP_FIELDS = frozenset(
  {
    'preset',
    'dataset',
    'data_dir',
    'split',
    'tfds_data_dir',
    'tfds_download',
    'synthetic_size',
    'cache',
    'epochs',
    'steps_per_epoch',
    'seed',
    'num_samples',
    'log_every',
    'checkpoint_every_steps',
    'checkpoint_every_secs',
    'grid_every_secs',
    'keep_checkpoints',
    'eval_every',
    'eval_metrics',
    'eval_split',
    'eval_num_samples',
    'inception_weights',
    'g_lr',
    'd_lr',
    'mixed_precision',
    'jit_compile',
    'steps_per_call',
    'strategy',
  }
)

Choice = Dict[str, str]  # {'mixed_precision': ..., 'jit_compile': ...}


def machine_key() -> str:
  """This machine as the speed cache knows it: CPU, its vector units, GPUs, TF."""
  model, flags = hardware.cpu_info()
  units = sorted(flags & {'avx2', 'avx512f', 'avx512_bf16', 'amx_bf16', 'amx_tile', 'avx512_fp16'})
  gpus = [
    tf.config.experimental.get_device_details(d).get('device_name', d.name)
    for d in tf.config.list_physical_devices('GPU')
  ]
  return json.dumps([model, os.cpu_count(), units, gpus, tf.__version__])


def model_key(config: Config) -> str:
  """The settings that decide a train step's cost, hashed."""
  fields = {k: v for k, v in dataclasses.asdict(config).items() if k not in _NOT_STEP_FIELDS}
  return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:16]


def candidates(config: Config) -> Tuple[Choice, ...]:
  """The settings worth timing here for the fields left at auto.

  bfloat16 is timed where the device can run it fast (a GPU, or a CPU with
  AVX-512; on AVX2 alone it is emulated, much slower); XLA only on a GPU
  (on CPUs it measured 4x slower, and compiling costs minutes). float16
  is never chosen: its loss-scale state would tie checkpoints to a machine.
  """
  gpu = bool(tf.config.list_logical_devices('GPU'))
  precisions = [config.mixed_precision]
  if config.mixed_precision == 'auto':
    precisions = ['off']
    if gpu or 'avx512f' in hardware.cpu_info()[1]:
      precisions.append('mixed_bfloat16')
  jits = [config.jit_compile]
  if config.jit_compile == 'auto':
    jits = ['off', 'on'] if gpu else ['off']
  return tuple({'mixed_precision': p, 'jit_compile': j} for j in jits for p in precisions)


def time_candidate(config: Config, steps: int = 3) -> float:
  """Images/s of `config`'s train step on random images, after two warm-up steps."""
  from models.gan import GAN  # the models: imported only when measuring

  gan = GAN(config)
  real = tf.random.uniform((config.batch_size, config.image_height, config.image_width, 3), -1, 1)
  step = tf.function(lambda x: gan.step_fn(x, with_norms=False)['d_loss'])
  for _ in range(2):
    step(real).numpy()
  tick = time.perf_counter()
  for _ in range(steps):
    step(real).numpy()
  return steps * config.batch_size / (time.perf_counter() - tick)


def _cache_path() -> str:
  folder = os.environ.get('FACEGAN_CACHE_DIR') or os.path.join(
    os.path.expanduser('~'), '.cache', 'facegan'
  )
  return os.path.join(folder, CACHE_FILE)


def _read_json(path: str) -> dict:
  try:
    with open(path) as f:
      return json.load(f)
  except (OSError, ValueError):  # absent or unreadable: start afresh
    return {}


def measure(
  config: Config, timer: Optional[Callable[[Config], float]] = None, log=print
) -> Tuple[Choice, Dict[str, float]]:
  """Times every candidate (with `timer`, default time_candidate); returns
  the fastest and every rate (img/s)."""
  timer = timer or time_candidate
  rates, best, best_rate = {}, None, 0.0
  for choice in candidates(config):
    rate = timer(dataclasses.replace(config, **choice))
    name = _describe(choice)
    rates[name] = round(rate, 1)
    log(f'  {name}: {rate:.1f} img/s', flush=True)
    # Candidates come simplest first; a later one must be clearly faster.
    if best is None or rate > best_rate * MIN_GAIN:
      best, best_rate = choice, rate
  # Layer names count the layers made so far, and the per-layer gradient
  # norms' TensorBoard tags use them: the run's models must get the names
  # a resumed run (which measures nothing) gives them.
  keras.backend.clear_session()
  return best, rates


def _describe(choice: Choice) -> str:
  precision = {'off': 'float32'}.get(choice['mixed_precision'], choice['mixed_precision'])
  return f'{precision}, XLA {choice["jit_compile"]}'


def resolve(
  config: Config,
  workdir: str,
  resumed: bool,
  timer: Optional[Callable[[Config], float]] = None,
  log=print,
  planned_steps: int = 0,
) -> Config:
  """`config` with its auto speed settings made concrete, and recorded.

  Order: what the run recorded when it started; for a run made before
  records existed (`resumed` without one), the rule it was trained under
  (hardware's CPU-flag rule, XLA on a single GPU); this machine's cached
  measurement for the model; for a run of `planned_steps` under
  SHORT_RUN_STEPS (0: not known), the rule; a new measurement. The run
  directory gets the result in speed_choice.json.
  """
  auto = [k for k in ('mixed_precision', 'jit_compile') if getattr(config, k) == 'auto']
  if not auto:
    return config
  record_path = os.path.join(workdir, RECORD_FILE)
  record = _read_json(record_path)
  if all(k in record for k in auto):
    choice = {k: record[k] for k in auto}
    log(
      f'--{"/--".join(auto)}=auto: {_describe({**_as_set(config), **choice})}, '
      f'as this run recorded when it started ({RECORD_FILE}).',
      flush=True,
    )
    return dataclasses.replace(config, **choice)
  cache_key = f'{machine_key()} {model_key(config)} {",".join(auto)}'
  cache = _read_json(_cache_path())
  if resumed:
    choice = _rule()
    how = 'the rule this run was made under (it predates measured choices)'
  elif cache_key in cache:
    choice = cache[cache_key]['choice']
    how = f'measured on this machine before ({_cache_path()})'
  elif len(candidates(config)) == 1:
    (choice,) = candidates(config)
    how = 'the only candidate on this machine'
  elif 0 < planned_steps < SHORT_RUN_STEPS:
    choice = _rule()
    how = f'the fixed rule: {planned_steps} steps are too few to be worth timing'
  else:
    log(
      "Timing this model's train step to choose the fastest settings (once per machine and model):",
      flush=True,
    )
    choice, rates = measure(config, timer, log)
    how = 'measured now'
    if _too_close(rates):
      # Another job on the cores flattens the difference (float32 and
      # bfloat16 timed within 5% where alone they differ by half), and a
      # cached verdict would outlive it: measure again next run.
      how = 'too close to call, so not cached: timed again by the next new run'
    else:
      _cache(cache, cache_key, dict(choice=choice, rates=rates), log)
  choice = {k: choice[k] for k in auto}
  log(
    f'--{"/--".join(auto)}=auto: {_describe({**_as_set(config), **choice})} '
    f'({how}; recorded in {RECORD_FILE}).',
    flush=True,
  )
  files.atomic_write(
    record_path, lambda f: json.dump(dict(choice, machine=json.loads(machine_key())), f, indent=1)
  )
  return dataclasses.replace(config, **choice)


def _too_close(rates: Dict[str, float]) -> bool:
  """Whether the fastest two candidates are within MIN_GAIN of each other."""
  top = sorted(rates.values(), reverse=True)
  return len(top) > 1 and top[0] < top[1] * MIN_GAIN


def _cache(cache: dict, key: str, entry: dict, log) -> None:
  """Adds `entry` (with the time) to the speed cache under `key`."""
  cache[key] = dict(entry, when=time.strftime('%Y-%m-%d %H:%M'))
  try:
    os.makedirs(os.path.dirname(_cache_path()), exist_ok=True)
    files.atomic_write(_cache_path(), lambda f: json.dump(cache, f, indent=1))
  except OSError as e:  # a read-only home: measure again next time
    log(f'(Could not cache the choice in {_cache_path()}: {e.strerror}.)')


def _rule() -> Choice:
  """The fixed rule: bfloat16 on a CPU with native bfloat16, XLA on a GPU."""
  gpu = bool(tf.config.list_logical_devices('GPU'))
  return {
    'mixed_precision': hardware.resolve_mixed_precision('auto'),
    'jit_compile': 'on' if gpu else 'off',
  }


def _as_set(config: Config) -> Choice:
  return {'mixed_precision': config.mixed_precision, 'jit_compile': config.jit_compile}
