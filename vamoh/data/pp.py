"""A minimal reader of Met Office PP files (unpacked, big-endian, 32-bit), for the ERA5 stand-in.

A PP file is a sequence of fields; each field is two Fortran unformatted records, every record
framed by its byte length as a big-endian int32 before and after it:

    [256] header: 45 int32 + 19 float32 (64 words)  [256]
    [4*LBROW*LBNPT] data: float32, row-major, LBROW rows of LBNPT points  [same]

Only what the GloSea4 sample files need is supported: regular lat/lon grids (BDX, BDY != 0),
no packing (LBPACK = 0), real data (LBUSER1 = 1). Anything else is a ``DataError`` naming the
file, the field and the header word.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..checks import DataError

HEADER_BYTES = 64 * 4
# 0-based positions of the header words used here (the PP documentation numbers them from 1).
LBYR, LBMON, LBDAT = 0, 1, 2
LBROW, LBNPT, LBPACK = 17, 18, 20
LBUSER1, LBUSER4 = 38, 41
BZY, BDY, BZX, BDX, BMDI = 13, 14, 15, 16, 17  # offsets into the 19 reals (words 59, 60, 61, 62, 63)


@dataclass
class PPField:
    data: np.ndarray  # (LBROW, LBNPT) float32, missing values (BMDI) as NaN
    latitude: np.ndarray  # (LBROW,) degrees, BZY + BDY * (1..LBROW)
    longitude: np.ndarray  # (LBNPT,) degrees, BZX + BDX * (1..LBNPT)
    ints: np.ndarray  # (45,) the integer header words
    reals: np.ndarray  # (19,) the real header words

    @property
    def date(self) -> tuple[int, int, int]:
        return int(self.ints[LBYR]), int(self.ints[LBMON]), int(self.ints[LBDAT])

    @property
    def stash(self) -> int:
        return int(self.ints[LBUSER4])


def _record(buf: bytes, offset: int, path: Path, index: int, what: str) -> tuple[bytes, int]:
    """One Fortran record starting at ``offset``: (payload, offset after it)."""
    if offset + 4 > len(buf):
        raise DataError(f"{path}: field {index}: file ends inside the {what} record's length word (offset {offset}, file size {len(buf)})")
    n = int(np.frombuffer(buf, ">i4", 1, offset)[0])
    end = offset + 4 + n
    if n < 0 or end + 4 > len(buf):
        raise DataError(f"{path}: field {index}: {what} record claims {n} bytes at offset {offset}, file has {len(buf) - offset - 4}; truncated or not a big-endian PP file")
    trailer = int(np.frombuffer(buf, ">i4", 1, end)[0])
    if trailer != n:
        raise DataError(f"{path}: field {index}: {what} record framing {n} != {trailer}; corrupt or not a big-endian PP file")
    return buf[offset + 4 : end], end + 4


def read_pp(path: str | Path) -> list[PPField]:
    """Every field of the PP file ``path``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"PP file not found: {path}")
    buf = path.read_bytes()
    fields: list[PPField] = []
    offset = 0
    while offset < len(buf):
        i = len(fields)
        header, offset = _record(buf, offset, path, i, "header")
        if len(header) != HEADER_BYTES:
            raise DataError(f"{path}: field {i}: header record has {len(header)} bytes, expected {HEADER_BYTES} (45 int32 + 19 float32)")
        ints = np.frombuffer(header, ">i4", 45).astype(np.int64)
        reals = np.frombuffer(header, ">f4", 19, 45 * 4).astype(np.float64)
        rows, cols = int(ints[LBROW]), int(ints[LBNPT])
        if ints[LBPACK] != 0 or ints[LBUSER1] != 1:
            raise DataError(f"{path}: field {i}: LBPACK={ints[LBPACK]}, LBUSER1={ints[LBUSER1]}; expected unpacked (0) real data (1)")
        if rows <= 0 or cols <= 0 or reals[BDX] == 0 or reals[BDY] == 0:
            raise DataError(f"{path}: field {i}: LBROW={rows}, LBNPT={cols}, BDY={reals[BDY]}, BDX={reals[BDX]}; expected a regular lat/lon grid")
        payload, offset = _record(buf, offset, path, i, "data")
        if len(payload) != 4 * rows * cols:
            raise DataError(f"{path}: field {i}: data record has {len(payload)} bytes, expected 4*LBROW*LBNPT = {4 * rows * cols}")
        data = np.frombuffer(payload, ">f4").astype(np.float32).reshape(rows, cols)
        data = np.where(data == np.float32(reals[BMDI]), np.float32(np.nan), data)
        lat = reals[BZY] + reals[BDY] * np.arange(1, rows + 1)
        lon = reals[BZX] + reals[BDX] * np.arange(1, cols + 1)
        fields.append(PPField(data, lat, lon, ints, reals))
    return fields


def write_pp(path: str | Path, fields: list[tuple[np.ndarray, float, float, float, float]]) -> None:
    """Write fields (data (rows, cols), BZY, BDY, BZX, BDX) as an unpacked PP file (tests, fixtures)."""

    def framed(payload: bytes) -> bytes:
        n = np.array([len(payload)], ">i4").tobytes()
        return n + payload + n

    out = bytearray()
    for data, bzy, bdy, bzx, bdx in fields:
        ints = np.zeros(45, ">i4")
        ints[LBROW], ints[LBNPT], ints[LBUSER1] = data.shape[0], data.shape[1], 1
        ints[14] = data.size  # LBLREC: record length in words
        reals = np.zeros(19, ">f4")
        reals[BZY], reals[BDY], reals[BZX], reals[BDX], reals[BMDI], reals[18] = bzy, bdy, bzx, bdx, -1.0737418e9, 1.0
        out += framed(ints.tobytes() + reals.tobytes())
        out += framed(np.asarray(data, ">f4").tobytes())
    Path(path).write_bytes(bytes(out))
