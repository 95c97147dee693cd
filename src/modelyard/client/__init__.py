"""modelyard client."""
