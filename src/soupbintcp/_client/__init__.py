"""_client layer."""
