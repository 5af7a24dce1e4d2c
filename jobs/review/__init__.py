"""``finesift review RUN_DIR``: a person verifies a curate run's pick before training.

- :mod:`jobs.review.run`: what review reads from the run directory (ledger, selection, config).
- :mod:`jobs.review.store`: the verdicts, in a SQLite (WAL) file in the run directory.
- :mod:`jobs.review.queue`: order, filters, search and progress of the review queue.
- :mod:`jobs.review.refill`: the replacement for a rejected pick (the selection's own rule).
- :mod:`jobs.review.session`: the operations of a review, with no HTTP in them.
- :mod:`jobs.review.export`: verified.jsonl, the ledger's ``review`` column, the sidecar.
- :mod:`jobs.review.app`: the ASGI app (page + JSON API); :mod:`jobs.review.command` the CLI.
"""
