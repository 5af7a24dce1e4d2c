"""``finesift review RUN_DIR``: a person verifies a curate run's pick before training.

- :mod:`jobs.review.run`: what review reads from the run directory (ledger, selection, config).
- :mod:`jobs.review.store`: the verdicts, in a SQLite (WAL) file in the run directory.
- :mod:`jobs.review.queue`: order, filters, search and progress of the review queue.
- :mod:`jobs.review.refill`: the replacement for a rejected pick (the selection's own rule).
- :mod:`jobs.review.session`: the operations of a review, with no HTTP in them.
- :mod:`jobs.review.export`: verified.jsonl and the ledger's ``review`` column;
  :mod:`jobs.review.sidecar`: verified.review.json, which the train manifest reads.
- :mod:`jobs.review.app`: the ASGI app (page + JSON API; the page is ``static/``);
  :mod:`jobs.review.server` runs it under uvicorn, :mod:`jobs.review.command` is the CLI,
  :mod:`jobs.review.auto` the demo's review through the API.
"""
