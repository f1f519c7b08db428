"""The last evaluation window as artifact tables, so that the ops preview can replay it with any weights.

The daily job's evaluation holds out the last `test_days` and fits the full pipeline on the days before.
`evaluation_tables` turns that fitted pipeline into two tables:

- `evaluation_candidates`: the candidates as scored at the cut-off, same columns as `candidates`; a cold
  group gets its segment's list written under its own id (the preview replays every group alike);
- `evaluation_window`: the non-refunded orders of the held-out days per (group_id, product_id): orders
  (order lines), quantity, paid, commission.

Wiring in the daily job (the fitted pipeline is the `"ranker"` model of `evaluate_pipeline(..., models_out=)`):

    models = {}
    evaluation = evaluate_pipeline(frames, cfg, test_days, log, models_out=models)
    tables.update(evaluation_tables(models["ranker"], frames, cfg, test_days))
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from features.schema import GROUP_ID, PRODUCT_ID


def window_orders(orders: pd.DataFrame) -> pd.DataFrame:
    """Non-refunded orders per (group_id, product_id): orders (lines), quantity, paid, commission."""
    o = orders
    if "refunded" in o.columns:
        o = o[~o["refunded"].fillna(False).astype(bool)]
    frame = pd.DataFrame({GROUP_ID: o[GROUP_ID].astype(str).to_numpy(), PRODUCT_ID: o[PRODUCT_ID].astype(str).to_numpy(),
                          "quantity": pd.to_numeric(o["quantity"]).to_numpy(float),
                          "paid": pd.to_numeric(o["paid"]).to_numpy(float),
                          "commission": pd.to_numeric(o["commission"]).fillna(0.0).to_numpy(float)})
    out = frame.groupby([GROUP_ID, PRODUCT_ID], sort=True).agg(orders=("paid", "size"), quantity=("quantity", "sum"),
                                                                paid=("paid", "sum"), commission=("commission", "sum"))
    return out.reset_index()


def evaluation_tables(pipeline: Any, frames: Any, cfg: Any, test_days: int = 7) -> dict[str, pd.DataFrame]:
    """`evaluation_candidates` and `evaluation_window` from the evaluation's fitted pipeline (`PipelineRecommender`)."""
    from training.daily import candidate_components, group_table, segment_components
    from training.evaluate import Frames, time_split

    train, test, _ = time_split(Frames.of(frames), test_days)
    state = pipeline.state_
    cands = candidate_components(state, train, cfg)
    groups = group_table(train, state.data)
    segs = segment_components(train, state.data, cfg)
    cold = groups.loc[groups["cold_start"], [GROUP_ID, "segment"]]
    cold_rows = cold.merge(segs, on="segment", how="inner").drop(columns="segment")
    warm = cands[~cands[GROUP_ID].isin(set(cold[GROUP_ID]))]
    table = pd.concat([warm, cold_rows[warm.columns.intersection(cold_rows.columns)]], ignore_index=True)
    return {"evaluation_candidates": table, "evaluation_window": window_orders(test.orders)}
