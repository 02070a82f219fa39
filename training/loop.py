"""The training loop: `run(config, workdir)` trains and fills the run directory."""

import json
import math
import os
import shutil
import signal
import tempfile
import time
from typing import Dict, Optional

import keras
import numpy as np
import tensorflow as tf

from data import pipeline as data_pipeline
from flags.presets import Config
from models.gan import GAN
from training import collapse
from training import images as img
from training import rundir
from training import summaries


class TrainingDiverged(RuntimeError):
  """A loss became NaN or infinite; the last good checkpoint is kept."""


class TrainingSetupError(ValueError):
  """The run cannot start as configured; the message says what to change."""


class _Interrupted(Exception):
  """SIGTERM, turned into an exception so the loop can save and exit."""


class _BudgetSpent(Exception):
  """The max_seconds of training of this call have passed."""


def fixed_latent(config: Config, workdir: str) -> np.ndarray:
  """The run's fixed latent batch, created once and kept in the run dir.

  Every epoch's sample grid comes from these same vectors, so the grids (and
  the progress GIF) show one set of faces evolving.
  """
  path = os.path.join(workdir, rundir.FIXED_LATENT_FILE)
  if os.path.isfile(path):
    return np.load(path)
  rng = np.random.default_rng([config.seed, 1])
  shape = (config.num_samples, config.latent_dim)
  z = (rng.uniform(-1, 1, shape) if config.latent_dist == 'uniform'
       else rng.standard_normal(shape)).astype(np.float32)
  rundir.atomic_write(path, lambda f: np.save(f, z), binary=True)
  return z


def _check_finite(metrics: Dict[str, float], step: int) -> None:
  for name in ('d_loss', 'g_loss'):
    if not math.isfinite(metrics[name]):
      raise TrainingDiverged(
          f'{name} became {metrics[name]} at step {step}; training stopped and '
          'the last good checkpoint is kept (rerun the same command to resume '
          'from it). Remedies: lower --d_lr (or --g_lr), add instance noise '
          '(--instance_noise=additive --noise_sd=0.1), enable '
          '--d_spectral_norm, or smooth the real labels (--real_label_low=0.9).')


def save_samples(gan: GAN, z: np.ndarray, workdir: str, epoch: int) -> np.ndarray:
  """Writes samples/epoch_XXXX.png from the fixed latent batch; returns it."""
  images = data_pipeline.from_float(gan.sample(tf.constant(z))).numpy()
  grid = img.make_grid(images)
  img.save_png(os.path.join(workdir, rundir.SAMPLES_DIR,
                            f'epoch_{epoch:04d}.png'), grid)
  return grid


def make_strategy(name: str) -> tf.distribute.Strategy:
  """The tf.distribute strategy named by config.strategy."""
  if name == 'mirrored':
    # Every local GPU; without GPUs, every logical CPU (how tests run it).
    devices = ([d.name for d in tf.config.list_logical_devices('GPU')] or
               [d.name for d in tf.config.list_logical_devices('CPU')])
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
      resolver.task_type == 'worker' and resolver.task_id == 0 and
      'chief' not in resolver.cluster_spec().as_dict())


def _crossed(before: int, after: int, every: int) -> bool:
  """Whether a multiple of `every` lies in (before, after]."""
  return every > 0 and after // every > before // every


def _log_eval(workdir: str, step: int, train_seconds: float, metrics) -> None:
  """Appends one evaluation to <workdir>/eval/during_training.jsonl."""
  folder = os.path.join(workdir, 'eval')
  os.makedirs(folder, exist_ok=True)
  with open(os.path.join(folder, 'during_training.jsonl'), 'a') as f:
    f.write(json.dumps(dict(step=step, train_seconds=round(train_seconds, 1),
                            **metrics)) + '\n')


def run(config: Config, workdir: str, overwrite: bool = False,
        max_seconds: Optional[float] = None) -> Dict[str, float]:
  """Trains a GAN per `config`, resuming from `workdir` if it holds a run.

  Writes config.json, checkpoints/, TensorBoard events, samples/ and
  progress.gif into `workdir`. Saves a checkpoint and returns on Ctrl-C or
  SIGTERM, or once `max_seconds` of training (evaluation not counted) have
  passed in this call. Returns the last step's metrics.

  Raises:
    data.pipeline.DataError: no usable training images.
    training.rundir.RunDirError: `workdir` holds an incompatible run.
    TrainingSetupError: the strategy cannot split the batch.
    TrainingDiverged: a loss became NaN/Inf (the checkpoint is not updated).
  """
  # Data first: a missing dataset fails in seconds, before any model is built.
  pipeline = data_pipeline.Pipeline(config)
  strategy = make_strategy(config.strategy)
  replicas = strategy.num_replicas_in_sync
  if config.batch_size % replicas:
    raise TrainingSetupError(
        f'--batch_size={config.batch_size} does not split over {replicas} '
        f'replicas; use a multiple of {replicas}.')
  chief = _is_chief(strategy)
  if chief:
    rundir.prepare(config, workdir, overwrite)
  keras.utils.set_random_seed(config.seed)
  try:
    gan = GAN(config, strategy)
  except ValueError as e:
    raise TrainingSetupError(str(e)) from e
  if chief:
    precision = {'off': 'float32'}.get(gan.mixed_precision, gan.mixed_precision)
    print(f'{replicas} replica(s), XLA {"on" if gan.jit_compile else "off"}, '
          f'{precision} (--jit_compile={config.jit_compile}, '
          f'--mixed_precision={config.mixed_precision}).', flush=True)
  epoch_var = tf.Variable(0, dtype=tf.int64, name='epoch')
  # Inside the current epoch: source elements consumed and images trained on.
  consumed_var = tf.Variable(0, dtype=tf.int64, name='epoch_consumed')
  images_var = tf.Variable(0, dtype=tf.int64, name='epoch_images')
  ckpt = tf.train.Checkpoint(epoch=epoch_var, epoch_consumed=consumed_var,
                             epoch_images=images_var, **gan.checkpoint_items())
  # Every worker of a cluster must save (it is collective); only the chief
  # saves into the run directory.
  ckpt_dir = os.path.join(workdir, rundir.CHECKPOINT_DIR) if chief else \
      tempfile.mkdtemp(prefix='facegan-worker-ckpt-')
  manager = tf.train.CheckpointManager(ckpt, ckpt_dir,
                                       max_to_keep=config.keep_checkpoints)
  latest = tf.train.latest_checkpoint(os.path.join(workdir, rundir.CHECKPOINT_DIR))
  if latest:
    try:
      ckpt.restore(latest).assert_existing_objects_matched()
    except (AssertionError, ValueError, tf.errors.OpError) as e:
      detail = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
      raise rundir.RunDirError(
          f'The checkpoint {latest} cannot be restored into this run\'s models '
          f'({detail}): it is corrupt, partial or from an older facegan. '
          'Delete it to resume from an earlier one, pick another --workdir, '
          'or pass --overwrite to start again.') from e
    print(f'Resumed from {latest} (step {gan.steps_done}, '
          f'epoch {int(epoch_var) + 1}).', flush=True)
  if chief:
    # Curves continue from the checkpoint: steps logged after it are redone.
    summaries.purge_events_after(workdir, gan.steps_done)
    writer = tf.summary.create_file_writer(workdir)
  else:
    writer = tf.summary.create_noop_writer()
  z = fixed_latent(config, workdir) if chief else None
  evaluate = None
  if config.eval_every and chief:
    from metrics.evaluation import TrainingEvaluator  # numpy-heavy, on demand
    evaluate = TrainingEvaluator(config)
  steps_per_epoch = pipeline.steps_per_epoch()
  watch = collapse.CollapseWatch()
  save = lambda: manager.save(checkpoint_number=gan.steps_done)

  previous_handler = signal.getsignal(signal.SIGTERM)
  def on_sigterm(signum, frame):
    raise _Interrupted()
  signal.signal(signal.SIGTERM, on_sigterm)
  out = {}
  # Training time of this call: evaluation is paused out of the budget.
  started, eval_seconds = time.perf_counter(), 0.0
  train_seconds = lambda: time.perf_counter() - started - eval_seconds

  def log_evaluation():
    """Scores G now: TensorBoard and eval/during_training.jsonl."""
    nonlocal eval_seconds
    tick_eval = time.perf_counter()
    scores = evaluate(gan.sampler)
    with writer.as_default():
      summaries.write_scalars(scores, gan.steps_done)
    _log_eval(workdir, gan.steps_done, train_seconds(), scores)
    eval_seconds += time.perf_counter() - tick_eval
  try:
    with writer.as_default():
      for epoch in range(int(epoch_var), config.epochs):
        done = min(int(images_var) // config.batch_size, steps_per_epoch)
        bar = keras.utils.Progbar(steps_per_epoch, unit_name='step',
                                  stateful_metrics=['img/s'])
        print(f'Epoch {epoch + 1}/{config.epochs}', flush=True)
        tick, tick_images = time.perf_counter(), 0
        dataset = pipeline.epoch(epoch, int(consumed_var)).take(steps_per_epoch - done)
        iterator = iter(strategy.experimental_distribute_dataset(dataset))
        while done < steps_per_epoch:
          before = gan.steps_done
          k = min(config.steps_per_call, steps_per_epoch - done)
          out, last, ran = gan.train_steps(iterator, tf.constant(k))
          if int(ran) == 0:  # skipped files left fewer batches than planned
            break
          step = gan.steps_done
          main = {k: float(out[k]) for k in ('d_loss', 'g_loss', 'd_real', 'd_fake')}
          _check_finite(main, step)
          consumed_var.assign(int(last) + 1)
          images_var.assign_add(int(ran) * config.batch_size)
          done += int(ran)
          tick_images += int(ran) * config.batch_size
          rate = tick_images / max(time.perf_counter() - tick, 1e-9)
          bar.update(done, [('d_loss', main['d_loss']), ('g_loss', main['g_loss']),
                            ('D(x)', main['d_real']), ('D(G(z))', main['d_fake']),
                            ('img/s', rate)])
          if _crossed(before, step, config.log_every):
            summaries.write_scalars(
                {k: float(v) for k, v in out.items()}, step,
                **{'lr/g': float(gan.g_optimizer.learning_rate.numpy()),
                   'lr/d': float(gan.d_optimizer.learning_rate.numpy()),
                   'images_per_sec': rate})
            warnings = [watch.observe_d(main['d_fake'], step)]
            scores = watch.d_scalars()
            if chief:  # a forward pass of the fixed latents: cheap next to
              # log_every train steps, and frequent enough on large epochs
              diversity = collapse.sample_diversity(gan.sample(tf.constant(z)))
              scores['collapse/sample_diversity'] = diversity
              warnings.append(watch.observe_diversity(diversity, step))
              for warning in filter(None, warnings):
                print(f'\n{warning}', flush=True)
            summaries.write_scalars(scores, step)
            tick, tick_images = time.perf_counter(), 0
          if evaluate and _crossed(before, step, config.eval_every):
            log_evaluation()
          if _crossed(before, step, config.checkpoint_every_steps):
            save()
          if max_seconds is not None and train_seconds() >= max_seconds:
            raise _BudgetSpent()
        if int(images_var) == 0:
          raise data_pipeline.DataError(
              f'Epoch {epoch + 1} produced no batch: all {pipeline.size} '
              f'{config.dataset} files are unreadable (truncated, empty or not '
              'images). Check the folder, or pass another --data_dir.')
        skipped = int(consumed_var) - int(images_var)
        if skipped:
          print(f'Epoch {epoch + 1}: skipped {skipped} unreadable image(s).',
                flush=True)
        tf.summary.scalar('data/skipped_images', skipped, step=gan.steps_done)
        if chief:
          grid = save_samples(gan, z, workdir, epoch + 1)
          tf.summary.image('samples', grid[None], step=gan.steps_done)
        epoch_var.assign(epoch + 1)
        consumed_var.assign(0)
        images_var.assign(0)
        save()
        writer.flush()
  except _BudgetSpent:
    path = save()
    if chief:
      save_samples(gan, z, workdir, int(epoch_var) + 1)
      if evaluate and gan.steps_done % config.eval_every:
        log_evaluation()  # the curve ends where the budget did
    print(f'\nTime budget of {max_seconds / 60:g} min spent: saved {path} at '
          f'step {gan.steps_done}; rerun to continue.', flush=True)
    return {k: float(v) for k, v in out.items()}
  except (KeyboardInterrupt, _Interrupted):
    path = save()
    print(f'\nInterrupted: saved {path} at step {gan.steps_done}; rerun the same '
          'command to resume.', flush=True)
    return {k: float(v) for k, v in out.items()}
  finally:
    signal.signal(signal.SIGTERM, previous_handler)
    writer.flush()
    if not chief:  # a worker's checkpoints only served the collective save
      shutil.rmtree(ckpt_dir, ignore_errors=True)
  if chief:
    frames = img.progress_gif(os.path.join(workdir, rundir.SAMPLES_DIR),
                              os.path.join(workdir, 'progress.gif'))
    print(f'Done: {gan.steps_done} steps, {int(epoch_var)} epochs; samples and '
          f'progress.gif ({frames} frames) are in {workdir}.', flush=True)
  return {k: float(v) for k, v in out.items()}
