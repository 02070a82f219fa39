"""Helpers shared by the benchmark scripts."""

import dataclasses
import os
import platform


def parse_overrides(items, config_cls):
  """{field: value} from 'field=value' strings, typed like config_cls's fields."""
  fields = {f.name: f.type for f in dataclasses.fields(config_cls)}
  out = {}
  for item in items:
    name, _, value = item.partition('=')
    kind = fields[name]
    kind = {'bool': bool, 'int': int, 'float': float, 'str': str}.get(kind, kind)
    out[name] = value.lower() in ('1', 'true', 'yes') if kind is bool else kind(value)
  return out


def machine() -> str:
  """CPU model and core count (or 'unknown')."""
  model = platform.processor() or 'unknown CPU'
  try:
    with open('/proc/cpuinfo') as f:
      for line in f:
        if line.startswith('model name'):
          model = line.split(':', 1)[1].strip()
          break
  except OSError:
    pass
  return f'{model}, {os.cpu_count()} cores'


def facegan_step_fn(config, real):
  """(`run(steps)` timing facegan's training steps on `real`,
  `steps_per_call` steps per call; the step's Keras precision policy)."""
  import tensorflow as tf
  from models.gan import GAN
  from training.loop import make_train_steps

  gan = GAN(config)
  train_steps = make_train_steps(gan)
  print(
    f'  {config.jit_compile}/{config.mixed_precision}: XLA '
    f'{"on" if gan.jit_compile else "off"}, {gan.mixed_precision}',
    flush=True,
  )
  policy = {'off': 'float32'}.get(gan.mixed_precision, gan.mixed_precision)
  # One iterator for every timing: a fresh one per timing stalled steps for
  # seconds at random.
  positions = tf.range(tf.shape(real)[0], dtype=tf.int64)
  epochs = tf.zeros_like(positions)
  it = iter(tf.data.Dataset.from_tensors((epochs, positions, real)).repeat())
  epoch = tf.constant(0, tf.int64)

  def run(steps):
    # As train.py runs it: gradient norms on the logging steps only.
    done, out = 0, None
    while done < steps:
      k = min(config.steps_per_call, steps - done, config.log_every - done % config.log_every)
      log = (done + k) % config.log_every == 0
      out, status = train_steps(it, tf.constant(k), epoch, tf.constant(log))
      done += int(status[0])
    return out['d_loss']

  return run, policy
