"""The host side of the board protocol (firmware side: harness/autotune_protocol.c).

A frame is 'A' 'T', a type byte, the payload length (u32), the payload, and the CRC-32 (zlib's)
of type, length and payload; integers little-endian. Requests: INFO (0x01, empty) and INVOKE
(0x02, the int8 input). Answers: 0x81 version, input bytes, output bytes, clock Hz (4 x u32);
0x82 status (i32), cycles (u64), microseconds (u32), then the output; 0xEE an error code (u32:
1 bad CRC, 2 bad length, 3 unknown type).

`BoardClient` speaks it over anything with pyserial's `read(n)` and `write(b)`.
"""
from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from typing import Protocol

from autotune.errors import AutotuneError

SYNC = b"AT"
INFO, INVOKE = 0x01, 0x02
ANSWER_INFO, ANSWER_INVOKE, ANSWER_ERROR = 0x81, 0x82, 0xEE
VERSION = 1
ERRORS = {1: "the frame's CRC did not match", 2: "the payload has the wrong length", 3: "unknown request type"}
MAX_SKIPPED = 4096  # bytes before a frame start that are tolerated (boot messages, line noise)


class BoardError(AutotuneError):
    """The board did not answer, answered with an error, or with a malformed frame."""


class Stream(Protocol):
    def read(self, size: int) -> bytes: ...

    def write(self, data: bytes) -> int | None: ...


def frame(kind: int, payload: bytes = b"") -> bytes:
    body = struct.pack("<BI", kind, len(payload)) + payload
    return SYNC + body + struct.pack("<I", zlib.crc32(body))


@dataclass(frozen=True)
class BoardInfo:
    version: int
    input_bytes: int
    output_bytes: int
    clock_hz: int


@dataclass(frozen=True)
class Invocation:
    status: int
    cycles: int
    microseconds: int
    output: bytes


class BoardClient:
    def __init__(self, stream: Stream, where: str):
        self.stream = stream
        self.where = where  # the port, for messages

    def info(self) -> BoardInfo:
        kind, payload = self._request(INFO, b"", ANSWER_INFO)
        if len(payload) != 16:
            raise BoardError(f"{self.where}: INFO answer of {len(payload)} bytes, expected 16")
        info = BoardInfo(*struct.unpack("<4I", payload))
        if info.version != VERSION:
            raise BoardError(f"{self.where}: the firmware speaks protocol version {info.version}, this host {VERSION}")
        return info

    def invoke(self, x: bytes) -> Invocation:
        _, payload = self._request(INVOKE, x, ANSWER_INVOKE)
        if len(payload) < 16:
            raise BoardError(f"{self.where}: INVOKE answer of {len(payload)} bytes, expected at least 16")
        status, cycles, microseconds = struct.unpack_from("<iQI", payload)
        return Invocation(status, cycles, microseconds, payload[16:])

    def _request(self, kind: int, payload: bytes, answer: int) -> tuple[int, bytes]:
        self.stream.write(frame(kind, payload))
        got, body = self._read_frame()
        if got == ANSWER_ERROR and len(body) == 4:
            code = struct.unpack("<I", body)[0]
            raise BoardError(f"{self.where}: the board refused the request: {ERRORS.get(code, f'error {code}')}")
        if got != answer:
            raise BoardError(f"{self.where}: answer of type {got:#04x}, expected {answer:#04x}")
        return got, body

    def _read(self, size: int) -> bytes:
        data = self.stream.read(size)
        if len(data) != size:
            raise BoardError(f"{self.where}: no answer (timed out after {len(data)} of {size} bytes); is the "
                             "autotune firmware flashed and the port right?")
        return data

    def _read_frame(self) -> tuple[int, bytes]:
        skipped, last = 0, b""
        while last + (byte := self._read(1)) != SYNC:  # find 'A' 'T'
            last = byte
            skipped += 1
            if skipped > MAX_SKIPPED:
                raise BoardError(f"{self.where}: {skipped} bytes without a frame start; not the autotune firmware?")
        header = self._read(5)
        kind, length = struct.unpack("<BI", header)
        if length > 1 << 24:
            raise BoardError(f"{self.where}: frame of {length} bytes announced; the stream is corrupt")
        payload = self._read(length)
        crc = struct.unpack("<I", self._read(4))[0]
        if crc != zlib.crc32(header + payload):
            raise BoardError(f"{self.where}: answer with a bad CRC (noise on the line?)")
        return kind, payload
