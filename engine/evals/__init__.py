"""Evaluations (`starter.py eval`, `POST /evaluations`): a definition run on every row of a
dataset as children of one durable evaluation run, scored by evaluators, reported.

Modules: data (reading the dataset), evaluators (evaluator files, the comparisons), cache
(reusing what earlier evaluations finished), plan (the evaluation compiled to a definition:
shards, rows, judges, aggregates), run (starting it, reading back its rows), report (the JSON
report: metrics, intervals, comparisons), output (terminal, Markdown, HTML, JUnit, gates),
command (all of it, for the CLI and the REST API)."""
