"""A tiny experiment for the sweep tests, registered when this module is imported (as sweep
workers, new processes, import it): a regression net with Dropout and SGD momentum, so a
resumed run needs its RNG, momentum and data position back. `step_delay` slows it down so a
test can kill a worker or interrupt a sweep mid-run."""
import time

import numpy as np

import tinygrad_norm as tn
from tinygrad_norm import lab, nn
from tinygrad_norm.data import DataLoader
from tinygrad_norm.nn import functional as F
from tinygrad_norm.optim import SGD


def train(lab_, cfg):
    rng = np.random.default_rng(lab.sub_seed(cfg, "data"))
    X = rng.standard_normal((64, 4)).astype(np.float32)
    Y = (X @ np.array([[1.0], [-2.0], [0.5], [3.0]], np.float32) + 0.1).astype(np.float32)
    arms = {}
    for arm, scale in (("small", 1), ("large", 2)):
        tn.manual_seed(lab.sub_seed(cfg, "init"))
        model = nn.Sequential(nn.Linear(4, 8), nn.Dropout(0.2), nn.Linear(8, 1))
        optimizer = SGD(model.parameters(), lr=cfg["lr"] * scale, momentum=0.9)
        loader = DataLoader(X, Y, batch_size=8, shuffle=True, seed=lab.sub_seed(cfg, "order"))

        def loss_fn(x, y, model=model):
            if cfg["step_delay"]:
                time.sleep(cfg["step_delay"])
            return F.mse_loss(model(x), y)

        result = lab_.train(arm, model, optimizer, loader, steps=cfg["steps"], loss_fn=loss_fn,
                            checkpoint_every=10, log_every=5)
        result["weight"] = model[0].weight.detach().numpy().tolist()
        arms[arm] = result
    return arms


def claims(cfg, arms):
    small, large = arms["small"], arms["large"]
    ratio = small["train_loss"]["loss"][0] / small["train_loss"]["loss"][-1]
    return [lab.Claim.compare("the small-lr net's loss falls ≥ 2× (first vs last window)", ratio, ">=", 2,
                              measured=f"{ratio:.3g}×", section="1", log=True),
            lab.Claim.compare("the two nets end within 10 % of each other", abs(
                large["final_loss"] / small["final_loss"] - 1), "<=", 0.1, section="2"),
            lab.Claim("a made-up pass/fail row", "seed parity", "seed is even", cfg["seed"] % 2 == 0,
                      section="3"),
            lab.Claim.compare("the initial loss is positive", small["initial_loss"], ">", 0, section="c1", log=True,
                              kind="check")]


def figures(cfg, arms, out):
    return []


EXPERIMENT = lab.register(lab.Experiment(
    name="sweep_toy", title="A toy regression (sweep tests)", paper="none", protocol="§0",
    modes={m: dict(lr=0.01, steps=steps, step_delay=0.0) for m, steps in (("quick", 40), ("default", 60),
                                                                          ("full", 80))},
    train=train, claims=claims, figures=figures))
