"""G for serving without this repository: a SavedModel and a TFLite model.

Both map float32 latents "z" [None, latent_dim] to uint8 images "images"
[None, H, W, 3], G in inference mode, and are written whole or not at all.
"""

import os
import tempfile

import keras
import tensorflow as tf

from common import files
from common import interrupts
from configs.errors import FaceganError, first_line
from configs.presets import Config

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
