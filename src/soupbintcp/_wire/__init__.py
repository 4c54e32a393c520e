"""_wire layer."""
