"""Energy estimation of SNNs against their ANN counterparts (issue 5)."""
