"""What a run reports as it trains: scalars, the collapse watch, grids, evaluations.

`Reports` owns the TensorBoard writer, the fixed latent batch, the collapse
watch and the optional held-out evaluation (with the best checkpoint it
keeps), so the loop only says when: a logging step, an evaluation step, an
epoch's end.
"""

import json
import os
import time
from typing import Dict

import numpy as np
import tensorflow as tf

from common import files
from configs.presets import Config
from models import latents
from models import streams
from models.gan import GAN
from pictures import images as img
from training import checkpoints
from training import collapse
from training import rundir
from training import summaries


def fixed_latent(config: Config, workdir: str) -> np.ndarray:
  """The run's fixed latent batch, created once and kept in the run dir.

  Every epoch's sample grid comes from these same vectors, so the grids (and
  the progress GIF) show one set of faces evolving. They are
  models.latents.sample_latents' FIXED_LATENT stream, so they can be drawn
  again without the file.
  """
  path = os.path.join(workdir, rundir.FIXED_LATENT_FILE)
  if os.path.isfile(path):
    return np.load(path)
  z = latents.sample_latents(config, config.num_samples, config.seed, streams.FIXED_LATENT)
  files.atomic_write(path, lambda f: np.save(f, z), binary=True)
  return z


def save_samples(gan: GAN, z: np.ndarray, workdir: str, epoch: int) -> np.ndarray:
  """Writes samples/epoch_XXXX.png from the fixed latent batch; returns it."""
  images = files.from_float(gan.sample(tf.constant(z))).numpy()
  grid = img.make_grid(images)
  img.save_png(os.path.join(workdir, rundir.SAMPLES_DIR, f'epoch_{epoch:04d}.png'), grid)
  return grid


def due(last: float, every: float) -> bool:
  """Whether `every` seconds have passed since `last` (0: always)."""
  return every <= 0 or time.perf_counter() - last >= every


def _eval_log_path(workdir: str) -> str:
  return os.path.join(workdir, rundir.EVAL_DIR, 'during_training.jsonl')


def _log_eval(workdir: str, step: int, train_seconds: float, metrics) -> None:
  """Appends one evaluation to <workdir>/eval/during_training.jsonl."""
  os.makedirs(os.path.join(workdir, rundir.EVAL_DIR), exist_ok=True)
  with open(_eval_log_path(workdir), 'a') as f:
    f.write(json.dumps(dict(step=step, train_seconds=round(train_seconds, 1), **metrics)) + '\n')


def _purge_eval_log(workdir: str, step: int) -> None:
  """Drops evaluations after `step` (and a line cut by a kill) from the log.

  As with the TensorBoard events: a run resumed from the checkpoint of
  `step` evaluates the later steps again.
  """
  path = _eval_log_path(workdir)
  if not os.path.exists(path):
    return
  with open(path) as f:
    lines = f.readlines()
  kept = []
  for line in lines:
    try:
      if line.endswith('\n') and json.loads(line)['step'] <= step:
        kept.append(line)
    except (ValueError, KeyError, TypeError):
      pass  # a line cut short by a kill
  if kept != lines:
    files.atomic_write(path, lambda f: f.writelines(kept))


class Reports:
  """A run's TensorBoard curves, sample grids, collapse watch and evaluations.

  Only the chief of a cluster writes; the other workers get a no-op writer
  and no grids. A resumed run's curves continue from its checkpoint: what
  was logged after it is dropped, to be logged again.

  Args:
    config: the run's config.
    gan: the GAN being trained.
    workdir: the run directory.
    chief: whether this process writes the run directory.
    checkpoint: the run's tf.train.Checkpoint, for the best one kept.
  """

  def __init__(
    self, config: Config, gan: GAN, workdir: str, chief: bool, checkpoint: tf.train.Checkpoint
  ):
    self.config, self.gan, self.workdir, self.chief = config, gan, workdir, chief
    if chief:
      summaries.purge_events_after(workdir, gan.steps_done)
      _purge_eval_log(workdir, gan.steps_done)
      self.writer = tf.summary.create_file_writer(workdir)
    else:
      self.writer = tf.summary.create_noop_writer()
    self.z = fixed_latent(config, workdir) if chief else None
    self.evaluate = None
    if config.eval_every and chief:
      from metrics.evaluation import TrainingEvaluator  # numpy-heavy, on demand

      self.evaluate = TrainingEvaluator(config)
    # A multi-worker save is collective, and only the chief evaluates.
    self.best = (
      checkpoints.BestKeeper(checkpoint, workdir, config.keep_best)
      if self.evaluate and config.keep_best and config.strategy != 'multiworker'
      else None
    )
    self.watch = collapse.CollapseWatch(remedies=collapse.partial_remedies(config))
    self.eval_seconds = 0.0  # spent evaluating: not training time
    self.last_grid = -float('inf')

  def scalars(
    self, out: Dict[str, tf.Tensor], main: Dict[str, float], step: int, rate: float, norms: bool
  ) -> None:
    """TensorBoard scalars of a logging step, and the collapse watch.

    Without `norms` (a call cut short at an epoch's end before its logging
    step) the gradient norms were not computed and are not written.
    """
    gan = self.gan
    values = {k: float(v) for k, v in out.items() if norms or not k.startswith('grad_norm/')}
    summaries.write_scalars(
      values,
      step,
      **{
        'lr/g': float(gan.g_optimizer.learning_rate.numpy()),
        'lr/d': float(gan.d_optimizer.learning_rate.numpy()),
        'images_per_sec': rate,
      },
    )
    warnings = [self.watch.observe_d(main['d_fake'], step)]
    scores = self.watch.d_scalars()
    if self.chief:  # a forward pass of the fixed latents: cheap next to
      # log_every train steps, and frequent enough on large epochs; the EMA
      # G's statistics of the last grid are recent enough for the watch
      sample_scores, sample_warnings = self.watch.observe_samples(
        gan.sample(tf.constant(self.z), refresh=False).numpy(), step
      )
      scores.update(sample_scores)
      for warning in filter(None, warnings + sample_warnings):
        print(f'\n{warning}', flush=True)
    summaries.write_scalars(scores, step)

  def evaluation(self, run_seconds: float) -> None:
    """Scores G now: TensorBoard, eval/during_training.jsonl, the best kept."""
    tick = time.perf_counter()
    step = self.gan.steps_done
    scores = self.evaluate(self.gan.sample)
    with self.writer.as_default():
      summaries.write_scalars(scores, step)
    _log_eval(self.workdir, step, run_seconds, scores)
    for warning in self.watch.observe_eval(scores, step):
      print(f'\n{warning}', flush=True)
    if self.best and self.gan.all_finite():
      self.best.offer(scores, step)
    self.eval_seconds += time.perf_counter() - tick

  def grid(self, epoch: int, step: int, force: bool) -> None:
    """The sample grid of `epoch` (1-based), every grid_every_secs or if `force`."""
    if self.chief and (force or due(self.last_grid, self.config.grid_every_secs)):
      self.last_grid = time.perf_counter()
      grid = save_samples(self.gan, self.z, self.workdir, epoch)
      tf.summary.image('samples', grid[None], step=step)

  def budget_end(self, epoch: int, run_seconds: float) -> None:
    """After a time budget's save: a grid, and the evaluation curve's last point."""
    if self.chief:
      save_samples(self.gan, self.z, self.workdir, epoch)
      if self.evaluate and self.gan.steps_done % self.config.eval_every:
        self.evaluation(run_seconds)  # the curve ends where the budget did
