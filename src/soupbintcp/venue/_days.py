"""Where a venue keeps its day: the session id, the journals, and starting a new day.

``DIR/session`` holds the day's SoupBinTCP session id; ``DIR/accounts/<user>.soup`` are the
accounts' outbound streams, ``DIR/itch.soup`` the market data, ``DIR/inputs.soup`` the
input journal (`_inputs`). A new day moves them all to ``DIR/days/<old session>/``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Final

__all__ = ["DayFiles", "next_session_id"]

_PREFIX: Final = "DAY"


def next_session_id(previous: str | None) -> str:
    """DAY0000001, DAY0000002, ... (10 alphanumeric characters, as SoupBinTCP allows)."""
    number = 0
    if previous is not None and re.fullmatch(rf"{_PREFIX}\d{{7}}", previous):
        number = int(previous[len(_PREFIX) :])
    return f"{_PREFIX}{number + 1:07d}"


class DayFiles:
    """The journals of one venue directory."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.root = Path(directory)
        self.accounts = self.root / "accounts"
        self.itch = self.root / "itch.soup"
        self.inputs = self.root / "inputs.soup"
        self._session = self.root / "session"

    def open_day(self, new_day: bool) -> tuple[str, bool]:
        """(session id, resuming): the current day's, or a new one (``new_day`` or none yet)."""
        self.accounts.mkdir(parents=True, exist_ok=True)
        current = self._session.read_text().strip() if self._session.exists() else None
        if current is not None and not new_day:
            return current, True
        if current is not None:
            archive = self.root / "days" / current
            archive.mkdir(parents=True, exist_ok=True)
            for path in (self.itch, self.inputs, self.accounts):
                if path.exists():
                    path.rename(archive / path.name)
            for index in self.root.glob("*.soup.idx"):
                index.rename(archive / index.name)
            self.accounts.mkdir()
        session = next_session_id(current)
        self._session.write_text(session + "\n")
        return session, False

    def account_path(self, user: str) -> Path:
        safe = re.sub(r"[^A-Za-z0-9_.-]", "_", user)
        return self.accounts / f"{safe}.soup"
