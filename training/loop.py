"""The training loop: `run(config, workdir)` trains and fills the run directory."""

import contextlib
import math
import os
import shutil
import signal
import tempfile
import threading
import time
from typing import Dict, Optional

import keras
import tensorflow as tf

from configs.errors import FaceganError, first_line
from configs.presets import Config
from data import pipeline as data_pipeline
from models.gan import GAN
from models.hardware import UnsupportedSetup
from pictures import images as img
from training import autotune
from training import checkpoints
from training import reports
from training import rundir


class TrainingDiverged(FaceganError, RuntimeError):
  """A loss became NaN or infinite; the last good checkpoint is kept."""


class TrainingSetupError(FaceganError, ValueError):
  """The run cannot start as configured; the message says what to change."""


class _Interrupted(Exception):
  """Ctrl-C or SIGTERM arrived; raised between steps so the loop saves."""


class _StopRequest:
  """SIGINT/SIGTERM handler that only records the request.

  Raising from a handler could land anywhere: inside a train step, after the
  weights changed but before the data position did (a checkpoint of mixed
  state), or inside AutoGraph's tracing, which swallows it. The loop checks
  `requested` between steps instead. A third Ctrl-C quits without saving,
  for a save that hangs.
  """

  def __init__(self):
    self.requested = 0

  def __call__(self, signum, frame):
    del frame
    self.requested += 1
    if self.requested == 1:
      print(
        f'\n{signal.Signals(signum).name}: stopping after this step and saving a checkpoint...',
        flush=True,
      )
    elif signum == signal.SIGINT and self.requested >= 3:
      raise KeyboardInterrupt
    else:
      print('\nStill saving (Ctrl-C again quits without saving this step).', flush=True)

  def check(self):
    if self.requested:
      raise _Interrupted()


@contextlib.contextmanager
def _stop_on_signals():
  """Installs a _StopRequest for SIGINT and SIGTERM (main thread only)."""
  stop = _StopRequest()
  if threading.current_thread() is not threading.main_thread():
    yield stop
    return
  previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
  for s in previous:
    signal.signal(s, stop)
  try:
    yield stop
  finally:
    for s, handler in previous.items():
      signal.signal(s, handler)


class _BudgetSpent(Exception):
  """The max_seconds of training of this call have passed."""


_REMEDIES = (
  'Remedies: lower --d_lr (or --g_lr), add instance noise '
  '(--instance_noise=additive --noise_sd=0.1), enable '
  '--d_spectral_norm, or smooth the real labels '
  '(--real_label_low=0.9).'
)


def _diverged(what: str, step: int, manager) -> TrainingDiverged:
  """The error for a NaN/Inf, naming the checkpoint a rerun resumes from."""
  latest = manager.latest_checkpoint
  kept = (
    f'the newest checkpoint, {latest}, holds only finite values; '
    'rerunning the same command resumes from it'
    if latest
    else 'no checkpoint had been saved yet, so a rerun starts from step 0'
  )
  return TrainingDiverged(f'{what} at step {step}: training stopped, and {kept}. {_REMEDIES}')


def _check_finite(metrics: Dict[str, float], step: int, manager) -> None:
  for name in ('d_loss', 'g_loss'):
    if not math.isfinite(metrics[name]):
      raise _diverged(f'{name} became {metrics[name]}', step, manager)


def make_train_steps(gan: GAN):
  """A tf.function running up to k steps of `gan` in one call.

  `train_steps(iterator, k, epoch, log)` trains on the pipeline's
  (epochs, positions, images) batches from a (distributed) dataset iterator
  (data.pipeline.Pipeline.stream). It returns the last step's metrics, with
  the gradient norms only when `log` holds (the loop logs that step), and
  one int64 vector for the loop's bookkeeping, its only read-back:
  [steps run, epoch of the last batch, largest position consumed in epoch
  `epoch` (-1: none), largest position of the last batch, 1 if every loss
  of the call was finite]. Fewer than k steps run
  when the iterator ends, or when a batch of a later epoch came (an epoch
  shortened by unreadable files): that batch is trained on, then the call
  returns. One call, one graph loop: the Python overhead of a step is paid
  once per k steps.
  """

  @tf.function
  def train_steps(iterator, k, epoch, log):
    out = {name: tf.constant(0.0) for name in gan.metric_names}
    batch_epoch = position = last = tf.constant(-1, tf.int64)
    done, finite = tf.constant(0), True
    for i in tf.range(k):  # a graph loop
      batch = iterator.get_next_as_optional()
      if not batch.has_value():
        break
      epochs, positions, images = batch.get_value()
      out = gan.step_fn(images, with_norms=log & tf.equal(i, k - 1))
      finite = finite & tf.math.is_finite(out['d_loss']) & tf.math.is_finite(out['g_loss'])
      done += 1
      batch_epoch = _replica_max(gan, epochs)
      position = _replica_max(gan, positions)
      if batch_epoch != epoch:
        break
      last = position
    return out, tf.stack(
      [tf.cast(done, tf.int64), batch_epoch, last, position, tf.cast(finite, tf.int64)]
    )

  return train_steps


def _replica_max(gan: GAN, values):
  """The largest of a distributed batch's `values`, over every replica."""
  local = gan.strategy.experimental_local_results(values)
  return tf.reduce_max(tf.concat([tf.reshape(v, [-1]) for v in local], 0))


def make_strategy(name: str) -> tf.distribute.Strategy:
  """The tf.distribute strategy named by config.strategy."""
  if name == 'mirrored':
    # Every local GPU; without GPUs, every logical CPU (how tests run it).
    devices = [d.name for d in tf.config.list_logical_devices('GPU')] or [
      d.name for d in tf.config.list_logical_devices('CPU')
    ]
    return tf.distribute.MirroredStrategy(devices)
  if name == 'multiworker':
    return tf.distribute.MultiWorkerMirroredStrategy()
  return tf.distribute.get_strategy()


def _is_chief(strategy) -> bool:
  """Whether this process writes the run directory (worker 0 of a cluster)."""
  resolver = getattr(strategy, 'cluster_resolver', None)
  if resolver is None or not resolver.task_type:
    return True
  return resolver.task_type == 'chief' or (
    resolver.task_type == 'worker'
    and resolver.task_id == 0
    and 'chief' not in resolver.cluster_spec().as_dict()
  )


def _crossed(before: int, after: int, every: int) -> bool:
  """Whether a multiple of `every` lies in (before, after]."""
  return every > 0 and after // every > before // every


def _apply_learning_rates(gan: GAN, config: Config) -> None:
  """Sets both rates from `config`: a checkpoint restores its own rates."""
  for name, optimizer, lr in (
    ('G', gan.g_optimizer, config.g_lr),
    ('D', gan.d_optimizer, config.d_lr),
  ):
    old = float(optimizer.learning_rate.numpy())
    if not math.isclose(old, lr, rel_tol=1e-6):
      optimizer.learning_rate.assign(lr)
      print(f'{name} learning rate {old:g} -> {lr:g} (from this command).', flush=True)


def run(
  config: Config, workdir: str, overwrite: bool = False, max_seconds: Optional[float] = None
) -> Dict[str, float]:
  """Trains a GAN per `config`, resuming from `workdir` if it holds a run.

  Writes config.json, checkpoints/, TensorBoard events, samples/ and
  progress.gif into `workdir`, holding a lock on it. Saves a checkpoint and
  returns on Ctrl-C or SIGTERM (checked between steps), or once
  `max_seconds` of training (evaluation not counted) have passed in this
  call. Returns the last step's metrics.

  Raises:
    data.pipeline.DataError: no usable training images.
    training.rundir.RunDirError: `workdir` is in use, unusable, or holds an
      incompatible run.
    TrainingSetupError: the strategy cannot split the batch.
    TrainingDiverged: a loss or weight became NaN/Inf (nothing non-finite is
      saved).
    KeyboardInterrupt: a third Ctrl-C (nothing more is saved).
  """
  # Data first: a missing dataset fails in seconds, before any model is built.
  pipeline = data_pipeline.Pipeline(config)
  if config.eval_every:
    data_pipeline.check_eval_split(config)
  strategy = make_strategy(config.strategy)
  replicas = strategy.num_replicas_in_sync
  if config.batch_size % replicas:
    raise TrainingSetupError(
      f'--batch_size={config.batch_size} does not split over {replicas} '
      f'replicas; use a multiple of {replicas}.'
    )
  chief = _is_chief(strategy)
  lock = rundir.RunLock(workdir) if chief else None
  try:
    if chief:
      config = rundir.prepare(config, workdir, overwrite)
    models = config
    if chief and config.strategy == 'default':
      # Measured once per machine and model; several replicas or workers
      # keep the fixed rule, which every one of them reaches alike.
      models = autotune.resolve(
        config,
        workdir,
        checkpoints.has_checkpoint_files(os.path.join(workdir, rundir.CHECKPOINT_DIR)),
        planned_steps=config.epochs * pipeline.steps_per_epoch(),
      )
    return _train(config, models, workdir, pipeline, strategy, chief, max_seconds)
  finally:
    if lock:
      lock.release()


def _train(config, models, workdir, pipeline, strategy, chief, max_seconds):
  """run()'s body, once the run directory is locked and checked.

  `models` is `config` with its auto speed settings resolved: what the GAN is
  built from (config.json keeps 'auto').
  """
  trainer = _Trainer(config, models, workdir, pipeline, strategy, chief)
  try:
    with trainer.reports.writer.as_default(), _stop_on_signals() as stop:
      for epoch in range(int(trainer.progress.epoch), config.epochs):
        trainer.train_epoch(epoch, stop, max_seconds)
        trainer.end_epoch(epoch)
  except _BudgetSpent:
    path = trainer.save()
    trainer.end_budget()
    print(
      f'\nTime budget of {max_seconds / 60:g} min spent: saved {path} at '
      f'step {trainer.gan.steps_done}; rerun to continue.',
      flush=True,
    )
    return trainer.metrics()
  except _Interrupted:
    path = trainer.save()
    print(
      f'\nInterrupted: saved {path} at step {trainer.gan.steps_done}; '
      'rerun the same command to resume.',
      flush=True,
    )
    return trainer.metrics()
  finally:
    trainer.close()
  trainer.finish()
  return trainer.metrics()


# The progress bar's columns: both losses, mean D outputs, throughput.
_BAR_METRICS = ('d_loss', 'g_loss', 'D(x)', 'D(G(z))', 'img/s')


class _Progress:
  """Where the run is beyond the GAN's step: saved in every checkpoint."""

  def __init__(self):
    self.epoch = tf.Variable(0, dtype=tf.int64, name='epoch')
    # Inside the current epoch: source elements consumed and images trained on.
    self.consumed = tf.Variable(0, dtype=tf.int64, name='epoch_consumed')
    self.images = tf.Variable(0, dtype=tf.int64, name='epoch_images')
    # Training seconds of the calls before this one (evaluation excluded).
    self.seconds = tf.Variable(0.0, dtype=tf.float64, name='train_seconds')
    # The resolved config (precision and XLA as measured), so that a
    # checkpoint copied out of the run still loads.
    self.config = tf.Variable('', dtype=tf.string, name='run_config')

  def items(self) -> Dict[str, tf.Variable]:
    """The checkpoint keys of the counters."""
    return dict(
      epoch=self.epoch,
      epoch_consumed=self.consumed,
      epoch_images=self.images,
      train_seconds=self.seconds,
      run_config=self.config,
    )


def _restore(config, models, gan, progress, workdir, chief) -> None:
  """Restores the newest usable checkpoint, then applies this command's settings."""
  latest = checkpoints.restore(gan, progress.items(), workdir, chief)
  if latest:
    print(
      f'Resumed from {latest} (step {gan.steps_done}, epoch {int(progress.epoch) + 1}).',
      flush=True,
    )
  _apply_learning_rates(gan, config)
  if chief:  # only now: a refused restore leaves the old config.json
    changed = rundir.save_config(config, workdir, gan.steps_done)
    if latest and changed:
      shown = ', '.join(f'{k} {old!r} -> {new!r}' for k, (old, new) in changed.items())
      print(
        f'Resumed with changed settings: {shown} (recorded in {rundir.CONFIG_HISTORY_FILE}).',
        flush=True,
      )
  progress.config.assign(models.to_json())


class _Trainer:
  """One call of run(): the GAN restored, its checkpoints, reports and counters.

  The loop is `train_epoch` then `end_epoch` for each epoch left; `save`
  checkpoints at any step between two calls of the multi-step function.
  """

  def __init__(self, config, models, workdir, pipeline, strategy, chief):
    self.config, self.workdir, self.pipeline, self.chief = config, workdir, pipeline, chief
    self.strategy = strategy
    keras.utils.set_random_seed(config.seed)
    try:
      self.gan = gan = GAN(models, strategy)
    except UnsupportedSetup as e:  # a model bug's ValueError stays a traceback
      raise TrainingSetupError(str(e)) from e
    if chief:
      precision = {'off': 'float32'}.get(gan.mixed_precision, gan.mixed_precision)
      print(
        f'{strategy.num_replicas_in_sync} replica(s), XLA '
        f'{"on" if gan.jit_compile else "off"}, {precision} '
        f'(--jit_compile={config.jit_compile}, '
        f'--mixed_precision={config.mixed_precision}).',
        flush=True,
      )
    self.progress = _Progress()
    _restore(config, models, gan, self.progress, workdir, chief)
    self.train_steps = make_train_steps(gan)
    ckpt = tf.train.Checkpoint(**self.progress.items(), **checkpoints.gan_items(gan))
    # Every worker of a cluster must save (it is collective); only the chief
    # saves into the run directory.
    self.ckpt_dir = (
      os.path.join(workdir, rundir.CHECKPOINT_DIR)
      if chief
      else tempfile.mkdtemp(prefix='facegan-worker-ckpt-')
    )
    self.manager = tf.train.CheckpointManager(
      ckpt, self.ckpt_dir, max_to_keep=config.keep_checkpoints
    )
    self.reports = reports.Reports(config, gan, workdir, chief, ckpt)
    self.steps_per_epoch = pipeline.steps_per_epoch()
    self.out = {}
    self.step = gan.steps_done  # counted here: no read-back per step
    # One iterator for every epoch left, made at the first train_epoch.
    self.iterator = None
    # A batch of the next epoch that ended the last call (see train_epoch).
    self.carry = None
    # Training time of this call: evaluation is paused out of the budget.
    self.started = time.perf_counter()
    self.seconds_before = float(self.progress.seconds)
    self.last_save = -math.inf

  def train_seconds(self) -> float:
    """Seconds this call has trained (evaluation excluded): the budget's."""
    return time.perf_counter() - self.started - self.reports.eval_seconds

  def run_seconds(self) -> float:
    """Seconds the run has trained over all its calls."""
    return self.seconds_before + self.train_seconds()

  def metrics(self) -> Dict[str, float]:
    """The last step's metrics as Python floats."""
    return {k: float(v) for k, v in self.out.items()}

  def save(self) -> str:
    """Checkpoints now, unless a weight is NaN/Inf; returns the prefix."""
    gan = self.gan
    if not gan.all_finite():
      raise _diverged('A weight or optimizer state became NaN/Inf', gan.steps_done, self.manager)
    self.reports.writer.flush()  # the scalars logged so far survive a kill after it
    gan.refresh_sampler()  # the checkpoint's EMA G normalises with its own statistics
    self.last_save = time.perf_counter()
    self.progress.seconds.assign(self.run_seconds())
    try:
      return self.manager.save(checkpoint_number=gan.steps_done)
    except (OSError, tf.errors.OpError) as e:
      checkpoints.remove_stale_temp(self.ckpt_dir)
      kept = self.manager.latest_checkpoint or 'no checkpoint yet'
      raise rundir.RunDirError(
        f'Saving the checkpoint of step {gan.steps_done} failed '
        f'({first_line(e, 160)}): '
        f'is the disk full? Kept: {kept}. Free some space and rerun the '
        'same command to resume from it.'
      ) from e

  def _stream(self, epoch: int):
    """A distributed iterator over every epoch left, from the saved position."""
    done = int(self.progress.images) // self.config.batch_size
    dataset = self.pipeline.stream(
      epoch, int(self.progress.consumed), min(done, self.steps_per_epoch)
    )
    return iter(self.strategy.experimental_distribute_dataset(dataset))

  def train_epoch(self, epoch: int, stop: '_StopRequest', max_seconds: Optional[float]) -> None:
    """Trains the rest of `epoch`, k steps per call, with what runs between.

    Losses and metrics are read back only on logging steps; each call
    returns one small vector (steps run, data position, a finite flag).

    Raises:
      _Interrupted: a signal arrived (checked between calls).
      _BudgetSpent: max_seconds of training have passed.
      TrainingDiverged: a loss became NaN/Inf.
    """
    config = self.config
    steps_per_epoch = self.steps_per_epoch
    done = min(int(self.progress.images) // config.batch_size, steps_per_epoch)
    bar = keras.utils.Progbar(steps_per_epoch, unit_name='step', stateful_metrics=_BAR_METRICS)
    print(f'Epoch {epoch + 1}/{config.epochs}', flush=True)
    tick, tick_images = time.perf_counter(), 0
    if self.iterator is None or not self.pipeline.spans_epochs:
      self.iterator = self._stream(epoch)
    while done < steps_per_epoch:
      stop.check()
      before = self.step
      # Calls end on logging steps, so only those compute gradient norms.
      k = min(
        config.steps_per_call, steps_per_epoch - done, config.log_every - before % config.log_every
      )
      log = (before + k) % config.log_every == 0
      self.out, status = self.train_steps(
        self.iterator, tf.constant(k), tf.constant(epoch, tf.int64), tf.constant(log)
      )
      ran, batch_epoch, last, position, finite = (int(x) for x in status.numpy())
      if ran == 0:  # skipped files left fewer batches than planned
        break
      self.step = step = before + ran
      if not finite:  # in this call, perhaps not at its last step
        _check_finite(self._main_metrics(), step, self.manager)
        raise _diverged('A loss became NaN/Inf', step, self.manager)
      here = ran if batch_epoch == epoch else ran - 1
      if last >= 0:
        self.progress.consumed.assign(last + 1)
      self.progress.images.assign_add(here * config.batch_size)
      done += here
      tick_images += ran * config.batch_size
      rate = tick_images / max(time.perf_counter() - tick, 1e-9)
      if _crossed(before, step, config.log_every):
        self._log(bar, done, step, rate, norms=ran == k)
        tick, tick_images = time.perf_counter(), 0
      else:
        bar.update(done)
      if batch_epoch != epoch:
        # An epoch shortened by unreadable files: the call's last batch was
        # the next epoch's first; end_epoch books it there, before anything
        # could save counters that miss it.
        self.carry = position + 1
        break
      if self.reports.evaluate and _crossed(before, step, config.eval_every):
        self.reports.evaluation(self.run_seconds())
      if _crossed(before, step, config.checkpoint_every_steps):
        self.save()
      if max_seconds is not None and self.train_seconds() >= max_seconds:
        raise _BudgetSpent()

  def _log(self, bar, done: int, step: int, rate: float, norms: bool) -> None:
    """A logging step: the losses read back, checked, shown and recorded."""
    main = self._main_metrics()
    _check_finite(main, step, self.manager)
    shown = (main['d_loss'], main['g_loss'], main['d_real'], main['d_fake'], rate)
    bar.update(done, list(zip(_BAR_METRICS, shown)))
    self.reports.scalars(self.out, main, step, rate, norms=norms)

  def _main_metrics(self) -> Dict[str, float]:
    """The last step's losses and D outputs, read back from the device."""
    return {k: float(self.out[k]) for k in ('d_loss', 'g_loss', 'd_real', 'd_fake')}

  def end_epoch(self, epoch: int) -> None:
    """Skipped-file count, counters, and when due a sample grid and a save.

    The grid and the checkpoint come every grid_every_secs and
    checkpoint_every_secs, not every epoch: on a few thousand faces an epoch
    is a few seconds. The first epoch's grid and the last epoch's grid and
    checkpoint always come. A cluster's save is collective, so there every
    epoch end saves (the workers' clocks would disagree).
    """
    config = self.config
    if int(self.progress.images) == 0:
      raise data_pipeline.DataError(
        f'Epoch {epoch + 1} produced no batch: all {self.pipeline.size} '
        f'{config.dataset} files are unreadable (truncated, empty or not '
        'images). Check the folder, or pass another --data_dir.'
      )
    skipped = int(self.progress.consumed) - int(self.progress.images)
    if skipped:
      print(f'Epoch {epoch + 1}: skipped {skipped} unreadable image(s).', flush=True)
    tf.summary.scalar('data/skipped_images', skipped, step=self.step)
    final = epoch + 1 == config.epochs
    self.reports.grid(epoch + 1, self.step, force=final)
    self.progress.epoch.assign(epoch + 1)
    consumed, trained = (self.carry, config.batch_size) if self.carry else (0, 0)
    self.progress.consumed.assign(consumed)
    self.progress.images.assign(trained)
    self.carry = None
    if (
      final
      or config.strategy == 'multiworker'
      or reports.due(self.last_save, config.checkpoint_every_secs)
    ):
      self.save()

  def end_budget(self) -> None:
    """After the budget's save: a sample grid, and the curve's last point."""
    self.reports.budget_end(int(self.progress.epoch) + 1, self.run_seconds())

  def close(self) -> None:
    # Dropped here, not at interpreter exit: a prefetching iterator torn down
    # during shutdown can deadlock on the GIL (seen after a NaN).
    self.iterator = None
    self.reports.writer.flush()
    if not self.chief:  # a worker's checkpoints only served the collective save
      shutil.rmtree(self.ckpt_dir, ignore_errors=True)

  def finish(self) -> None:
    """The progress GIF and a last line, once every epoch is done."""
    if self.chief:
      frames = img.progress_gif(
        os.path.join(self.workdir, rundir.SAMPLES_DIR), os.path.join(self.workdir, 'progress.gif')
      )
      print(
        f'Done: {self.gan.steps_done} steps, {int(self.progress.epoch)} epochs; '
        f'samples and progress.gif ({frames} frames) are in '
        f'{self.workdir}.',
        flush=True,
      )
