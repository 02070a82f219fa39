"""Train-step throughput: facegan's step against a plain reference, one run.

python bench/train_step.py --presets=celeba64 --variants=plain,auto,float32,xla

Each row also gives the step's achieved FLOP/s and its fraction of this
machine's peak in the step's precision, measured in the same process with a
large matrix product (--peak_size). A step's FLOPs are counted from the
models' layer shapes (TensorFlow's profiler on G's and D's forward graphs)
as 4 G + 8 D forward passes per image: the D step is a G forward, D forward
on reals and fakes and their backward passes (2x forward each); the G step
a G and a D forward, D's backward to its input (about 1x) and G's backward
(2x). One G forward fewer with --reuse_fake; BatchNorm, activations and
the optimiser are not counted.

Both steps train the preset's own Generator/Discriminator at the preset's
batch on random inputs (no input pipeline). `plain` is the TF-tutorial way:
one tf.function, two tapes, one shared forward pass, stock Keras
BatchNormalization, no extras. The other
variants run facegan's training steps (training.loop.make_train_steps) with the preset's tricks. Prints the
median images/s over --repeats timings of --steps steps each; the variants
are interleaved per repeat so machine drift hits all of them alike.
"""

import os
import sys
import time

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from absl import app
from absl import flags

from bench import common
from configs import presets

flags.DEFINE_list('presets', ['celeba64'], 'Presets to time.')
flags.DEFINE_list(
  'variants',
  ['plain', 'auto', 'float32'],
  'plain | alternating | auto (the preset as train.py runs '
  'it here) | float32 | reuse | xla | bf16 | fp16 | '
  'xla_bf16 | reuse_bf16 | noaug_bf16 | bare_bf16 | calls4 | xla_bf16_calls8; '
  'NAME:field=value:... adds config fields to one (bare_bf16:ema_decay=0.999).',
)
flags.DEFINE_multi_string(
  'reference_script',
  [],
  'A stand-alone reference step script (a plain TF-tutorial or PyTorch '
  'DCGAN step, say), run as `PYTHON SCRIPT BATCH` once per repeat, between '
  'the variants; its printed median img/s joins the table under its file '
  'name. PYTHON,SCRIPT names another interpreter (a PyTorch venv); '
  'repeat the flag for several.',
)
flags.DEFINE_integer('batch_size', 0, 'Override the preset batch (0: keep).')
flags.DEFINE_integer('steps', 5, 'Steps per timing.')
flags.DEFINE_integer('repeats', 5, 'Timings per variant (median reported).')
flags.DEFINE_integer(
  'peak_size',
  2048,
  "Side of the square matrix product timed as the machine's peak (0: skip FLOP figures).",
)
FLAGS = flags.FLAGS

F32 = dict(jit_compile='off', mixed_precision='off')
VARIANTS = {
  'auto': {},  # the preset as train.py runs it on this machine
  'float32': F32,
  'reuse': dict(F32, reuse_fake=True),
  'xla': dict(F32, jit_compile='on'),
  'bf16': dict(F32, mixed_precision='mixed_bfloat16'),
  'fp16': dict(F32, mixed_precision='mixed_float16'),
  'xla_bf16': dict(jit_compile='on', mixed_precision='mixed_bfloat16'),
  'reuse_bf16': dict(F32, reuse_fake=True, mixed_precision='mixed_bfloat16'),
  # What the preset's extras cost in bfloat16: without DiffAugment, then
  # without any trick (the plain step's algorithm in facegan's code).
  'noaug_bf16': dict(F32, reuse_fake=True, mixed_precision='mixed_bfloat16', diffaugment=''),
  'bare_bf16': dict(
    F32,
    reuse_fake=True,
    mixed_precision='mixed_bfloat16',
    diffaugment='',
    x_flip=False,
    ema_decay=0.0,
    d_dropout=0.0,
    real_label_low=1.0,
    real_label_high=1.0,
  ),
  'calls4': dict(F32, steps_per_call=4),
  # What a GPU would run: XLA and bfloat16, 8 steps per tf.function call.
  'xla_bf16_calls8': dict(jit_compile='on', mixed_precision='mixed_bfloat16', steps_per_call=8),
}


def plain_step_fn(config, real, alternating=False):
  """`run(steps)` timing the reference on `real`: a TF-tutorial DCGAN step
  on the preset's architecture.

  With `alternating`, G is updated against the freshly updated D from a new
  forward pass (as facegan and the recipes' PyTorch code do) instead of
  sharing the D step's forward pass: the cost of the algorithm alone.
  """
  import keras
  import tensorflow as tf
  from models import blocks
  from models.discriminator import Discriminator
  from models.generator import Generator

  kit = blocks.Kit(batch_norm='keras')  # stock Keras BN: the tutorial's way
  G, D = Generator(config, kit), Discriminator(config, kit)
  g_opt = keras.optimizers.Adam(config.g_lr, config.g_beta1)
  d_opt = keras.optimizers.Adam(config.d_lr, config.d_beta1)
  bce = keras.losses.BinaryCrossentropy(from_logits=True)

  @tf.function
  def step(real):
    z = tf.random.normal([tf.shape(real)[0], config.latent_dim])
    with tf.GradientTape() as gt, tf.GradientTape() as dt:
      fake = G(z, training=True)
      rl, fl = D(real, training=True), D(fake, training=True)
      dl = bce(tf.ones_like(rl), rl) + bce(tf.zeros_like(fl), fl)
      gl = bce(tf.ones_like(fl), fl)
    d_opt.apply_gradients(zip(dt.gradient(dl, D.trainable_variables), D.trainable_variables))
    if alternating:
      with tf.GradientTape() as gt:
        fl = D(G(z, training=True), training=True)
        gl = bce(tf.ones_like(fl), fl)
    g_opt.apply_gradients(zip(gt.gradient(gl, G.trainable_variables), G.trainable_variables))
    return dl

  return lambda steps: [step(real) for _ in range(steps)][-1]


def forward_flops(config):
  """(G, D) forward FLOPs per image, from TF's profiler on their graphs."""
  import tensorflow as tf
  from models import blocks
  from models.discriminator import Discriminator
  from models.generator import Generator

  kit = blocks.Kit('float32', 'fused')
  G, D = Generator(config, kit), Discriminator(config, kit)

  def count(fn, shape):
    graph = tf.function(fn).get_concrete_function(tf.TensorSpec(shape, tf.float32)).graph
    options = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
    options['output'] = 'none'
    return tf.compat.v1.profiler.profile(graph, options=options).total_float_ops

  return (
    count(lambda z: G(z, training=False), [1, config.latent_dim]),
    count(lambda x: D(x, training=False), [1, config.image_height, config.image_width, 3]),
  )


def step_flops(config, g_flops, d_flops):
  """FLOPs of one train step per image (see the module docstring)."""
  g_passes = 3 if config.reuse_fake else 4
  return (g_passes * g_flops + 8 * d_flops) * config.g_steps_per_d


def peak_flops(dtype, n, repeats=5):
  """FLOP/s of an n x n matrix product in `dtype` (median of `repeats`)."""
  import tensorflow as tf

  a = tf.cast(tf.random.uniform((n, n)), dtype)
  b = tf.cast(tf.random.uniform((n, n)), dtype)
  product = tf.function(lambda a, b: tf.reduce_sum(tf.cast(tf.matmul(a, b)[:1, :1], tf.float32)))
  product(a, b).numpy()
  times = []
  for _ in range(repeats):
    t = time.perf_counter()
    product(a, b).numpy()
    times.append(time.perf_counter() - t)
  return 2 * n**3 / sorted(times)[repeats // 2]


def reference_rate(spec, batch):
  """Median img/s printed by a reference script, [PYTHON,]SCRIPT, in its own process."""
  import re
  import subprocess

  python, script = spec.split(',', 1) if ',' in spec else (sys.executable, spec)
  out = subprocess.run([python, script, str(batch)], check=True, capture_output=True, text=True)
  return float(re.search(r'median ([0-9.]+) img/s', out.stdout).group(1))


def _reference_name(spec):
  return os.path.splitext(os.path.basename(spec.split(',')[-1]))[0]


def main(argv):
  del argv
  import numpy as np
  import tensorflow as tf

  print(
    f'TensorFlow {tf.__version__}; devices: {[d.name for d in tf.config.list_logical_devices()]}'
  )
  for name in FLAGS.presets:
    base = presets.get_config(name)
    batch = FLAGS.batch_size or base.batch_size
    real = tf.random.uniform((batch, base.image_height, base.image_width, 3), -1, 1)
    runners, flops = {}, {}
    g_flops, d_flops = forward_flops(base) if FLAGS.peak_size else (0, 0)
    for variant in FLAGS.variants:
      if variant in ('plain', 'alternating'):
        runners[variant] = plain_step_fn(
          presets.get_config(name, batch_size=batch), real, variant == 'alternating'
        )
        # The plain step shares one G forward pass between D and G.
        flops[variant] = ('float32', (4 if variant == 'alternating' else 3) * g_flops + 8 * d_flops)
      else:
        # NAME:field=value:... adds config fields to a named variant.
        named, *extra = variant.split(':')
        overrides = dict(VARIANTS[named], **common.parse_overrides(extra, presets.Config))
        config = presets.get_config(name, batch_size=batch, **overrides)
        runners[variant], policy = common.facegan_step_fn(config, real)
        flops[variant] = (policy, step_flops(config, g_flops, d_flops))
      float(runners[variant](2))  # trace and warm up
    peaks = {}
    if FLAGS.peak_size:
      for policy in sorted({p for p, _ in flops.values()}):
        dtype = {'mixed_bfloat16': tf.bfloat16, 'mixed_float16': tf.float16}.get(policy, tf.float32)
        peaks[policy] = peak_flops(dtype, FLAGS.peak_size)
        print(
          f'peak ({FLAGS.peak_size}^2 matrix product, {dtype.name}): '
          f'{peaks[policy] / 1e12:.3f} TFLOP/s',
          flush=True,
        )
      print(
        f'{name}: G forward {g_flops / 1e6:.1f} MFLOP, D forward '
        f'{d_flops / 1e6:.1f} MFLOP per image',
        flush=True,
      )
    rates = {v: [] for v in runners}
    for spec in FLAGS.reference_script:
      rates[_reference_name(spec)] = []
    for _ in range(FLAGS.repeats):
      for variant, run in runners.items():
        t = time.perf_counter()
        float(run(FLAGS.steps))
        rates[variant].append(batch * FLAGS.steps / (time.perf_counter() - t))
      for spec in FLAGS.reference_script:  # its own median of 5x5 steps per repeat
        rates[_reference_name(spec)].append(reference_rate(spec, batch))
    ref = np.median(rates['plain']) if 'plain' in rates else None
    for variant, r in rates.items():
      ratio = f'  x{np.median(r) / ref:.2f} vs plain' if ref else ''
      achieved = ''
      if peaks and variant in flops:
        policy, per_image = flops[variant]
        rate = per_image * np.median(r)
        achieved = f'  {rate / 1e12:.3f} TFLOP/s = {rate / peaks[policy]:.1%} of the {policy} peak'
      print(
        f'{name} batch {batch} {variant:>22}: median {np.median(r):7.1f} img/s '
        f'(min {min(r):.1f}, max {max(r):.1f}){ratio}{achieved}',
        flush=True,
      )


if __name__ == '__main__':
  app.run(main)
