"""The benchmark's Markdown: one table of results beside the baselines and targets, one of
where the CPU went (which says when a target is out of reach on this machine), and S6's
rate-limited fan-out, each subject against the theoretical minimum."""

from __future__ import annotations

from typing import Any

from bench import validation, waiting_runs


def _ms(value: float, floor: float | None = None) -> str:
    return f"{value:.1f} ms" + (f" ({value / floor:.1f}x floor)" if floor else "")


def results_table(r: dict[str, Any]) -> str:
    floor, peer = r["floor"], r.get("peer_langgraph") or {}
    stock, tuned, plain = r["stock"], r["tuned"], r["plain_temporal"]
    s1f, s2f = floor["S1_step_ms"], floor["S2_ms"]
    s3, s4, s5 = tuned["S3"], tuned["S4"], tuned["S5"]

    def peer_cell(key: str, base: float) -> str:
        return _ms(peer[key], base) if key in peer else "not run"

    def runs(s3: dict[str, Any]) -> str:
        return f"{s3['runs_per_s']:.1f} runs/s"

    rows = [
        ("S1 chain, per step (median)", _ms(stock["S1"]["median_ms"], s1f),
         _ms(tuned["S1"]["median_ms"], s1f), _ms(plain["S1"]["median_ms"], s1f), _ms(s1f),
         peer_cell("S1_step_ms", s1f), "≤ 10 ms"),
        ("S1 chain, per step (p95)", _ms(stock["S1"]["p95_ms"]), _ms(tuned["S1"]["p95_ms"]),
         _ms(plain["S1"]["p95_ms"]), "", "", "≤ 15 ms"),
        ("S2 100-way fan-out, 200 ms calls", _ms(stock["S2"]["median_ms"], s2f),
         _ms(tuned["S2"]["median_ms"], s2f), _ms(plain["S2"]["median_ms"], s2f), _ms(s2f),
         peer_cell("S2_ms", s2f), "≤ 350 ms"),
        (f"S3 {s3['runs']} runs x 3 steps, 50 ms calls", runs(stock["S3"]),
         f"{runs(s3)}, {s3['steps_per_s']:.0f} steps/s, peak RSS {s3['peak_rss_mib']:.0f} MiB",
         runs(plain["S3"]), "", "", "≥ 40 runs/s"),
        (f"S4 {s4['steps']}-step run, last 50 / first 50", f"{stock['S4']['ratio']:.2f}x",
         f"{s4['ratio']:.2f}x ({s4['first50_ms']:.1f} → {s4['last50_ms']:.1f} ms)", "", "", "",
         "≤ 1.1x"),
        ("S5 killed worker: restart to progress", "",
         f"{s5['seconds_to_progress']:.1f} s; completed steps called again: "
         f"{s5['completed_steps_called_again']}", "", "", "", "≤ 31 s; 0"),
    ]  # fmt: skip
    header = (
        "| scenario | engine, stock server | engine, tuned server | plain Temporal, tuned "
        "| floor | LangGraph | target |"
    )
    lines = [header, "|" + " --- |" * 7]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def cpu_table(r: dict[str, Any]) -> str:
    """CPU per step (S1) and per run (S3) on the tuned server, by process, and the most the
    machine's cores could do if all of them did nothing else."""
    cores = r["cores"]
    lines = [
        "| CPU, tuned server | server | worker + client | fake provider | total "
        f"| {cores} cores allow at most |",
        "|" + " --- |" * 6,
    ]
    rows = (
        ("S1", "cpu_ms_per_step", "per step", "steps/s"),
        ("S3", "cpu_ms_per_run", "per 3-step run", "runs/s"),
    )
    for scenario, field, per, unit in rows:
        for label, key in (("engine", "tuned"), ("plain Temporal", "plain_temporal")):
            cpu = r[key][scenario][field]
            total = sum(cpu.values())
            lines.append(
                f"| {scenario} {label}, {per} | {cpu['server']:.1f} ms "
                f"| {cpu['worker']:.1f} ms | {cpu['provider']:.1f} ms | {total:.1f} ms "
                f"| {cores * 1000 / total:.1f} {unit} |"
            )
    return "\n".join(lines) + "\n"


S6_TARGET_X, S6_TARGET_SHARE = 1.15, 0.02
"""Within 1.15x of the minimum, with at most 2% of requests answered 429."""


def s6_table(s6: dict[str, Any]) -> str:
    """Each subject's wall time against the minimum, its 429s, and the 429 share over time
    (per window; the windows are what tell a learning burst from a steady overshoot)."""
    lines = [
        f"S6: {s6['items']} calls of {s6['cost_tokens']} tokens, {s6['concurrency']} at a time, "
        f"{s6['requests_per_minute']} requests and {s6['tokens_per_minute']} tokens a minute, "
        f"{s6['latency_s'] * 1000:.0f} ms calls: minimum {s6['minimum_s']:.2f} s",
        "",
        "| subject | wall time | x minimum | 429 share | tokens wasted | items failed "
        "| target met? |",
        "|" + " --- |" * 7,
    ]
    timelines = []
    for label, one in s6["subjects"].items():
        if one is None or "error" in one:
            lines.append(f"| {label} | {'not run' if one is None else one['error']} |" + " |" * 5)
            continue
        met = (
            one["x_minimum"] <= S6_TARGET_X
            and one["refused_share"] <= S6_TARGET_SHARE
            and one["items_failed"] == 0
        )
        finished = one["items_failed"] == 0  # else its time is how soon it gave up
        wall = f"{one['wall_s']:.1f} s" if finished else f"gave up after {one['wall_s']:.1f} s"
        times = f"{one['x_minimum']:.2f}x" if finished else "—"
        lines.append(
            f"| {label} | {wall} | {times} "
            f"| {one['refused_share']:.1%} ({one['refused']} of {one['served'] + one['refused']}) "
            f"| {one['tokens_refused']:,} | {one['items_failed']} | {'yes' if met else 'no'} |"
        )
        shares = ", ".join(f"{w['refused']}/{w['served'] + w['refused']}" for w in one["windows"])
        workers = one.get("workers") or []
        if len(workers) > 1:
            answered = " / ".join(str(w["ok"]) for w in workers)
            refused = " / ".join(str(w["refused"]) for w in workers)
            shares += f"; by worker: answered {answered}, 429s {refused}"
        if one.get("outcome", "completed") != "completed":
            shares += f"; the run {one['outcome'].split(':')[0]}"
        timelines.append(f"- {label}: {shares}")
    return (
        "\n".join(lines) + "\n\n429s / requests per 5 s window:\n\n" + "\n".join(timelines) + "\n"
    )


def markdown(r: dict[str, Any]) -> str:
    """The tables of what was run: S1-S5 together, S6 on its own (`--only S6`) or both."""
    parts = [results_table(r), cpu_table(r)] if "tuned" in r else []
    if "S6" in r:
        parts.append(s6_table(r["S6"]))
    if "V1" in r:
        parts.append(validation.table(r["V1"]))
    if "S8" in r:
        parts.append(waiting_runs.table(r["S8"]))
    if "S9" in r:
        from bench.evaluation import table as s9_table

        parts.append(s9_table(r["S9"]))
    if "S2" in r:
        from bench.fan_out import table

        parts.append(table(r["S2"]))
    return "\n".join(parts)
