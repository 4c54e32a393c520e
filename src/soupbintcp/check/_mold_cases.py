"""MoldUDP64 cases: the multicast stream and the re-request server.

Layer 4. Section names follow docs of MoldUDP64 1.00 (`downstream`, `heartbeat`,
`end-of-session`, `request`, `re-request-server`): the specification has no numbered sections.
"""

from __future__ import annotations

import itertools
import time

from ._case import Failed, Level, NotApplicable, Target, shown
from ._mold_target import MoldTarget
from ._packets import MOLD_END, mold_request, parse_downstream
from ._registry import register

MOLD = Target.MOLD_TRANSMITTER
V = "moldudp64-1.00"
#: The largest answer that fits an Ethernet frame (1,500-byte MTU less IP and UDP headers).
DATAGRAM_LIMIT = 1472


def answer_fields(data: bytes) -> tuple[bytes, int, int, list[bytes]]:
    try:
        return parse_downstream(data)
    except ValueError as exc:
        raise Failed(f"a malformed answer ({exc}): {shown(data)}") from None


@register(
    MOLD, "packet-layout", Level.MUST, sections={V: "downstream"},
    quote="Message Count: how many message blocks follow ... each a 2-byte length then that "
    "many bytes of message data",
    sends="nothing: watches the group for 1.5 s",
    expects="every datagram: a 20-byte header and blocks that exactly fill it",
)  # fmt: skip
async def packet_layout(mold: MoldTarget, version: str) -> None:
    datagrams = await mold.watch(1.5)
    if not datagrams:
        raise Failed("nothing arrived on the group in 1.5 s")


@register(
    MOLD, "one-session", Level.MUST, sections={V: "downstream"},
    quote="Session: the session this packet belongs to, alphanumeric, space-padded",
    sends="nothing: watches the group for 1.5 s",
    expects="every datagram names the same session, alphanumeric and spaces",
)  # fmt: skip
async def one_session(mold: MoldTarget, version: str) -> None:
    datagrams = await mold.watch(1.5)
    sessions = {d.session for d in datagrams}
    if len(sessions) > 1:
        raise Failed(f"datagrams of {len(sessions)} sessions: {sorted(sessions)!r}")
    for session in sessions:
        if not session.strip(b" ").isalnum():
            raise Failed(f"session {session!r} is not alphanumeric")


@register(
    MOLD, "sequence-contiguous", Level.MUST, sections={V: "downstream"},
    quote="Sequence Number: the sequence number of the first message in this packet (for "
    "heartbeats and end of session: the next sequence number the transmitter will use)",
    sends="nothing: watches the group for 2 s",
    expects="each datagram starts where the one before ended (its number + its count)",
)  # fmt: skip
async def sequence_contiguous(mold: MoldTarget, version: str) -> None:
    datagrams = await mold.watch(2.0)
    for a, b in itertools.pairwise(datagrams):
        expected = a.sequence + len(a.messages)
        if b.sequence != expected:
            raise Failed(
                f"a datagram at {b.sequence} (count {b.count}) follows one at {a.sequence} "
                f"with {len(a.messages)} messages: expected {expected}"
            )


@register(
    MOLD, "cadence", Level.SHOULD, sections={V: "heartbeat"},
    quote="Heartbeat: Sent periodically (about once a second) while there is nothing to send",
    sends="nothing: watches the group for 2.6 s",
    expects="a datagram at least every 1.6 s",
)  # fmt: skip
async def heartbeat_cadence(mold: MoldTarget, version: str) -> None:
    start = time.monotonic()
    datagrams = await mold.watch(2.6)
    times = [start, *(d.at for d in datagrams), time.monotonic()]
    gap = max((b - a for a, b in itertools.pairwise(times)), default=0.0)
    if gap > 1.6:
        raise Failed(f"{gap:.2f} s between two datagrams on the group")


@register(
    MOLD, "repeated", Level.SHOULD, sections={V: "end-of-session"},
    quote="End of Session: ... Sent for a while in place of heartbeats when the session is "
    "over.",
    sends="nothing: watches the group for 2.6 s",
    expects="once End of Session (count 0xFFFF) is seen: only End of Session, more than once",
)  # fmt: skip
async def end_repeated(mold: MoldTarget, version: str) -> None:
    datagrams = await mold.watch(2.6)
    counts = [d.count for d in datagrams]
    if MOLD_END not in counts:
        raise NotApplicable("the session has not ended: no End of Session seen")
    after = counts[counts.index(MOLD_END) :]
    if any(c != MOLD_END for c in after):
        raise Failed(f"other datagrams after End of Session: counts {after[:10]}")
    if len(after) < 2:
        raise Failed("End of Session sent once, not repeated for a while")


@register(
    MOLD, "right-messages", Level.MUST, sections={V: "request"},
    quote="The answer is an ordinary Downstream packet, unicast back to the address and port "
    "the request came from",
    sends="a request for 3 messages from k (the first the group carried, else 1), one for 1 "
    "from k+1",
    expects="answers to the asking socket, in that session, from k and from k+1, agreeing "
    "with each other and with what the group carried",
)  # fmt: skip
async def right_messages(mold: MoldTarget, version: str) -> None:
    seen = await mold.messages_exist(3)
    # From the first message the group carried (so the answers can be compared with it).
    k = min(seen.messages, default=1)
    answers = await mold.ask([mold_request(seen.session, k, 3)])
    second = await mold.ask([mold_request(seen.session, k + 1, 1)])
    if not answers or not second:
        raise Failed(f"no answer (to the asking socket) to a request for {k}..{k + 2} or {k + 1}")
    session, sequence, _, messages = answer_fields(answers[0])
    if session != seen.session or sequence != k or not messages:
        raise Failed(f"a request for {k}..{k + 2} answered with {shown(answers[0])}")
    _, sequence2, _, messages2 = answer_fields(second[0])
    if sequence2 != k + 1 or not messages2:
        raise Failed(f"a request for {k + 1} answered with {shown(second[0])}")
    if len(messages) >= 2 and messages[1] != messages2[0]:
        raise Failed(
            f"message {k + 1} is {shown(messages[1])} in one answer, {shown(messages2[0])} "
            "in another"
        )
    for i, message in enumerate(messages, k):
        if i in seen.messages and seen.messages[i] != message:
            sent = shown(seen.messages[i])
            raise Failed(f"message {i} answered {shown(message)}, the group sent {sent}")


@register(
    MOLD, "right-count", Level.MUST, sections={V: "request"},
    quote="Requested Message Count: how many messages wanted from there. The server may "
    "answer with fewer messages than asked",
    sends="a request for 2 messages from 1",
    expects="an answer of 1 or 2 messages, never more",
)  # fmt: skip
async def right_count(mold: MoldTarget, version: str) -> None:
    seen = await mold.messages_exist(3)
    answers = await mold.ask([mold_request(seen.session, 1, 2)])
    if not answers:
        raise Failed("no answer to a request for 2 messages from 1")
    _, sequence, count, messages = answer_fields(answers[0])
    if not 1 <= len(messages) <= 2 or sequence != 1:
        raise Failed(f"asked for 2 from 1, answered {count} from {sequence}")
    if len(answers) > 1:
        raise Failed(f"asked once, answered with {len(answers)} datagrams")


@register(
    MOLD, "clipped-to-datagram", Level.SHOULD, sections={V: "re-request-server"},
    quote="a packet carries at most 0xFFFE messages; in practice it is kept under the "
    "network's MTU",
    sends="a request for 65,534 messages from 1",
    expects=f"one answer of at most {DATAGRAM_LIMIT} bytes starting at 1",
)  # fmt: skip
async def clipped(mold: MoldTarget, version: str) -> None:
    seen = await mold.messages_exist(1)
    answers = await mold.ask([mold_request(seen.session, 1, 0xFFFE)])
    if not answers:
        raise Failed("no answer to a request for 65,534 messages from 1")
    if len(answers[0]) > DATAGRAM_LIMIT:
        raise Failed(f"an answer of {len(answers[0]):,} bytes (over {DATAGRAM_LIMIT})")
    if answer_fields(answers[0])[1] != 1:
        raise Failed(f"a request from 1 answered with {shown(answers[0])}")


@register(
    MOLD, "other-session-ignored", Level.MUST, sections={V: "re-request-server"},
    quote="it must ... ignore requests for other sessions and malformed requests",
    sends="a request for messages 1..3 of another session",
    expects="no answer within 0.5 s",
)  # fmt: skip
async def other_session(mold: MoldTarget, version: str) -> None:
    seen = await mold.messages_exist(1)
    other = b"ZZOTHER999" if seen.session != b"ZZOTHER999" else b"ZZOTHER998"
    answers = await mold.ask([mold_request(other, 1, 3)])
    if answers:
        raise Failed(f"a request for session {other!r} answered: {shown(answers[0])}")


async def still_answers(mold: MoldTarget, what: str) -> None:
    seen = await mold.seen()
    if not await mold.ask([mold_request(seen.session, 1, 1)]):
        raise Failed(f"after {what}, a good request for message 1 gets no answer")


@register(
    MOLD, "malformed-ignored", Level.MUST, sections={V: "re-request-server"},
    quote="it must ... ignore requests for other sessions and malformed requests",
    sends="datagrams of 0, 5, 19 and 300 bytes to the re-request server, then a good request",
    expects="no answer to the malformed ones; the good one answered",
)  # fmt: skip
async def malformed(mold: MoldTarget, version: str) -> None:
    seen = await mold.messages_exist(1)
    bad = [b"", b"hello", mold_request(seen.session, 1, 1)[:19], bytes(300)]
    answers = await mold.ask(bad)
    if answers:
        raise Failed(f"a malformed request answered: {shown(answers[0])}")
    await still_answers(mold, "malformed requests")


@register(
    MOLD, "hostile-counts-survived", Level.MUST, sections={V: "re-request-server"},
    quote="a 20-byte request can trigger a 1,400-byte answer, so it must bound what it sends "
    "(per request size)",
    sends="requests for 0 messages, for 65,535 from 2^64-1, for 5 from 0; then a good request",
    expects="no answer carries a message that does not exist; the good request answered",
)  # fmt: skip
async def hostile(mold: MoldTarget, version: str) -> None:
    seen = await mold.messages_exist(1)
    s = seen.session
    answers = await mold.ask(
        [mold_request(s, 1, 0), mold_request(s, 2**64 - 1, 0xFFFF), mold_request(s, 0, 5)]
    )
    for data in answers:
        _, sequence, _, messages = answer_fields(data)
        if messages and (sequence < 1 or sequence + len(messages) > seen.next_sequence + 1000):
            raise Failed(f"a hostile request answered with messages from {sequence}")
    await still_answers(mold, "requests with hostile counts")


@register(
    MOLD, "beyond-end-unanswered", Level.MUST, sections={V: "request"},
    quote="A request for messages that do not exist yet gets no answer.",
    sends="a request for 5 messages from the next sequence number + 1,000",
    expects="no answer within 0.5 s",
)  # fmt: skip
async def beyond_end(mold: MoldTarget, version: str) -> None:
    seen = await mold.seen()
    answers = await mold.ask([mold_request(seen.session, seen.next_sequence + 1000, 5)])
    if answers:
        raise Failed(f"a request beyond the end answered: {shown(answers[0])}")
