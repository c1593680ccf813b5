"""Reading docker/ without a Docker engine: Dockerfile instructions, Compose interpolation, .env
files, .dockerignore patterns and the Compose specification's structural rules.

Each reader follows the documented behaviour of the real tool closely enough for a lint (the
Dockerfile reference for line continuations, comments and ``ARG`` in ``FROM``; the Compose
specification for interpolation, durations, restart policies and ``depends_on`` conditions), and
raises :class:`LintError` on what it does not understand rather than guessing.
"""

from __future__ import annotations

import json
import operator
import re
import shlex
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
DOCKER_DIR = REPO / "docker"


class LintError(Exception):
    """The file is not of a form this lint (or the real tool) accepts."""


# --- Dockerfile --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Instruction:
    keyword: str  # upper case
    args: str  # the rest of the (joined) line, flags included
    line: int  # 1-based line of the instruction's first line
    flags: Mapping[str, str] = field(default_factory=dict)
    rest: str = ""  # args without the leading --flags

    def exec_form(self) -> list[str] | None:
        """The JSON-array ("exec") form of the arguments, or None for the shell form."""
        text = self.rest.strip()
        if not text.startswith("["):
            return None
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            raise LintError(f"line {self.line}: {self.keyword} JSON form: {exc}") from exc
        if not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
            raise LintError(f"line {self.line}: {self.keyword} JSON form must be a list of strings")
        return value


@dataclass
class Stage:
    index: int
    name: str | None
    base: str  # FROM argument after global ARG substitution
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[Instruction]:
        return [i for i in self.instructions if i.keyword == keyword]

    def env(self) -> dict[str, str]:
        """ENV of this stage (``key=value`` pairs, or the legacy ``ENV key value``)."""
        out: dict[str, str] = {}
        for ins in self.all("ENV"):
            out.update(parse_key_values(ins.rest, ins.line))
        return out


_FLAG = re.compile(r"--([a-z-]+)(?:=(\S*))?")
_VAR = re.compile(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))")


def parse_key_values(text: str, line: int) -> dict[str, str]:
    words = shlex.split(text)
    if words and "=" not in words[0]:
        if len(words) < 2:
            raise LintError(f"line {line}: expected 'key=value' or 'key value'")
        return {words[0]: " ".join(words[1:])}
    out: dict[str, str] = {}
    for word in words:
        if "=" not in word:
            raise LintError(f"line {line}: {word!r} is not key=value")
        key, value = word.split("=", 1)
        out[key] = value
    return out


def parse_dockerfile(text: str) -> list[Instruction]:
    """Instructions of a Dockerfile: comments dropped, ``\\`` continuations joined."""
    lines = text.splitlines()
    escape = "\\"
    for raw in lines:  # parser directives come first, before any other line
        m = re.match(r"#\s*escape\s*=\s*(\S)\s*$", raw)
        if m:
            escape = m[1]
        elif not re.match(r"#\s*\w+\s*=", raw):
            break
    instructions: list[Instruction] = []
    buffer: list[str] = []
    start = 0
    for number, raw in enumerate(lines, start=1):
        stripped = raw.strip()
        if stripped.startswith("#") or (not stripped and buffer):
            continue  # comments and empty lines inside a continuation are removed
        if not stripped:
            continue
        if not buffer:
            start = number
        if stripped.startswith("<<") or re.search(r"<<-?\s*['\"]?[A-Z]+['\"]?\s*$", stripped):
            raise LintError(f"line {number}: heredocs are not supported by this lint")
        if stripped.endswith(escape):
            buffer.append(stripped[:-1].rstrip())
            continue
        buffer.append(stripped)
        joined = " ".join(buffer)
        buffer = []
        keyword, _, args = joined.partition(" ")
        flags: dict[str, str] = {}
        rest = args.strip()
        while True:
            m = _FLAG.match(rest)
            if not m:
                break
            flags[m[1]] = m[2] if m[2] is not None else "true"
            rest = rest[m.end():].lstrip()
        instructions.append(Instruction(keyword.upper(), args.strip(), start, flags, rest))
    if buffer:
        raise LintError("the Dockerfile ends inside a line continuation")
    return instructions


def substitute_args(text: str, args: Mapping[str, str], line: int) -> str:
    def replace(m: re.Match[str]) -> str:
        name = m[1] or m[2]
        if name not in args:
            raise LintError(f"line {line}: ${name} is not a global ARG with a default")
        return args[name]

    return _VAR.sub(replace, text)


def dockerfile_stages(instructions: Iterable[Instruction]) -> list[Stage]:
    """Split into stages; ``FROM`` arguments get the defaults of the ARGs declared before it."""
    global_args: dict[str, str] = {}
    stages: list[Stage] = []
    for ins in instructions:
        if ins.keyword == "FROM":
            words = ins.rest.split()
            if len(words) not in (1, 3) or (len(words) == 3 and words[1].lower() != "as"):
                raise LintError(f"line {ins.line}: FROM must be 'FROM image [AS name]'")
            base = substitute_args(words[0], global_args, ins.line)
            name = words[2].lower() if len(words) == 3 else None
            stages.append(Stage(len(stages), name, base))
        elif not stages:
            if ins.keyword != "ARG":
                raise LintError(f"line {ins.line}: only ARG may come before the first FROM")
            key, sep, value = ins.rest.partition("=")
            if sep:
                global_args[key.strip()] = value.strip().strip('"')
        else:
            stages[-1].instructions.append(ins)
    if not stages:
        raise LintError("no FROM instruction")
    return stages


def global_arg_defaults(instructions: Iterable[Instruction]) -> dict[str, str]:
    out: dict[str, str] = {}
    for ins in instructions:
        if ins.keyword == "FROM":
            break
        key, sep, value = ins.rest.partition("=")
        if ins.keyword == "ARG" and sep:
            out[key.strip()] = value.strip().strip('"')
    return out


@dataclass(frozen=True)
class ImageRef:
    repository: str
    tag: str | None
    digest: str | None

    @property
    def pinned(self) -> bool:
        """A digest, or a tag that is not ``latest`` (nor a floating major such as ``16``)."""
        if self.digest:
            return True
        return bool(self.tag) and self.tag != "latest" and not re.fullmatch(r"\d+", self.tag or "")


def parse_image(ref: str) -> ImageRef:
    """``[registry/]repo[:tag][@digest]`` (a ``:port`` in the registry is not a tag)."""
    if not ref or any(c.isspace() for c in ref) or "$" in ref:
        raise LintError(f"not an image reference: {ref!r}")
    rest, _, digest = ref.partition("@")
    last = rest.rsplit("/", 1)[-1]
    tag = None
    if ":" in last:
        rest, tag = rest.rsplit(":", 1)
    if digest and not re.fullmatch(r"sha256:[0-9a-f]{64}", digest):
        raise LintError(f"{ref!r}: bad digest")
    if tag is not None and not re.fullmatch(r"[\w][\w.-]{0,127}", tag):
        raise LintError(f"{ref!r}: bad tag")
    return ImageRef(rest, tag, digest or None)


def python_allows(requires: str, version: tuple[int, int]) -> bool:
    """Whether a ``requires-python`` of ``>=``/``>``/``<``/``<=``/``==``/``!=`` clauses admits
    ``major.minor`` (any micro release): enough for this project's ``>=3.11,<3.12``."""
    ops = {">=": operator.ge, ">": operator.gt, "<": operator.lt, "<=": operator.le,
           "==": operator.eq, "!=": operator.ne}
    for clause in requires.split(","):
        m = re.fullmatch(r"\s*(>=|<=|==|!=|>|<)\s*(\d+)\.(\d+)(?:\.(?:\d+|\*))?\s*", clause)
        if not m:
            raise LintError(f"requires-python clause {clause!r} is not understood")
        bound = (int(m[2]), int(m[3]))
        if not ops[m[1]](version, bound):
            return False
    return True


# --- .dockerignore -----------------------------------------------------------------------------


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    out = ""
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out += "(?:.*/)?"
            i += 3
        elif pattern.startswith("**", i):
            out += ".*"
            i += 2
        elif pattern[i] == "*":
            out += "[^/]*"
            i += 1
        elif pattern[i] == "?":
            out += "[^/]"
            i += 1
        else:
            out += re.escape(pattern[i])
            i += 1
    return re.compile(out + r"\Z")


def read_dockerignore(path: Path) -> list[tuple[bool, re.Pattern[str]]]:
    """(exclude?, regex) per pattern line, in order (a later ``!pattern`` re-includes)."""
    rules: list[tuple[bool, re.Pattern[str]]] = []
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        exclude = not line.startswith("!")
        line = line.lstrip("!").strip().strip("/")
        line = re.sub(r"/+", "/", line)
        rules.append((exclude, _pattern_regex(line)))
    return rules


def is_ignored(relative: str, rules: list[tuple[bool, re.Pattern[str]]]) -> bool:
    """Whether ``relative`` (or a folder above it) is left out of the build context."""
    parts = relative.strip("/").split("/")
    candidates = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    ignored = False
    for exclude, regex in rules:
        if any(regex.match(c) for c in candidates):
            ignored = exclude
    return ignored


# --- Compose -----------------------------------------------------------------------------------

# https://github.com/compose-spec/compose-spec (spec.md): the keys each level may hold.
TOP_LEVEL_KEYS = {"version", "name", "include", "services", "networks", "volumes", "secrets",
                  "configs", "models"}
SERVICE_KEYS = {
    "annotations", "attach", "blkio_config", "build", "cap_add", "cap_drop", "cgroup",
    "cgroup_parent", "command", "configs", "container_name", "cpu_count", "cpu_percent",
    "cpu_period", "cpu_quota", "cpu_rt_period", "cpu_rt_runtime", "cpu_shares", "cpus", "cpuset",
    "credential_spec", "depends_on", "deploy", "develop", "device_cgroup_rules", "devices", "dns",
    "dns_opt", "dns_search", "domainname", "driver_opts", "entrypoint", "env_file", "environment",
    "expose", "extends", "external_links", "extra_hosts", "gpus", "group_add", "healthcheck",
    "hostname", "image", "init", "ipc", "isolation", "labels", "label_file", "links", "logging",
    "mac_address", "mem_limit", "mem_reservation", "mem_swappiness", "memswap_limit", "models",
    "network_mode", "networks", "oom_kill_disable", "oom_score_adj", "pid", "pids_limit",
    "platform", "ports", "post_start", "pre_stop", "privileged", "profiles", "provider",
    "pull_policy", "read_only", "restart", "runtime", "scale", "secrets", "security_opt",
    "shm_size", "stdin_open", "stop_grace_period", "stop_signal", "storage_opt", "sysctls",
    "tmpfs", "tty", "ulimits", "use_api_socket", "user", "userns_mode", "uts", "volumes",
    "volumes_from", "working_dir",
}
BUILD_KEYS = {"context", "dockerfile", "dockerfile_inline", "args", "ssh", "cache_from",
              "cache_to", "additional_contexts", "entitlements", "extra_hosts", "isolation",
              "labels", "network", "no_cache", "platforms", "privileged", "pull", "secrets",
              "shm_size", "tags", "target", "ulimits"}
HEALTHCHECK_KEYS = {"test", "interval", "timeout", "retries", "start_period", "start_interval",
                    "disable"}
DEPENDS_ON_KEYS = {"condition", "restart", "required"}
DEPENDS_ON_CONDITIONS = {"service_started", "service_healthy", "service_completed_successfully"}
VOLUME_KEYS = {"driver", "driver_opts", "external", "labels", "name"}
LOGGING_KEYS = {"driver", "options"}

_RESTART = re.compile(r"no|always|unless-stopped|on-failure(:\d+)?\Z")
_DURATION = re.compile(r"(\d+(\.\d+)?(us|ms|s|m|h))+\Z")
_BYTES = re.compile(r"\d+(\.\d+)?([bkmg]b?)?\Z", re.IGNORECASE)
_SERVICE_NAME = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9._-]*\Z")
_PROJECT_NAME = re.compile(r"[a-z0-9][a-z0-9_-]*\Z")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_PORT = re.compile(
    r"(?:(?P<ip>\d{1,3}(?:\.\d{1,3}){3}|\[[0-9a-fA-F:]+\]):)?"
    r"(?:(?P<host>\d+(?:-\d+)?):)?(?P<container>\d+(?:-\d+)?)(?:/(?P<proto>tcp|udp|sctp))?\Z"
)


def is_duration(value: Any) -> bool:
    return isinstance(value, str) and bool(_DURATION.match(value))


def is_restart_policy(value: Any) -> bool:
    return isinstance(value, str) and bool(_RESTART.match(value))


def is_byte_size(value: Any) -> bool:
    return isinstance(value, int) or (isinstance(value, str) and bool(_BYTES.match(value)))


def is_service_name(value: str) -> bool:
    return bool(_SERVICE_NAME.match(value))


def is_project_name(value: str) -> bool:
    return bool(_PROJECT_NAME.match(value))


def is_env_name(value: str) -> bool:
    return bool(_ENV_NAME.match(value))


@dataclass(frozen=True)
class PortMapping:
    ip: str | None
    host: str | None
    container: str
    protocol: str


def parse_port(value: str) -> PortMapping:
    m = _PORT.match(value)
    if not m:
        raise LintError(f"port {value!r} is not [ip:][host:]container[/protocol]")
    for part in (m["host"], m["container"]):
        for number in (part or "1").split("-"):
            if not 1 <= int(number) <= 65535:
                raise LintError(f"port {value!r}: {number} is out of range")
    return PortMapping(m["ip"], m["host"], m["container"], m["proto"] or "tcp")


# Compose interpolation: $$ escapes; $NAME; ${NAME}; ${NAME:-d} ${NAME-d}; ${NAME:?e} ${NAME?e};
# ${NAME:+r} ${NAME+r}. Defaults are not interpolated again here (ours are literals).
_INTERPOLATION = re.compile(
    r"\$(?:(?P<escaped>\$)"
    r"|\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>[^}]*))?\}"
    r"|(?P<named>[A-Za-z_][A-Za-z0-9_]*)"
    r"|(?P<invalid>))"
)


def interpolate(value: str, env: Mapping[str, str]) -> str:
    """One string with Compose's interpolation; ``${X:?message}`` raises with the message."""

    def replace(m: re.Match[str]) -> str:
        if m["escaped"]:
            return "$"
        if m["invalid"] is not None and m["braced"] is None and m["named"] is None:
            raise LintError(f"invalid interpolation in {value!r}: a lone '$' (write '$$')")
        name = m["braced"] or m["named"]
        op, arg = m["op"], m["arg"] or ""
        current = env.get(name)
        if "$" in arg:
            raise LintError(f"{value!r}: nested interpolation is not supported by this lint")
        if op == ":-":
            return current if current else arg
        if op == "-":
            return current if current is not None else arg
        if op == ":?":
            if not current:
                raise LintError(f"required variable {name} is missing a value: {arg}")
            return current
        if op == "?":
            if current is None:
                raise LintError(f"required variable {name} is missing a value: {arg}")
            return current
        if op == ":+":
            return arg if current else ""
        if op == "+":
            return arg if current is not None else ""
        return current if current is not None else ""

    return _INTERPOLATION.sub(replace, value)


def interpolate_tree(node: Any, env: Mapping[str, str]) -> Any:
    """Compose interpolates every string value (mapping keys are left as they are)."""
    if isinstance(node, str):
        return interpolate(node, env)
    if isinstance(node, list):
        return [interpolate_tree(v, env) for v in node]
    if isinstance(node, dict):
        return {k: interpolate_tree(v, env) for k, v in node.items()}
    return node


def referenced_variables(node: Any) -> set[str]:
    """Names of every variable a Compose tree's string values interpolate."""
    if isinstance(node, str):
        names = set()
        for m in _INTERPOLATION.finditer(node):
            if not m["escaped"] and (m["braced"] or m["named"]):
                names.add(m["braced"] or m["named"])
        return names
    if isinstance(node, list):
        return set().union(*(referenced_variables(v) for v in node)) if node else set()
    if isinstance(node, dict):
        return set().union(*(referenced_variables(v) for v in node.values())) if node else set()
    return set()


def parse_env_file(text: str) -> dict[str, str]:
    """Compose's ``.env`` format: ``KEY=VALUE`` lines, ``#`` comments, optional quotes."""
    out: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[len("export "):].lstrip()
        key, sep, value = line.partition("=")
        key = key.strip()
        if not sep or not is_env_name(key):
            raise LintError(f".env line {number}: expected KEY=VALUE, got {raw!r}")
        value = value.strip()
        if value[:1] in ("'", '"'):
            quote = value[0]
            end = value.find(quote, 1)
            if end < 0:
                raise LintError(f".env line {number}: unterminated quote")
            value = value[1:end]
        else:
            value = re.split(r"\s+#", value, maxsplit=1)[0].rstrip()
        if key in out:
            raise LintError(f".env line {number}: {key} is set twice")
        out[key] = value
    return out


def environment_mapping(value: Any) -> dict[str, str | None]:
    """A service's ``environment`` (mapping or ``KEY=VALUE`` list) as a mapping."""
    if value is None:
        return {}
    if isinstance(value, dict):
        return {str(k): None if v is None else str(v) for k, v in value.items()}
    if isinstance(value, list):
        out: dict[str, str | None] = {}
        for item in value:
            key, sep, val = str(item).partition("=")
            out[key] = val if sep else None
        return out
    raise LintError(f"environment must be a mapping or a list, got {type(value).__name__}")


def depends_on_mapping(value: Any) -> dict[str, dict[str, Any]]:
    """``depends_on`` in its long form (the short list form means ``service_started``)."""
    if value is None:
        return {}
    if isinstance(value, list):
        return {str(name): {"condition": "service_started"} for name in value}
    if isinstance(value, dict):
        return {str(k): dict(v or {}) for k, v in value.items()}
    raise LintError("depends_on must be a list or a mapping")


def find_cycle(graph: Mapping[str, Iterable[str]]) -> list[str] | None:
    """A dependency cycle of ``graph`` (node → nodes it needs), or None."""
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in graph.get(node, ()):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        path.pop()
        state[node] = 2
        return None

    for node in graph:
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None
