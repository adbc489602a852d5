"""A program's configuration projected onto what its pure state machine needs."""

from __future__ import annotations

import signal

from supervisor.config.settings import ProgramConfig
from supervisor.machine.model import RestartPolicy


def restart_policy(cfg: ProgramConfig) -> RestartPolicy:
    """Project a program's configuration onto what the state machine needs."""
    health = cfg.health
    ladder = tuple((int(signal.Signals[name]), wait) for name, wait in cfg.stop_ladder())
    return RestartPolicy(
        policy=cfg.restart.policy,
        backoff=cfg.restart.backoff.policy(),
        reset_after_s=cfg.restart.reset_after,
        max_restarts=cfg.restart.max_restarts,
        window_s=cfg.restart.window,
        stop_timeout_s=cfg.stop_total,
        stop_ladder=ladder,
        stop_group=cfg.stop_group,
        has_health=health is not None,
        health_failure_threshold=health.failure_threshold if health else 3,
        health_start_period_s=health.start_period if health else 0.0,
        min_uptime_s=cfg.min_uptime,
        start_timeout_s=cfg.start_timeout,
        notify=cfg.notify,
        ready_log=cfg.ready_log is not None,
        start_first=cfg.restart.order == "start-first",
        success_codes=frozenset(cfg.restart.success_exit_codes),
        no_restart_codes=frozenset(cfg.restart.no_restart_exit_codes),
        max_age_s=cfg.max_age or 0.0,
        max_age_jitter=cfg.max_age_jitter,
        singleton=cfg.singleton is not None,
        fence_s=cfg.singleton_fence,
    )
