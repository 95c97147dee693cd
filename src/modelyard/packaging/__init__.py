"""modelyard packaging."""
