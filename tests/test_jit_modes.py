"""Numba is lazy (nothing compiles or even imports at `import tinygrad_norm`)
and NUMBA_DISABLE_JIT=1 runs the same kernels as plain Python."""
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

PROGRAM = """
import json, numpy as np, tinygrad_norm as tn
rng = np.random.default_rng(0)
x = tn.tensor(rng.standard_normal((4, 5)), requires_grad=True)
w = tn.tensor(rng.standard_normal((5, 3)), requires_grad=True)
loss = ((x @ w).sigmoid() * x.sum(1, keepdim=True).tanh()).var(0).sum() + x.max() + x.relu().mean()
loss.backward()
print(json.dumps([loss.item(), x.grad.numpy().tolist(), w.grad.numpy().tolist()]))
"""


def _run(code, **env):
    full_env = dict(os.environ, PYTHONPATH=ROOT, **env)
    out = subprocess.run([sys.executable, "-c", code], env=full_env, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_import_does_not_import_numba():
    out = _run("import sys, tinygrad_norm, tinygrad_norm.nn\nprint('numba' in sys.modules)")
    assert out.strip() == "False"


def test_disable_jit_gives_the_same_numbers():
    jitted = json.loads(_run(PROGRAM))
    plain = json.loads(_run(PROGRAM, NUMBA_DISABLE_JIT="1"))
    assert abs(jitted[0] - plain[0]) < 1e-12
    for a, b in zip(jitted[1:], plain[1:]):
        for row_a, row_b in zip(a, b):
            assert max(abs(u - v) for u, v in zip(row_a, row_b)) < 1e-12


def test_allocator_setting_applies_and_can_be_declined():
    import platform
    code = "import tinygrad_norm as tn\nprint(tn._malloc.configured)"
    expected = "True" if platform.system() == "Linux" and platform.libc_ver()[0] == "glibc" else "False"
    assert _run(code).strip() == expected
    assert _run(code, TINYGRAD_NORM_MALLOC="system").strip() == "False"
    assert _run(code, MALLOC_TRIM_THRESHOLD_="1000000").strip() == "False"
