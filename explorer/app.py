"""The explorer's web app: a trained generator behind a small JSON API.

`create_app(generator, config)` returns a Flask app serving explorer/page.html
and these endpoints (JSON in and out, images as PNG data URLs):

  GET  /api/info      the run's latent size, image size and latent distribution
  POST /api/latents   {seed, n, truncation}: n latents (generate.py's grid stream)
  POST /api/render    {latents: [[...], ...]}: their images
  POST /api/slerp     {z1, z2, t}: the latent at t on the slerp path, its image
  POST /api/npy       {latent}: the latent as a .npy file
  POST /api/latent    a .npy upload (field "file"): the latent and its image
  POST /api/project   a photo upload (field "file"): the cropped photo, its
                      latent, the reconstruction and the RMS error

A bad request gets a 400 with {"error": "..."} and the server goes on. No
request names a path: uploads are read from memory, never saved.
"""

import base64
import io
import threading

import flask
import numpy as np
import tensorflow as tf
from PIL import Image

from configs.presets import Config
from data import photos
from models import latents
from models import projection
from models import streams

MAX_LATENTS = 256  # per request: a page never needs more


class BadRequest(ValueError):
  """A request the explorer refuses; the message is shown in the page."""


def png_data_url(image: np.ndarray) -> str:
  """A uint8 (H, W, 3) image as a data:image/png URL."""
  buf = io.BytesIO()
  Image.fromarray(image).save(buf, format='PNG')
  return 'data:image/png;base64,' + base64.b64encode(buf.getvalue()).decode()


def create_app(generator, config: Config, run_name: str = '',
               project_steps: int = 150) -> flask.Flask:
  """The Flask app exploring `generator` (a Keras G of `config`'s run)."""
  app = flask.Flask(__name__, static_folder=None)
  # Flask refuses larger bodies with a 413 before reading them.
  app.config['MAX_CONTENT_LENGTH'] = photos.MAX_BYTES + 64 * 1024
  dim = config.latent_dim
  lock = threading.Lock()  # one generator call at a time
  render_fn = tf.function(lambda z: generator(z, training=False),
                          reduce_retracing=True)

  def render(z: np.ndarray) -> list:
    with lock:
      images = latents.render(render_fn, z)
    return [png_data_url(x) for x in images]

  def latent_array(value, name: str, many: bool = False) -> np.ndarray:
    """`value` as float32 latents of this run, or BadRequest saying why."""
    try:
      z = np.asarray(value, np.float32)
    except (TypeError, ValueError):
      raise BadRequest(f'{name} must be numbers.') from None
    shape = (z.shape[0] if z.ndim == 2 else -1, dim) if many else (dim,)
    if z.shape != shape or (many and not 0 < len(z) <= MAX_LATENTS):
      want = f'a list of 1-{MAX_LATENTS} lists of' if many else 'a list of'
      raise BadRequest(f'{name} must be {want} {dim} numbers (this run\'s '
                       f'latent size), got shape {list(z.shape)}.')
    if not np.all(np.isfinite(z)):
      raise BadRequest(f'{name} holds NaN or infinite values.')
    return z

  def body() -> dict:
    data = flask.request.get_json(silent=True)
    if not isinstance(data, dict):
      raise BadRequest('The request body must be a JSON object.')
    return data

  def number(data, key, default, kind=float, low=None, high=None):
    value = data.get(key, default)
    try:
      value = kind(value) if value is not None else None
    except (TypeError, ValueError):
      raise BadRequest(f'{key} must be a number.') from None
    if value is not None and ((low is not None and value < low) or
                              (high is not None and value > high)):
      raise BadRequest(f'{key} must be in [{low}, {high}], got {value}.')
    return value

  def upload() -> bytes:
    file = flask.request.files.get('file')
    if file is None:
      raise BadRequest('No file was uploaded (form field "file").')
    return file.read(photos.MAX_BYTES + 1)

  @app.errorhandler(BadRequest)
  def bad_request(e):
    return flask.jsonify(error=str(e)), 400

  @app.errorhandler(photos.PhotoError)
  def bad_photo(e):
    return flask.jsonify(error=str(e)), 400

  @app.errorhandler(413)
  def too_large(e):
    del e
    return flask.jsonify(error=f'The upload is over the '
                         f'{photos.MAX_BYTES // 2**20} MB limit.'), 413

  @app.get('/')
  def page():
    return flask.send_from_directory(app.root_path, 'page.html')

  @app.get('/api/info')
  def info():
    return flask.jsonify(latent_dim=dim, latent_dist=config.latent_dist,
                         height=config.image_height, width=config.image_width,
                         run=run_name)

  @app.post('/api/latents')
  def new_latents():
    data = body()
    seed = number(data, 'seed', 0, int, 0, 2**31 - 1)
    n = number(data, 'n', 16, int, 1, MAX_LATENTS)
    truncation = number(data, 'truncation', None, float, 0.05, 10.0)
    try:
      z = latents.sample_latents(config, n, seed, streams.GRID, truncation)
    except latents.LatentError as e:
      raise BadRequest(str(e)) from e
    return flask.jsonify(latents=z.tolist(), images=render(z))

  @app.post('/api/render')
  def render_latents():
    z = latent_array(body().get('latents'), 'latents', many=True)
    return flask.jsonify(images=render(z))

  @app.post('/api/slerp')
  def slerp():
    data = body()
    z1 = latent_array(data.get('z1'), 'z1')
    z2 = latent_array(data.get('z2'), 'z2')
    t = number(data, 't', 0.5, float, 0.0, 1.0)
    z = latents.slerp(z1, z2, [t])[0].astype(np.float32)
    return flask.jsonify(latent=z.tolist(), image=render(z[None])[0])

  @app.post('/api/npy')
  def npy():
    z = latent_array(body().get('latent'), 'latent')
    buf = io.BytesIO()
    np.save(buf, z)
    return flask.Response(buf.getvalue(), mimetype='application/octet-stream',
                          headers={'Content-Disposition':
                                   'attachment; filename="latent.npy"'})

  @app.post('/api/latent')
  def load_latent():
    try:
      z = np.load(io.BytesIO(upload()), allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:
      raise BadRequest('The file is not a .npy array (np.save writes '
                       'them).') from e
    z = latent_array(np.reshape(z, -1) if z.size == dim else z, 'The latent')
    return flask.jsonify(latent=z.tolist(), image=render(z[None])[0])

  @app.post('/api/project')
  def project():
    target = photos.prepare(photos.decode(upload(), 'The upload'), config)
    with lock:
      result = projection.project(render_fn, target, dim, config.latent_dist,
                                  starts=4, steps=project_steps)
    return flask.jsonify(photo=png_data_url(target), latent=result.z.tolist(),
                         image=png_data_url(result.image),
                         rmse=round(result.rms, 2))

  return app
