"""The background usage sample: CPU over the interval between two samples, RSS from the last one."""

from __future__ import annotations

from dataclasses import dataclass

from supervisor.engine.units.program_status import Usage
from supervisor.engine.usage import TICK_S, UsageSampler
from supervisor.machine.clock import FakeClock


@dataclass
class Prog:
    main_pid: int | None
    usage: Usage | None = None


def test_cpu_is_the_tick_delta_over_the_interval_and_rss_the_last_sample() -> None:
    """Half the interval's ticks on a CPU is 50%; the first sample has RSS but no CPU yet."""
    clock = FakeClock()
    web, idle = Prog(10), Prog(None, Usage(9, 1.0, 1))
    ticks = {10: 0}
    sampler = UsageSampler(clock, lambda: [web, idle], 5.0, lambda roots: {p: (ticks[p], 4096) for p in roots})
    sampler.start(first_s=1.0)
    sampler.asked()  # someone looks: every 5 s
    clock.advance(1.0)
    assert web.usage == Usage(10, None, 4096)
    assert idle.usage is None  # no process: no figures
    ticks[10] = round(2.5 / TICK_S)
    clock.advance(5.0)
    assert web.usage is not None and web.usage.cpu_percent == 50.0
    sampler.close()
    clock.advance(50.0)
    assert web.usage.cpu_percent == 50.0  # closed: no more passes


def test_a_new_incarnation_starts_without_cpu() -> None:
    """After a restart the new pid's first sample has no CPU figure, never the old pid's."""
    clock = FakeClock()
    prog = Prog(10)
    sampler = UsageSampler(clock, lambda: [prog], 5.0, lambda roots: dict.fromkeys(roots, (100, 1)))
    sampler.start(0.0)
    sampler.asked()
    clock.advance(0.0)
    clock.advance(5.0)
    assert prog.usage is not None and prog.usage.cpu_percent == 0.0
    prog.main_pid = 11
    clock.advance(5.0)
    assert prog.usage == Usage(11, None, 1)


def test_unwatched_it_samples_every_30s_and_a_status_request_brings_back_5s() -> None:
    """Nobody asking: a pass every 30 s; a request makes the next pass come within 5 s, and 5 s apart for a minute."""
    clock = FakeClock()
    passes: list[float] = []

    def sample(roots: set[int]) -> dict[int, tuple[int, int]]:
        passes.append(clock.now() - start)
        return {}

    start = clock.now()
    sampler = UsageSampler(clock, lambda: [Prog(10)], 5.0, sample)
    sampler.start(first_s=1.0)
    clock.advance(1.0)
    clock.advance(60.0)
    assert passes == [1.0, 31.0, 61.0]
    clock.advance(2.0)  # t=63: someone asks; the pass due at 91 comes at 68 instead
    sampler.asked()
    clock.advance(15.0)
    assert passes[3:] == [68.0, 73.0, 78.0]
    clock.advance(120.0)
    assert passes[-1] - passes[-2] == 30.0  # a minute after the request: back to the idle pace
