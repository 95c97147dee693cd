"""modelyard tracking."""
