"""The README's contract table is generated from contracts/schema.py and must not drift from it."""

from __future__ import annotations

from pathlib import Path

from contracts.schema import TABLES, contract_markdown

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_contract_matches_schema() -> None:
    text = README.read_text("utf-8")
    start = text.index("<!-- contract:start -->") + len("<!-- contract:start -->\n")
    end = text.index("<!-- contract:end -->")
    assert text[start:end] == contract_markdown()


def test_every_table_has_a_required_id_or_reference() -> None:
    for table in TABLES.values():
        assert table.required, table.name
        for col, target in table.references.items():
            assert col in table.names and target in TABLES
