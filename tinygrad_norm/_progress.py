"""Progress bars: the one helper the lab, the downloads and the example scripts share.

    with progress_bar(total=15000, desc="ioffe/bn", unit="step") as bar:
        bar.update(1); bar.set_postfix_str("loss 0.1234")

It is tqdm (which handles terminals, notebooks, ETA and rates), set up once:
on a terminal the line is redrawn in place at most 10 times a second; into a
log file or a pipe it writes a line at most every 30 seconds, so CI logs stay
short. `enabled=False` gives a bar that prints nothing.
"""
import sys


def progress_bar(total, desc, initial=0, unit="it", enabled=True, stream=None, unit_scale=False):
    """A tqdm bar on `stream` (default stderr); use it as a context manager or call `.close()`."""
    from tqdm.auto import tqdm  # NOTE: imported here: `import tinygrad_norm` stays fast
    stream = stream if stream is not None else sys.stderr
    tty = hasattr(stream, "isatty") and stream.isatty()
    return tqdm(total=total, initial=initial, desc=desc, unit=unit, unit_scale=unit_scale, file=stream,
                disable=not enabled, mininterval=0.1 if tty else 30.0, dynamic_ncols=tty, leave=True)
