"""``make reports``: regenerate the paper's tables and figures on the built-in dataset."""
