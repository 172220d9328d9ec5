"""The deployment files, checked for structure (no container engine runs in CI)."""

from __future__ import annotations

import json
import re

import yaml

from tests.conftest import ROOT

COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]


def test_the_cluster_has_its_services():
    assert set(SERVICES) == {
        "postgresql", "temporal", "temporal-ui", "worker", "api", "prometheus", "grafana"
    }  # fmt: skip


def test_every_image_is_pinned():
    for name, service in SERVICES.items():
        if "image" in service:
            image = service["image"]
            assert re.fullmatch(r"[\w./-]+:v?\d[\w.-]*", image), f"{name}: {image} is not pinned"


def test_services_wait_for_healthy_dependencies():
    for name, service in SERVICES.items():
        assert "healthcheck" in service, f"{name} has no healthcheck"
        for dependency, rule in service.get("depends_on", {}).items():
            assert rule == {"condition": "service_healthy"}, f"{name} -> {dependency}"
            assert dependency in SERVICES
    assert "postgresql" in SERVICES["temporal"]["depends_on"]
    assert "temporal" in SERVICES["worker"]["depends_on"]


def test_worker_is_built_here_scalable_and_wired_to_the_server():
    worker = SERVICES["worker"]
    assert worker["build"] == "."
    assert "ports" not in worker and "container_name" not in worker  # --scale worker=N works
    env = worker["environment"]
    assert env["TEMPORAL_ADDRESS"] == "temporal:7233"
    assert SERVICES["temporal-ui"]["environment"]["TEMPORAL_ADDRESS"] == "temporal:7233"
    assert worker["env_file"] == [{"path": ".env", "required": False}]
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.\d+-slim$", dockerfile, re.MULTILINE)
    assert re.search(r"^USER (?!root)\w+$", dockerfile, re.MULTILINE)
    assert "pip install --no-cache-dir ." in dockerfile


def test_prometheus_scrapes_the_workers_metrics_port():
    port = SERVICES["worker"]["environment"]["METRICS_PORT"]
    config = yaml.safe_load((ROOT / "deploy" / "prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert jobs["workers"]["dns_sd_configs"][0] == {
        "names": ["worker"],
        "type": "A",
        "port": int(port),
    }
    for volume in SERVICES["prometheus"]["volumes"] + SERVICES["grafana"]["volumes"]:
        assert (ROOT / volume.split(":")[0]).exists(), volume


def test_the_dashboard_charts_metrics_the_worker_exports():
    dashboard = json.loads((ROOT / "deploy/grafana/dashboards/llm-workflows.json").read_text())
    exported = set(re.findall(r'create_\w+\(\s*"(\w+)"', (ROOT / "activities/llm.py").read_text()))
    workflow_modules = ("steps.py", "step_types/llm_call_run.py", "budget.py", "interpreter.py")
    for module in (f"workflows/{name}" for name in workflow_modules):
        exported |= set(re.findall(r'create_\w+\(\s*"(\w+)"', (ROOT / module).read_text()))
    exported |= set(
        re.findall(r'create_counter\("(\w+)"', (ROOT / "activities/actions.py").read_text())
    )
    metric = r"\b((?:llm|action|budget|run)_\w+?)(?:_bucket|_sum)?\b(?=[\[{)\s])"
    for panel in dashboard["panels"]:
        used = set(re.findall(metric, panel["targets"][0]["expr"]))
        assert used and used <= exported, (panel["title"], used - exported)


def test_env_example_names_the_provider_keys_and_no_secret_is_committed():
    example = (ROOT / ".env.example").read_text()
    for name in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "TEMPORAL_TASK_QUEUE"):
        assert re.search(rf"^#? ?{name}=", example, re.MULTILINE)
    assert not re.search(r"^(OPENAI|ANTHROPIC)_API_KEY=\S", example, re.MULTILINE)
    assert ".env" in (ROOT / ".gitignore").read_text().splitlines()


def test_the_api_serves_on_all_interfaces_with_tokens_from_the_env_file():
    api = SERVICES["api"]
    assert api["build"] == "."
    assert api["command"] == [
        "python", "starter.py", "serve", "--host", "0.0.0.0", "--port", "8000"
    ]  # fmt: skip
    assert api["env_file"] == [{"path": ".env", "required": False}]  # API_TOKENS
    assert api["environment"]["TEMPORAL_ADDRESS"] == "temporal:7233"
    assert "8000:8000" in api["ports"] and "/health" in api["healthcheck"]["test"][1]


def test_the_image_copies_every_package_and_module_the_project_installs():
    """`pip install .` in the image needs every package and module pyproject.toml names."""
    import tomllib

    setup = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    dockerfile = (ROOT / "Dockerfile").read_text()
    copied = {
        name.rstrip("/").removeprefix("./")
        for line in dockerfile.splitlines()
        if line.startswith("COPY ")
        for name in line.split()[1:-1]
    }
    for package in setup["packages"]:
        top = package.split(".")[0]  # a subpackage is copied with its parent
        assert top in copied, f"the Dockerfile does not copy {top}/"
    for module in setup["py-modules"]:
        assert f"{module}.py" in copied, f"the Dockerfile does not copy {module}.py"
