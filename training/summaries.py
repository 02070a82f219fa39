"""TensorBoard event files: scalars, and pruning what a crash left behind."""

import glob
import os

import tensorflow as tf
from tensorflow.core.util import event_pb2


def write_scalars(metrics, step, **extra):
  """Writes every scalar of `metrics` and `extra` at `step` (default writer)."""
  for name, value in {**metrics, **extra}.items():
    tf.summary.scalar(name, value, step=step)


def purge_events_after(workdir: str, step: int) -> int:
  """Drops summaries logged after `step` from the event files in `workdir`.

  After a crash the run resumes from its last checkpoint at `step`, and the
  steps logged between that checkpoint and the crash will be logged again;
  removing the stale ones keeps each TensorBoard curve single-valued. A
  record cut short by the crash is dropped too. Returns the number dropped.
  """
  dropped = 0
  for path in glob.glob(os.path.join(workdir, 'events.out.tfevents.*')):
    kept, stale = [], 0
    try:
      for record in tf.data.TFRecordDataset(path):
        event = event_pb2.Event.FromString(record.numpy())
        if event.HasField('summary') and event.step > step:
          stale += 1
        else:
          kept.append(record.numpy())
    except tf.errors.DataLossError:  # a partial record at the end
      stale += 1
    if stale:
      tmp = path + '.purge'
      with tf.io.TFRecordWriter(tmp) as writer:
        for record in kept:
          writer.write(record)
      os.replace(tmp, path)
      dropped += stale
  return dropped
