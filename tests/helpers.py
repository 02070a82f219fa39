"""Helpers shared by the tests: read a run directory's checkpoints and curves."""

import glob
import os
from typing import Dict

import tensorflow as tf

from training import rundir


def checkpoint_step(workdir: str) -> int:
  """The step stored in the run's newest checkpoint (0 without one)."""
  complete = rundir.complete_checkpoints(os.path.join(workdir, 'checkpoints'))
  if not complete:
    return 0
  return int(tf.train.load_variable(complete[-1][1],
                                    'step/.ATTRIBUTES/VARIABLE_VALUE'))


def checkpoint_steps(workdir: str):
  """Steps of every complete checkpoint on disk, oldest first."""
  return [s for s, _ in rundir.complete_checkpoints(
      os.path.join(workdir, 'checkpoints'))]


def scalars(workdir: str, tag: str, unique: bool = True) -> Dict[int, float]:
  """{step: value} of one TensorBoard scalar of the run.

  unique: fail if a step was logged twice (a resume must purge its redo).
  """
  values = {}
  for path in sorted(glob.glob(os.path.join(workdir, 'events.out.tfevents.*'))):
    for event in tf.compat.v1.train.summary_iterator(path):
      for v in event.summary.value:
        if v.tag == tag:
          assert not unique or event.step not in values, (
              f'step {event.step} logged twice')
          values[event.step] = (v.simple_value if v.HasField('simple_value')
                                else float(tf.make_ndarray(v.tensor)))
  return values


def scalar_tags(workdir: str):
  """Every scalar tag the run logged."""
  tags = set()
  for path in glob.glob(os.path.join(workdir, 'events.out.tfevents.*')):
    for event in tf.compat.v1.train.summary_iterator(path):
      tags.update(v.tag for v in event.summary.value)
  return tags
