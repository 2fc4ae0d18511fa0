"""The command line as a whole: help, options, queue discovery, errors, and the operator's day."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import boto3
import grpc
import pytest
from botocore.stub import Stubber
from cli_support import Cli, Fleet, Queues

from keyrotation import telemetry
from localenv.aws_emulator import AwsEmulator
from localenv.momento_standin import MomentoStandIn
from momento_keys import replaying
from momento_keys.cli import main
from momento_keys.errors import EXIT_ATTENTION, CommandFailed

CONSOLE_SCRIPT = Path(sys.executable).with_name("momento-keys")
SUBCOMMANDS = [
    [],
    ["import"],
    ["status"],
    ["scan"],
    ["rotate"],
    ["dlq"],
    ["dlq", "list"],
    ["dlq", "replay"],
]


@pytest.mark.parametrize("command", SUBCOMMANDS, ids=lambda c: "-".join(c) or "main")
def test_cli_help_has_a_description_and_examples(
    command: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN any command
    # WHEN its help is asked for
    with pytest.raises(SystemExit) as exited:
        main([*command, "--help"])

    # THEN it exits 0 with a one-line description and examples
    assert exited.value.code == 0
    out = capsys.readouterr().out
    assert "examples:\n  momento-keys" in out
    description = out.split("\n\n")[1]
    assert "\n" not in description.strip()


def test_cli_global_options_work_before_and_after_the_subcommand(
    cli: Cli, fleet: Fleet, queues: Queues, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a secret opted in under a custom tag key, and no DLQ URL in the environment
    fleet.sm.create_secret(Name="custom", SecretString="{}", Tags=[{"Key": "team-key"}])
    monkeypatch.delenv("DEAD_LETTER_QUEUE_URL")

    # WHEN options are given before the subcommand, and after it
    before = cli("--tag-key", "team-key", "--region", "us-east-1", "status", "--no-read-values")
    after = cli("dlq", "list", "--dlq-url", queues.dlq_url)

    # THEN both are honoured
    assert "custom" in before.out and "1 opted-in secret:" in before.out
    assert after.code == 0 and after.out == "the dead-letter queue is empty\n"


def test_cli_reads_queue_urls_from_the_stack_outputs(
    cli: Cli, fleet: Fleet, aws: AwsEmulator
) -> None:
    # GIVEN a deployed stack whose outputs carry CDK-style keys for both queues
    template = {
        "Resources": {
            "Dlq": {
                "Type": "AWS::SQS::Queue",
                "Properties": {"QueueName": "dl.fifo", "FifoQueue": True},
            },
            "Queue": {
                "Type": "AWS::SQS::Queue",
                "Properties": {"QueueName": "rq.fifo", "FifoQueue": True},
            },
        },
        "Outputs": {
            "ExportsRotationQueueUrlA1B2": {"Value": {"Ref": "Queue"}},
            "DeadLetterQueueUrl": {"Value": {"Ref": "Dlq"}},
        },
    }
    cloudformation = boto3.client("cloudformation", **aws.client_kwargs())
    cloudformation.create_stack(StackName="Keys", TemplateBody=json.dumps(template))
    arn = fleet.add("from-stack", fleet.key(days_left=5))
    fleet.dead_letter(fleet.sqs.get_queue_url(QueueName="dl.fifo")["QueueUrl"], arn, "from-stack")

    # WHEN the DLQ is listed and replayed with only the stack's name
    listed = cli("--stack-name", "Keys", "dlq", "list")
    replayed = cli("--stack-name", "Keys", "dlq", "replay")

    # THEN both queues were found from the outputs
    assert listed.code == 0, listed.err
    assert "from-stack" in listed.out
    assert replayed.code == 0, replayed.err
    assert replayed.out.splitlines()[-1] == "replayed 1 message to the rotation queue"


def test_cli_names_the_option_to_pass_when_the_stack_lacks_an_output(
    cli: Cli, aws: AwsEmulator
) -> None:
    # GIVEN a stack with no dead-letter queue output
    template = {
        "Resources": {"Topic": {"Type": "AWS::SNS::Topic"}},
        "Outputs": {"AlarmTopicArn": {"Value": {"Ref": "Topic"}}},
    }
    cloudformation = boto3.client("cloudformation", **aws.client_kwargs())
    cloudformation.create_stack(StackName="MomentoKeyRotation", TemplateBody=json.dumps(template))

    # WHEN the DLQ is listed without a URL
    result = cli("dlq", "list")

    # THEN the error says which output is missing and which option to pass
    assert result.code == 1
    assert result.err == (
        "momento-keys: error: stack MomentoKeyRotation has no output whose key contains "
        "DeadLetterQueueUrl: pass --dlq-url (or DEAD_LETTER_QUEUE_URL)\n"
    )


def test_cli_reports_an_unreachable_endpoint_in_one_line(cli: Cli, aws: AwsEmulator) -> None:
    # GIVEN an endpoint where nothing listens
    # WHEN the status is asked for there
    result = cli("--endpoint-url", "http://127.0.0.1:9", "status")

    # THEN one line says the endpoint could not be reached, with no traceback
    assert result.code == 1
    assert result.err.startswith("momento-keys: error: secrets tagged momento-token: ListSecrets")
    assert "127.0.0.1:9" in result.err and "Traceback" not in result.err
    assert result.err.count("\n") == 1


def test_cli_console_script_runs_as_a_subprocess(
    fleet: Fleet, aws: AwsEmulator, cli: Cli, tmp_path: Path
) -> None:
    # GIVEN one expired secret, and an environment aimed at the emulator
    fleet.add("expired", fleet.key(days_left=-1))
    env = {**os.environ, **aws.environ(), "AWS_CONFIG_FILE": str(tmp_path / "none")}

    # WHEN the installed console script is run
    done = subprocess.run(
        [str(CONSOLE_SCRIPT), "status", "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    cli.record(done.stdout, done.stderr)

    # THEN it exits with "needs a person" and prints JSON
    assert done.returncode == EXIT_ATTENTION, done.stderr
    assert json.loads(done.stdout)["secrets"][0]["state"] == "expired"


def test_cli_console_script_shows_the_rotators_warnings_on_one_line_each(
    fleet: Fleet, aws: AwsEmulator, cli: Cli, sm: Any, standin: MomentoStandIn, tmp_path: Path
) -> None:
    # GIVEN a due secret with another tool's unfinished AWSPENDING version
    fleet.add("pending", fleet.key(days_left=5))
    sm.put_secret_value(SecretId="pending", SecretString="{}", VersionStages=["AWSPENDING"])
    env = {**os.environ, **aws.environ(), "AWS_CONFIG_FILE": str(tmp_path / "none")}

    # WHEN the console script rotates it
    done = subprocess.run(
        [str(CONSOLE_SCRIPT), "--momento-endpoint", standin.address, "rotate", "pending"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    cli.record(done.stdout, done.stderr)

    # THEN the rotator's warning is one prefixed line on stderr, and its INFO lines stay quiet
    assert done.returncode == 0, done.stderr
    assert done.stderr == "momento-keys: warning: removing a stale AWSPENDING label\n"
    assert done.stdout.startswith("rotated pending: ")


def test_cli_never_prints_a_key_refresh_token_or_secret_value(
    cli: Cli, fleet: Fleet, queues: Queues, standin: MomentoStandIn, sm: Any
) -> None:
    # GIVEN keys imported, stored untagged, dead-lettered and rotated, in every command
    imported = fleet.token_file(fleet.key(days_left=5).as_token_file())
    v2 = fleet.token_file(fleet.key(days_left=5, form="v2").as_token_file(), "v2.json")
    arn = fleet.add("untagged", fleet.key(days_left=3), record=False)
    fleet.dead_letter(queues.dlq_url, arn, "untagged")
    momento = ["--momento-endpoint", standin.address]
    results = [
        cli("import", str(imported), "--name", "imported"),
        cli("import", str(v2), "--name", "v2"),
        cli("status"),
        cli("status", "--json"),
        cli("scan", "--dry-run", "--json"),
        cli(*momento, "rotate", "imported"),
        cli(*momento, "rotate", "v2"),
        cli("dlq", "list", "--json"),
        cli("dlq", "replay", "--dry-run"),
        cli("dlq", "replay"),
        cli("scan"),
    ]

    # THEN none of it contains any key, inner JWT or refresh token, nor any stored value
    printed = "".join(r.out + r.err for r in results)
    for secret_string in standin.all_secret_strings():
        assert secret_string not in printed
    for entry in sm.list_secrets()["SecretList"]:
        value = sm.get_secret_value(SecretId=entry["ARN"])["SecretString"]
        assert value not in printed
        assert json.loads(value)["apiKey"] not in printed


def test_cli_operations_walkthrough_from_failure_to_recovery(
    cli: Cli, fleet: Fleet, queues: Queues, standin: MomentoStandIn
) -> None:
    # GIVEN an imported, due key whose refresh Momento refuses at the first attempt
    path = fleet.token_file(fleet.key(days_left=5).as_token_file())
    assert cli("import", str(path), "--name", "prod/momento").code == 0
    standin.inject_fault("refresh", grpc.StatusCode.UNAUTHENTICATED)
    assert cli("scan").code == 0
    assert telemetry.ROTATION_DEAD_LETTERED in fleet.process_rotation_queue(queues)

    # WHEN the operator looks (status, then the DLQ), fixes the cause, replays and looks again
    failing = cli("status")
    listed = cli("dlq", "list")
    standin.clear_faults()
    replayed = cli("dlq", "replay", "--secret", "prod/momento")
    outcomes = fleet.process_rotation_queue(queues)
    healthy = cli("status", "--json")

    # THEN each step shows what the README's operations section says it shows
    assert failing.code == EXIT_ATTENTION and "failing !" in failing.out
    assert "refresh-rejected" in listed.out and "prod/momento" in listed.out
    assert (
        replayed.out.splitlines()[-1] == "replayed 1 message of prod/momento to the rotation queue"
    )
    assert outcomes == [telemetry.ROTATION_SUCCEEDED]
    assert healthy.code == 0
    [secret] = json.loads(healthy.out)["secrets"]
    assert secret["state"] == "ok" and secret["lastRotated"] is not None


# -- the move-task path, which the emulator does not implement --------------------------------

SOURCE = "arn:aws:sqs:us-east-1:123456789012:dlq.fifo"
DESTINATION = "arn:aws:sqs:us-east-1:123456789012:rotation.fifo"


@pytest.fixture
def stubbed_sqs() -> Any:
    client = boto3.client("sqs", region_name="us-east-1", endpoint_url="http://127.0.0.1:9")
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


def test_dlq_replay_move_task_is_polled_until_it_completes(
    stubbed_sqs: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN an endpoint with move tasks: none running, then one that runs and completes
    client, stubber = stubbed_sqs
    stubber.add_response("list_message_move_tasks", {"Results": []})
    stubber.add_response("start_message_move_task", {"TaskHandle": "task-1"})
    running = {"Status": "RUNNING", "ApproximateNumberOfMessagesMoved": 4,
               "ApproximateNumberOfMessagesToMove": 9}  # fmt: skip
    done = {"Status": "COMPLETED", "ApproximateNumberOfMessagesMoved": 9,
            "ApproximateNumberOfMessagesToMove": 9}  # fmt: skip
    stubber.add_response("list_message_move_tasks", {"Results": [running]})
    stubber.add_response("list_message_move_tasks", {"Results": [done]})

    # WHEN the unfiltered replay runs
    code = replaying.move_with_task(client, client, SOURCE, DESTINATION, 0, sleep=lambda s: None)

    # THEN each poll printed progress and the end is one summary line
    out = capsys.readouterr().out.splitlines()
    assert code == 0
    assert out == [
        "started message move task task-1",
        "move task running: 4 of 9 moved",
        "move task completed: 9 of 9 moved",
        "replayed about 9 messages to the rotation queue with a move task",
    ]


def test_dlq_replay_move_task_already_running_stops_with_an_error(stubbed_sqs: Any) -> None:
    # GIVEN a move task already running on the DLQ
    client, stubber = stubbed_sqs
    task = {"Status": "RUNNING", "TaskHandle": "t", "ApproximateNumberOfMessagesMoved": 1}
    stubber.add_response("list_message_move_tasks", {"Results": [task]})

    # WHEN a replay is started
    with pytest.raises(CommandFailed) as failed:
        replaying.move_with_task(client, client, SOURCE, DESTINATION, 0, sleep=lambda s: None)

    # THEN it says so, and starts nothing
    assert "already running" in str(failed.value) and failed.value.exit_code == 1


@pytest.mark.parametrize(
    ("code", "status"),
    [
        pytest.param("500", 500, id="moto-http-500"),
        pytest.param("AWS.SimpleQueueService.UnsupportedOperation", 400, id="unsupported"),
    ],
)
def test_dlq_replay_move_task_missing_from_the_endpoint_is_detected(
    stubbed_sqs: Any, code: str, status: int
) -> None:
    # GIVEN an endpoint that answers the move-task API with an error
    client, stubber = stubbed_sqs
    stubber.add_client_error(
        "list_message_move_tasks", service_error_code=code, http_status_code=status
    )

    # WHEN a replay tries it
    # THEN the caller learns to fall back to moving messages one by one
    with pytest.raises(replaying.MoveTasksUnsupported):
        replaying.move_with_task(client, client, SOURCE, DESTINATION, 0, sleep=lambda s: None)


def test_cli_stays_quiet_when_its_reader_closes_the_pipe(
    aws: AwsEmulator, fleet: Fleet, tmp_path: Path
) -> None:
    # GIVEN a fleet to report on, and a reader that goes away before reading (`| head -c0`)
    fleet.add("piped/app", fleet.key(days_left=25))
    env = {**os.environ, **aws.environ(), "AWS_CONFIG_FILE": str(tmp_path / "none")}

    # WHEN the console script's status is piped into it
    done = subprocess.run(
        f"'{CONSOLE_SCRIPT}' status | head -c0",
        shell=True,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )

    # THEN nothing is said about the broken pipe: no error line, no traceback
    assert done.stderr == ""
