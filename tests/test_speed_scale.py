"""XLA, mixed precision, multi-step calls and tf.distribute."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from configs.presets import get_config
from models import hardware
from models.gan import GAN
from models.hardware import resolve_jit_compile, resolve_mixed_precision
from training import loop
from training import rundir

# End-to-end: training runs, subprocesses (python -m pytest -m "not slow" skips them).
pytestmark = pytest.mark.slow

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _run(tmp_path, name, **overrides):
  config = get_config('tiny', epochs=1, steps_per_epoch=6, synthetic_size=48, **overrides)
  return loop.run(config, str(tmp_path / name))


def test_steps_per_call_gives_the_same_training(tmp_path):
  one = _run(tmp_path, 'one')
  three = _run(tmp_path, 'three', steps_per_call=4)  # calls of 4 then 2
  for key in ('d_loss', 'g_loss', 'grad_norm/g'):
    assert three[key] == pytest.approx(one[key], rel=1e-5)


def test_train_steps_is_traced_once_per_run():
  gan = GAN(get_config('tiny'))
  train_steps = loop.make_train_steps(gan)
  images = tf.random.uniform((8, 32, 32, 3), -1, 1)
  positions = tf.range(8, dtype=tf.int64)
  for epoch in range(2):  # a new iterator, a new epoch and logging or not
    ds = tf.data.Dataset.from_tensors((positions * 0 + epoch, positions, images)).repeat(10)
    it = iter(gan.strategy.experimental_distribute_dataset(ds))
    for k, log in ((3, True), (1, False), (2, True)):
      train_steps(it, tf.constant(k), tf.constant(epoch, tf.int64), tf.constant(log))
  assert train_steps.experimental_get_tracing_count() == 1
  assert gan.steps_done == 12


@pytest.mark.parametrize('reuse_fake', [False, True])
def test_xla_step_trains_and_matches_closely(tmp_path, reuse_fake):
  # With reuse_fake, G's backward pass goes through a compiled forward call.
  plain = _run(tmp_path, 'plain', jit_compile='off', reuse_fake=reuse_fake)
  xla = _run(tmp_path, 'xla', jit_compile='on', reuse_fake=reuse_fake)
  assert np.isfinite(xla['d_loss'])
  assert xla['d_loss'] == pytest.approx(plain['d_loss'], rel=0.05)


def _bn_kinds(model):
  return {
    type(l).__name__
    for stage in model.stages + getattr(model, 'head', [])
    for l in stage.stage_layers
    if 'Norm' in type(l).__name__
  }


def test_xla_builds_keras_batch_norm_and_plain_steps_the_fused_one():
  # TF's fused kernel inside an XLA cluster was 7x slower on CPU.
  assert _bn_kinds(GAN(get_config('tiny')).generator) == {'FusedBatchNorm'}
  xla = GAN(get_config('tiny', jit_compile='on'))
  assert _bn_kinds(xla.discriminator) == {'BatchNormalization'}
  assert _bn_kinds(GAN(get_config('tiny')).discriminator) == {'FusedBatchNorm'}


@pytest.mark.parametrize('policy', ['mixed_bfloat16', 'mixed_float16'])
def test_mixed_precision_trains_with_float32_variables(tmp_path, policy):
  out = _run(tmp_path, policy, mixed_precision=policy)
  assert all(np.isfinite(v) for v in out.values())
  gan = GAN(get_config('tiny', mixed_precision=policy))
  assert all(v.dtype == 'float32' for v in gan.generator.trainable_variables)
  assert gan.sample(tf.zeros((2, 16))).dtype == tf.float32


def test_a_bfloat16_run_resumes_in_float32_but_not_float16(tmp_path, capsys):
  # What `auto` does when a run moves between machines.
  _run(tmp_path, 'run', mixed_precision='mixed_bfloat16')
  config = get_config('tiny', epochs=2, steps_per_epoch=6, synthetic_size=48, mixed_precision='off')
  out = loop.run(config, str(tmp_path / 'run'))
  assert 'Resumed from' in capsys.readouterr().out
  assert np.isfinite(out['d_loss'])
  assert os.path.isfile(tmp_path / 'run' / 'samples' / 'epoch_0002.png')
  with pytest.raises(rundir.RunDirError, match='mixed_precision'):
    loop.run(get_config('tiny', epochs=3, mixed_precision='mixed_float16'), str(tmp_path / 'run'))


def test_mixed_precision_auto_is_bfloat16_only_on_native_bfloat16_cpus(monkeypatch):
  gpu = bool(tf.config.list_logical_devices('GPU'))
  for native, expected in ((True, 'off' if gpu else 'mixed_bfloat16'), (False, 'off')):
    monkeypatch.setattr(hardware, 'cpu_has_native_bfloat16', lambda native=native: native)
    assert resolve_mixed_precision('auto') == expected
    assert resolve_mixed_precision('mixed_float16') == 'mixed_float16'
  gan = GAN(get_config('tiny', mixed_precision='auto'))
  assert gan.mixed_precision == 'off'
  assert gan.generator(tf.zeros((1, 16))).dtype == tf.float32


def test_jit_auto_is_off_on_cpu_and_refused_with_replicas():
  assert resolve_jit_compile('auto', 1) is bool(tf.config.list_logical_devices('GPU'))
  assert resolve_jit_compile('off', 1) is False
  with pytest.raises(ValueError, match='several replicas'):
    resolve_jit_compile('on', 2)


_TWO_CPUS = """
import json, sys
import tensorflow as tf
tf.config.threading.set_inter_op_parallelism_threads(8)  # collectives block threads
cpu = tf.config.list_physical_devices('CPU')[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from configs.presets import get_config
from training import loop
for workdir, overrides in json.loads(sys.argv[1]):
  try:
    print('RESULT', json.dumps(loop.run(get_config('tiny', **overrides), workdir)))
  except loop.TrainingSetupError as e:
    print('ERROR', json.dumps(str(e)))
"""


def _run_on_two_cpus(*runs):
  """[(workdir, overrides)...] trained in turn in one process with two CPU
  devices (one TensorFlow start): each run's metrics or setup error."""
  result = subprocess.run(
    [sys.executable, '-c', _TWO_CPUS, json.dumps([(str(w), o) for w, o in runs])],
    cwd=ROOT,
    capture_output=True,
    text=True,
    timeout=300,
  )
  assert result.returncode == 0, result.stderr[-3000:]
  lines = [l.split(' ', 1) for l in result.stdout.splitlines() if l.startswith(('RESULT', 'ERROR'))]
  return [(kind, json.loads(value)) for kind, value in lines]


def test_mirrored_on_two_devices_follows_the_one_device_trajectory(tmp_path):
  base = dict(
    epochs=1,
    steps_per_epoch=5,
    synthetic_size=40,
    ema_decay=0.99,
    d_dropout=0.0,
    instance_noise='additive',
    real_label_low=0.8,
    real_label_high=1.0,
  )
  # One device: this process (its default strategy runs on one CPU device).
  one = loop.run(get_config('tiny', **base), str(tmp_path / 'one'))
  (kind, two), (error_kind, error) = _run_on_two_cpus(
    (tmp_path / 'two', dict(strategy='mirrored', **base)),
    (tmp_path / 'odd', dict(strategy='mirrored', batch_size=7)),
  )
  assert kind == 'RESULT', two
  # Gradient norms are per-replica (half-batch) norms there, so not compared.
  for key in ('d_loss', 'd_loss_real', 'g_loss', 'd_real', 'd_fake'):
    assert two[key] == pytest.approx(one[key], rel=1e-4), key
  # A batch that does not split over the replicas: a clear error, no run.
  assert error_kind == 'ERROR' and 'does not split over 2 replicas' in error
  assert not (tmp_path / 'odd' / 'checkpoints').exists()
  # A mirrored checkpoint resumes on one device (and the run goes on).
  resumed = loop.run(get_config('tiny', **{**base, 'epochs': 2}), str(tmp_path / 'two'))
  assert np.isfinite(resumed['d_loss'])
  prefix = tf.train.latest_checkpoint(str(tmp_path / 'two' / 'checkpoints'))
  assert prefix.endswith('ckpt-10')


_WORKER = """
import json, os, sys
os.environ['TF_CONFIG'] = sys.argv[3]
from configs.presets import get_config
from training import loop
out = loop.run(get_config('tiny', **json.loads(sys.argv[2])), sys.argv[1])
print('RESULT', json.dumps(out))
"""


def _free_ports(n):
  import socket

  socks = [socket.socket() for _ in range(n)]
  for s in socks:
    s.bind(('localhost', 0))
  ports = [s.getsockname()[1] for s in socks]
  for s in socks:
    s.close()
  return ports


def test_multiworker_on_two_local_processes_matches_one_device(tmp_path):
  """Two workers on loopback: the chief writes the run, losses match."""
  base = dict(epochs=1, steps_per_epoch=3, synthetic_size=32)
  one = loop.run(get_config('tiny', **base), str(tmp_path / 'one'))
  workers = [f'localhost:{p}' for p in _free_ports(2)]
  procs = []
  for index in range(2):
    tf_config = json.dumps(
      {'cluster': {'worker': workers}, 'task': {'type': 'worker', 'index': index}}
    )
    procs.append(
      subprocess.Popen(
        [
          sys.executable,
          '-c',
          _WORKER,
          str(tmp_path / 'multi'),
          json.dumps({**base, 'strategy': 'multiworker'}),
          tf_config,
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
      )
    )
  results = []
  for proc in procs:
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err[-3000:]
    line = [l for l in out.splitlines() if l.startswith('RESULT')][-1]
    results.append(json.loads(line[len('RESULT ') :]))
  for result in results:
    assert result['d_loss'] == pytest.approx(one['d_loss'], rel=1e-4)
    assert result['g_loss'] == pytest.approx(one['g_loss'], rel=1e-4)
  # Only the chief (worker 0) wrote the run directory.
  multi = tmp_path / 'multi'
  assert (multi / 'samples' / 'epoch_0001.png').is_file()
  assert tf.train.latest_checkpoint(str(multi / 'checkpoints')).endswith('ckpt-3')


def _two_candidates(monkeypatch):
  """Pretends both precisions are worth timing here, whatever the CPU."""
  from training import autotune

  monkeypatch.setattr(
    autotune,
    'candidates',
    lambda config: (
      {'mixed_precision': 'off', 'jit_compile': 'off'},
      {'mixed_precision': 'mixed_bfloat16', 'jit_compile': 'off'},
    ),
  )
  return autotune


def _timer(rates, calls):
  def timer(config):
    calls.append(config.mixed_precision)
    return rates[config.mixed_precision]

  return timer


def test_auto_precision_is_measured_once_cached_and_kept_by_the_run(tmp_path, monkeypatch):
  autotune = _two_candidates(monkeypatch)
  monkeypatch.setenv('FACEGAN_CACHE_DIR', str(tmp_path / 'cache'))
  config = get_config('tiny', mixed_precision='auto', jit_compile='off')
  calls, quiet = [], lambda *a, **k: None
  first = str(tmp_path / 'a')
  os.makedirs(first)
  timer = _timer({'off': 100.0, 'mixed_bfloat16': 150.0}, calls)
  chosen = autotune.resolve(config, first, False, timer, quiet)
  assert chosen.mixed_precision == 'mixed_bfloat16' and calls == ['off', 'mixed_bfloat16']
  assert (
    json.load(open(os.path.join(first, 'speed_choice.json')))['mixed_precision'] == 'mixed_bfloat16'
  )
  # Another run of the same model on this machine: the cache answers.
  second = str(tmp_path / 'b')
  os.makedirs(second)
  assert autotune.resolve(config, second, False, timer, quiet).mixed_precision == 'mixed_bfloat16'
  assert len(calls) == 2
  # The cache changes (another measurement, say): a started run keeps its
  # recorded choice, a new run takes the cache's.
  cache_file = tmp_path / 'cache' / 'speed_choices.json'
  cache = json.loads(cache_file.read_text())
  for entry in cache.values():
    entry['choice']['mixed_precision'] = 'off'
  cache_file.write_text(json.dumps(cache))
  assert autotune.resolve(config, first, True, timer, quiet).mixed_precision == 'mixed_bfloat16'
  third = str(tmp_path / 'c')
  os.makedirs(third)
  assert autotune.resolve(config, third, False, timer, quiet).mixed_precision == 'off'
  # Flags given explicitly are left alone; another model is measured anew.
  explicit = get_config('tiny', mixed_precision='off', jit_compile='off')
  assert autotune.resolve(explicit, third, False, timer, quiet) == explicit
  autotune.resolve(
    get_config('tiny', mixed_precision='auto', jit_compile='off', g_filters=4),
    str(tmp_path),
    False,
    timer,
    quiet,
  )
  assert len(calls) == 4


def test_auto_keeps_float32_unless_clearly_faster_and_old_runs_keep_the_rule(tmp_path, monkeypatch):
  autotune = _two_candidates(monkeypatch)
  monkeypatch.setenv('FACEGAN_CACHE_DIR', str(tmp_path / 'cache'))
  config = get_config('tiny', mixed_precision='auto', jit_compile='off')
  calls, lines = [], []
  log = lambda *a, **k: lines.append(' '.join(map(str, a)))
  timer = _timer({'off': 100.0, 'mixed_bfloat16': 103.0}, calls)
  assert autotune.resolve(config, str(tmp_path), False, timer, log).mixed_precision == 'off'
  # Within the noise (what a busy machine measures): used, not cached, so
  # the next new run of the model times again.
  assert 'too close to call' in lines[-1]
  assert not (tmp_path / 'cache' / 'speed_choices.json').exists()
  later = tmp_path / 'later'
  later.mkdir()
  timer = _timer({'off': 100.0, 'mixed_bfloat16': 150.0}, calls)
  assert autotune.resolve(config, str(later), False, timer, log).mixed_precision == 'mixed_bfloat16'
  assert len(calls) == 4 and (tmp_path / 'cache' / 'speed_choices.json').exists()
  # A run checkpointed before choices were recorded resumes under the rule
  # it was made with (CPU flags), not a measurement.
  old = tmp_path / 'old'
  old.mkdir()
  resumed = autotune.resolve(config, str(old), True, _timer({}, []), log)
  assert resumed.mixed_precision == resolve_mixed_precision('auto')


def test_a_short_run_takes_the_rule_without_timing_and_keeps_it(tmp_path, monkeypatch):
  autotune = _two_candidates(monkeypatch)
  monkeypatch.setenv('FACEGAN_CACHE_DIR', str(tmp_path / 'cache'))
  config = get_config('tiny', mixed_precision='auto', jit_compile='off')
  calls, quiet = [], lambda *a, **k: None
  timer = _timer({'off': 100.0, 'mixed_bfloat16': 150.0}, calls)
  short = tmp_path / 'short'
  short.mkdir()
  chosen = autotune.resolve(config, str(short), False, timer, quiet, planned_steps=8)
  assert calls == [] and chosen.mixed_precision == resolve_mixed_precision('auto')
  assert not (tmp_path / 'cache' / 'speed_choices.json').exists()
  # Resumed for longer, the run keeps what it started with.
  resumed = autotune.resolve(config, str(short), True, timer, quiet, planned_steps=10_000)
  assert calls == [] and resumed.mixed_precision == chosen.mixed_precision
  # A new run long enough (or of unknown length) is timed.
  long_run = tmp_path / 'long'
  long_run.mkdir()
  steps = autotune.SHORT_RUN_STEPS
  assert autotune.resolve(config, str(long_run), False, timer, quiet, planned_steps=steps)
  assert calls == ['off', 'mixed_bfloat16']


def test_time_candidate_times_a_real_step():
  from training import autotune

  assert autotune.time_candidate(get_config('tiny'), steps=1) > 0


@pytest.mark.slow
def test_a_run_trains_with_the_measured_choice_and_records_it(tmp_path, monkeypatch, capsys):
  autotune = _two_candidates(monkeypatch)
  monkeypatch.setattr(autotune, 'time_candidate', _timer({'off': 10.0, 'mixed_bfloat16': 20.0}, []))
  monkeypatch.setattr(autotune, 'SHORT_RUN_STEPS', 0)  # a tiny run, timed all the same
  workdir = str(tmp_path / 'run')
  config = get_config('tiny', mixed_precision='auto', epochs=1)
  loop.run(config, workdir)
  out = capsys.readouterr().out
  assert 'mixed_bfloat16' in out and 'measured now' in out
  assert json.load(open(os.path.join(workdir, 'config.json')))['mixed_precision'] == 'auto'
  assert (
    json.load(open(os.path.join(workdir, 'speed_choice.json')))['mixed_precision']
    == 'mixed_bfloat16'
  )
