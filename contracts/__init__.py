"""The floor: what every layer agrees on and nothing of ours is imported by.

- `contracts.schema`: the data contract (the five input tables, their columns, bounds and column-name constants);
- `contracts.config`: all configuration, typed, with secrets typed as secrets;
- `contracts.artifact`: the artifact format, the contract between the daily job and the service.

`features/`, `recsys/`, `training/` and `serving/` import these; `cli/` (the `quanxuan` command) sits on the roof
and is the only place that imports both `training/` and `serving/`.
"""
