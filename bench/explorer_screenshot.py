"""A screenshot of the explorer page on a run: python bench/explorer_screenshot.py --checkpoint=runs/celeba64.

Starts explore.py on a free loopback port, drives headless Chromium through
Playwright as tests/test_explorer_browser.py does (grid, a second face, the
blend slider half-way, a projected photo) and saves the page to --out.
"""

import os
import re
import shutil
import subprocess
import sys

from absl import app
from absl import flags

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
flags.DEFINE_string('checkpoint', None, 'Run directory or checkpoint prefix.')
flags.DEFINE_string(
  'photo', os.path.join(ROOT, 'tests/data/celeba/img_align_celeba/000001.jpg'), 'Photo to project.'
)
flags.DEFINE_string('out', 'docs/explorer.png', 'Screenshot path.')
flags.mark_flag_as_required('checkpoint')
FLAGS = flags.FLAGS


def main(argv):
  del argv
  from playwright.sync_api import sync_playwright

  proc = subprocess.Popen(
    [sys.executable, 'explore.py', f'--checkpoint={FLAGS.checkpoint}', '--port=0'],
    cwd=ROOT,
    stdout=subprocess.PIPE,
    stderr=subprocess.DEVNULL,
    text=True,
  )
  try:
    url = re.search(r'http://\S+/', proc.stdout.readline()).group(0)
    with sync_playwright() as p:
      browser = p.chromium.launch(executable_path=shutil.which('chromium'), args=['--no-sandbox'])
      page = browser.new_page(viewport=dict(width=1280, height=900))
      page.goto(url)
      page.wait_for_function(
        "[...document.querySelectorAll('#grid img')].length === 16 && "
        "[...document.querySelectorAll('#grid img')].every(i => i.naturalWidth > 0)"
      )
      page.locator('#grid img').nth(5).click()
      page.locator('#t').evaluate("s => { s.value = 0.5; s.dispatchEvent(new Event('input')); }")
      page.wait_for_timeout(1000)
      page.set_input_files('#photo', FLAGS.photo)
      page.wait_for_function(
        "document.getElementById('message').textContent.startsWith('Reconstructed')", timeout=120000
      )
      page.screenshot(path=FLAGS.out, full_page=True)
      browser.close()
  finally:
    proc.terminate()
    proc.wait(timeout=30)
  print(f'Wrote {FLAGS.out}')


if __name__ == '__main__':
  app.run(main)
