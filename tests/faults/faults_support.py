"""The moving parts of the fault suite: a world per test, deliveries, and the one verdict.

`World` is what a scenario acts on: the emulator (emptied), fresh FIFO queues with a short
visibility timeout, clients aimed at the emulator, the stand-in's ledger from the test's start,
and every secret the test seeded together with its state at seeding. `World.pipeline` builds
the rotator's domain objects around those clients (with a step hook when a test needs one);
`World.deliver` and `World.drain` hand queue batches to a handler by Lambda's rules.

`check_invariants` is the verdict every scenario ends with:

1. every opted-in secret holds a parseable AWSCURRENT whose key the stand-in issued and still
   accepts, or has a DLQ entry whose reason and detail name the secret and the problem;
2. no AWSPENDING label is left on a version that is not AWSCURRENT, except the rotation's own
   stored version when a transient failure was escalated after the write (the next scan
   resumes it: it holds the only copy of the granted key);
3. a secret that is not opted in (untagged, prefix-tagged, being deleted) did not change;
4. every refresh the stand-in granted ended up stored: its key is an opted-in secret's current
   key or an ancestor of it along the grants, or it was stored and then provably superseded
   by someone else's value; grants lost outright must be the ones the test expects;
5. no key, refresh token or secret value appears in any log line, metric, exception text,
   queue message or tag the test saw.
"""

from __future__ import annotations

import json
import logging
import time
import weakref
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import ClientError

from infrastructure.config import StackConfig
from keyrotation import aws, invocation, secrets
from keyrotation.errors import MalformedSecret
from keyrotation.messages import RotationRequest
from keyrotation.momento_auth import MomentoAuth
from keyrotation.processing import RecordProcessor
from keyrotation.rotation import Rotator
from keyrotation.scan import run_scan
from keyrotation.secret_value import KEY_FIELDS, parse_secret
from keyrotation.settings import Settings
from localenv.aws_emulator import AwsEmulator
from localenv.lambda_runtime import DeliveryReport, LambdaContext, deliver_once
from localenv.momento_standin import Grant, IssuedKey, MomentoStandIn, inner_jwt_of
from localenv.provision import Queues, provision_queues, queue_depth

ROOT = Path(__file__).resolve().parents[2]
DAY = 86_400
LIFETIME = 30 * DAY
TAG = "momento-token"
CURRENT, PENDING = "AWSCURRENT", "AWSPENDING"

# Short queue timings, so that a redelivery takes seconds; the product's own code is untouched.
QUEUE_VISIBILITY_SECONDS = 2
FAST_ENV = {
    "BACKOFF_BASE_SECONDS": "1",
    "MIN_TIME_FOR_ROTATION_SECONDS": "1",
    "MOMENTO_TIMEOUT_SECONDS": "2",
}
# The secret fields whose values must never leave Secrets Manager.
SECRET_FIELDS = (*KEY_FIELDS, "refreshToken", "token")
MIN_SECRET_LENGTH = 8

Handler = Callable[[dict[str, Any], Any], Any]

# One session for every client the suite builds: it loads the service models once, while each
# client keeps its own connection pool and retry quota, as in a separate process.
SESSION = boto3.session.Session()


class ProcessDied(BaseException):
    """Raised from a step hook: the execution environment dies there, no handler runs.

    A BaseException, so that no `except Exception` in the product or in Powertools can treat
    it as an ordinary failure: the message stays in flight, as with a killed process.
    """


@dataclass(frozen=True)
class SecretView:
    """Everything a person could notice about a secret: versions, labels, tags, current value."""

    arn: str
    stages: dict[str, tuple[str, ...]]
    tags: dict[str, str]
    current_id: str | None
    current_value: str | None = field(repr=False)
    deleted: bool

    @property
    def opted_in(self) -> bool:
        return TAG in self.tags and not self.deleted

    def versions_with(self, stage: str) -> list[str]:
        return [version for version, labels in self.stages.items() if stage in labels]


@dataclass
class Seeded:
    name: str
    arn: str
    value: str | None = field(repr=False)
    key: IssuedKey | None = field(repr=False)


@dataclass
class Letter:
    """A DLQ message, read without consuming it."""

    body: str = field(repr=False)
    attributes: dict[str, str]

    @property
    def reason(self) -> str:
        return self.attributes.get("reason", "")

    @property
    def secret_arn(self) -> str:
        return self.attributes.get("secretArn", "")

    @property
    def detail(self) -> str:
        return self.attributes.get("detail", "")


@dataclass
class Pipeline:
    """The rotator's domain objects, wired as `rotator.handler` wires them."""

    rotator: Rotator
    processor: RecordProcessor
    settings: Settings

    def handler(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        return invocation.dispatch(event, context, self.rotator, self.processor)

    def rotate_now(self, secret_id: str) -> dict[str, Any]:
        """A direct "rotate this secret now" invocation, as an operator sends it."""
        return self.handler({"SecretId": secret_id}, LambdaContext())


class LogCapture(logging.Handler):
    """Every log record the product emits in this process, with its structured fields.

    Attached to the root logger and to every Powertools parent logger, since Powertools keeps
    its records away from the root's other handlers.
    """

    _STANDARD = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[dict[str, Any]] = []
        self._seen: weakref.WeakSet[logging.LogRecord] = weakref.WeakSet()
        self._loggers: list[logging.Logger] = []

    def install(self) -> None:
        candidates = [logging.getLogger()] + [
            logger
            for logger in logging.Logger.manager.loggerDict.values()
            if isinstance(logger, logging.Logger) and hasattr(logger, "powertools_handler")
        ]
        for logger in candidates:
            logger.addHandler(self)
            self._loggers.append(logger)

    def uninstall(self) -> None:
        for logger in self._loggers:
            logger.removeHandler(self)
        self._loggers.clear()

    def emit(self, record: logging.LogRecord) -> None:
        if record in self._seen:
            return
        self._seen.add(record)
        entry = {key: value for key, value in record.__dict__.items() if key not in self._STANDARD}
        entry["message"] = record.getMessage()
        entry["level"] = record.levelname
        if record.exc_info:
            entry["exception"] = logging.Formatter().formatException(record.exc_info)
        self.records.append(entry)

    def lines(self) -> list[str]:
        return [json.dumps(record, default=str) for record in self.records]

    def with_message(self, message: str) -> list[dict[str, Any]]:
        return [record for record in self.records if record["message"] == message]


class World:
    """One scenario's emulator state, queues, clients, seeded secrets and observations."""

    def __init__(
        self, emulator: AwsEmulator, standin: MomentoStandIn, queues: Queues | None = None
    ) -> None:
        self.emulator = emulator
        self.standin = standin
        self.config = StackConfig.from_cdk_json(ROOT / "cdk.json")
        self.sm = self.client("secretsmanager")
        self.sqs = self.client("sqs")
        self.queues: Queues = queues or provision_queues(
            self.sqs, self.config, visibility_timeout_seconds=QUEUE_VISIBILITY_SECONDS
        )
        self.grants_before = len(standin.grants)
        self.refresh_calls_before = standin.refresh_calls
        self.seeded: dict[str, Seeded] = {}
        self.baselines: dict[str, SecretView] = {}
        self.metrics: list[str] = []
        self.texts: list[str] = []  # exception texts, results, stdout: checked for secrets
        self.logs = LogCapture()
        self.logs.install()
        self.stdout: Callable[[], str] = lambda: ""  # the real handler's metric lines
        self._channels: list[MomentoAuth] = []

    def client(self, service: str) -> Any:
        """A client aimed at the emulator, configured as the functions configure theirs."""
        return aws.client(service, SESSION, **self.emulator.client_kwargs())

    def close(self) -> None:
        self.logs.uninstall()
        for momento in self._channels:
            momento.close()

    # -- the functions' configuration ---------------------------------------------------------

    def function_env(self, **overrides: str) -> dict[str, str]:
        """The rotator's environment as the stack sets it, aimed at the local servers."""
        env = self.config.function_environment(
            "rotator",
            rotation_queue_url=self.queues.rotation_url,
            dead_letter_queue_url=self.queues.dead_letter_url,
        )
        env.update(self.emulator.environ())
        env["ROTATION_QUEUE_URL"] = self.queues.rotation_url
        env["MOMENTO_ENDPOINT_OVERRIDE"] = self.standin.address
        env.update(FAST_ENV)
        env.update(overrides)
        return env

    def settings(self, **overrides: str) -> Settings:
        return Settings.from_env(self.function_env(**overrides))

    def pipeline(
        self,
        on_step: Callable[[str], None] | None = None,
        momento: MomentoAuth | None = None,
        **env: str,
    ) -> Pipeline:
        """A rotator and record processor around this world's clients (a fresh process)."""
        settings = self.settings(**env)
        if momento is None:
            momento = MomentoAuth(
                settings.momento_endpoint_override, settings.momento_timeout_seconds
            )
        self._channels.append(momento)
        rotator = Rotator(self.client("secretsmanager"), momento, settings, on_step=on_step)
        processor = RecordProcessor(rotator, self.client("sqs"), settings, self._count, time.time)
        return Pipeline(rotator, processor, settings)

    def _count(self, name: str, value: int = 1) -> None:
        self.metrics.extend([name] * value)

    # -- seeding and changing secrets ---------------------------------------------------------

    def mint(self, *, age_days: float = 25, lifetime: int = LIFETIME, **kwargs: Any) -> IssuedKey:
        """A key as the console issues it; by default 5 of its 30 days are left (due)."""
        return self.standin.mint_key(lifetime, issued_at=time.time() - age_days * DAY, **kwargs)

    def opted_in(
        self,
        name: str,
        key: IssuedKey | None = None,
        *,
        tags: dict[str, str] | None = None,
        **document: Any,
    ) -> Seeded:
        """A secret holding `key` (a due v1 key by default) as the console's token file."""
        key = key or self.mint()
        value = json.dumps({**key.as_token_file(), **document})
        return self.seed(name, value, {TAG: "yes"} if tags is None else tags, key)

    def seed(
        self, name: str, value: str | None, tags: dict[str, str], key: IssuedKey | None = None
    ) -> Seeded:
        kwargs: dict[str, Any] = {
            "Name": name,
            "Tags": [{"Key": k, "Value": v} for k, v in tags.items()],
        }
        if value is not None:
            kwargs["SecretString"] = value
        arn = str(self.sm.create_secret(**kwargs)["ARN"])
        seeded = Seeded(name, arn, value, key)
        self.seeded[name] = seeded
        self.rebaseline(name)
        return seeded

    def opted_in_many(self, prefix: str, count: int, threads: int = 8) -> list[Seeded]:
        """`count` due secrets, created from a thread pool (moto serves them one at a time).

        The baseline of a secret just created is known from the answer, so none is read back.
        """
        keys = [self.mint() for _ in range(count)]
        tags = {TAG: "yes"}

        def create(index: int) -> Seeded:
            name, value = f"{prefix}-{index:05d}", json.dumps(keys[index].as_token_file())
            answer = self.sm.create_secret(
                Name=name, SecretString=value, Tags=[{"Key": TAG, "Value": "yes"}]
            )
            version = str(answer["VersionId"])
            arn = str(answer["ARN"])
            self.baselines[name] = SecretView(
                arn, {version: (CURRENT,)}, dict(tags), version, value, False
            )
            self.seeded[name] = Seeded(name, arn, value, keys[index])
            return self.seeded[name]

        with ThreadPoolExecutor(threads) as pool:
            return list(pool.map(create, range(count)))

    def rebaseline(self, name: str) -> None:
        """Take the secret's state now as the one to judge by (after the test changed it)."""
        view = self.view(name)
        if view is not None:
            self.baselines[name] = view

    def view(self, name: str) -> SecretView | None:
        """The secret's state, or None once it is gone for good."""
        try:
            described = self.sm.describe_secret(SecretId=name)
        except ClientError as error:
            if error.response["Error"]["Code"] == "ResourceNotFoundException":
                return None
            raise
        stages = {
            version: tuple(labels)
            for version, labels in (described.get("VersionIdsToStages") or {}).items()
        }
        current = next((v for v, labels in stages.items() if CURRENT in labels), None)
        deleted = described.get("DeletedDate") is not None
        value = None
        if current is not None and not deleted:
            value = self.sm.get_secret_value(SecretId=name, VersionId=current).get("SecretString")
        tags = {tag["Key"]: tag.get("Value", "") for tag in described.get("Tags") or []}
        return SecretView(str(described["ARN"]), stages, tags, current, value, deleted)

    def current_document(self, name: str) -> dict[str, Any]:
        view = self.view(name)
        assert view is not None and view.current_value is not None, f"{name} has no value"
        document: dict[str, Any] = json.loads(view.current_value)
        return document

    # -- the queue ----------------------------------------------------------------------------

    def scan(self) -> dict[str, int]:
        """One scanner invocation, in process: every opted-in secret needing work is queued."""
        result = run_scan(self.sm, self.sqs, self.settings(), time.time())
        return result.summary.as_dict()

    def enqueue(self, request: RotationRequest, deduplication_id: str | None = None) -> str:
        """Send one request to the rotation queue as the scanner or the operator tool would."""
        body = request.to_body()
        self.texts.append(body)
        response = self.sqs.send_message(
            QueueUrl=self.queues.rotation_url,
            MessageBody=body,
            MessageGroupId=request.group_id(),
            MessageDeduplicationId=deduplication_id or request.deduplication_id(),
        )
        return str(response["MessageId"])

    def enqueue_raw(self, body: str, group: str = "poison") -> str:
        self.texts.append(body)
        response = self.sqs.send_message(
            QueueUrl=self.queues.rotation_url,
            MessageBody=body,
            MessageGroupId=group,
            MessageDeduplicationId=f"{group}-{time.time_ns()}",
        )
        return str(response["MessageId"])

    def deliver(self, handler: Handler, batch_size: int = 10) -> DeliveryReport:
        """One poll and one invocation by Lambda's rules (a ProcessDied passes through)."""
        return deliver_once(
            self.sqs,
            self.queues.rotation_url,
            self.queues.rotation_arn,
            handler,
            batch_size=batch_size,
            wait_seconds=1,
            timeout_seconds=60,
        )

    def drain(self, handler: Handler, timeout: float = 40.0) -> list[DeliveryReport]:
        """Deliver until the rotation queue holds nothing, visible or in flight."""
        reports: list[DeliveryReport] = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.rotation_depth() == (0, 0):
                return reports
            reports.append(self.deliver(handler))
        raise AssertionError(f"the rotation queue did not drain in {timeout} s: {reports}")

    def rotation_depth(self) -> tuple[int, int]:
        return queue_depth(self.sqs, self.queues.rotation_url)

    def dead_letter_count(self) -> int:
        visible, in_flight = queue_depth(self.sqs, self.queues.dead_letter_url)
        return visible + in_flight

    def dead_letters(self) -> list[Letter]:
        return [
            Letter(message["Body"], _attributes(message))
            for message in peek(self.sqs, self.queues.dead_letter_url)
        ]

    # -- the stand-in's ledger, from this test's start ----------------------------------------

    @property
    def grants(self) -> list[Grant]:
        return self.standin.grants[self.grants_before :]

    @property
    def refresh_calls(self) -> int:
        return self.standin.refresh_calls - self.refresh_calls_before

    def call_counts(self) -> dict[str, int]:
        return self.emulator.call_counts()


def peek(sqs: Any, queue_url: str) -> list[dict[str, Any]]:
    """Every message in a queue, read without consuming it: each is made visible again."""
    found: dict[str, dict[str, Any]] = {}
    handles: list[str] = []
    for _ in range(1_000):
        messages = sqs.receive_message(
            QueueUrl=queue_url,
            MaxNumberOfMessages=10,
            VisibilityTimeout=30,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        ).get("Messages", [])
        if not messages:
            break
        for message in messages:
            handles.append(message["ReceiptHandle"])
            found[message["MessageId"]] = message
    for start in range(0, len(handles), 10):
        sqs.change_message_visibility_batch(
            QueueUrl=queue_url,
            Entries=[
                {"Id": str(i), "ReceiptHandle": handle, "VisibilityTimeout": 0}
                for i, handle in enumerate(handles[start : start + 10])
            ],
        )
    return list(found.values())


def _attributes(message: dict[str, Any]) -> dict[str, str]:
    return {
        name: str(value.get("StringValue", ""))
        for name, value in (message.get("MessageAttributes") or {}).items()
    }


# -- the verdict ------------------------------------------------------------------------------


def check_invariants(world: World, *, lost_grants: int = 0) -> dict[str, SecretView | None]:
    """Fail with every broken promise, each as a sentence naming the secret; else return the
    state of every seeded secret (None: deleted for good).

    `lost_grants` is how many refreshes the scenario expects to be granted and never stored:
    zero everywhere except where no design can avoid it (a process dying between Momento's
    grant and the write), which the scenario that expects it names.
    """
    problems: list[str] = []
    letters = world.dead_letters()
    with ThreadPoolExecutor(8) as pool:
        views = dict(zip(world.seeded, pool.map(world.view, list(world.seeded)), strict=True))
    problems += _check_secrets(world, views, letters)
    problems += _check_letters(world, letters)
    problems += _check_grants(world, views, lost_grants)
    problems += _check_no_secret_material(world, views, letters)
    assert not problems, "broken promises:\n  " + "\n  ".join(problems)
    return views


def _check_secrets(
    world: World, views: dict[str, SecretView | None], letters: list[Letter]
) -> list[str]:
    problems: list[str] = []
    for name, view in views.items():
        baseline = world.baselines[name]
        if not baseline.opted_in or view is None or not view.opted_in:
            if view is not None and view != baseline:
                problems.append(f"{name}: not opted in, yet it changed")
            continue

        if not _holds_live_key(world, name, view):
            named = [
                letter
                for letter in letters
                if letter.secret_arn == view.arn and letter.reason and name in letter.detail
            ]
            if not named:
                problems.append(
                    f"{name}: no usable AWSCURRENT and no DLQ entry naming it and the problem"
                )
        parked = _parked_rotation(view, letters)
        stale = [v for v in view.versions_with(PENDING) if v != view.current_id and v not in parked]
        if stale:
            problems.append(f"{name}: AWSPENDING left on a version that is not current")
    return problems


def _parked_rotation(view: SecretView, letters: list[Letter]) -> list[str]:
    """The rotation's own version ids, when a transient failure was escalated to the DLQ after
    the write: the stored version holds the only copy of the granted key, and a retry or the
    next scan resumes it."""
    escalated = {"deadline-at-risk", "retries-exhausted"}
    if view.current_id is None or not any(
        letter.secret_arn == view.arn and letter.reason in escalated for letter in letters
    ):
        return []
    return secrets.rotation_tokens(view.arn, view.current_id)


def _holds_live_key(world: World, name: str, view: SecretView) -> bool:
    try:
        secret = parse_secret(name, view.current_value)
    except MalformedSecret:
        return False
    return world.standin.is_accepted(secret.api_key)


def _check_letters(world: World, letters: list[Letter]) -> list[str]:
    problems: list[str] = []
    names = {seeded.arn: name for name, seeded in world.seeded.items()}
    for letter in letters:
        if not letter.reason or not letter.detail:
            problems.append(f"a DLQ entry lacks its reason or detail: {letter.attributes}")
        elif letter.secret_arn and names.get(letter.secret_arn, "") not in letter.detail:
            problems.append(f"a DLQ entry's detail does not name its secret: {letter.detail}")
    return problems


def _check_grants(world: World, views: dict[str, SecretView | None], lost_grants: int) -> list[str]:
    parents = {grant.new_key.inner_jwt: grant.old_inner_jwt for grant in world.standin.grants}
    lineage: set[str] = set()
    for name, view in views.items():
        if view is None or view.current_value is None:
            continue
        try:
            key: str | None = inner_jwt_of(parse_secret(name, view.current_value).api_key)
        except MalformedSecret:
            continue
        while key is not None and key not in lineage:
            lineage.add(key)
            key = parents.get(key)

    unstored = [grant for grant in world.grants if grant.new_key.inner_jwt not in lineage]
    if not unstored:
        return [] if lost_grants == 0 else [f"expected {lost_grants} lost grants, found none"]
    stored_anywhere = _keys_in_any_version(world)
    lost = [grant for grant in unstored if grant.new_key.inner_jwt not in stored_anywhere]
    superseded = len(unstored) - len(lost)
    if len(lost) != lost_grants:
        return [
            f"{len(lost)} granted refreshes were never stored (expected {lost_grants}); "
            f"{superseded} were stored and then superseded"
        ]
    return []


def _keys_in_any_version(world: World) -> set[str]:
    """The inner JWT of every key held by any version of any seeded secret, unlabelled too."""
    found: set[str] = set()
    for name in world.seeded:
        try:
            versions = world.sm.list_secret_version_ids(SecretId=name, IncludeDeprecated=True)
        except ClientError:
            continue
        for version in versions.get("Versions", []):
            try:
                value = world.sm.get_secret_value(SecretId=name, VersionId=version["VersionId"])
                secret = parse_secret(name, value.get("SecretString"))
            except (ClientError, MalformedSecret):
                continue
            found.add(inner_jwt_of(secret.api_key))
    return found


def _check_no_secret_material(
    world: World, views: dict[str, SecretView | None], letters: list[Letter]
) -> list[str]:
    texts: list[tuple[str, str]] = [("an observed text", text) for text in world.texts]
    texts.append(("the functions' stdout", world.stdout()))
    texts += [("a log line", line) for line in world.logs.lines()]
    texts += [("a metric name", name) for name in world.metrics]
    for letter in letters:
        texts += [("a DLQ body", letter.body), ("a DLQ attribute", json.dumps(letter.attributes))]
    texts += [("a tag", json.dumps(view.tags)) for view in views.values() if view is not None]
    leaks = leaked(texts, secret_material(world.standin, _seeded_values(world, views)))
    return [f"{count} secret strings appear in {where}" for where, count in leaks.items()]


def _seeded_values(world: World, views: dict[str, SecretView | None]) -> list[str]:
    values = [seeded.value for seeded in world.seeded.values() if seeded.value]
    values += [view.current_value for view in views.values() if view and view.current_value]
    return values


def secret_material(standin: MomentoStandIn, values: Iterable[str]) -> set[str]:
    """What no output may contain: every key and refresh token issued, every stored value and
    the secret fields inside each value."""
    material = set(standin.all_secret_strings())
    # A JWT's signature is its secret part: a truncated copy that keeps it is still a leak.
    material.update(item.rsplit(".", 1)[1] for item in list(material) if item.count(".") == 2)
    for value in values:
        material.add(value)
        try:
            document = json.loads(value)
        except ValueError:
            continue
        if isinstance(document, dict):
            material.update(
                str(document[name]) for name in SECRET_FIELDS if isinstance(document.get(name), str)
            )
    return {item for item in material if len(item) >= MIN_SECRET_LENGTH}


def leaked(texts: Iterable[tuple[str, str]], material: set[str]) -> dict[str, int]:
    """How many secret strings appear in each kind of text; never the strings themselves."""
    found: dict[str, int] = {}
    for where, text in texts:
        count = sum(1 for secret in material if secret in text)
        if count:
            found[where] = found.get(where, 0) + count
    return found


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")
