"""The stop ladder: ``stop_signal`` and ``stop_timeout`` as one value each, or as lists of rungs."""

from __future__ import annotations

from dataclasses import dataclass

from supervisor.config.fields import signal_name
from supervisor.machine.durations import parse_duration
from supervisor.machine.record import Record

Ladder = tuple[tuple[str, float], ...]


@dataclass(frozen=True, repr=False, eq=False)
class Invalid(Record):
    """A value the ladder could not read; the field's validator reports ``message`` under its key."""

    message: str


def read_ladder(signals: object, timeouts: object) -> tuple[Ladder | None, object, object]:
    """Return the rungs, and what ``stop_signal`` and ``stop_timeout`` hold: the first signal, the total.

    A single duration is split evenly between the rungs; a list needs one duration per signal.
    SIGKILL always ends the ladder, so a list may not name it.
    """
    names: list[str] = []
    signal_value: object
    if isinstance(signals, list):
        signal_value = _signal_list(signals, names)
    else:
        signal_value = signals  # the field's own validator reads a single name
        if isinstance(signals, str):
            try:
                names.append(signal_name(signals))
            except ValueError:
                names = []
    timeout_value = _timeouts(timeouts, len(names))
    if not names or isinstance(signal_value, Invalid) or isinstance(timeout_value, Invalid):
        return None, signal_value, timeout_value
    try:
        seconds = _seconds(timeouts, len(names))
    except ValueError:
        return None, signal_value, timeout_value  # the field's own validator says what is wrong
    return tuple(zip(names, seconds, strict=True)), signal_value, timeout_value


def _signal_list(signals: list[object], names: list[str]) -> object:
    if not signals:
        return Invalid("name at least one signal")
    for i, item in enumerate(signals):
        if not isinstance(item, str):
            return Invalid(f"item {i}: a signal name is a string (got {item!r})")
        try:
            name = signal_name(item)
        except ValueError as exc:
            return Invalid(f"item {i}: {exc}")
        if name == "SIGKILL":
            return Invalid("SIGKILL always ends the ladder after the last stop_timeout: do not list it")
        names.append(name)
    return names[0]


def _timeouts(timeouts: object, rungs: int) -> object:
    if not isinstance(timeouts, list):
        return timeouts  # the field's own validator reads a single duration
    if rungs and len(timeouts) != rungs:
        return Invalid(
            f"{len(timeouts)} durations for {rungs} stop signal{'s' if rungs > 1 else ''}: "
            "give one per signal, or a single duration to share between them"
        )
    total = 0.0
    for i, item in enumerate(timeouts):
        try:
            total += parse_duration(item)
        except ValueError as exc:
            return Invalid(f"item {i}: {exc}")
    return total


def _seconds(timeouts: object, rungs: int) -> list[float]:
    if isinstance(timeouts, list):
        return [parse_duration(t) for t in timeouts]
    return [parse_duration(timeouts) / rungs] * rungs
