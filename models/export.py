"""G outside its run: a SavedModel, a TFLite model, and a weights folder.

The SavedModel and TFLite model serve G without this repository: both map
float32 latents "z" [None, latent_dim] to uint8 images "images" [None, H, W,
3], G in inference mode. The weights folder (config.json and G's weights in
float16, a third of a checkpoint) is what facegan ships pretrained: every
tool takes it as --checkpoint. All are written whole or not at all.
"""

import dataclasses
import os
import tempfile

import keras
import numpy as np
import tensorflow as tf

from common import files
from common import interrupts
from configs.errors import FaceganError, first_line
from configs.presets import Config
from configs.run_files import CONFIG_FILE
from models.checkpoint import GENERATOR_KEY, SCALE_SUFFIX, STEP_KEY, WEIGHTS_FILE, model_state

# Config fields that name files of the machine that trained: not exported.
MACHINE_PATHS = ('data_dir', 'tfds_data_dir', 'inception_weights')

SAVEDMODEL_DIR = 'savedmodel'


class ExportError(FaceganError, ValueError):
  """TensorFlow could not write an export; the message says where."""


def export_savedmodel(generator, config: Config, out_dir: str) -> str:
  """Writes G as a SavedModel in out_dir/savedmodel/ and returns that path.

  The serving signature maps float32 latents "z" [None, latent_dim] to uint8
  images "images" [None, H, W, 3], G in inference mode:

    m = tf.saved_model.load(path)
    images = m.signatures['serving_default'](z=z)['images']   # or m.serve(z)

  It needs only TensorFlow to load, not this repository. It is written
  beside an earlier export and replaces it only once complete.

  Raises:
    ExportError: TensorFlow could not write it (a full disk...).
  """
  path = os.path.join(out_dir, SAVEDMODEL_DIR)

  # ExportArchive (what model.export uses) tracks Keras 3 variables for the
  # SavedModel; a custom endpoint lets the signature include the uint8 cast.
  def serve(z):
    return {'images': files.from_float(generator(z, training=False))}

  archive = keras.export.ExportArchive()
  archive.track(generator)
  archive.add_endpoint(
    name='serve',
    fn=serve,
    input_signature=[tf.TensorSpec([None, config.latent_dim], tf.float32, name='z')],
  )
  try:
    files.write_folder(path, lambda tmp: archive.write_out(tmp, verbose=False))
  except tf.errors.OpError as e:
    raise ExportError(
      f'Writing the SavedModel to {path} failed '
      f'({first_line(e)}); an earlier export there '
      'is unchanged.'
    ) from e
  return path


def export_tflite(generator, config: Config, out_dir: str) -> str:
  """Writes G as out_dir/generator.tflite and returns that path.

  Same signature as the SavedModel ("serving_default": float32 "z"
  [None, latent_dim] -> uint8 "images"), for phones and small devices:

    runner = tf.lite.Interpreter(model_path=path).get_signature_runner()
    images = runner(z=z)['images']

  Converted from the SavedModel, which is written to a temporary folder.
  A Ctrl-C during the conversion (which TensorFlow would otherwise lose)
  is raised once it ends, before anything is written.
  """
  path = os.path.join(out_dir, 'generator.tflite')
  with tempfile.TemporaryDirectory(prefix='facegan-tflite-') as tmp:
    saved = export_savedmodel(generator, config, tmp)
    with interrupts.deferred():
      model = tf.lite.TFLiteConverter.from_saved_model(saved).convert()

  def write(p):
    with open(p, 'wb') as f:
      f.write(model)

  files.write_whole(path, write)
  return path


def compact_arrays(key: str, value: np.ndarray) -> dict:
  """How WEIGHTS_FILE stores variable `key`: {name: array}.

  A kernel (a `..._kernel` of 2 or more axes, nearly all of G's weights) is
  int8 with one float32 scale per slice along its last axis, the slice's
  largest magnitude mapped to 127: per weight an error of at most half a
  step, which moved the shipped celeba48 G's pixels by 0.2 levels of 255 on
  average and 4 at most. Other floats (biases, BatchNorm) are float16, or
  float32 where float16 would overflow; integers stay as they are.
  """
  if not np.issubdtype(value.dtype, np.floating):
    return {key: value}
  if key.endswith('kernel') and value.ndim >= 2 and np.all(np.isfinite(value)):
    peak = np.abs(value).max(axis=tuple(range(value.ndim - 1)), keepdims=True)
    scale = np.where(peak > 0, peak / 127.0, 1.0).astype(np.float32)
    return {key: np.round(value / scale).astype(np.int8), key + SCALE_SUFFIX: scale}
  fits = value.size == 0 or np.abs(value).max() <= np.finfo(np.float16).max
  return {key: value.astype(np.float16 if fits else np.float32)}


def export_weights(generator, config: Config, out_dir: str, step: int = 0) -> list:
  """Writes out_dir/config.json and out_dir/WEIGHTS_FILE: G alone, compact.

  Every variable of G (models.checkpoint.model_state's keys) as
  compact_arrays stores it: about a quarter of float32 weights, and a
  twentieth of a celeba48 checkpoint (2.7 MB against 59: the checkpoint
  also holds D, the raw G and both optimizers).
  models.checkpoint.load_generator reads the folder like a run directory;
  `step`, the training step of the weights, is what evaluations report.
  The folder is meant to travel, so config.json drops the paths of this
  machine (data, TFDS and Inception weights): a tool that needs data asks
  for --data_dir.
  """
  config = dataclasses.replace(config, **{f: '' for f in MACHINE_PATHS})
  arrays = {GENERATOR_KEY: np.array(generator.name), STEP_KEY: np.array(step, np.int64)}
  for key, v in model_state(generator).items():
    arrays.update(compact_arrays(key, v.numpy()))
  weights = os.path.join(out_dir, WEIGHTS_FILE)
  files.write_whole(weights, lambda p: np.savez_compressed(p, **arrays))
  config_path = os.path.join(out_dir, CONFIG_FILE)

  def write_config(p):
    with open(p, 'w') as f:
      f.write(config.to_json())

  files.write_whole(config_path, write_config)
  return [config_path, weights]
