"""The pharmacy: the prescription queue, dispensing, and stock with its ledger."""
