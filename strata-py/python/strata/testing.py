"""Helpers for tutorials and tests: strata's embedded synthetic Landsat catalog (COGs and a
static STAC API) served on loopback, so the notebook runs without a network; and an array of
known computing time, for testing interrupts."""

from ._strata import EmbeddedCatalog, _slow_array


def slow_array(blocks: int, ms_per_block: int):
    """A ``(blocks, 8)`` array of ones whose every block takes ``ms_per_block`` ms to make."""
    return _slow_array(blocks, ms_per_block)


__all__ = ["EmbeddedCatalog", "slow_array"]
