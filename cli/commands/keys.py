"""Manage API keys: create (prints the key once), list, revoke."""

from __future__ import annotations

import argparse
import os


def configure(parser: argparse.ArgumentParser) -> None:
    """Subcommands create, list and revoke."""
    parser.add_argument("--config", help="TOML or JSON configuration file.")
    parser.add_argument("--db-url", help="Database URL (default from settings / QUANXUAN_DB_URL).")
    sub = parser.add_subparsers(dest="action", required=True)
    create = sub.add_parser("create", help="Create a key and print it (it is not stored, only its hash).")
    create.add_argument("--role", required=True, choices=["seller", "brand", "ops", "admin"])
    create.add_argument("--seller", help="Seller id a seller key is bound to.")
    create.add_argument("--brand", help="Brand a brand key is bound to.")
    create.add_argument("--name", default="", help="Who holds the key (shown in the weights audit).")
    create.add_argument("--rate", type=int, help="Requests per minute for this key (default from settings).")
    sub.add_parser("list", help="List keys (never their secrets).")
    revoke = sub.add_parser("revoke", help="Revoke a key by its id.")
    revoke.add_argument("key_id")


def run(args: argparse.Namespace) -> int:
    """Run the chosen action against the configured store."""
    from contracts.config import Config
    from serving.auth import create_key
    from serving.storage.factory import open_store

    settings = Config.load(args.config or os.environ.get("QUANXUAN_CONFIG") or None).service
    store = open_store(args.db_url or settings.db_url)
    try:
        if args.action == "create":
            pepper = settings.key_pepper.get_secret_value()
            if not pepper:
                print("error: QUANXUAN_KEY_PEPPER is empty; set the same secret the service runs with")
                return 2
            try:
                key, record = create_key(store, pepper, args.role, args.seller, args.brand, args.name, args.rate)
            except ValueError as exc:
                print(f"error: {exc}")
                return 2
            print(f"key_id {record.key_id}  role {record.role}  seller {record.seller_id or '-'}  brand {record.brand or '-'}")
            print(key)
            return 0
        if args.action == "list":
            for r in store.keys():
                state = f"revoked {r.revoked_at:%Y-%m-%d %H:%M}" if r.revoked_at else "active"
                print(f"{r.key_id}  {r.role:<6}  seller={r.seller_id or '-'}  brand={r.brand or '-'}  "
                      f"rate={r.rate_per_minute or 'default'}  {state}  {r.name}")
            return 0
        if not store.revoke_key(args.key_id):
            print(f"error: no active key {args.key_id!r}")
            return 1
        print(f"revoked {args.key_id}")
        return 0
    finally:
        store.close()
