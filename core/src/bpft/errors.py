"""The one error path: every user-facing failure is a :class:`BpftError`.

The CLI catches it and prints ``Error: <message>`` on stderr, or the JSON
error object ``{"error": "<message>"}`` on stdout with ``-j`` (bpftool's
``p_err()``), then exits with the error's status (bpftool's ``return -1``
from main is 255; ``-EINVAL`` is 234).
"""

from __future__ import annotations

EXIT_FAILURE = 255  # bpftool's `return -1` from main()
EXIT_EINVAL = 234  # bpftool's `return -EINVAL` from main()


class BpftError(Exception):
    """A failure to report as ``Error: <message>``."""

    def __init__(self, message: str = "", exit_code: int = EXIT_FAILURE):
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code


class SilentFailure(BpftError):
    """Exit non-zero without a message (bpftool does so, e.g. when a tag matches no program)."""

    def __init__(self, exit_code: int = EXIT_FAILURE):
        super().__init__("", exit_code)


class UsageError(BpftError):
    """Print the usage of the current command level (to stderr; ``null`` with -j), exit 255.

    Raised where bpftool calls ``usage()``: a keyword missing its value, an
    unknown command. ``message``, if any, is printed first as an error.
    """
