"""The IDX file format of MNIST and Fashion-MNIST: read (with validation) and write.

An IDX file is a 4-byte magic number, one big-endian uint32 per dimension,
then the values in C order, big-endian:

    magic = 0x00 0x00 <type code> <number of dimensions>
    type code: 0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32, 0x0D float32, 0x0E float64

    images = read_idx("train-images-idx3-ubyte.gz")     # uint8 (60000, 28, 28)

Files may be gzip-compressed (recognized by their content, not their name).
Every problem raises `DataFileError` naming the file and what is wrong
(bad magic number, truncated header or content, a corrupt or truncated gzip
stream, extra bytes after the content).
"""
import gzip
import os
import struct
import zlib

import numpy as np

GZIP_MAGIC = b"\x1f\x8b"

# type code -> numpy dtype (big-endian, as stored in the file)
IDX_TYPES = {0x08: np.dtype(">u1"), 0x09: np.dtype(">i1"), 0x0B: np.dtype(">i2"),
             0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}
_CODES = {dt.newbyteorder("="): code for code, dt in IDX_TYPES.items()}


class DataFileError(ValueError):
    """A data file is missing pieces, corrupt, or not the file it should be."""


def read_bytes(path):
    """The file's content, gunzipped if it is a gzip file.

    NOTE: gzip detects a stream cut short (EOFError) and a damaged one (bad CRC,
    invalid deflate data); both become a DataFileError naming the file."""
    path = os.fspath(path)
    with open(path, "rb") as f:
        raw = f.read()
    return decompress(raw, path)


def decompress(raw, name):
    """`raw` gunzipped if it starts with the gzip magic bytes, else `raw` itself."""
    if not raw.startswith(GZIP_MAGIC):
        return raw
    try:
        return gzip.decompress(raw)
    except EOFError:
        raise DataFileError(f"{name}: truncated gzip file (the compressed stream ends early: "
                            f"the download was probably interrupted); delete it and download again") from None
    except (gzip.BadGzipFile, zlib.error, OSError) as e:
        raise DataFileError(f"{name}: corrupt gzip file ({e}); delete it and download again") from None


def parse_idx(content, name="<bytes>"):
    """Decode the bytes of an (uncompressed) IDX file into a native-endian ndarray."""
    if len(content) < 4:
        raise DataFileError(f"{name}: truncated IDX file ({len(content)} bytes, not even a header)")
    zero, code, ndim = struct.unpack(">HBB", content[:4])
    if zero != 0 or code not in IDX_TYPES or ndim == 0:
        raise DataFileError(f"{name}: wrong magic number 0x{content[:4].hex()} (an IDX file starts with "
                            f"0x0000, a type code in {{08, 09, 0B, 0C, 0D, 0E}} and the number of "
                            f"dimensions): not an IDX file")
    header = 4 + 4 * ndim
    if len(content) < header:
        raise DataFileError(f"{name}: truncated IDX header ({len(content)} bytes, expected {header} "
                            f"for {ndim} dimensions)")
    shape = struct.unpack(f">{ndim}I", content[4:header])
    dtype = IDX_TYPES[code]
    expected = header + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(content) < expected:
        raise DataFileError(f"{name}: truncated content: the header announces shape {shape} "
                            f"({expected} bytes) but the file has {len(content)} bytes")
    if len(content) > expected:
        raise DataFileError(f"{name}: {len(content) - expected} unexpected bytes after the content "
                            f"announced by the header (shape {shape})")
    # frombuffer on bytes is read-only: astype makes a writable native-endian copy
    return np.frombuffer(content, dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def read_idx(path):
    """Read an IDX file (raw or gzipped) into an ndarray; DataFileError if damaged."""
    return parse_idx(read_bytes(path), os.fspath(path))


def encode_idx(array):
    """The bytes of an IDX file holding `array` (uint8, int8, int16, int32, float32, float64)."""
    array = np.asarray(array)
    code = _CODES.get(array.dtype.newbyteorder("="))
    if code is None or array.ndim == 0 or array.ndim > 255:
        raise ValueError(f"encode_idx: cannot store dtype {array.dtype} with {array.ndim} dimensions in IDX")
    header = struct.pack(f">HBB{array.ndim}I", 0, code, array.ndim, *array.shape)
    return header + np.ascontiguousarray(array, IDX_TYPES[code]).tobytes()


def write_idx(path, array, compress=None):
    """Write `array` as an IDX file, atomically; gzipped if `compress` (default:
    when the name ends with .gz)."""
    path = os.fspath(path)
    data = encode_idx(array)
    if compress if compress is not None else path.endswith(".gz"):
        data = gzip.compress(data, mtime=0)
    from .download import atomic_write_bytes
    atomic_write_bytes(path, data)
    return path
