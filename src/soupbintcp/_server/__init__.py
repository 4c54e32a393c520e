"""_server layer."""
