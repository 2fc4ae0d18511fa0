"""The Secrets Manager adapter: listing, error translation, and the rules the fake must keep."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from keyrotation import secrets
from keyrotation.errors import AwsUnavailable
from keyrotation.secrets import AwsCallFailed, SecretGone, VersionConflict


def test_list_opted_in_secrets_keeps_only_the_exact_tag_across_pages(sm) -> None:
    # GIVEN five opted-in secrets over three pages, a look-alike tag and a planned deletion
    wanted = {sm.create(f"momento/app-{n}") for n in range(5)}
    sm.create("momento/lookalike", tags={"momento-token-old": "true"})
    sm.schedule_deletion(sm.create("momento/leaving"))

    # WHEN the opted-in secrets are listed
    listed = list(secrets.list_opted_in_secrets(sm, "momento-token"))

    # THEN exactly the five come back, with their current versions
    assert {state.arn for state in listed} == wanted
    assert all(state.current_version_id is None for state in listed)  # created without a value
    [(_, kwargs)] = [call for call in sm.calls if call[0] == "list_secrets"]
    assert kwargs["IncludePlannedDeletion"] is False
    assert kwargs["PaginationConfig"] == {"PageSize": secrets.LIST_PAGE_SIZE}


def test_list_opted_in_secrets_translates_a_throttled_listing(sm) -> None:
    sm.create("momento/app")
    sm.fail("list_secrets", "ThrottlingException")
    with pytest.raises(AwsUnavailable):
        list(secrets.list_opted_in_secrets(sm, "momento-token"))


@pytest.mark.parametrize(
    ("code", "message", "raised"),
    [
        ("ResourceNotFoundException", "not found", SecretGone),
        ("InvalidRequestException", "it was marked for deletion", SecretGone),
        ("ThrottlingException", "slow down", AwsUnavailable),
        ("InternalServiceError", "oops", AwsUnavailable),
        ("InvalidRequestException", "the secret is disabled", AwsCallFailed),
        ("AccessDeniedException", "not allowed", AwsCallFailed),
        ("DecryptionFailure", "KMS", AwsCallFailed),
    ],
    ids=[
        "not-found",
        "scheduled-for-deletion",
        "throttled",
        "service-fault",
        "other-invalid-request",
        "access-denied",
        "kms",
    ],
)
def test_calls_translate_aws_errors_by_code(code, message, raised) -> None:
    # GIVEN Secrets Manager answers a read with this error
    arn = "arn:aws:secretsmanager:eu-west-1:111122223333:secret:momento/app-AbC123"

    class Failing:
        def get_secret_value(self, **kwargs):
            raise ClientError({"Error": {"Code": code, "Message": message}}, "GetSecretValue")

    # WHEN the adapter makes the call
    # THEN the error is translated by its code
    with pytest.raises(raised) as error:
        secrets.get_value(Failing(), arn, "v-1")
    assert str(error.value).startswith(arn)


def test_calls_translate_connection_failures_as_retryable() -> None:
    class Unreachable:
        def describe_secret(self, **kwargs):
            raise EndpointConnectionError(endpoint_url="https://secretsmanager.example")

    with pytest.raises(AwsUnavailable):
        secrets.describe(Unreachable(), "momento/app")


def test_describe_reports_a_secret_scheduled_for_deletion_as_gone(sm) -> None:
    arn = sm.create("momento/app", "{}")
    sm.schedule_deletion(arn)
    with pytest.raises(SecretGone):
        secrets.describe(sm, arn)


def test_get_value_of_a_binary_secret_is_none(sm) -> None:
    arn = sm.create("momento/app", binary=b"\x00\x01")
    assert secrets.get_value(sm, arn, sm.version_with(arn, "AWSCURRENT")) is None


def test_rotation_token_is_a_pure_function_of_secret_and_version() -> None:
    # GIVEN the token of a rotation away from version v-1
    arn = "arn:aws:secretsmanager:eu-west-1:111122223333:secret:momento/app-AbC123"
    token = secrets.rotation_token(arn, "v-1")

    # THEN every retry computes it again, and another version or secret gets another one
    assert token == secrets.rotation_token(arn, "v-1")
    assert token not in {
        secrets.rotation_token(arn, "v-2"),
        secrets.rotation_token(arn + "x", "v-1"),
    }
    assert 32 <= len(token) <= 64  # ClientRequestToken's length limits


def test_put_pending_is_idempotent_for_the_same_value(sm) -> None:
    # GIVEN a value stored under a rotation's token
    arn = sm.create("momento/app", '{"apiKey": "old"}')
    first = secrets.put_pending(sm, arn, "token-1", '{"apiKey": "new"}')

    # WHEN the same value is stored again under the same token (a retry)
    again = secrets.put_pending(sm, arn, "token-1", '{"apiKey": "new"}')

    # THEN it succeeds, naming the same version, as AWSPENDING
    assert first == again == "token-1"
    assert sm.labels(arn)["token-1"] == ["AWSPENDING"]


def test_put_pending_refuses_another_value_under_a_used_token(sm) -> None:
    # GIVEN a value stored under a rotation's token (by a sibling)
    arn = sm.create("momento/app", '{"apiKey": "old"}')
    secrets.put_pending(sm, arn, "token-1", '{"apiKey": "sibling"}')

    # WHEN a different value is stored under that token
    # THEN Secrets Manager refuses it (versions are immutable) and the first value stays
    with pytest.raises(VersionConflict):
        secrets.put_pending(sm, arn, "token-1", '{"apiKey": "mine"}')
    assert sm.value_of(arn, "AWSPENDING") == '{"apiKey": "sibling"}'


def test_promote_is_a_compare_and_swap_on_the_current_version(sm) -> None:
    # GIVEN a pending version, and AWSCURRENT already moved away from the version we started at
    arn = sm.create("momento/app", '{"apiKey": "old"}')
    started_from = sm.version_with(arn, "AWSCURRENT")
    secrets.put_pending(sm, arn, "ours", '{"apiKey": "ours"}')
    sm.put_secret_value(SecretId=arn, ClientRequestToken="theirs", SecretString="{}")

    # WHEN our version is promoted from where we started
    # THEN it fails, and their version stays current
    with pytest.raises(AwsCallFailed):
        secrets.promote(sm, arn, "ours", started_from)
    assert sm.version_with(arn, "AWSCURRENT") == "theirs"


def test_promote_then_remove_pending_leaves_native_rotation_labels(sm) -> None:
    # GIVEN a new version stored as AWSPENDING
    arn = sm.create("momento/app", '{"apiKey": "old"}')
    old = sm.version_with(arn, "AWSCURRENT")
    secrets.put_pending(sm, arn, "new", '{"apiKey": "new"}')

    # WHEN it is promoted and its AWSPENDING label removed
    secrets.promote(sm, arn, "new", old)
    secrets.remove_pending(sm, arn, "new")

    # THEN the labels are those a finished native rotation leaves
    assert sm.labels(arn) == {"new": ["AWSCURRENT"], old: ["AWSPREVIOUS"]}


class _ReplicaListing:
    """A client whose listing holds a local secret and a replica of another region's secret."""

    class meta:  # mirrors boto3's client.meta
        region_name = "eu-west-1"

    def get_paginator(self, operation: str) -> _ReplicaListing:
        return self

    def paginate(self, **kwargs: object) -> list[dict[str, object]]:
        tag = [{"Key": "momento-token", "Value": "yes"}]
        stages = {"v-1": ["AWSCURRENT"]}
        return [
            {
                "SecretList": [
                    {
                        "ARN": "arn:local",
                        "Name": "local",
                        "Tags": tag,
                        "SecretVersionsToStages": stages,
                    },
                    {
                        "ARN": "arn:replica",
                        "Name": "replica",
                        "Tags": tag,
                        "SecretVersionsToStages": stages,
                        "PrimaryRegion": "us-east-1",
                    },
                    {
                        "ARN": "arn:primary-here",
                        "Name": "primary",
                        "Tags": tag,
                        "SecretVersionsToStages": stages,
                        "PrimaryRegion": "eu-west-1",
                    },
                ]
            }
        ]


def test_list_opted_in_secrets_leaves_out_replicas_of_other_regions() -> None:
    # GIVEN a region holding its own secrets and a read-only replica of another region's
    # WHEN the opted-in secrets are listed
    listed = list(secrets.list_opted_in_secrets(_ReplicaListing(), "momento-token"))

    # THEN the replica is left to the stack in its primary's region
    assert [state.arn for state in listed] == ["arn:local", "arn:primary-here"]
