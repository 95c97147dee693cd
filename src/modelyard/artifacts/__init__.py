"""modelyard artifacts."""
