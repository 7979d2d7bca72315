"""Progress bars for every loop that runs longer than a few seconds (notebook and terminal).

tqdm draws a widget in Jupyter and a text bar in a terminal. Bars never redraw on every
step: postfixes are set with ``refresh=False`` and drawn at tqdm's interval, which
``make reproduce`` raises (``TQDM_MININTERVAL``) so that executed notebooks stay small.
"""

from __future__ import annotations

from typing import Iterable


class _Silent:
    """Stands in for a bar when progress is off."""

    def __init__(self, iterable=None):
        self.iterable = iterable

    def __iter__(self):
        return iter(self.iterable)

    def update(self, n: int = 1) -> None:
        pass

    def set_postfix(self, *args, **kwargs) -> None:
        pass

    def write(self, text: str) -> None:
        print(text)

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        pass


def progress(iterable: Iterable | None = None, *, total: int | None = None, desc: str | None = None,
             enabled: bool = True, unit: str = "it"):
    """A tqdm bar over ``iterable`` (or a manual one of ``total`` steps), or a silent stand-in."""
    if not enabled:
        return _Silent(iterable)
    from tqdm.auto import tqdm

    return tqdm(iterable, total=total, desc=desc, unit=unit, dynamic_ncols=True)
