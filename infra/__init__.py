"""Shared infrastructure: what jobs/ and serving/ both need, importing neither.

- :mod:`infra.errors`: the user-error types every command turns into one clear line.
- :mod:`infra.config`: frozen dataclass configs from YAML and dotted ``key=value`` overrides.
- :mod:`infra.storage`: local paths and ``s3://`` / ``gs://`` URIs through pyarrow.fs.
- :mod:`infra.ray_env`: starting or joining Ray the same way everywhere.
- :mod:`infra.models`: the bundled models, converted or distilled once under $FINESIFT_HOME.
- :mod:`infra.adapters`: the adapter-directory contract (names, files, the manifest).
"""
