"""`tn.save(obj, path)` / `tn.load(path)`: checkpoints as `.npz` files, never pickle.

    tn.save({"model": model.state_dict(), "optimizer": opt.state_dict(),
             "scheduler": sched.state_dict(), "rng": tn.get_rng_state(), "epoch": 3}, "ckpt.npz")
    ckpt = tn.load("ckpt.npz")
    model.load_state_dict(ckpt["model"])

What can be saved: dicts (keys: str, int, float, bool or None), lists and
tuples, nested freely, of Tensors, numpy arrays, numpy scalars, Python
numbers, strings, bools and None. Anything else (a function, a module, an
object array) raises TypeError naming where it sits in `obj`.

The file is a plain zip of `.npy` arrays (what `np.savez` writes; open it with
`np.load` to look inside): each array under a key made from its place in
`obj` ("model/fc1.weight", "optimizer/state/0/exp_avg"), plus one entry,
`__structure__`, a uint8 array holding UTF-8 JSON that describes the nesting
and the Python types. Loading reads arrays with `allow_pickle=False`, so a
checkpoint cannot run code, unlike a pickle.

Writing is atomic: the data goes to a temporary file in the target's
directory, is flushed to disk (fsync), then renamed over the target
(`os.replace`). If the process dies mid-write, the previous checkpoint is
intact. A truncated, corrupt or foreign file raises `CheckpointError` naming
the file and what is wrong with it (zip checksums catch flipped bytes).
"""
import io
import json
import os
import zipfile
from collections import OrderedDict

import numpy as np

from ._atomic import atomic_write

from .tensor import Tensor

__all__ = ["save", "load", "CheckpointError"]

FORMAT = "tinygrad_norm.checkpoint"
VERSION = 1
STRUCTURE_KEY = "__structure__"
_SCALARS = (type(None), bool, int, float, str)
_ARRAY_KINDS = "biufcUS"  # numpy dtype kinds .npy stores without pickle


class CheckpointError(RuntimeError):
    """A file that is not a readable tinygrad_norm checkpoint (truncated, corrupt, foreign)."""


# ------------------------------------------------------------------------ save

def save(obj, f):
    """Write `obj` (nested dicts/lists/tuples of Tensors, arrays, numbers, strings,
    None) to `f`, a path (written atomically) or a binary file object."""
    arrays = {}
    root = _Encoder(arrays).encode(obj, ())
    header = json.dumps({"format": FORMAT, "version": VERSION, "root": root}, separators=(",", ":"))
    arrays[STRUCTURE_KEY] = np.frombuffer(header.encode("utf-8"), np.uint8)
    if hasattr(f, "write"):
        _write_npz(f, arrays)
    else:
        _atomic_write(os.fspath(f), lambda fh: _write_npz(fh, arrays))


class _Encoder:
    """Turns `obj` into a JSON tree; arrays go to `self.arrays` under unique keys.

    Nodes: a JSON scalar (None/bool/int/float/str) is itself; everything else is
    a dict with "t" (type): "tensor" / "ndarray" / "npscalar" with "k" (the
    array's key), "dict" / "odict" with "items" ([key, node] pairs, keys keep
    their type), "list" / "tuple" with "items".
    """

    def __init__(self, arrays):
        self.arrays = arrays
        self.used = {STRUCTURE_KEY}
        self.tensor_keys = {}  # id(tensor) -> key: a tensor stored twice is one array, one Tensor on load
        self.keep_alive = []   # so ids stay unique while encoding
        self.open = set()      # ids of containers being encoded (to refuse cycles)

    def encode(self, obj, path):
        if isinstance(obj, Tensor):
            key = self.tensor_keys.get(id(obj))
            if key is None:
                key = self.tensor_keys[id(obj)] = self._store(obj._data, path)
                self.keep_alive.append(obj)
            return {"t": "tensor", "k": key, "requires_grad": bool(obj.requires_grad)}
        if isinstance(obj, np.ndarray):
            return {"t": "ndarray", "k": self._store(obj, path)}
        if isinstance(obj, np.generic):
            return {"t": "npscalar", "k": self._store(np.asarray(obj), path)}
        if type(obj) in _SCALARS:
            if isinstance(obj, float) and not np.isfinite(obj):
                return {"t": "float", "v": repr(obj)}  # JSON has no nan/inf
            return obj
        if isinstance(obj, (dict, list, tuple)):
            if id(obj) in self.open:
                raise ValueError(f"tn.save: {_describe(path)} contains itself (a reference cycle)")
            self.open.add(id(obj))
            try:
                if isinstance(obj, dict):
                    items = []
                    for k, v in obj.items():
                        if type(k) not in _SCALARS:
                            raise TypeError(f"tn.save: dict keys must be str, int, float, bool or None; "
                                            f"{_describe(path)} has a key of type {type(k).__name__}")
                        items.append([self._key(k), self.encode(v, path + (k,))])
                    return {"t": "odict" if isinstance(obj, OrderedDict) else "dict", "items": items}
                kind = "tuple" if isinstance(obj, tuple) else "list"
                return {"t": kind, "items": [self.encode(v, path + (i,)) for i, v in enumerate(obj)]}
            finally:
                self.open.discard(id(obj))
        raise TypeError(f"tn.save: cannot store an object of type {type(obj).__name__} at {_describe(path)}: "
                        f"checkpoints hold Tensors, numpy arrays, numbers, strings, None, and dicts/lists/"
                        f"tuples of them (no pickle)")

    @staticmethod
    def _key(k):
        if isinstance(k, float) and not np.isfinite(k):
            raise TypeError(f"tn.save: a dict key cannot be {k!r}")
        return k

    def _store(self, array, path):
        if array.dtype.kind not in _ARRAY_KINDS or array.dtype.fields is not None:
            raise TypeError(f"tn.save: cannot store an array of dtype {array.dtype} at {_describe(path)} "
                            f"(object and structured arrays would need pickle)")
        base = "/".join(_clean(part) for part in path) or "root"
        key, n = base, 1
        while key in self.used:
            n += 1
            key = f"{base}~{n}"
        self.used.add(key)
        self.arrays[key] = array
        return key


def _clean(part):
    """A path component made safe as part of a zip member name."""
    text = str(part)
    cleaned = "".join(c if c.isalnum() or c in "_.-+=" else "_" for c in text)
    return cleaned.strip(".") or "_"


def _describe(path):
    return "obj" + "".join(f"[{p!r}]" for p in path)


def _write_npz(fh, arrays):
    """The .npz layout of np.savez (uncompressed), written without pickle."""
    with zipfile.ZipFile(fh, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
        for key, array in arrays.items():
            with zf.open(key + ".npy", "w", force_zip64=True) as member:
                np.lib.format.write_array(member, np.asanyarray(array), allow_pickle=False)


def _atomic_write(path, write):
    """Call write(file) on a temporary file next to `path`, fsync it, then rename it over `path`."""
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"tn.save: directory {directory!r} does not exist (saving {path!r})")
    atomic_write(path, write)


# ------------------------------------------------------------------------ load

def load(f, map_location=None, weights_only=True):
    """Read a checkpoint written by `tn.save`: Tensors come back as Tensors (dtype
    and requires_grad kept), arrays as arrays, containers with their types.

    `map_location` and `weights_only` are accepted for scripts ported from
    PyTorch and ignored (everything lives on the CPU, and nothing but data is
    ever loaded). Raises CheckpointError for a truncated, corrupt or foreign file.
    """
    if hasattr(f, "read"):  # an open binary file (seekable)
        name = repr(getattr(f, "name", "<file object>"))
        return _Decoder(name, _read_arrays(name, f)).decode_root()
    name = repr(os.fspath(f))
    with open(f, "rb") as fh:
        return _Decoder(name, _read_arrays(name, fh)).decode_root()


def _read_arrays(name, fh):
    """{key: array} of every .npy member of the open binary file `fh`, checking zip checksums."""
    start = fh.tell()
    head = fh.read(8)
    fh.seek(start)
    if len(head) == 0:
        raise CheckpointError(f"{name} is empty (0 bytes): not a tinygrad_norm checkpoint "
                              f"(was its writing interrupted?)")
    if head[:2] != b"PK":
        what = "a single .npy array" if head[:6] == b"\x93NUMPY" else f"a file starting with {head!r}"
        raise CheckpointError(f"{name} is not a tinygrad_norm checkpoint: it is {what}, not a zip/.npz archive")
    try:
        zf = zipfile.ZipFile(fh)
    except Exception as e:  # BadZipFile, NotImplementedError (bad version field), struct.error, ...
        raise CheckpointError(f"{name} is truncated or corrupt: it cannot be read as a zip/.npz archive "
                              f"({type(e).__name__}: {e})") from None
    arrays = {}
    with zf:
        members = zf.namelist()
        if STRUCTURE_KEY + ".npy" not in members:
            raise CheckpointError(f"{name} is not a tinygrad_norm checkpoint: it is a zip/.npz archive without "
                                  f"the '{STRUCTURE_KEY}' entry (a plain np.savez file?); it holds "
                                  f"{_preview(members)}")
        for member in members:
            if not member.endswith(".npy"):
                continue
            try:
                raw = zf.read(member)  # checks the member's CRC-32
                array = np.lib.format.read_array(io.BytesIO(raw), allow_pickle=False)
            except ValueError as e:
                if "pickle" in str(e) or "Object arrays" in str(e):
                    raise CheckpointError(f"{name}: entry {member!r} holds pickled Python objects, which "
                                          f"tn.load refuses to read (not a tinygrad_norm checkpoint?)") from None
                raise CheckpointError(f"{name} is corrupt: entry {member!r} is not a valid .npy array ({e})") \
                    from None
            except Exception as e:  # BadZipFile (bad CRC), zlib.error, EOFError, struct.error, ...
                raise CheckpointError(f"{name} is truncated or corrupt: cannot read entry {member!r} "
                                      f"({type(e).__name__}: {e})") from None
            arrays[member[:-4]] = array
    return arrays


def _preview(members, n=5):
    shown = ", ".join(repr(m) for m in members[:n])
    return f"{len(members)} entries ({shown}{', ...' if len(members) > n else ''})"


class _Decoder:
    """Rebuilds the object from the JSON tree and the arrays, validating as it goes."""

    def __init__(self, name, arrays):
        self.name = name
        self.arrays = arrays
        self.tensors = {}

    def fail(self, problem):
        raise CheckpointError(f"{self.name} is corrupt: {problem}")

    def decode_root(self):
        blob = self.arrays.pop(STRUCTURE_KEY)
        if blob.dtype != np.uint8 or blob.ndim != 1:
            self.fail(f"its '{STRUCTURE_KEY}' entry is a {blob.dtype} array of shape {blob.shape}, "
                      f"not the uint8 JSON bytes tn.save writes")
        try:
            header = json.loads(blob.tobytes().decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as e:
            self.fail(f"its '{STRUCTURE_KEY}' entry is not valid JSON ({e})")
        if not isinstance(header, dict) or header.get("format") != FORMAT or "root" not in header:
            raise CheckpointError(f"{self.name} is not a tinygrad_norm checkpoint: its '{STRUCTURE_KEY}' "
                                  f"entry does not describe a {FORMAT!r} file")
        version = header.get("version")
        if not isinstance(version, int) or version > VERSION:
            raise CheckpointError(f"{self.name} was written in checkpoint format version {version!r}; this "
                                  f"tinygrad_norm reads versions up to {VERSION} (upgrade tinygrad_norm)")
        return self.decode(header["root"])

    def decode(self, node):
        if node is None or isinstance(node, (bool, int, float, str)):
            return node
        if isinstance(node, list) or not isinstance(node, dict) or "t" not in node:
            self.fail(f"unexpected structure node {str(node)[:80]!r}")
        kind = node["t"]
        if kind in ("dict", "odict"):
            out = OrderedDict() if kind == "odict" else {}
            for pair in self._items(node):
                if not isinstance(pair, list) or len(pair) != 2 or not (
                        pair[0] is None or isinstance(pair[0], (bool, int, float, str))):
                    self.fail(f"bad dict entry {str(pair)[:80]!r} in the structure")
                out[pair[0]] = self.decode(pair[1])
            return out
        if kind in ("list", "tuple"):
            items = [self.decode(v) for v in self._items(node)]
            return tuple(items) if kind == "tuple" else items
        if kind == "float":
            try:
                return float(node["v"])
            except (KeyError, TypeError, ValueError):
                self.fail(f"bad float node {str(node)[:80]!r}")
        if kind == "tensor":
            key = node.get("k")
            if key in self.tensors:
                return self.tensors[key]
            array = self._array(key)
            t = Tensor._wrap(array)
            if node.get("requires_grad"):
                if array.dtype.kind != "f":
                    self.fail(f"tensor {key!r} has dtype {array.dtype} but is marked requires_grad")
                t.requires_grad = True
            self.tensors[key] = t
            return t
        if kind == "ndarray":
            return self._array(node.get("k"))
        if kind == "npscalar":
            array = self._array(node.get("k"))
            if array.ndim != 0:
                self.fail(f"numpy scalar {node.get('k')!r} is stored with shape {array.shape}")
            return array[()]
        self.fail(f"unknown node type {kind!r} in the structure")

    def _items(self, node):
        items = node.get("items")
        if not isinstance(items, list):
            self.fail(f"a {node['t']} node has no item list")
        return items

    def _array(self, key):
        if not isinstance(key, str) or key not in self.arrays:
            self.fail(f"the structure refers to array {key!r}, which the file does not contain")
        array = self.arrays[key]
        if not array.flags.writeable:
            array = array.copy()
        return array
