"""modelyard api."""
