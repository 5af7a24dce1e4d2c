"""The curation stages, one module each; :mod:`jobs.curation.pipeline` puts them in order.

Every module has a ``build(cfg) -> Stage`` that turns the config into flat arguments,
and the pure function (or actor class) the stage runs on a batch or a group of rows.
"""
