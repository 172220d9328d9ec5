"""`starter.py import promptflow` given a run (a run.yml, or `pf run create`'s flags): the
flow under test imported (every variant), for an evaluation run the evaluation flow too with
the evaluators file and the per-row definition its `workflow` evaluator runs; everything
checked before anything is written; and the `eval` command that does what the run does, with
the ACTION_MODULES (and PYTHONPATH) its worker needs."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path

from engine.promptflow.importer import Imported, ImportRequest, import_flow, write_files
from engine.promptflow.run_command import (
    EvalCommand,
    eval_command,
    evaluators_yaml,
    row_definition_yaml,
)
from engine.promptflow.run_spec import RunSpec, VariantChoice
from workflows.errors import UsageError


@dataclass
class RunImport:
    imported: list[Imported]
    """The flow under test, then the evaluation flow (an evaluation run)."""
    command: EvalCommand
    compare: EvalCommand | None
    """The variants of the flow under test side by side, when it has any."""
    written: list[Path]


def import_run(
    spec: RunSpec,
    output: Path | None = None,
    model_map: dict[str, str] | None = None,
    partial: bool = False,
    cwd: Path | None = None,
) -> RunImport:
    here = (cwd or Path.cwd()).absolute()
    target = spec.run or spec
    maps = model_map or {}
    tested = import_flow(
        ImportRequest(target.flow, _shown(target.flow, here), output, maps, partial), write=False
    )
    _check_variant(tested, target.variant)
    imported = [tested]
    files = dict(tested.files)
    evaluation = None
    if spec.run is not None:
        evaluation = import_flow(
            ImportRequest(spec.flow, _shown(spec.flow, here), None, maps, partial), write=False
        )
        imported.append(evaluation)
        files |= evaluation.files
    folder = evaluation.definition.parent if evaluation else tested.definition.parent
    evaluators = folder / f"{spec.flow.name}.evaluators.yaml"

    def definition(flow: Path, variant: VariantChoice | None) -> str:
        return _shown(tested.definition_of(variant), here)

    command = eval_command(spec, definition, here, _shown(evaluators, here))
    if evaluation is not None and command.evaluation is not None:
        row = folder / f"{spec.flow.name}.row.yaml"
        score = "{{ score }}" if "score" in evaluation.outputs else None
        files[evaluators] = evaluators_yaml(command.evaluation, row.name, evaluation.aggregate)
        files[row] = row_definition_yaml(
            command.evaluation,
            os.path.relpath(evaluation.definition, row.parent),
            evaluation.outputs,
            score,
        )
    command = _with_modules(command, imported, here)
    compare = None
    if tested.variants:
        argv = ["eval", _shown(tested.definition, here), *command.argv[2:]]
        if "--id" in argv:
            del argv[argv.index("--id") : argv.index("--id") + 2]
        for choice, path in tested.variants.items():
            argv += ["--variant", f"{choice.variant}={_shown(path, here)}"]
        compare = dataclasses.replace(command, argv=argv)
    data = [run.data for run in (spec, spec.run) if run is not None and run.data is not None]
    write_files(files, [*data, *(path for flow in imported for path in flow.sources)])
    return RunImport(imported, command, compare, list(files))


def _check_variant(tested: Imported, choice: VariantChoice | None) -> None:
    if choice is None or choice in tested.variants or choice in tested.defaults:
        return
    known = [*map(str, tested.defaults), *map(str, tested.variants)]
    shown = ", ".join(known) if known else "none: no node of the flow uses variants"
    raise UsageError(f"variant {choice}: the flow has no such variant (its variants: {shown})")


def _with_modules(command: EvalCommand, imported: list[Imported], here: Path) -> EvalCommand:
    """The command with the actions modules the imports wrote (and their folders)."""
    modules = [i.module for i in imported if i.module is not None]
    if not modules:
        return command
    folders = list(dict.fromkeys(_shown(module.parent, here) for module in modules))
    environment = {
        "PYTHONPATH": os.pathsep.join(folders),
        "ACTION_MODULES": ",".join(module.stem for module in modules),
        **command.environment,
    }
    return dataclasses.replace(command, environment=environment)


def _shown(path: Path, here: Path) -> str:
    return os.path.relpath(path.absolute(), here)
