"""`soupbintcp.check`: a conformance suite for any SoupBinTCP or MoldUDP64 implementation.

Layer 4. `CATALOGUE` is every case (id after the spec section, MUST/SHOULD/MAY, what it sends
and expects); `select()` picks some; `run_cases()` runs them against a `ServerTarget`;
`soupbintcp.check.report` writes the results as JSON, JUnit XML, HTML or Markdown.
The command line is `soupbintcp check server|client|mold-transmitter`.
"""

from . import (  # noqa: F401 - they register their cases
    _client_cases,
    _client_resume,
    _listener_cases,
    _mold_cases,
    _server_login,
    _server_stream,
)
from ._case import Case, Failed, Level, NotApplicable, Outcome, Result, Target
from ._client_target import ClientTarget, Launched, command_launcher
from ._docs import catalogue_markdown, matrix_markdown, replace_section
from ._listener_target import ListenerTarget, Printing, listener_command
from ._mold_target import MoldTarget
from ._registry import CATALOGUE
from ._report import exit_status, score, tally, to_html, to_json, to_junit
from ._runner import CASE_TIMEOUT, run_cases, select
from ._server_target import ServerTarget

__all__ = [
    "CASE_TIMEOUT",
    "CATALOGUE",
    "Case",
    "ClientTarget",
    "Failed",
    "Launched",
    "Level",
    "ListenerTarget",
    "MoldTarget",
    "NotApplicable",
    "Outcome",
    "Printing",
    "Result",
    "ServerTarget",
    "Target",
    "catalogue_markdown",
    "command_launcher",
    "exit_status",
    "listener_command",
    "matrix_markdown",
    "replace_section",
    "run_cases",
    "score",
    "select",
    "tally",
    "to_html",
    "to_json",
    "to_junit",
]
