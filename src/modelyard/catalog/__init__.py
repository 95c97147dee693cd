"""modelyard catalog."""
