"""The domain: plain functions ``verb_noun(*, session, actor, ...)``. Never imports Reflex."""
