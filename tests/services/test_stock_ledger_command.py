"""``hms verify-stock``: the demo's opening stock balances, and a batch changed behind the
ledger's back is named."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from hms_app import cli
from hms_app.db.models import StockBatch, StockMovement
from tests.services.helpers import table_count

pytestmark = pytest.mark.db


def test_verify_stock_command_exit_codes(seeded, capsys):
    assert table_count(seeded, StockMovement) > 0  # the demo books its opening stock through the ledger
    assert cli.main(["verify-stock"]) == 0
    assert "stock ledger balanced" in capsys.readouterr().out

    with seeded.begin() as conn:
        batch_id, on_hand = conn.execute(sa.select(StockBatch.id, StockBatch.quantity_on_hand)
                                         .order_by(StockBatch.id).limit(1)).one()
        conn.execute(sa.update(StockBatch).where(StockBatch.id == batch_id).values(quantity_on_hand=on_hand + 7))
    assert cli.main(["verify-stock"]) == 2
    assert f"batch {batch_id}: {on_hand + 7} on hand, ledger sums to {on_hand}" in capsys.readouterr().err
