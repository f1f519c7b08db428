"""The HTTP service (FastAPI): picks with promo copy, feedback, ops weights, API keys, health and metrics.

`serving.app.create_app` builds the app; `quanxuan serve` runs it under uvicorn and `quanxuan keys`
manages its API keys. State lives in a `serving.storage` backend chosen by URL.
"""
