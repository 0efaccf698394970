"""The laboratory: test orders, the worklist, results with flags, and report files."""
