"""Captures: SoupBinTCP and MoldUDP64 read back from pcap and pcapng files.

    capture = Capture(Path("feed.pcap"))  # read a chunk at a time
    for stream in capture.streams:          # one per SoupBinTCP server+session, MoldUDP64 session
        print(stream.kind, stream.address, stream.session, stream.first, stream.last)
    stream = capture.select(session="SESSION1")
    with FileStore("feed.soup", first_sequence=choose(stream).first) as store:
        report = import_stream(stream, store, Path("feed.soup"))

Layer 3, stdlib only: the pcap/pcapng reader (`_files`), link/IP/TCP/UDP decoding (`_net`),
TCP reassembly (`_tcp`), SoupBinTCP framing and numbering (`_soup`), MoldUDP64 (`_mold`),
merging numbered runs (`_merge`), the whole capture (`_scan`), capture times (`_times`).
What a capture cannot prove (a gap) is reported, never filled.
"""

from ._files import CaptureError, CaptureFile
from ._import import ImportReport, choose, import_stream
from ._scan import Capture, Stream
from ._times import CaptureTimes, times_path

__all__ = [
    "Capture",
    "CaptureError",
    "CaptureFile",
    "CaptureTimes",
    "ImportReport",
    "Stream",
    "choose",
    "import_stream",
    "times_path",
]
