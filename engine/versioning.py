"""Worker Versioning: upgrades that never break open runs.

A worker started with WORKER_DEPLOYMENT_NAME and WORKER_BUILD_ID polls as that build of a
Temporal Worker Deployment. Runs are pinned to the build they started on: a run waiting a
week for approval finishes on the build that started it, however the interpreter changed
since, while new runs go to the deployment's current build. Which build is current is the
operator's call (`temporal worker deployment set-current-version`, or `set_current_build`
below); docs/operations.md walks through an upgrade.
"""

from __future__ import annotations

from temporalio.api.workflowservice.v1 import (
    DescribeWorkerDeploymentRequest,
    SetWorkerDeploymentCurrentVersionRequest,
)
from temporalio.client import Client
from temporalio.common import VersioningBehavior, WorkerDeploymentVersion
from temporalio.worker import WorkerDeploymentConfig

from engine.settings import Settings
from workflows.errors import UsageError


def deployment_config(settings: Settings) -> WorkerDeploymentConfig | None:
    """The worker's build, pinning each run to it; None when the worker is not versioned."""
    name, build = settings.worker_deployment, settings.worker_build_id
    if not name and not build:
        return None
    if not name or not build:
        raise UsageError("set both WORKER_DEPLOYMENT_NAME and WORKER_BUILD_ID, or neither")
    if "." in name:
        raise UsageError(f"WORKER_DEPLOYMENT_NAME {name!r}: Temporal's names take no '.'")
    return WorkerDeploymentConfig(
        version=WorkerDeploymentVersion(deployment_name=name, build_id=build),
        use_worker_versioning=True,
        default_versioning_behavior=VersioningBehavior.PINNED,
    )


async def set_current_build(client: Client, namespace: str, deployment: str, build: str) -> None:
    """Send new runs to `build` (its workers must be polling); open runs stay where they are."""
    await client.workflow_service.set_worker_deployment_current_version(
        SetWorkerDeploymentCurrentVersionRequest(
            namespace=namespace, deployment_name=deployment, build_id=build
        )
    )


async def current_build(client: Client, namespace: str, deployment: str) -> str | None:
    """The build new runs go to, or None when the deployment has none yet."""
    described = await client.workflow_service.describe_worker_deployment(
        DescribeWorkerDeploymentRequest(namespace=namespace, deployment_name=deployment)
    )
    routing = described.worker_deployment_info.routing_config
    return routing.current_deployment_version.build_id or None
