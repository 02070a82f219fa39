"""Helpers shared by the tests: read a run directory's checkpoints and curves."""

import glob
import os
from typing import Dict

import tensorflow as tf

from training import checkpoints


def checkpoint_step(workdir: str) -> int:
  """The step stored in the run's newest checkpoint (0 without one)."""
  complete = checkpoints.complete_checkpoints(os.path.join(workdir, 'checkpoints'))
  if not complete:
    return 0
  return int(tf.train.load_variable(complete[-1][1], 'step/.ATTRIBUTES/VARIABLE_VALUE'))


def checkpoint_steps(workdir: str):
  """Steps of every complete checkpoint on disk, oldest first."""
  return [s for s, _ in checkpoints.complete_checkpoints(os.path.join(workdir, 'checkpoints'))]


def scalars(workdir: str, tag: str, unique: bool = True) -> Dict[int, float]:
  """{step: value} of one TensorBoard scalar of the run.

  unique: fail if a step was logged twice (a resume must purge its redo).
  """
  values = {}
  for path in sorted(glob.glob(os.path.join(workdir, 'events.out.tfevents.*'))):
    for event in tf.compat.v1.train.summary_iterator(path):
      for v in event.summary.value:
        if v.tag == tag:
          assert not unique or event.step not in values, f'step {event.step} logged twice'
          values[event.step] = (
            v.simple_value if v.HasField('simple_value') else float(tf.make_ndarray(v.tensor))
          )
  return values


def summary_steps(workdir: str, tag: str):
  """Steps at which the run wrote summary `tag` (of any kind), sorted."""
  steps = []
  for path in glob.glob(os.path.join(workdir, 'events.out.tfevents.*')):
    for event in tf.compat.v1.train.summary_iterator(path):
      steps += [event.step for v in event.summary.value if v.tag == tag]
  return sorted(steps)


def scalar_tags(workdir: str):
  """Every scalar tag the run logged."""
  tags = set()
  for path in glob.glob(os.path.join(workdir, 'events.out.tfevents.*')):
    for event in tf.compat.v1.train.summary_iterator(path):
      tags.update(v.tag for v in event.summary.value)
  return tags


def hook_train_steps(monkeypatch, hook, before: bool = False) -> None:
  """Calls hook(gan) after (or before) each of the loop's multi-step calls.

  After a call the weights and step counter have changed but the loop has
  not yet recorded the data position: where a signal or a NaN hurts most.
  monkeypatch.undo() removes the hook.
  """
  from training import loop

  original = loop.make_train_steps

  def make(gan):
    steps = original(gan)

    def hooked(*args):
      if before:
        hook(gan)
      result = steps(*args)
      if not before:
        hook(gan)
      return result

    return hooked

  monkeypatch.setattr(loop, 'make_train_steps', make)


def loop_step(gan, images, with_norms: bool = True):
  """One step of `gan` on `images` through the training loop's own function
  (training.loop.make_train_steps); returns the step's metrics."""
  from training import loop

  if not hasattr(gan, '_test_train_steps'):  # traced once per GAN
    gan._test_train_steps = loop.make_train_steps(gan)
  n = images.shape[0]
  batch = (tf.zeros([n], tf.int64), tf.range(n, dtype=tf.int64), images)
  out, status = gan._test_train_steps(
    iter(tf.data.Dataset.from_tensors(batch)),
    tf.constant(1),
    tf.constant(0, tf.int64),
    tf.constant(with_norms),
  )
  assert int(status[0]) == 1  # one step ran
  return out
