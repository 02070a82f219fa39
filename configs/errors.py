"""The one base of the errors a user can fix: each message says how.

Entry scripts run their main through `one_line`, which prints a FaceganError's
message as one `error:` line;
anything else (a bug) keeps its traceback. The subclasses also keep the
built-in base they had (ValueError, RuntimeError), so callers that catch
those still do.
"""

import sys


class FaceganError(Exception):
  """A problem with the user's input, data, run directory or machine."""


def first_line(e: BaseException, limit: int = 200) -> str:
  """An error's first line for a one-paragraph message (TF's can run to
  pages: every unmatched object of a checkpoint, a stack of ops)."""
  line = (str(e).strip().splitlines() or [type(e).__name__])[0]
  return line.split(' Showing ')[0][:limit]


def one_line(main):
  """`main` for absl's app.run, ending a FaceganError as one `error:` line.

  The one way every entry script turns an error the user can fix into its
  message (exit status 1); anything else, a bug, keeps its traceback.
  """

  def run(argv):
    try:
      return main(argv)
    except FaceganError as e:
      sys.exit(f'error: {e}')

  return run
