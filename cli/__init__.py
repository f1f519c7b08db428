"""The roof: the `quanxuan` command, the one place that imports both the daily job (training/) and the service (serving/)."""
