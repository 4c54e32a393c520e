"""Coverage-guided fuzz targets (atheris) for the wire layer and the sans-IO sessions.

Each target module has a pure `check(data: bytes) -> None` that either returns or raises the
project's own error for the call that failed; anything else is a bug. `tests/test_fuzz.py`
replays the corpus through the same functions and drives them with Hypothesis.
"""
