"""Run the whole product on the embedded sample world: generate, validate, train, print picks with copy, serve."""

from __future__ import annotations

import argparse
import os
import secrets
from pathlib import Path

from cli.commands import add_sample_world_options


def configure(parser: argparse.ArgumentParser) -> None:
    """Options of `quanxuan demo`."""
    parser.add_argument("--out", default="runs/demo", help="working folder for data, artifacts and the SQLite store")
    add_sample_world_options(parser)
    parser.add_argument("--show", type=int, default=3, help="groups whose picks are printed")
    parser.add_argument("--k", type=int, default=5, help="picks printed per group")
    parser.add_argument("--port", type=int, default=8000, help="port of the API on 127.0.0.1")
    parser.add_argument("--no-serve", action="store_true", help="stop after printing the picks")


def _pepper(out: Path) -> str:
    """The demo's key pepper: made once and kept beside the store, so keys survive a second run."""
    path = out / "key_pepper"
    if not path.exists():
        path.write_text(secrets.token_hex(16), "utf-8")
    return path.read_text("utf-8").strip()


def _ensure_world(data_dir: Path, args: argparse.Namespace) -> None:
    """Write the sample world as CSV unless this folder already holds one."""
    from features.sample_world import generate, write

    if (data_dir / "orders.csv").exists():
        print(f"[demo] reusing the sample world in {data_dir}")
        return
    world = generate(seed=args.seed, groups=args.groups, products=args.products, days=args.days)
    write(world, data_dir, fmt="csv")
    print(f"[demo] sample world written to {data_dir} (seed {args.seed}, {args.groups} groups, "
          f"{args.products} products, {args.days} days)")


def _print_group(body: dict) -> None:
    """Print one group's picks as a seller would read them."""
    cold = " · 冷启动" if body.get("cold_start") else ""
    print(f"\n== 群 {body['group_id']} · {body['seller_type']} · segment {body['segment']}{cold}")
    for pick in body["picks"]:
        print(f"  {pick['rank']:>2}. {pick['title'][:28]:<28} ¥{pick['price']:.2f}  p_conv {pick['p_conv']:.3f}  "
              f"佣金 ¥{pick['commission_yuan']:.2f}  score {pick['score']:.4g}  {'/'.join(pick['reason_labels'])}")
        print(f"      转发语: {pick['copy']['text']}")


def _demo_seller(artifact_dir: Path) -> str:
    """A seller whose groups all have history, with the most groups: the most telling one to show."""
    from contracts.artifact import load_latest

    artifact = load_latest(artifact_dir)
    if artifact is None:
        raise SystemExit(f"no complete artifact in {artifact_dir}")
    groups = artifact.groups
    per_seller = groups.groupby("seller_id").agg(n=("group_id", "size"), cold=("cold_start", "any"))
    warm = per_seller[~per_seller["cold"]]
    return str((warm if len(warm) else per_seller).sort_values("n", ascending=False).index[0])


def run(args: argparse.Namespace) -> int:
    """Generate → validate → train → picks → serve."""
    from fastapi.testclient import TestClient

    from features.loading import load_dataset
    from contracts.config import Config
    from serving.app import create_app
    from serving.auth import create_key
    from serving.storage.factory import open_store
    from training.daily import run_daily

    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    data_dir, artifact_dir = out / "data", out / "artifacts"
    db_url = f"sqlite:///{out / 'quanxuan.sqlite3'}"
    os.environ.update({
        "QUANXUAN_ARTIFACT_DIR": str(artifact_dir),
        "QUANXUAN_DB_URL": db_url,
        "QUANXUAN_KEY_PEPPER": os.environ.get("QUANXUAN_KEY_PEPPER") or _pepper(out),
    })

    _ensure_world(data_dir, args)
    frames = load_dataset(data_dir)
    print(f"[demo] validated {data_dir}: " + ", ".join(f"{name} {len(t):,}" for name, t in frames.tables().items()))
    cfg = Config.load(None)
    result = run_daily(frames, cfg, artifact_dir, evaluate=True, source=f"sample world {data_dir}")
    print(f"[demo] artifact {result.artifact}")

    seller_id = _demo_seller(artifact_dir)
    pepper = os.environ["QUANXUAN_KEY_PEPPER"]
    store = open_store(db_url)
    try:
        seller_key, _ = create_key(store, pepper, "seller", seller_id, None, "demo seller", None)
        ops_key, _ = create_key(store, pepper, "ops", None, None, "demo ops", None)
        admin_key, _ = create_key(store, pepper, "admin", None, None, "demo admin", None)
    finally:
        store.close()

    # Printed through the real API in-process: exactly what a seller app receives.
    with TestClient(create_app(Config.load(None))) as client:
        resp = client.get(f"/v1/sellers/{seller_id}/picks", params={"k": args.k}, headers={"X-API-Key": seller_key})
        resp.raise_for_status()
        seller_groups = resp.json()["groups"]
        for body in seller_groups[: args.show]:
            _print_group(body)

    url = f"http://127.0.0.1:{args.port}"
    print("\n[demo] keys (shown once; stored hashed in the SQLite store):")
    print(f"  seller {seller_id}: {seller_key}\n  ops:    {ops_key}\n  admin:  {admin_key}")
    print("\n[demo] fetch a group's picks:")
    print(f"  curl -s -H 'X-API-Key: {seller_key}' '{url}/v1/groups/{seller_groups[0]['group_id']}/picks?k=5'")
    print(f"[demo] ops console: {url}/console/ops   brand console: {url}/console/brand   API docs: {url}/docs")
    if args.no_serve:
        return 0
    import uvicorn

    print(f"[demo] serving on {url} (Ctrl-C to stop)")
    uvicorn.run("serving.app:create_app_from_env", factory=True, host="127.0.0.1", port=args.port,
                log_level="warning", access_log=False)
    return 0
