"""The checks, one module per area; ``registry`` imports an area only when it is asked for."""
