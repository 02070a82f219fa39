"""The one base of the errors a user can fix: each message says how.

Entry scripts catch FaceganError and print its message as one `error:` line;
anything else (a bug) keeps its traceback. The subclasses also keep the
built-in base they had (ValueError, RuntimeError), so callers that catch
those still do.
"""


class FaceganError(Exception):
  """A problem with the user's input, data, run directory or machine."""
