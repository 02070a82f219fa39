"""Share of a training run's wall clock spent inside train steps.

python bench/loop_overhead.py --preset=celeba48 --data_dir=<CelebA folder> --epochs=8

Runs train.py's loop (training.loop.run) on real data into a scratch run
directory and times every call of the multi-step train function, waiting
for its result as the loop does. Reports, from the end of the first call
(its tracing is start-up, not overhead) to the end of the run: wall-clock
seconds, seconds inside train-step calls, and their ratio. What is left is
the loop's own work: sample grids, checkpoints, logging, epoch changes and
waiting for data. The step itself includes the input pipeline's decoding,
which shares the CPU with it.

--code=<checkout> times another checkout's loop (an older commit, say) with
the same settings, for a before/after in one session.
"""

import json
import os
import sys
import tempfile
import time

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')

from absl import app
from absl import flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from bench import common  # this checkout's, whatever --code says

flags.DEFINE_string('preset', 'celeba48', 'Preset to run.')
flags.DEFINE_string('data_dir', '', 'CelebA (or image) folder to train on.')
flags.DEFINE_string('dataset', 'celeba', 'Dataset kind of --data_dir.')
flags.DEFINE_integer('epochs', 8, 'Epochs to run.')
flags.DEFINE_float('max_seconds', 0, 'Stop after this much training (0: run every epoch).')
flags.DEFINE_list('set', [], 'Config overrides, field=value (e.g. cache=memory).')
flags.DEFINE_string('code', '', 'Checkout whose training loop to time (default: this one).')
FLAGS = flags.FLAGS


def main(argv):
  del argv
  code = os.path.abspath(FLAGS.code or os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
  sys.path.insert(0, code)
  import dataclasses
  import tensorflow as tf
  from configs import presets
  from training import loop

  calls, ends, steps_run = [], [], []
  original = loop.make_train_steps

  def make(gan):
    steps = original(gan)

    def timed(*args):
      tick = time.perf_counter()
      result = steps(*args)
      # The loop waits for this read-back too: steps run come first in it.
      steps_run.append(int(result[-1].numpy().reshape(-1)[0]))
      ends.append(time.perf_counter())
      calls.append(ends[-1] - tick)
      return result

    return timed

  loop.make_train_steps = make

  config = presets.get_config(
    FLAGS.preset, dataset=FLAGS.dataset, data_dir=FLAGS.data_dir, epochs=FLAGS.epochs
  )
  config = dataclasses.replace(config, **common.parse_overrides(FLAGS.set, presets.Config))
  with tempfile.TemporaryDirectory() as workdir:
    metrics = loop.run(config, workdir, max_seconds=FLAGS.max_seconds or None)
    end = time.perf_counter()
  wall, inside = end - ends[0], sum(calls[1:])
  result = dict(
    code=code,
    preset=FLAGS.preset,
    overrides=FLAGS.set,
    epochs=FLAGS.epochs,
    calls=len(calls),
    wall_s=round(wall, 1),
    in_steps_s=round(inside, 1),
    in_steps=round(inside / wall, 3),
    median_call_s=round(sorted(calls[1:])[len(calls) // 2 - 1], 3),
    images_per_s=round(sum(steps_run[1:]) * config.batch_size / wall, 1),
    d_loss=round(metrics.get('d_loss', float('nan')), 3),
    machine=common.machine(),
    tensorflow=tf.__version__,
  )
  print(
    f'{FLAGS.preset} {",".join(FLAGS.set) or "defaults"}: '
    f'{result["in_steps"]:.1%} of {wall:.1f} s inside train steps '
    f'({len(calls) - 1} calls after the first)'
  )
  print(json.dumps(result))


if __name__ == '__main__':
  app.run(main)
