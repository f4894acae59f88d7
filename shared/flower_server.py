"""`celery flower` with every view behind Flower's authentication (`shared.compat.flower`).

`taskforce flower` execs this module rather than `celery`, so the guard is in place before
Flower builds its application."""

from __future__ import annotations

from celery.__main__ import main

from shared.compat.flower import guard_open_views

if __name__ == "__main__":
    guard_open_views()
    main()
