"""The benchmark's tables: every baseline beside the engine, and the CPU ceiling that says
when a target is out of reach on the machine that ran it."""

from __future__ import annotations

from typing import Any

from bench.report import markdown


def results(cores: int, peer: dict[str, float] | None) -> dict[str, Any]:
    cpu_step = {"server": 12.0, "worker": 7.0, "provider": 1.0}  # 20 ms per step
    cpu_run = {"server": 45.0, "worker": 30.0, "provider": 5.0}  # 80 ms per run

    def subject() -> dict[str, Any]:
        return {
            "S1": {"median_ms": 16.0, "p95_ms": 19.0, "cpu_ms_per_step": cpu_step},
            "S2": {"median_ms": 800.0},
            "S3": {"runs": 1000, "runs_per_s": 24.0, "steps_per_s": 72.0, "peak_rss_mib": 290.0,
                   "cpu_ms_per_run": cpu_run},
            "S4": {"steps": 500, "first50_ms": 15.0, "last50_ms": 15.3, "ratio": 1.02},
            "S5": {"seconds_to_progress": 31.0, "completed_steps_called_again": 0},
        }  # fmt: skip

    return {
        "cores": cores,
        "stock": subject(),
        "tuned": subject(),
        "plain_temporal": subject(),
        "floor": {"S1_step_ms": 2.0, "S2_ms": 400.0},
        "peer_langgraph": peer,
    }


def test_the_results_table_puts_floor_plain_temporal_and_peer_beside_the_engine():
    table = markdown(results(2, {"S1_step_ms": 3.0, "S2_ms": 420.0}))
    header = table.splitlines()[0]
    assert "plain Temporal" in header and "floor" in header and "LangGraph" in header
    s1 = next(line for line in table.splitlines() if line.startswith("| S1 chain, per step (m"))
    assert "16.0 ms (8.0x floor)" in s1 and "3.0 ms (1.5x floor)" in s1


def test_a_peer_that_did_not_run_says_so():
    assert "not run" in markdown(results(2, None))


def test_the_cpu_table_gives_the_ceiling_the_cores_allow():
    two, four = markdown(results(2, None)), markdown(results(4, None))
    assert "| 2 cores allow at most |" in two
    assert "| 20.0 ms | 100.0 steps/s |" in two  # 2 cores x 1000 ms / 20 ms of CPU per step
    assert "| 80.0 ms | 25.0 runs/s |" in two
    assert "| 80.0 ms | 50.0 runs/s |" in four


def test_s2_alone_puts_the_engine_paced_and_not_beside_plain_temporal():
    def one(cold: float, out: list[int]) -> dict[str, Any]:
        return {"cold_median_ms": cold, "warm_median_ms": 900.0, "cold_x_plain": cold / 900,
                "warm_x_plain": 1.0, "cold_out_before_first_reply": out}  # fmt: skip

    s2 = {"items": 100, "latency_ms": 200.0, "rounds": 3, "remember": True,
          "first_ever_ms": 1200.0, "engine": one(990.0, [4, 60, 70]),
          "engine_unpaced": one(950.0, [50, 60, 70]),
          "plain_temporal": one(900.0, [60, 60, 70])}  # fmt: skip
    table = markdown({"cores": 2, "S2": s2})
    engine = next(line for line in table.splitlines() if line.startswith("| engine |"))
    assert "990 ms | 1.10x" in engine and "4 60 70" in engine
    assert "| engine, pacing off |" in table and "| plain Temporal |" in table
    assert "first worker ever: 1200 ms" in table
