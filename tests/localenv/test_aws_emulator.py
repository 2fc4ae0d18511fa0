"""The AWS emulator behaves as AWS documents where this product depends on it, and can fail."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from localenv_support import NO_RETRIES, listening_addresses

from localenv.aws_emulator import AwsEmulator

REPO_ROOT = Path(__file__).resolve().parents[2]
TOKEN_A = "a" * 32
TOKEN_B = "b" * 32


def stages(secretsmanager: Any, name: str) -> dict[str, list[str]]:
    return dict(secretsmanager.describe_secret(SecretId=name)["VersionIdsToStages"])


def error_code(failure: pytest.ExceptionInfo[ClientError]) -> str:
    return str(failure.value.response["Error"]["Code"])


def process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def wait_until_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not process_exists(pid):
            return True
        time.sleep(0.05)
    return False


@pytest.fixture
def pending_secret(secretsmanager: Any) -> str:
    """A secret with a current value and a pending one stored under TOKEN_A."""
    secretsmanager.create_secret(Name="momento/key", SecretString="current")
    secretsmanager.put_secret_value(
        SecretId="momento/key",
        SecretString="pending",
        ClientRequestToken=TOKEN_A,
        VersionStages=["AWSPENDING"],
    )
    return "momento/key"


# -- correction 1: a ClientRequestToken names one immutable version --------------------------


def test_emulator_put_same_token_same_value_changes_nothing(
    secretsmanager: Any, pending_secret: str
) -> None:
    # GIVEN a pending version stored under a token
    before = stages(secretsmanager, pending_secret)

    # WHEN the same store is retried, token and value alike
    reply = secretsmanager.put_secret_value(
        SecretId=pending_secret,
        SecretString="pending",
        ClientRequestToken=TOKEN_A,
        VersionStages=["AWSPENDING"],
    )

    # THEN AWS answers with that version and changes nothing
    assert reply["VersionId"] == TOKEN_A
    assert reply["VersionStages"] == ["AWSPENDING"]
    assert stages(secretsmanager, pending_secret) == before


def test_emulator_put_retried_after_promotion_keeps_awscurrent(
    secretsmanager: Any, pending_secret: str
) -> None:
    # GIVEN a pending version that has since been promoted to AWSCURRENT
    current = next(
        v for v, s in stages(secretsmanager, pending_secret).items() if "AWSCURRENT" in s
    )
    secretsmanager.update_secret_version_stage(
        SecretId=pending_secret,
        VersionStage="AWSCURRENT",
        MoveToVersionId=TOKEN_A,
        RemoveFromVersionId=current,
    )
    before = stages(secretsmanager, pending_secret)

    # WHEN a late retry of the original store arrives
    secretsmanager.put_secret_value(
        SecretId=pending_secret,
        SecretString="pending",
        ClientRequestToken=TOKEN_A,
        VersionStages=["AWSPENDING"],
    )

    # THEN the secret still has its AWSCURRENT version (plain moto strips it off)
    assert stages(secretsmanager, pending_secret) == before
    assert secretsmanager.get_secret_value(SecretId=pending_secret)["SecretString"] == "pending"


@pytest.mark.parametrize("stage", ["AWSPENDING", "AWSCURRENT"])
def test_emulator_put_same_token_different_value_is_resource_exists(
    secretsmanager: Any, stage: str
) -> None:
    # GIVEN a version stored under a token, pending or current
    secretsmanager.create_secret(Name="momento/key", SecretString="first")
    secretsmanager.put_secret_value(
        SecretId="momento/key",
        SecretString="mine",
        ClientRequestToken=TOKEN_B,
        VersionStages=[stage],
    )

    # WHEN a second writer uses the same token for a different value
    with pytest.raises(ClientError) as refused:
        secretsmanager.put_secret_value(
            SecretId="momento/key",
            SecretString="theirs",
            ClientRequestToken=TOKEN_B,
            VersionStages=[stage],
        )

    # THEN it fails loudly and the stored value is the first writer's
    assert error_code(refused) == "ResourceExistsException"
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    stored = secretsmanager.get_secret_value(SecretId="momento/key", VersionId=TOKEN_B)
    assert stored["SecretString"] == "mine"


# -- correction 2: a secret scheduled for deletion takes no writes ---------------------------


@pytest.mark.parametrize("write", ["put_secret_value", "update_secret_version_stage"])
def test_emulator_write_to_secret_scheduled_for_deletion_is_invalid_request(
    secretsmanager: Any, pending_secret: str, write: str
) -> None:
    # GIVEN a secret scheduled for deletion
    secretsmanager.delete_secret(SecretId=pending_secret, RecoveryWindowInDays=7)
    current = next(
        v for v, s in stages(secretsmanager, pending_secret).items() if "AWSCURRENT" in s
    )
    calls = {
        "put_secret_value": lambda: secretsmanager.put_secret_value(
            SecretId=pending_secret, SecretString="new"
        ),
        "update_secret_version_stage": lambda: secretsmanager.update_secret_version_stage(
            SecretId=pending_secret,
            VersionStage="AWSCURRENT",
            MoveToVersionId=TOKEN_A,
            RemoveFromVersionId=current,
        ),
    }

    # WHEN the rotator writes to it
    with pytest.raises(ClientError) as refused:
        calls[write]()

    # THEN AWS refuses because of the deletion, and nothing moved
    assert error_code(refused) == "InvalidRequestException"
    assert "marked for deletion" in refused.value.response["Error"]["Message"]
    assert "AWSCURRENT" in stages(secretsmanager, pending_secret)[current]


def test_emulator_restored_secret_takes_writes_again(
    secretsmanager: Any, pending_secret: str
) -> None:
    # GIVEN a secret scheduled for deletion, then restored
    secretsmanager.delete_secret(SecretId=pending_secret, RecoveryWindowInDays=7)
    secretsmanager.restore_secret(SecretId=pending_secret)

    # WHEN a value is stored
    secretsmanager.put_secret_value(SecretId=pending_secret, SecretString="after restore")

    # THEN it is the current value
    assert (
        secretsmanager.get_secret_value(SecretId=pending_secret)["SecretString"] == "after restore"
    )


# -- correction 3: only labelled versions are listed -----------------------------------------


def test_emulator_describe_and_list_show_labelled_versions_only(secretsmanager: Any) -> None:
    # GIVEN a secret written three times, so the first version has lost every label
    secretsmanager.create_secret(Name="momento/key", SecretString="one")
    secretsmanager.put_secret_value(SecretId="momento/key", SecretString="two")
    secretsmanager.put_secret_value(SecretId="momento/key", SecretString="three")

    # WHEN its versions are read from DescribeSecret and ListSecrets
    described = stages(secretsmanager, "momento/key")
    listed = secretsmanager.list_secrets()["SecretList"][0]["SecretVersionsToStages"]

    # THEN both show the AWSCURRENT and AWSPREVIOUS versions and nothing unlabelled
    assert sorted(map(tuple, described.values())) == [("AWSCURRENT",), ("AWSPREVIOUS",)]
    assert listed == described


# -- correction 4: moving AWSCURRENT moves what readers get ----------------------------------


def test_emulator_promotion_changes_what_readers_get(
    secretsmanager: Any, pending_secret: str
) -> None:
    # GIVEN a pending version
    current = next(
        v for v, s in stages(secretsmanager, pending_secret).items() if "AWSCURRENT" in s
    )

    # WHEN AWSCURRENT is moved to it
    secretsmanager.update_secret_version_stage(
        SecretId=pending_secret,
        VersionStage="AWSCURRENT",
        MoveToVersionId=TOKEN_A,
        RemoveFromVersionId=current,
    )

    # THEN an application reading the secret the plain way gets the promoted value
    read = secretsmanager.get_secret_value(SecretId=pending_secret)
    assert (read["VersionId"], read["SecretString"]) == (TOKEN_A, "pending")
    batch = secretsmanager.batch_get_secret_value(SecretIdList=[pending_secret])
    assert batch["SecretValues"][0]["SecretString"] == "pending"


def test_emulator_put_after_promotion_leaves_one_awscurrent(
    secretsmanager: Any, pending_secret: str
) -> None:
    # GIVEN a pending version promoted to AWSCURRENT
    current = next(
        v for v, s in stages(secretsmanager, pending_secret).items() if "AWSCURRENT" in s
    )
    secretsmanager.update_secret_version_stage(
        SecretId=pending_secret,
        VersionStage="AWSCURRENT",
        MoveToVersionId=TOKEN_A,
        RemoveFromVersionId=current,
    )

    # WHEN a person later stores a new value by hand
    secretsmanager.put_secret_value(SecretId=pending_secret, SecretString="by hand")

    # THEN exactly one version is current and the promoted one became the previous
    labelled = stages(secretsmanager, pending_secret)
    assert sum("AWSCURRENT" in labels for labels in labelled.values()) == 1
    assert "AWSPREVIOUS" in labelled[TOKEN_A]
    assert secretsmanager.get_secret_value(SecretId=pending_secret)["SecretString"] == "by hand"


# -- fault injection and call counts ---------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "status"),
    [("ThrottlingException", 400), ("InternalServiceError", 500)],
    ids=["throttled", "internal-error"],
)
def test_emulator_fault_fires_count_times_then_calls_succeed(
    emulator: AwsEmulator, secretsmanager: Any, pending_secret: str, error: str, status: int
) -> None:
    # GIVEN Secrets Manager set to fail the next two stores
    emulator.inject_fault(
        "secretsmanager", "PutSecretValue", error, count=2, status=status, message="Rate exceeded"
    )

    # WHEN the client stores three times
    failures = []
    for _ in range(3):
        try:
            secretsmanager.put_secret_value(SecretId=pending_secret, SecretString="new")
        except ClientError as failure:
            failures.append(failure.response)

    # THEN boto3 saw two errors with that code and status, the third store landed
    assert [f["Error"]["Code"] for f in failures] == [error, error]
    assert [f["Error"]["Message"] for f in failures] == ["Rate exceeded"] * 2
    assert [f["ResponseMetadata"]["HTTPStatusCode"] for f in failures] == [status] * 2
    assert secretsmanager.get_secret_value(SecretId=pending_secret)["SecretString"] == "new"
    assert emulator.call_counts()["secretsmanager.PutSecretValue"] == 4  # 1 by the fixture
    assert emulator.pending_faults() == []


def test_emulator_fault_hits_only_its_own_action(
    emulator: AwsEmulator, secretsmanager: Any, pending_secret: str
) -> None:
    # GIVEN a fault on stores
    emulator.inject_fault("secretsmanager", "PutSecretValue", "ThrottlingException")

    # WHEN the secret is read
    value = secretsmanager.get_secret_value(SecretId=pending_secret)["SecretString"]

    # THEN reads are untouched and the fault still waits for a store
    assert value == "current"
    assert [fault["remaining"] for fault in emulator.pending_faults()] == [1]


def test_emulator_fault_reaches_faulted_request_before_moto(
    emulator: AwsEmulator, secretsmanager: Any, pending_secret: str
) -> None:
    # GIVEN a fault on stores
    emulator.inject_fault("secretsmanager", "PutSecretValue", "ThrottlingException")
    before = stages(secretsmanager, pending_secret)

    # WHEN a store is refused by it
    with pytest.raises(ClientError):
        secretsmanager.put_secret_value(SecretId=pending_secret, SecretString="lost")

    # THEN nothing was written
    assert stages(secretsmanager, pending_secret) == before


def test_emulator_sqs_fault_uses_the_json_protocol(emulator: AwsEmulator, sqs: Any) -> None:
    # GIVEN a queue and a fault on its sends
    queue_url = sqs.create_queue(QueueName="due-keys")["QueueUrl"]
    emulator.inject_fault("sqs", "SendMessage", "RequestThrottled", message="slow down")

    # WHEN two messages are sent
    with pytest.raises(ClientError) as refused:
        sqs.send_message(QueueUrl=queue_url, MessageBody="first")
    sqs.send_message(QueueUrl=queue_url, MessageBody="second")

    # THEN boto3 (JSON protocol, X-Amz-Target AmazonSQS.*) saw the code; one message is queued
    assert error_code(refused) == "RequestThrottled"
    received = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10)["Messages"]
    assert [message["Body"] for message in received] == ["second"]
    counts = emulator.call_counts()
    assert counts["sqs.SendMessage"] == 2
    assert counts["sqs.ReceiveMessage"] == 1


def test_emulator_call_counts_show_each_operation(
    emulator: AwsEmulator, secretsmanager: Any
) -> None:
    # GIVEN a fresh emulator
    # WHEN a few known calls are made, one of them to a query-protocol service
    secretsmanager.create_secret(Name="momento/key", SecretString="one")
    for _ in range(3):
        secretsmanager.describe_secret(SecretId="momento/key")
    boto3.client("sts", config=NO_RETRIES, **emulator.client_kwargs()).get_caller_identity()

    # THEN each one is counted under its service and action, and nothing else is
    assert emulator.call_counts() == {
        "secretsmanager.CreateSecret": 1,
        "secretsmanager.DescribeSecret": 3,
        "sts.GetCallerIdentity": 1,
    }


def test_emulator_query_protocol_fault_is_parsed_by_boto3(emulator: AwsEmulator) -> None:
    # GIVEN a fault on a query-protocol (XML) service
    emulator.inject_fault("sts", "GetCallerIdentity", "ExpiredToken", status=403)
    sts = boto3.client("sts", config=NO_RETRIES, **emulator.client_kwargs())

    # WHEN it is called
    with pytest.raises(ClientError) as refused:
        sts.get_caller_identity()

    # THEN boto3 reads the code from the XML error
    assert error_code(refused) == "ExpiredToken"


def test_emulator_malformed_fault_is_refused(emulator: AwsEmulator) -> None:
    # GIVEN / WHEN a fault with a count of zero is injected
    # THEN the route refuses it, naming the rule
    with pytest.raises(RuntimeError, match="count must be"):
        emulator.inject_fault("secretsmanager", "PutSecretValue", "ThrottlingException", count=0)


def test_emulator_reset_empties_state_faults_and_counts(
    emulator: AwsEmulator, secretsmanager: Any, pending_secret: str
) -> None:
    # GIVEN stored secrets, a pending fault and some counted calls
    emulator.inject_fault("secretsmanager", "GetSecretValue", "ThrottlingException", count=5)

    # WHEN the emulator is reset
    emulator.reset()

    # THEN nothing is left
    assert secretsmanager.list_secrets()["SecretList"] == []
    assert emulator.pending_faults() == []
    assert emulator.call_counts() == {"secretsmanager.ListSecrets": 1}


# -- the process -----------------------------------------------------------------------------


def test_emulator_listens_on_loopback_only(emulator: AwsEmulator) -> None:
    # GIVEN / WHEN the emulator runs
    port = int(emulator.endpoint_url.rsplit(":", 1)[1])

    # THEN its only listening socket is on 127.0.0.1
    assert emulator.endpoint_url.startswith("http://127.0.0.1:")
    assert listening_addresses(port) == {"127.0.0.1"}


def test_emulator_process_is_gone_after_stop() -> None:
    # GIVEN a second emulator, running
    emulator = AwsEmulator()
    emulator.start()
    pid = emulator.pid

    # WHEN it is stopped
    emulator.stop()

    # THEN its process has exited and been reaped
    assert not process_exists(pid)
    emulator.stop()  # a second stop is harmless


def test_emulator_child_exits_when_its_parent_dies() -> None:
    # GIVEN a parent process that started an emulator and reported the child's pid
    parent_code = (
        "from localenv.aws_emulator import AwsEmulator\n"
        "import time\n"
        "emulator = AwsEmulator()\n"
        "emulator.start()\n"
        "print(emulator.pid, flush=True)\n"
        "time.sleep(60)\n"
    )
    parent = subprocess.Popen(
        [sys.executable, "-c", parent_code],
        cwd=REPO_ROOT,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        stdout=subprocess.PIPE,
        text=True,
    )
    assert parent.stdout is not None
    child_pid = int(parent.stdout.readline())

    # WHEN the parent is killed without any chance to clean up
    parent.send_signal(signal.SIGKILL)
    parent.wait()

    # THEN the emulator notices and exits on its own
    try:
        assert wait_until_gone(child_pid, timeout=10)
    finally:
        if process_exists(child_pid):
            os.kill(child_pid, signal.SIGKILL)


def test_emulator_main_prints_its_endpoint() -> None:
    # GIVEN the module run by hand, as a demo would
    process = subprocess.Popen(
        [sys.executable, "-m", "localenv.aws_emulator", "--port", "0"],
        cwd=REPO_ROOT,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline().strip()

        # WHEN a client uses the printed endpoint, then the process is sent SIGTERM
        endpoint = line.removeprefix("listening on ")
        sqs = boto3.client(
            "sqs",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            config=NO_RETRIES,
        )
        queues = sqs.list_queues().get("QueueUrls", [])
        process.send_signal(signal.SIGTERM)

        # THEN it served on loopback and exits cleanly
        assert line.startswith("listening on http://127.0.0.1:")
        assert json.dumps(queues) == "[]"
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


@pytest.mark.parametrize(
    "call",
    [
        lambda sqs, arn: sqs.list_message_move_tasks(SourceArn=arn),
        lambda sqs, arn: sqs.start_message_move_task(SourceArn=arn),
        lambda sqs, arn: sqs.cancel_message_move_task(TaskHandle="handle"),
    ],
    ids=["list", "start", "cancel"],
)
def test_emulator_answers_message_move_tasks_as_an_unsupported_operation(
    sqs: Any, call: Any
) -> None:
    # GIVEN a queue, and moto, which does not implement message move tasks
    url = sqs.create_queue(QueueName="move-source")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]

    # WHEN a move-task call is made
    with pytest.raises(ClientError) as raised:
        call(sqs, arn)

    # THEN it is refused cleanly, as AWS refuses an operation it does not offer (no HTML 500)
    error = raised.value.response
    assert error["Error"]["Code"] == "UnsupportedOperation"
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 400
