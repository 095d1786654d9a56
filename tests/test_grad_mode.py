"""Grad-mode objects, in both forms (context manager and decorator), as in PyTorch:
no_grad, enable_grad, set_grad_enabled, inference_mode. A decorator sets the mode
only inside each call; applying it changes nothing."""
import pytest

import tinygrad_norm as tn

MODES = [  # (factory, the mode it sets inside)
    (lambda: tn.no_grad(), False),
    (lambda: tn.enable_grad(), True),
    (lambda: tn.set_grad_enabled(False), False),
    (lambda: tn.set_grad_enabled(True), True),
    (lambda: tn.inference_mode(), False),
    (lambda: tn.inference_mode(False), True),
]


@pytest.fixture(autouse=True)
def _restore_mode():
    before = tn.is_grad_enabled()
    yield
    tn.set_grad_enabled(before)


@pytest.mark.parametrize("outside", [True, False])
@pytest.mark.parametrize("make,inside", MODES)
def test_context_manager_sets_the_mode_inside_and_restores_it(make, inside, outside):
    tn.set_grad_enabled(outside)
    w = tn.ones(2, requires_grad=True)
    with make():
        assert tn.is_grad_enabled() is inside
        assert (w * 2).requires_grad is inside
    assert tn.is_grad_enabled() is outside


@pytest.mark.parametrize("outside", [True, False])
@pytest.mark.parametrize("make,inside", MODES)
def test_decorator_sets_the_mode_only_inside_the_call(make, inside, outside):
    tn.set_grad_enabled(outside)
    w = tn.ones(2, requires_grad=True)

    @make()
    def f(scale):
        return tn.is_grad_enabled(), (w * scale).requires_grad

    assert tn.is_grad_enabled() is outside            # applying the decorator changed nothing
    assert f(2) == (inside, inside)
    assert tn.is_grad_enabled() is outside
    assert f.__name__ == "f"


def test_set_grad_enabled_as_a_call_switches_now():
    tn.set_grad_enabled(False)
    assert not tn.is_grad_enabled()
    tn.set_grad_enabled(True)
    assert tn.is_grad_enabled()


@pytest.mark.parametrize("bare,inside", [(tn.no_grad, False), (tn.enable_grad, True),
                                         (tn.inference_mode, False)])
def test_bare_decorators(bare, inside):
    tn.set_grad_enabled(not inside)

    @bare
    def f():
        return tn.is_grad_enabled()

    assert f() is inside and tn.is_grad_enabled() is (not inside)


def test_decorated_function_restores_the_mode_when_it_raises_and_nests():
    @tn.no_grad()
    def boom():
        raise ValueError("x")

    @tn.enable_grad()
    def inner():
        return tn.is_grad_enabled()

    @tn.no_grad()
    def outer():
        return tn.is_grad_enabled(), inner(), tn.is_grad_enabled()

    with pytest.raises(ValueError):
        boom()
    assert tn.is_grad_enabled()
    assert outer() == (False, True, False)


def test_decorated_generator_runs_in_the_mode_between_yields_the_caller_is_unaffected():
    @tn.no_grad()
    def gen():
        yield tn.is_grad_enabled()
        yield tn.is_grad_enabled()

    it = gen()
    assert next(it) is False
    assert tn.is_grad_enabled()
    assert next(it) is False
    with pytest.raises(StopIteration):
        next(it)


def test_one_object_used_twice_and_reprs():
    ctx = tn.no_grad()
    with ctx:
        with ctx:
            assert not tn.is_grad_enabled()
        assert not tn.is_grad_enabled()
    assert tn.is_grad_enabled()
    assert repr(tn.set_grad_enabled(True)) == "set_grad_enabled(mode=True)"
    assert repr(tn.inference_mode()) == "inference_mode(mode=True)"
