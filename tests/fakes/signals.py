"""For tests that signal a pytest process of their own."""

from __future__ import annotations

import signal


def default_signals() -> None:
    """In the child, before exec: the signals the test sends act as they do at a terminal.

    A shell that starts a job in the background without job control (`cmd &` in a script, as
    CI runners may) has it ignore SIGINT, and an ignored signal stays ignored through exec:
    the child, and the xdist workers it starts, would never see the Ctrl-C the test sends.
    """
    for name in ("SIGINT", "SIGTERM", "SIGHUP"):
        signal.signal(getattr(signal, name), signal.SIG_DFL)
