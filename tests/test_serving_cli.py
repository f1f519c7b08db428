"""`quanxuan keys` creates, lists and revokes keys that the service then accepts or refuses."""

from __future__ import annotations

from serving.auth import KEY_PATTERN, KeyResolver, hash_key
from serving.storage.factory import open_store
from cli.main import main as cli


def test_keys_create_list_revoke(tmp_path, monkeypatch, capsys):
    url = f"sqlite:///{tmp_path / 'state.sqlite3'}"
    monkeypatch.setenv("QUANXUAN_KEY_PEPPER", "cli-pepper")
    assert cli(["keys", "--db-url", url, "create", "--role", "seller", "--seller", "S1", "--name", "S1 app"]) == 0
    header, key = capsys.readouterr().out.strip().splitlines()
    assert KEY_PATTERN.match(key) and "role seller  seller S1" in header
    key_id = header.split()[1]

    store = open_store(url)
    record = store.key_by_hash(hash_key(key, "cli-pepper"))
    assert (record.key_id, record.role, record.seller_id, record.name) == (key_id, "seller", "S1", "S1 app")
    assert KeyResolver(store, "cli-pepper", 0).resolve(key).seller_id == "S1"
    assert KeyResolver(store, "another-pepper", 0).resolve(key) is None  # the pepper is part of the hash

    assert cli(["keys", "--db-url", url, "create", "--role", "brand"]) == 2
    assert "a brand key needs a brand" in capsys.readouterr().out
    assert cli(["keys", "--db-url", url, "list"]) == 0
    listing = capsys.readouterr().out
    assert f"{key_id}  seller  seller=S1" in listing and "active" in listing and key not in listing

    assert cli(["keys", "--db-url", url, "revoke", key_id]) == 0
    assert cli(["keys", "--db-url", url, "revoke", key_id]) == 1
    assert KeyResolver(store, "cli-pepper", 0).resolve(key) is None
    store.close()
