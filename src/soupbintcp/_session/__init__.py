"""_session layer."""
