"""``python -m jobs.cli ARGS``: the ``finesift`` command line."""

from jobs.cli import main

main()
