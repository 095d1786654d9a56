"""tn.save / tn.load: round trips with types kept, the file format, atomic writes, and
clear errors for truncated, corrupted and foreign files."""
import io
import json
import math
import os
import stat
import zipfile
from collections import OrderedDict

import numpy as np
import pytest

import tinygrad_norm as tn
from tinygrad_norm import serialization
from tinygrad_norm.serialization import CheckpointError


def same(a, b):
    """Deep equality that also checks types and dtypes (and nan == nan)."""
    if isinstance(a, tn.Tensor):
        return (type(b) is tn.Tensor and a.dtype == b.dtype and a.shape == b.shape
                and a.requires_grad == b.requires_grad and np.array_equal(a.detach().numpy(), b.detach().numpy(), equal_nan=True))
    if isinstance(a, np.ndarray):
        return (type(b) is np.ndarray and a.dtype == b.dtype and a.shape == b.shape
                and np.array_equal(a, b, equal_nan=a.dtype.kind in "fc"))
    if isinstance(a, np.generic):
        return type(a) is type(b) and (a == b or (np.isnan(a) and np.isnan(b)))
    if isinstance(a, dict):
        return (type(a) is type(b) and list(a) == list(b)
                and all(type(k1) is type(k2) for k1, k2 in zip(a, b)) and all(same(a[k], b[k]) for k in a))
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, float) and math.isnan(a):
        return isinstance(b, float) and math.isnan(b)
    return type(a) is type(b) and a == b


def sample_object():
    tn.manual_seed(0)
    return {
        "model": OrderedDict([("fc.weight", tn.randn(3, 4)), ("fc.bias", tn.zeros(3, dtype=tn.float64)),
                              ("bn.num_batches_tracked", tn.tensor(np.array(7, np.int64)))]),
        "optimizer": {"state": {0: {"step": tn.tensor(np.float32(3.0)), "exp_avg": tn.randn(3, 4)}},
                      "param_groups": [{"lr": 1e-3, "betas": (0.9, 0.999), "amsgrad": False, "params": [0, 1]}]},
        "rng": tn.get_rng_state(),
        "labels": tn.tensor(np.arange(6, dtype=np.int64)),
        "mask": tn.tensor(np.array([True, False])),
        "pixels": np.arange(12, dtype=np.uint8).reshape(3, 4),
        "transposed": np.arange(6.0).reshape(2, 3).T,  # not contiguous
        "empty": np.zeros((0, 3), np.float32),
        "scalars": [1, -2 ** 70, 0.1, float("nan"), float("inf"), -float("inf"), True, None, "ünïcode / path"],
        "np_scalars": [np.float32(1.5), np.int64(-3), np.bool_(True), np.float64(2.5)],
        "keys": {1: "int", "1": "str", 2.5: "float", None: "none", True: "bool"},
        "nested": [(), [], {}, [[{"deep": tn.ones(2, requires_grad=True)}]]],
        "epoch": 3,
    }


def test_round_trip_keeps_values_types_and_dtypes(tmp_path):
    obj = sample_object()
    tn.save(obj, tmp_path / "ckpt.npz")
    out = tn.load(tmp_path / "ckpt.npz")
    assert same(obj, out)
    assert out["labels"].dtype == np.int64 and out["model"]["bn.num_batches_tracked"].dtype == np.int64
    assert out["nested"][3][0][0]["deep"].requires_grad
    assert isinstance(out["model"], OrderedDict) and type(out["optimizer"]) is dict
    assert out["optimizer"]["param_groups"][0]["betas"] == (0.9, 0.999)


def test_loaded_arrays_are_writable_and_independent(tmp_path):
    t = tn.randn(4)
    tn.save({"t": t}, tmp_path / "a.npz")
    out = tn.load(tmp_path / "a.npz")["t"]
    out.numpy()[0] = 42.0  # optimizers update loaded buffers in place
    assert t.numpy()[0] != 42.0


def test_a_tensor_stored_twice_comes_back_as_one_tensor(tmp_path):
    t = tn.randn(3)
    tn.save({"a": t, "b": [t]}, tmp_path / "a.npz")
    out = tn.load(tmp_path / "a.npz")
    assert out["a"] is out["b"][0]
    with np.load(tmp_path / "a.npz", allow_pickle=False) as z:
        assert len([k for k in z.files if k != "__structure__"]) == 1


def test_file_is_a_plain_npz_with_readable_keys(tmp_path):
    obj = sample_object()
    tn.save(obj, tmp_path / "ckpt.npz")
    with np.load(tmp_path / "ckpt.npz", allow_pickle=False) as z:
        files = set(z.files)
        np.testing.assert_array_equal(z["model/fc.weight"], obj["model"]["fc.weight"].numpy())
        np.testing.assert_array_equal(z["optimizer/state/0/exp_avg"], obj["optimizer"]["state"][0]["exp_avg"].numpy())
        structure = json.loads(z["__structure__"].tobytes())
    assert "rng" in files and "pixels" in files
    assert structure["format"] == "tinygrad_norm.checkpoint" and structure["version"] == 1
    with zipfile.ZipFile(tmp_path / "ckpt.npz") as zf:
        assert all(name.endswith(".npy") for name in zf.namelist())


def test_colliding_and_odd_keys_get_unique_entries(tmp_path):
    obj = {"a/b": tn.ones(1), "a": {"b": tn.zeros(1)}, "": np.ones(2), "__structure__": np.zeros(1),
           "..": np.full(1, 3.0)}
    tn.save(obj, tmp_path / "a.npz")
    assert same(obj, tn.load(tmp_path / "a.npz"))


def test_file_objects_and_str_paths(tmp_path):
    buf = io.BytesIO()
    tn.save({"x": tn.arange(3)}, buf)
    buf.seek(0)
    np.testing.assert_array_equal(tn.load(buf)["x"].numpy(), [0, 1, 2])
    path = str(tmp_path / "s.npz")
    tn.save([1, 2], path)
    assert tn.load(path, map_location="cpu", weights_only=True) == [1, 2]


def test_top_level_tensor_and_scalar(tmp_path):
    t = tn.randn(2, 2, dtype=tn.float64)
    tn.save(t, tmp_path / "t.npz")
    assert same(t, tn.load(tmp_path / "t.npz"))
    tn.save(3.25, tmp_path / "f.npz")
    assert tn.load(tmp_path / "f.npz") == 3.25


def test_rng_state_round_trip_reproduces_draws(tmp_path):
    tn.manual_seed(5)
    tn.randn(10)
    tn.save({"rng": tn.get_rng_state()}, tmp_path / "r.npz")
    expected = tn.randn(5).numpy()
    tn.manual_seed(99)
    tn.set_rng_state(tn.load(tmp_path / "r.npz")["rng"])
    np.testing.assert_array_equal(tn.randn(5).numpy(), expected)


@pytest.mark.parametrize("obj,match", [
    ({"f": len}, r"cannot store an object of type builtin_function_or_method at obj\['f'\]"),
    ({"a": [1, {2, 3}]}, r"type set at obj\['a'\]\[1\]"),
    ({"o": np.array([{}, 1], dtype=object)}, r"dtype object at obj\['o'\]"),
    ({(1, 2): 3}, "dict keys must be str, int, float, bool or None; obj has a key of type tuple"),
])
def test_unsupported_objects_raise_type_error_naming_the_place(obj, match, tmp_path):
    with pytest.raises(TypeError, match=match):
        tn.save(obj, tmp_path / "x.npz")
    assert not (tmp_path / "x.npz").exists() and os.listdir(tmp_path) == []


def test_reference_cycle_is_refused(tmp_path):
    a = {"x": 1}
    a["self"] = [a]
    with pytest.raises(ValueError, match=r"obj\['self'\]\[0\] contains itself"):
        tn.save(a, tmp_path / "x.npz")


# ------------------------------------------------------------------ atomicity

def test_overwrite_leaves_no_temporary_files_and_respects_umask(tmp_path):
    path = tmp_path / "c.npz"
    tn.save({"v": 1}, path)
    tn.save({"v": 2}, path)
    assert tn.load(path) == {"v": 2}
    assert os.listdir(tmp_path) == ["c.npz"]
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o666 & ~umask


def test_interrupted_write_keeps_the_old_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "c.npz"
    old = {"w": tn.randn(100)}
    tn.save(old, path)

    def dying_writer(fh, arrays):
        fh.write(b"PK\x03\x04 half a zip")
        raise KeyboardInterrupt  # e.g. Ctrl-C in the middle of writing

    monkeypatch.setattr(serialization, "_write_npz", dying_writer)
    with pytest.raises(KeyboardInterrupt):
        tn.save({"w": tn.zeros(100)}, path)
    monkeypatch.undo()
    assert same(old, tn.load(path))
    assert os.listdir(tmp_path) == ["c.npz"]


def test_failed_rename_keeps_the_old_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "c.npz"
    tn.save({"epoch": 1}, path)

    def failing_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(serialization.os, "replace", failing_replace)
    with pytest.raises(OSError, match="disk full"):
        tn.save({"epoch": 2}, path)
    monkeypatch.undo()
    assert tn.load(path) == {"epoch": 1} and os.listdir(tmp_path) == ["c.npz"]


def test_missing_directory_and_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        tn.save({}, tmp_path / "nope" / "c.npz")
    with pytest.raises(FileNotFoundError, match="missing.npz"):
        tn.load(tmp_path / "missing.npz")


# ------------------------------------------------------- corrupt and foreign files

@pytest.fixture(scope="module")
def checkpoint_bytes():
    """A real checkpoint: model-like tensors, an Adam state, a scheduler state, RNG, epoch."""
    tn.manual_seed(0)
    w, b = tn.randn(20, 10, requires_grad=True), tn.zeros(10, requires_grad=True)
    opt = tn.optim.Adam([w, b], lr=0.01)
    sched = tn.optim.lr_scheduler.StepLR(opt, 2)
    w.grad, b.grad = tn.randn(20, 10), tn.randn(10)
    opt.step()
    sched.step()
    obj = {"model": {"w": w, "b": b}, "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
           "rng": tn.get_rng_state(), "epoch": 1}
    buf = io.BytesIO()
    tn.save(obj, buf)
    return obj, buf.getvalue()


def test_real_checkpoint_restores_an_optimizer(checkpoint_bytes, tmp_path):
    obj, data = checkpoint_bytes
    out = tn.load(io.BytesIO(data))
    assert same(obj, out)
    assert set(out["optimizer"]["state"]) == {0, 1}  # int keys, as optimizers need
    p = [tn.zeros(20, 10, requires_grad=True), tn.zeros(10, requires_grad=True)]
    opt = tn.optim.Adam(p)
    opt.load_state_dict(out["optimizer"])
    assert opt.state[p[0]]["step"].item() == 1.0 and opt.param_groups[0]["lr"] == 0.01


def test_truncated_checkpoint_raises_naming_the_file(checkpoint_bytes, tmp_path):
    _, data = checkpoint_bytes
    path = tmp_path / "trunc.npz"
    offsets = sorted({0, 1, 2, 3, 10, 30, len(data) // 3, len(data) // 2, len(data) - 100, len(data) - 23,
                      len(data) - 22, len(data) - 1} | set(range(50, len(data), len(data) // 25)))
    for n in offsets:
        path.write_bytes(data[:n])
        with pytest.raises(CheckpointError, match=r"trunc\.npz.*(truncated or corrupt|empty|not a tinygrad_norm)"):
            tn.load(path)


def test_flipped_bytes_never_load_silently_wrong(checkpoint_bytes):
    """Every third byte flipped (two patterns): either a CheckpointError, or (a flip in
    zip metadata that no reader uses, like a timestamp) exactly the original content.
    Flips inside array data are always caught by the zip CRC-32."""
    obj, data = checkpoint_bytes
    errors = 0
    for i in range(0, len(data), 3):
        for pattern in (0x01, 0x80):
            corrupt = bytearray(data)
            corrupt[i] ^= pattern
            try:
                out = tn.load(io.BytesIO(bytes(corrupt)))
            except CheckpointError:
                errors += 1
                continue
            assert same(obj, out), f"byte {i} flipped with {pattern:#x} loaded different content"
    assert errors > len(data) // 3  # most flips are detected
    weights = obj["model"]["w"].detach().numpy().tobytes()
    start = data.find(weights)
    assert start > 0
    for i in range(start, start + len(weights), 97):  # data bytes: always detected
        corrupt = bytearray(data)
        corrupt[i] ^= 0x10
        with pytest.raises(CheckpointError, match="Bad CRC-32"):
            tn.load(io.BytesIO(bytes(corrupt)))


def _write(path, content):
    path.write_bytes(content) if isinstance(content, bytes) else path.write_text(content)
    return path


def test_foreign_files_raise_clear_errors(tmp_path):
    cases = []
    cases.append((_write(tmp_path / "empty.npz", b""), "empty.npz.* is empty"))
    cases.append((_write(tmp_path / "notes.txt", "epoch 3, loss 0.1\n"), "notes.txt.* not a zip/.npz archive"))
    cases.append((_write(tmp_path / "noise.npz", np.random.default_rng(0).bytes(500)), "noise.npz"))
    np.save(tmp_path / "single.npy", np.ones(3))
    cases.append((tmp_path / "single.npy", "single.npy.* a single .npy array"))
    np.savez(tmp_path / "plain.npz", a=np.ones(3), b=np.arange(2))
    cases.append((tmp_path / "plain.npz", "plain.npz.* without the '__structure__' entry.*'a.npy'"))
    np.savez(tmp_path / "objects.npz", o=np.array([{"x": 1}], dtype=object))
    cases.append((tmp_path / "objects.npz", "objects.npz.* without the '__structure__' entry"))
    with zipfile.ZipFile(tmp_path / "other.zip", "w") as zf:
        zf.writestr("readme.txt", "hello")
    cases.append((tmp_path / "other.zip", "other.zip.* without the '__structure__' entry"))
    for path, match in cases:
        with pytest.raises(CheckpointError, match=match):
            tn.load(path)


def _npz_with_structure(path, structure, **arrays):
    if not isinstance(structure, np.ndarray):
        structure = np.frombuffer(json.dumps(structure).encode(), np.uint8)
    np.savez(path, __structure__=structure, **arrays)
    return path


@pytest.mark.parametrize("structure,arrays,match", [
    ({"format": "something.else", "version": 1, "root": 1}, {}, "not a tinygrad_norm checkpoint: its '__structure__'"),
    ({"format": "tinygrad_norm.checkpoint", "version": 99, "root": 1}, {}, "format version 99.*upgrade"),
    ({"format": "tinygrad_norm.checkpoint", "version": 1, "root": {"t": "tensor", "k": "w"}}, {},
     "refers to array 'w', which the file does not contain"),
    ({"format": "tinygrad_norm.checkpoint", "version": 1, "root": {"t": "pickle"}}, {}, "unknown node type 'pickle'"),
    ({"format": "tinygrad_norm.checkpoint", "version": 1, "root": {"t": "tensor", "k": "i", "requires_grad": True}},
     {"i": np.arange(3)}, "dtype int64 but is marked requires_grad"),
    (np.array([1.0, 2.0]), {}, "'__structure__' entry is a float64 array"),
    (np.frombuffer(b"{not json", np.uint8), {}, "'__structure__' entry is not valid JSON"),
])
def test_malformed_structure_raises(tmp_path, structure, arrays, match):
    path = _npz_with_structure(tmp_path / "bad.npz", structure, **arrays)
    with pytest.raises(CheckpointError, match=match):
        tn.load(path)


def test_pickled_entry_is_refused_even_with_a_valid_structure(tmp_path):
    structure = {"format": "tinygrad_norm.checkpoint", "version": 1, "root": {"t": "ndarray", "k": "o"}}
    path = _npz_with_structure(tmp_path / "evil.npz", structure, o=np.array([{"x": 1}], dtype=object))
    with pytest.raises(CheckpointError, match="evil.npz.*'o.npy' holds pickled Python objects"):
        tn.load(path)


def test_atomic_write_gives_open_s_permissions_and_leaves_nothing_on_failure(tmp_path):
    """Files written atomically get 0o666 minus the umask (mkstemp's 0o600 would hide
    shared results), and a failed write leaves neither a temp file nor a changed target."""
    import os
    from tinygrad_norm._atomic import atomic_write
    umask = os.umask(0o022)
    try:
        path = tmp_path / "out.bin"
        atomic_write(path, lambda f: f.write(b"new"))
        assert path.read_bytes() == b"new" and (path.stat().st_mode & 0o777) == 0o644

        def broken(f):
            f.write(b"half")
            raise KeyboardInterrupt
        with pytest.raises(KeyboardInterrupt):
            atomic_write(path, broken)
        with pytest.raises(ValueError, match="rejected"):
            atomic_write(path, lambda f: f.write(b"bad"), verify=lambda tmp: (_ for _ in ()).throw(ValueError("rejected")))
        assert path.read_bytes() == b"new" and sorted(os.listdir(tmp_path)) == ["out.bin"]
    finally:
        os.umask(umask)
