"""modelyard cli."""
