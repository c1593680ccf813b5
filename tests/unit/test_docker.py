"""docker/ checked without a Docker engine.

The Compose file is parsed and held to the Compose specification's structural rules and to the
project's own (M20: every long-running service restarts by itself and reports its health); the
Dockerfile is parsed for pinned bases, a health check, build-context sources that exist and are
not ignored; and the production Orthanc configuration is rendered exactly as the container renders
it (docker/render_config.py, with the environment Compose would give the archive from
docker/.env.example) and validated with the plugin's own settings parser.
"""

from __future__ import annotations

import base64
import importlib.util
import json
import shutil
import subprocess
import sys
import threading
import tomllib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType
from typing import Any, cast

import pytest
import yaml

from archive_config import jsonc
from archive_config.settings import parse_settings
from testkit import docker_lint as lint

REPO = lint.REPO
DOCKER = lint.DOCKER_DIR
COMPOSE_FILE = DOCKER / "compose.yaml"
ENV_EXAMPLE = DOCKER / ".env.example"
DOCKERFILE = DOCKER / "Dockerfile"
DOCKERIGNORE = DOCKER / "Dockerfile.dockerignore"

# Services every production archive has (docker/README.md).
EXPECTED_SERVICES = {"render", "archive", "api", "worker", "door", "postgres", "minio"}
# The archive's processes (the launcher's supervisord programs), one container each, and the
# entrypoint role each runs (docker/entrypoint.sh).
ARCHIVE_ROLES = {"render": "render", "archive": "orthanc", "api": "api", "worker": "worker",
                 "door": "door"}


def _load_render_config() -> ModuleType:
    path = DOCKER / "render_config.py"
    spec = importlib.util.spec_from_file_location("docker_render_config", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


render_config = _load_render_config()


# --- fixtures ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def compose_raw() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE_FILE.read_text())
    assert isinstance(data, dict), "compose.yaml must be a mapping"
    return data


@pytest.fixture(scope="module")
def env_example() -> dict[str, str]:
    return lint.parse_env_file(ENV_EXAMPLE.read_text())


@pytest.fixture(scope="module")
def compose(compose_raw: dict[str, Any], env_example: dict[str, str]) -> dict[str, Any]:
    """compose.yaml as Compose sees it with docker/.env copied from .env.example."""
    return cast(dict[str, Any], lint.interpolate_tree(compose_raw, env_example))


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return cast(dict[str, dict[str, Any]], compose["services"])


@pytest.fixture(scope="module")
def one_shot(services: dict[str, dict[str, Any]]) -> set[str]:
    """Jobs that others wait for to *finish* (``service_completed_successfully``)."""
    names = set()
    for svc in services.values():
        for target, dep in lint.depends_on_mapping(svc.get("depends_on")).items():
            if dep.get("condition") == "service_completed_successfully":
                names.add(target)
    return names


@pytest.fixture(scope="module")
def instructions() -> list[lint.Instruction]:
    return lint.parse_dockerfile(DOCKERFILE.read_text())


@pytest.fixture(scope="module")
def stages(instructions: list[lint.Instruction]) -> list[lint.Stage]:
    return lint.dockerfile_stages(instructions)


@pytest.fixture(scope="module")
def final_stage(stages: list[lint.Stage]) -> lint.Stage:
    return stages[-1]


@pytest.fixture(scope="module")
def container_env(final_stage: lint.Stage, services: dict[str, dict[str, Any]]) -> dict[str, str]:
    """The archive container's environment: the image's ENV, then Compose's ``environment``."""
    env = final_stage.env()
    for key, value in lint.environment_mapping(services["archive"].get("environment")).items():
        assert value is not None, f"archive environment {key} has no value"
        env[key] = value
    return env


@pytest.fixture(scope="module")
def merged_text() -> str:
    """/etc/orthanc/archive.json as the image build writes it."""
    return str(render_config.dumps(render_config.merge(REPO / "config", DOCKER / "config")))


@pytest.fixture(scope="module")
def rendered(merged_text: str, container_env: dict[str, str]) -> dict[str, Any]:
    """What Orthanc reads in the container after the placeholders are filled."""
    return cast(dict[str, Any], render_config.render(merged_text, container_env))


# --- Compose: structure ------------------------------------------------------------------------


def test_compose_top_level_follows_the_spec(compose_raw: dict[str, Any]) -> None:
    unknown = {k for k in compose_raw if k not in lint.TOP_LEVEL_KEYS and not k.startswith("x-")}
    assert not unknown, f"unknown top-level keys: {unknown}"
    assert "version" not in compose_raw, "'version' is obsolete in the Compose specification"
    assert lint.is_project_name(compose_raw["name"])
    assert EXPECTED_SERVICES <= set(compose_raw["services"])


def test_service_keys_follow_the_spec(services: dict[str, dict[str, Any]]) -> None:
    for name, svc in services.items():
        assert lint.is_service_name(name), name
        unknown = {k for k in svc if k not in lint.SERVICE_KEYS and not k.startswith("x-")}
        assert not unknown, f"{name}: unknown keys {unknown}"
        assert "image" in svc or "build" in svc, f"{name}: needs an image or a build"
        for key in ("command", "entrypoint"):
            if key in svc:
                value = svc[key]
                assert isinstance(value, str) or (
                    isinstance(value, list) and all(isinstance(v, str) for v in value)
                ), f"{name}.{key} must be a string or a list of strings"
        env = lint.environment_mapping(svc.get("environment"))
        assert all(lint.is_env_name(k) for k in env), f"{name}: bad environment names {list(env)}"
        for key in ("stop_grace_period",):
            if key in svc:
                assert lint.is_duration(svc[key]), f"{name}.{key}: {svc[key]!r}"
        if "shm_size" in svc:
            assert lint.is_byte_size(svc["shm_size"]), f"{name}.shm_size: {svc['shm_size']!r}"
        if "logging" in svc:
            assert set(svc["logging"]) <= lint.LOGGING_KEYS and "driver" in svc["logging"]


def test_images_are_pinned(services: dict[str, dict[str, Any]]) -> None:
    for name, svc in services.items():
        if "image" in svc:
            ref = lint.parse_image(svc["image"])
            assert ref.pinned, f"{name}: image {svc['image']!r} is not pinned to a release tag"
        else:
            assert "build" in svc


def test_builds_point_at_files_that_exist(services: dict[str, dict[str, Any]]) -> None:
    for name, svc in services.items():
        build = svc.get("build")
        if build is None:
            continue
        build = {"context": build} if isinstance(build, str) else build
        assert set(build) <= lint.BUILD_KEYS, f"{name}.build: unknown keys"
        context = (COMPOSE_FILE.parent / build["context"]).resolve()
        assert context == REPO, f"{name}: the build context must be the repository root"
        dockerfile = context / build.get("dockerfile", "Dockerfile")
        assert dockerfile.is_file(), f"{name}: {dockerfile} does not exist"


def test_restart_policies(services: dict[str, dict[str, Any]], one_shot: set[str]) -> None:
    """M20: after a crash or a forced reboot every long-running service comes back by itself."""
    for name, svc in services.items():
        policy = str(svc.get("restart"))
        assert lint.is_restart_policy(policy), f"{name}: restart {policy!r} is not a policy"
        if name in one_shot:
            # A job that exits 0 would be restarted forever by unless-stopped/always.
            assert policy == "no" or policy.startswith("on-failure"), (
                f"{name} is a one-shot job (others wait for it to complete): restart must be"
                f" 'on-failure' or 'no', not {policy!r}"
            )
        else:
            assert policy == "unless-stopped", f"{name}: restart must be unless-stopped"


def _dockerfile_healthcheck(svc: dict[str, Any]) -> lint.Instruction | None:
    build = svc.get("build")
    if build is None:
        return None
    build = {"context": build} if isinstance(build, str) else build
    context = (COMPOSE_FILE.parent / build["context"]).resolve()
    path = context / build.get("dockerfile", "Dockerfile")
    final = lint.dockerfile_stages(lint.parse_dockerfile(path.read_text()))[-1]
    checks = final.all("HEALTHCHECK")
    return checks[-1] if checks and not checks[-1].rest.upper().startswith("NONE") else None


def _check_healthcheck(name: str, hc: dict[str, Any]) -> None:
    assert set(hc) <= lint.HEALTHCHECK_KEYS, f"{name}.healthcheck: unknown keys {set(hc)}"
    assert not hc.get("disable"), f"{name}: healthcheck disabled"
    test = hc["test"]
    if isinstance(test, list):
        assert test and test[0] in ("CMD", "CMD-SHELL") and len(test) > 1, f"{name}: test {test}"
        assert all(isinstance(t, str) for t in test)
    else:
        assert isinstance(test, str) and test.strip(), f"{name}: empty healthcheck test"
    for key in ("interval", "timeout", "start_period", "start_interval"):
        if key in hc:
            assert lint.is_duration(hc[key]), f"{name}.healthcheck.{key}: {hc[key]!r}"
    if "retries" in hc:
        assert isinstance(hc["retries"], int) and hc["retries"] > 0


def test_long_running_services_report_health(
    services: dict[str, dict[str, Any]], one_shot: set[str]
) -> None:
    for name, svc in services.items():
        if name in one_shot:
            continue
        if "healthcheck" in svc:
            _check_healthcheck(name, svc["healthcheck"])
        else:
            assert _dockerfile_healthcheck(svc) is not None, (
                f"{name}: no healthcheck in compose.yaml nor a HEALTHCHECK in its Dockerfile"
            )


def test_depends_on(services: dict[str, dict[str, Any]], one_shot: set[str]) -> None:
    graph: dict[str, list[str]] = {}
    for name, svc in services.items():
        deps = lint.depends_on_mapping(svc.get("depends_on"))
        graph[name] = list(deps)
        for target, dep in deps.items():
            assert target in services, f"{name} depends on unknown service {target}"
            assert target != name
            assert set(dep) <= lint.DEPENDS_ON_KEYS, f"{name}.depends_on.{target}: {set(dep)}"
            condition = dep.get("condition")
            assert condition in lint.DEPENDS_ON_CONDITIONS, f"{name}→{target}: {condition!r}"
            if condition == "service_healthy":
                has_check = "healthcheck" in services[target] or (
                    _dockerfile_healthcheck(services[target]) is not None
                )
                assert has_check, f"{name} waits for {target} to be healthy; it has no healthcheck"
            if condition == "service_started" and target not in one_shot:
                pytest.fail(f"{name}→{target}: wait for service_healthy, not service_started")
    assert lint.find_cycle(graph) is None, f"dependency cycle: {lint.find_cycle(graph)}"
    archive = lint.depends_on_mapping(services["archive"]["depends_on"])
    assert archive["postgres"]["condition"] == "service_healthy"


def test_volumes_are_declared_and_used(compose: dict[str, Any]) -> None:
    declared = compose.get("volumes") or {}
    for name, spec in declared.items():
        assert set(spec or {}) <= lint.VOLUME_KEYS, f"volume {name}: unknown keys"
    used: set[str] = set()
    for name, svc in compose["services"].items():
        for entry in svc.get("volumes", []):
            source = entry.split(":")[0] if isinstance(entry, str) else entry.get("source", "")
            target = entry.split(":")[1] if isinstance(entry, str) else entry.get("target", "")
            assert target.startswith("/"), f"{name}: volume target {target!r} must be absolute"
            if source.startswith((".", "/", "~")):
                assert (COMPOSE_FILE.parent / source).exists(), f"{name}: bind {source} missing"
            else:
                assert source in declared, f"{name}: named volume {source!r} is not declared"
                used.add(source)
    assert used == set(declared), f"declared but unused volumes: {set(declared) - used}"
    # Every stateful service keeps its data in a named volume.
    for name in ("archive", "postgres", "minio"):
        assert compose["services"][name].get("volumes"), f"{name} has no volume"


def test_ports(services: dict[str, dict[str, Any]]) -> None:
    published: dict[str, set[str]] = {}
    for name, svc in services.items():
        for entry in svc.get("ports", []):
            assert isinstance(entry, str), f"{name}: use the 'host:container' string form"
            mapping = lint.parse_port(entry)
            published.setdefault(name, set()).add(mapping.container)
    assert {"8042", "4242"} <= published.get("archive", set())
    assert "postgres" not in published, "PostgreSQL must not be published outside compose"


# --- Compose: variables ------------------------------------------------------------------------


def test_every_variable_is_in_env_example(
    compose_raw: dict[str, Any], env_example: dict[str, str]
) -> None:
    used = lint.referenced_variables(compose_raw)
    missing = used - set(env_example)
    assert not missing, f"compose.yaml uses variables not in .env.example: {sorted(missing)}"
    unused = set(env_example) - used
    assert not unused, f".env.example sets variables compose.yaml never uses: {sorted(unused)}"


def test_required_secrets_stop_compose_when_missing(compose_raw: dict[str, Any]) -> None:
    with pytest.raises(lint.LintError, match="required variable .* is missing"):
        lint.interpolate_tree(compose_raw, {})


def test_env_example_has_no_real_secrets(env_example: dict[str, str]) -> None:
    secrets = {k: v for k, v in env_example.items() if "PASSWORD" in k or "SECRET" in k}
    assert secrets, ".env.example should list the secrets an operator must set"
    for key, value in secrets.items():
        assert value.startswith(render_config.EXAMPLE_SECRET_PREFIX), (
            f"{key} in .env.example must be a placeholder starting with"
            f" {render_config.EXAMPLE_SECRET_PREFIX!r}"
        )


def test_docker_env_is_never_in_git_or_the_image() -> None:
    assert ".env" in (DOCKER / ".gitignore").read_text().split()
    rules = lint.read_dockerignore(DOCKERIGNORE)
    assert lint.is_ignored("docker/.env", rules)


# --- Dockerfile --------------------------------------------------------------------------------


def test_dockerfile_bases_are_pinned(stages: list[lint.Stage]) -> None:
    names = [s.name for s in stages if s.name]
    assert len(names) == len(set(names)), f"duplicate stage names: {names}"
    for stage in stages:
        earlier = {s.name for s in stages[: stage.index] if s.name}
        if stage.base.lower() in earlier:
            continue
        ref = lint.parse_image(stage.base)
        assert ref.pinned, f"stage {stage.index}: FROM {stage.base} is not pinned"
    assert lint.parse_image(stages[-1].base).repository == "orthancteam/orthanc"


def test_base_image_embeds_the_projects_python(instructions: list[lint.Instruction]) -> None:
    """The plugin's venv only loads into the Python the image's Python plugin embeds.

    The project runs on bookworm's Python 3.11 and trixie's 3.13 (requires-python); the image's
    own must be one it allows. orthancteam/orthanc release notes: 24.3.3 moved to debian:bookworm
    (Python 3.11); the release after 25.2.0 moved to ubuntu:noble (Python 3.12).
    """
    args = lint.global_arg_defaults(instructions)
    requires = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["requires-python"]
    major, minor = (int(x) for x in args["PYTHON_VERSION"].split("."))
    assert lint.python_allows(requires, (major, minor)), (
        f"requires-python {requires} does not allow the image's Python {args['PYTHON_VERSION']}")
    tag = lint.parse_image(args["ORTHANC_IMAGE"]).tag or ""
    release = tuple(int(p) for p in tag.split("-")[0].split("."))
    python_of_release = "3.11" if (24, 3, 3) <= release <= (25, 2, 0) else "not 3.11"
    assert python_of_release == args["PYTHON_VERSION"], (
        f"orthancteam/orthanc:{tag} does not embed Python {args['PYTHON_VERSION']}"
    )


def test_final_stage(final_stage: lint.Stage) -> None:
    healthchecks = final_stage.all("HEALTHCHECK")
    assert healthchecks, "the final stage needs a HEALTHCHECK"
    hc = healthchecks[-1]
    command = hc.rest.split(None, 1)
    assert command[0] == "CMD", hc.rest
    assert "healthcheck.py" in command[1]
    for flag in ("interval", "timeout", "start-period"):
        assert lint.is_duration(hc.flags.get(flag)), f"HEALTHCHECK --{flag}"
    entrypoint = final_stage.all("ENTRYPOINT")[-1].exec_form()
    cmd = final_stage.all("CMD")[-1].exec_form()
    assert entrypoint and cmd, "ENTRYPOINT and CMD in exec (JSON) form, so signals reach Orthanc"
    user = final_stage.all("USER")[-1].rest.split(":")[0]
    assert user not in ("root", "0"), "the archive must not run as root"
    env = final_stage.env()
    assert env["TCP_NODELAY"] == "1"
    for key in ("ARCHIVE_HOME", "ARCHIVE_DATA", "ARCHIVE_VENV"):
        assert env[key].startswith("/"), key
    for key in ("PYTHON_PLUGIN_ENABLED", "DICOM_WEB_PLUGIN_ENABLED", "GDCM_PLUGIN_ENABLED",
                "POSTGRESQL_PLUGIN_ENABLED"):
        assert env[key] == "true", key
    volumes = [v for ins in final_stage.all("VOLUME")
               for v in (ins.exec_form() or ins.rest.split())]
    assert env["ARCHIVE_DATA"] in volumes, "the data folder must be a volume"
    exposed = {p for ins in final_stage.all("EXPOSE") for p in ins.rest.split()}
    assert {"8042", "4242"} <= exposed


def test_copy_sources_exist_in_the_build_context(stages: list[lint.Stage]) -> None:
    rules = lint.read_dockerignore(DOCKERIGNORE)
    for stage in stages:
        earlier = {s.name for s in stages[: stage.index] if s.name}
        for ins in stage.all("COPY") + stage.all("ADD"):
            words = ins.exec_form() or ins.rest.split()
            assert len(words) >= 2, f"line {ins.line}: {ins.keyword} needs a source and a dest"
            if "from" in ins.flags:
                assert ins.flags["from"].lower() in earlier, f"line {ins.line}: unknown stage"
                continue
            for source in words[:-1]:
                assert "://" not in source and not source.startswith("git@"), (
                    f"line {ins.line}: {ins.keyword} of a remote URL; download in a RUN with a"
                    " checksum, or better, use a package registry"
                )
                matches = list(REPO.glob(source.rstrip("/"))) if source.strip("/") else [REPO]
                assert matches, f"line {ins.line}: {source} does not exist in the repository"
                for path in matches:
                    relative = path.relative_to(REPO).as_posix()
                    assert not lint.is_ignored(relative, rules), (
                        f"line {ins.line}: {source} is excluded by {DOCKERIGNORE.name}"
                    )
            if len(words) > 2:
                assert words[-1].endswith("/"), f"line {ins.line}: several sources need a dest/"
    assert not any(s.all("ADD") for s in stages), "use COPY; ADD only for what COPY cannot do"


def test_dockerignore_keeps_local_state_out() -> None:
    rules = lint.read_dockerignore(DOCKERIGNORE)
    for path in (".git", ".venv", ".cache/ohif/dist", "data/index", "test-artifacts",
                 "orthanc-plugins/regional_archive/__pycache__/x.pyc"):
        assert lint.is_ignored(path, rules), path
    for path in ("orthanc-plugins/entry.py", "config/orthanc.json", "pyproject.toml"):
        assert not lint.is_ignored(path, rules), path


def _copy_destination(stage: lint.Stage, source: str) -> str:
    for ins in stage.all("COPY"):
        words = ins.exec_form() or ins.rest.split()
        if source in words[:-1]:
            dest = words[-1]
            return dest + source.rstrip("/").rsplit("/", 1)[-1] if len(words) > 2 else dest
    raise AssertionError(f"the final stage does not COPY {source}")


def test_image_layout_matches_the_configuration(
    final_stage: lint.Stage, rendered: dict[str, Any]
) -> None:
    """The paths the configuration names are where the Dockerfile puts things."""
    env = final_stage.env()
    home = env["ARCHIVE_HOME"]
    plugins = _copy_destination(final_stage, "orthanc-plugins/").rstrip("/")
    assert plugins == f"{home}/orthanc-plugins"
    assert rendered["PythonScript"] == f"{home}/orthanc-plugins/entry.py"
    assert (REPO / "orthanc-plugins" / "entry.py").is_file()
    assert _copy_destination(final_stage, "/opt/archive/venv") == env["ARCHIVE_VENV"]
    viewer = rendered["Archive"]["Viewer"]["Directory"]
    assert _copy_destination(final_stage, "/ohif-dist") == viewer
    assert _copy_destination(final_stage, "docker/render_config.py").startswith(f"{home}/docker/")
    assert rendered["Archive"]["StateDirectory"].startswith(env["ARCHIVE_DATA"] + "/")


# --- the production Orthanc configuration ------------------------------------------------------


def test_config_files_are_valid_jsonc() -> None:
    for path in sorted((DOCKER / "config").glob("*.json")):
        data = jsonc.load_file(path)
        assert isinstance(data, dict) and data, path


def test_rendered_configuration(rendered: dict[str, Any], env_example: dict[str, str],
                                container_env: dict[str, str], services: dict[str, Any]) -> None:
    settings = parse_settings(rendered, "docker/config (rendered)")
    assert settings.tenant == env_example["ARCHIVE_TENANT"]
    assert settings.viewer.enabled and settings.viewer.directory
    pg = rendered["PostgreSQL"]
    assert pg["EnableIndex"] is True and pg["EnableStorage"] is True
    assert pg["Host"] in services, "PostgreSQL.Host must be the compose service"
    assert pg["Password"] == env_example["POSTGRES_PASSWORD"]
    assert pg["Database"] == services["postgres"]["environment"]["POSTGRES_DB"]
    assert pg["Username"] == services["postgres"]["environment"]["POSTGRES_USER"]
    assert isinstance(pg["Port"], int)
    assert rendered["RemoteAccessAllowed"] is True
    assert rendered["AuthenticationEnabled"] is True
    assert rendered["RegisteredUsers"] == {
        env_example["ARCHIVE_ADMIN_USER"]: env_example["ARCHIVE_ADMIN_PASSWORD"]
    }
    assert rendered["Plugins"] == ["/usr/share/orthanc/plugins"]
    assert rendered["DicomAet"] == env_example["ARCHIVE_AET"]
    # Orthanc's HTTP port is internal; the door has 8042, on every interface of the container.
    assert (rendered["HttpPort"], rendered["DicomPort"]) == (18042, 4242)
    assert settings.door.http_port == 8042 and settings.door.listen_address == "0.0.0.0"
    assert container_env["ARCHIVE_ADMIN_USER"] == env_example["ARCHIVE_ADMIN_USER"]


def test_every_placeholder_is_provided(merged_text: str, container_env: dict[str, str]) -> None:
    for ph in render_config.placeholders(merged_text):
        if ph.operator is None:
            assert ph.name in container_env, f"${{{ph.name}}} is set by neither image nor compose"


def test_no_secret_is_baked_into_the_image(merged_text: str, env_example: dict[str, str]) -> None:
    for key, value in env_example.items():
        if "PASSWORD" in key:
            assert value not in merged_text
    merged = json.loads(merged_text)
    assert merged["PostgreSQL"]["Password"].startswith("${")
    assert all(k.startswith("${") and v.startswith("${")
               for k, v in merged["RegisteredUsers"].items())


def test_container_refuses_example_secrets(
    merged_text: str, container_env: dict[str, str]
) -> None:
    with pytest.raises(render_config.RenderError, match="ARCHIVE_ADMIN_PASSWORD.*change-me"):
        render_config.check(merged_text, container_env)
    real = dict(container_env, ARCHIVE_ADMIN_PASSWORD="s3cret-Admin", ARCHIVE_DB_PASSWORD="pg-Pass")
    config = render_config.check(merged_text, real)
    assert config["PostgreSQL"]["Password"] == "pg-Pass"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"ARCHIVE_DB_PASSWORD": None}, "ARCHIVE_DB_PASSWORD is not set"),
        ({"ARCHIVE_DB_PASSWORD": 'pa"ss'}, "ARCHIVE_DB_PASSWORD contains '\"'"),
        ({"ARCHIVE_ADMIN_PASSWORD": "pa$HOME"}, "ARCHIVE_ADMIN_PASSWORD contains '\\$'"),
        ({"ARCHIVE_TENANT": "Bad Tenant"}, "Archive.Tenant"),
    ],
)
def test_container_stops_on_a_bad_environment(
    merged_text: str, container_env: dict[str, str], change: dict[str, str | None], message: str
) -> None:
    env = dict(container_env, ARCHIVE_ADMIN_PASSWORD="admin-Pass", ARCHIVE_DB_PASSWORD="pg-Pass")
    for key, value in change.items():
        if value is None:
            env.pop(key)
        else:
            env[key] = value
    with pytest.raises(render_config.RenderError, match=message):
        render_config.check(merged_text, env)


def test_render_config_cli(tmp_path: Path, merged_text: str, container_env: dict[str, str]) -> None:
    """The commands the Dockerfile (merge) and entrypoint.sh (check) run, as processes."""
    out = tmp_path / "etc" / "archive.json"
    script = str(DOCKER / "render_config.py")
    subprocess.run([sys.executable, script, "merge", "--base", str(REPO / "config"),
                    "--overrides", str(DOCKER / "config"), "--out", str(out)], check=True)
    assert out.read_text() == merged_text
    env = dict(container_env, ARCHIVE_ADMIN_PASSWORD="admin-Pass", ARCHIVE_DB_PASSWORD="pg-Pass",
               PATH="/usr/bin:/bin")
    ok = subprocess.run([sys.executable, script, "check", str(out)], env=env,
                        capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    del env["ARCHIVE_DB_HOST"]
    bad = subprocess.run([sys.executable, script, "check", str(out)], env=env,
                         capture_output=True, text=True)
    assert bad.returncode == 2
    assert "ARCHIVE_DB_HOST is not set" in bad.stderr


def test_entrypoint_script_is_valid_bash() -> None:
    script = DOCKER / "entrypoint.sh"
    subprocess.run(["bash", "-n", str(script)], check=True)
    text = script.read_text()
    assert "render_config.py\" check /etc/orthanc/archive.json" in text
    assert "exec /docker-entrypoint.sh \"$@\"" in text


# --- the health check, against a real local HTTP server ----------------------------------------


class _HealthHandler(BaseHTTPRequestHandler):
    answer: tuple[int, dict[str, Any]] = (200, {"status": "ok"})
    seen_auth: list[str | None] = []

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        type(self).seen_auth.append(self.headers.get("Authorization"))
        status, body = type(self).answer
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture()
def health_server() -> Iterator[tuple[str, type[_HealthHandler]]]:
    handler = type("Handler", (_HealthHandler,), {"seen_auth": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/api/health", handler
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize(
    ("answer", "code"),
    [((200, {"status": "ok", "tenant": "default"}), 0),
     ((503, {"status": "degraded"}), 1),
     ((401, {}), 1)],
)
def test_healthcheck_script(
    health_server: tuple[str, type[_HealthHandler]], answer: tuple[int, dict[str, Any]], code: int
) -> None:
    url, handler = health_server
    handler.answer = answer
    env = {"ARCHIVE_HEALTHCHECK_URL": url, "ARCHIVE_ADMIN_USER": "admin",
           "ARCHIVE_ADMIN_PASSWORD": "pw", "PATH": "/usr/bin:/bin"}
    result = subprocess.run([sys.executable, str(DOCKER / "healthcheck.py")], env=env,
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == code, result.stdout + result.stderr
    assert handler.seen_auth == ["Basic " + base64.b64encode(b"admin:pw").decode()]


def test_healthcheck_script_without_a_server() -> None:
    env = {"ARCHIVE_HEALTHCHECK_URL": "http://127.0.0.1:9/api/health", "PATH": "/usr/bin:/bin"}
    result = subprocess.run([sys.executable, str(DOCKER / "healthcheck.py")], env=env,
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 1 and "unhealthy" in result.stdout


# --- the archive's processes as containers ------------------------------------------------------


def test_archive_processes_are_containers_of_one_image(services: dict[str, dict[str, Any]]) -> None:
    image = services["archive"]["image"]
    for name, role in ARCHIVE_ROLES.items():
        svc = services[name]
        assert svc["image"] == image, f"{name} runs another image"
        assert svc["command"] == [role], f"{name}: entrypoint role {role!r}"
        volumes = [v.split(":")[1] for v in svc["volumes"]]
        assert "/var/lib/regional-archive" in volumes, f"{name} needs the data volume (run folder)"
        env = lint.environment_mapping(svc["environment"])
        assert env["ARCHIVE_DB_HOST"] == "postgres" and env["ARCHIVE_ORTHANC"] == "Orthanc"
    for name in ("api", "worker", "door"):
        # Loopback is shared with Orthanc's container: RemoteAccessAllowed stays false.
        assert services[name]["network_mode"] == "service:archive", name
        assert "ports" not in services[name], f"{name}: ports are published by 'archive'"
        assert lint.depends_on_mapping(services[name]["depends_on"])["archive"]["condition"] == (
            "service_healthy")
    assert lint.depends_on_mapping(services["archive"]["depends_on"])["render"]["condition"] == (
        "service_completed_successfully")


def test_entrypoint_roles_run_the_launchers_programs() -> None:
    """docker/entrypoint.sh runs, per role, the command of the supervisord program of that name."""
    from archive_door.layout import Executables, Layout
    from archive_door.programs import programs

    text = (DOCKER / "entrypoint.sh").read_text()
    for role in set(ARCHIVE_ROLES.values()):
        assert f"\n  {role})\n" in text, f"entrypoint.sh has no {role!r} role"
    layout = Layout(home=Path("/opt/archive"), data=Path("/var/lib/regional-archive"),
                    state=Path("/var/lib/regional-archive/state"))
    executables = Executables(python="/opt/archive/venv/bin/python", orthanc="Orthanc",
                              nginx="/usr/sbin/nginx", plugin_venv="/opt/archive/venv",
                              thread_stack_shim=Path("/opt/archive/.cache/lib/x.so"))
    settings = parse_settings({"Archive": {"StateDirectory": "/s", "Viewer": {"Directory": "/v"}}})
    by_name = {p.name: p for p in programs(settings, layout, executables)}
    for name in ("api", "worker-1", "door"):
        line = " ".join(by_name[name].command).replace(executables.python, '"$python"', 1)
        line = line.replace(f"{layout.run}/orthanc", '"$run/orthanc"')
        line = line.replace(f"--run {layout.run}", '--run "$run"')
        line = line.replace("--name worker-1", '--name "${ARCHIVE_WORKER_NAME:-worker-1}"')
        assert f"exec {line}\n" in text, f"{name}: exec {line}"
    assert "archive_door render --config" in text
    assert 'LD_PRELOAD="$ARCHIVE_HOME/.cache/lib/libarchive-thread-stack.so"' in text


def test_image_has_the_door_and_the_services(final_stage: lint.Stage, stages: list[lint.Stage]) -> None:
    runs = " ".join(ins.rest for ins in final_stage.all("RUN"))
    assert "nginx-light" in runs and "policy-rc.d" in runs
    assert "archive-services.pth" in runs
    assert _copy_destination(final_stage, "services/") == "/opt/archive/services/"
    shim = _copy_destination(final_stage, "/tmp/libarchive-thread-stack.so")
    assert shim == "/opt/archive/.cache/lib/libarchive-thread-stack.so"
    deps = " ".join(ins.rest for s in stages if s.name == "python-deps" for ins in s.all("RUN"))
    assert '"services"' in deps and '"launcher"' in deps
