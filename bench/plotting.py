"""Plots for the benchmark scripts (PIL only: no plotting dependency)."""

import math

from PIL import Image, ImageDraw

COLOURS = [
  (31, 119, 180),
  (255, 127, 14),
  (44, 160, 44),
  (214, 39, 40),
  (148, 103, 189),
  (140, 86, 75),
  (227, 119, 194),
  (127, 127, 127),
  (188, 189, 34),
  (23, 190, 207),
]


def swd_plot(series, floor, path, title, xlabel='step'):
  """SWD vs x on a log axis, one line per series, the real floor dashed.

  Args:
    series: {name: [(x, swd), ...]}.
    floor: the real-vs-real SWD at the same N.
  """
  W, H, L, R, T, B = 640, 380, 50, 130, 28, 40
  xs = [s for v in series.values() for s, _ in v]
  ys = [y for v in series.values() for _, y in v] + [floor]
  x1 = max(xs)
  ticks = [
    t
    for t in (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000)
    if min(ys) / 1.5 <= t <= max(ys) * 1.5
  ]
  lo, hi = math.log(min(ys + ticks) / 1.1), math.log(max(ys + ticks) * 1.1)
  im = Image.new('RGB', (W, H), 'white')
  d = ImageDraw.Draw(im)
  px = lambda x: L + (W - L - R) * x / x1
  py = lambda y: H - B - (H - T - B) * (math.log(y) - lo) / (hi - lo)
  d.line([(L, T), (L, H - B), (W - R, H - B)], fill='black')
  for y in ticks:
    d.line([(L - 4, py(y)), (L, py(y))], fill='black')
    d.line([(L + 1, py(y)), (W - R, py(y))], fill=(235, 235, 235))
    d.text((8, py(y) - 6), f'{y:g}', fill='black')
  for k in range(6):
    x = x1 * k / 5
    d.line([(px(x), H - B), (px(x), H - B + 4)], fill='black')
    d.text((px(x) - 10, H - B + 6), f'{x:.0f}', fill='black')
  d.text(((W - R) // 2 - 10, H - 16), xlabel, fill='black')
  d.text((L, 8), title, fill='black')
  x = L
  while x < W - R:  # dashed floor
    d.line([(x, py(floor)), (min(x + 6, W - R), py(floor))], fill='grey')
    x += 12
  for i, (name, pts) in enumerate(series.items()):
    c = COLOURS[i % len(COLOURS)]
    d.line([(px(s), py(v)) for s, v in pts], fill=c, width=2)
    for s, v in pts:
      d.ellipse([px(s) - 2, py(v) - 2, px(s) + 2, py(v) + 2], fill=c)
    d.line([(W - R + 10, T + 16 * i + 6), (W - R + 28, T + 16 * i + 6)], fill=c, width=2)
    d.text((W - R + 32, T + 16 * i), name, fill='black')
  i = len(series)
  d.line([(W - R + 10, T + 16 * i + 6), (W - R + 28, T + 16 * i + 6)], fill='grey')
  d.text((W - R + 32, T + 16 * i), 'real floor', fill='black')
  im.save(path)
