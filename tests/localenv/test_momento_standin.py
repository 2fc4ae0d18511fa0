"""The Momento stand-in answers refresh and list-caches calls the way Momento's service does."""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import threading
from datetime import timedelta
from pathlib import Path

import grpc
import jwt
import pytest
from localenv_support import FakeClock, MomentoClient, listening_addresses
from momento import CacheClient, Configurations
from momento.auth import CredentialProvider
from momento.auth import momento_endpoint_resolver as sdk_resolver
from momento.errors import MomentoErrorCode
from momento.responses import ListCaches, ListCachesResponse

from localenv.momento_standin import IssuedKey, MomentoStandIn, encode_v1_key

DAY = 86_400
REPO_ROOT = Path(__file__).resolve().parents[2]


def status_of(call: grpc.RpcError) -> grpc.StatusCode:
    code: grpc.StatusCode = call.code()
    return code


def details_of(call: grpc.RpcError) -> str:
    return str(call.details())


# -- refresh ---------------------------------------------------------------------------------


@pytest.mark.parametrize("form", ["v1", "legacy"])
def test_standin_refresh_returns_v1_key_one_lifetime_ahead(
    standin: MomentoStandIn, momento: MomentoClient, clock: FakeClock, form: str
) -> None:
    # GIVEN a 30-day key of either refreshable form, issued 20 days ago
    key = standin.mint_key(30 * DAY, form=form, issued_at=clock.now - 20 * DAY)  # type: ignore[arg-type]

    # WHEN it is refreshed with its refresh token
    reply = momento.refresh(key.inner_jwt, key.refresh_token)

    # THEN the new key lives 30 days from now, in the v1 form, with a new refresh token
    assert reply.valid_until == clock.now + 30 * DAY
    assert reply.endpoint == standin.endpoint
    assert reply.refresh_token and reply.refresh_token != key.refresh_token
    stored = encode_v1_key(reply.endpoint, reply.api_key)
    assert standin.is_accepted(stored)
    claims = jwt.decode(reply.api_key, options={"verify_signature": False})
    assert claims["exp"] - claims["iat"] == 30 * DAY

    # AND the new key passes the control-plane check, while the old one stays valid meanwhile
    assert [cache.cache_name for cache in momento.list_caches(reply.api_key).cache]
    assert standin.is_accepted(key.stored_key)


def test_standin_refresh_of_never_expiring_key_never_expires(
    standin: MomentoStandIn, momento: MomentoClient
) -> None:
    # GIVEN a key with lifetime 0 (never expires)
    key = standin.mint_key(0)

    # WHEN it is refreshed
    reply = momento.refresh(key.inner_jwt, key.refresh_token)

    # THEN the new key never expires either
    assert key.valid_until == 0
    assert reply.valid_until == 0
    assert "exp" not in jwt.decode(reply.api_key, options={"verify_signature": False})


def test_standin_refresh_token_is_single_use(
    standin: MomentoStandIn, momento: MomentoClient
) -> None:
    # GIVEN a key that has been refreshed once
    key = standin.mint_key(7 * DAY)
    momento.refresh(key.inner_jwt, key.refresh_token)

    # WHEN the same refresh token is presented again
    with pytest.raises(grpc.RpcError) as refused:
        momento.refresh(key.inner_jwt, key.refresh_token)

    # THEN it is refused as a bad request, and no second key was granted
    assert status_of(refused.value) == grpc.StatusCode.INVALID_ARGUMENT
    assert details_of(refused.value) == "refresh token already used"
    assert len(standin.grants) == 1


def test_standin_concurrent_refreshes_of_one_key_grant_once(
    standin: MomentoStandIn, momento: MomentoClient
) -> None:
    # GIVEN eight workers holding the same key and refresh token
    key = standin.mint_key(7 * DAY)
    outcomes: list[grpc.StatusCode] = []
    start = threading.Barrier(8)

    def refresh() -> None:
        start.wait()
        try:
            momento.refresh(key.inner_jwt, key.refresh_token)
            outcomes.append(grpc.StatusCode.OK)
        except grpc.RpcError as refused:
            outcomes.append(status_of(refused))

    # WHEN they all refresh at once
    workers = [threading.Thread(target=refresh) for _ in range(8)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()

    # THEN exactly one wins and the rest learn the token is spent
    assert sorted(outcomes, key=str).count(grpc.StatusCode.OK) == 1
    assert outcomes.count(grpc.StatusCode.INVALID_ARGUMENT) == 7
    assert len(standin.grants) == 1


def test_standin_refresh_of_expired_key_is_unauthenticated(
    standin: MomentoStandIn, momento: MomentoClient, clock: FakeClock
) -> None:
    # GIVEN a one-hour key whose hour has just run out
    key = standin.mint_key(3600)
    clock.advance(3600)

    # WHEN it is refreshed
    with pytest.raises(grpc.RpcError) as refused:
        momento.refresh(key.inner_jwt, key.refresh_token)

    # THEN it is refused for good: only a person can mint a new key now
    assert status_of(refused.value) == grpc.StatusCode.UNAUTHENTICATED
    assert "expired" in details_of(refused.value)
    assert not standin.is_accepted(key.stored_key)


@pytest.mark.parametrize(
    "presented",
    ["forged", "garbage", "stored-v1-form", "revoked"],
)
def test_standin_refresh_of_unknown_key_is_unauthenticated(
    standin: MomentoStandIn, momento: MomentoClient, presented: str
) -> None:
    # GIVEN a key the service did not issue, or one presented in the wrong form
    key = standin.mint_key(7 * DAY)
    claims = jwt.decode(key.inner_jwt, options={"verify_signature": False})
    api_key = {
        "forged": jwt.encode(claims, b"not-the-service-secret-0123456789", algorithm="HS256"),
        "garbage": "not-a-key",
        "stored-v1-form": key.stored_key,
        "revoked": key.inner_jwt,
    }[presented]
    if presented == "revoked":
        standin.revoke(key.stored_key)

    # WHEN it is refreshed with the genuine refresh token
    with pytest.raises(grpc.RpcError) as refused:
        momento.refresh(api_key, key.refresh_token)

    # THEN the service does not recognise it
    assert status_of(refused.value) == grpc.StatusCode.UNAUTHENTICATED
    assert standin.grants == []


@pytest.mark.parametrize("form", ["v2", "disposable"])
def test_standin_refresh_of_key_without_refresh_token_is_unauthenticated(
    standin: MomentoStandIn, momento: MomentoClient, form: str
) -> None:
    # GIVEN a key of a form that has no refresh token
    key = standin.mint_key(3600, form=form)  # type: ignore[arg-type]
    assert key.refresh_token is None

    # WHEN a refresh is attempted anyway
    with pytest.raises(grpc.RpcError) as refused:
        momento.refresh(key.inner_jwt, "")

    # THEN it is refused
    assert status_of(refused.value) == grpc.StatusCode.UNAUTHENTICATED


def test_standin_refresh_with_another_keys_token_is_unauthenticated(
    standin: MomentoStandIn, momento: MomentoClient
) -> None:
    # GIVEN two keys, each with its own refresh token
    first, second = standin.mint_key(DAY * 2), standin.mint_key(DAY * 2)

    # WHEN the first key is refreshed with the second key's token
    with pytest.raises(grpc.RpcError) as refused:
        momento.refresh(first.inner_jwt, second.refresh_token)

    # THEN it is refused, and the second key's token is still good
    assert status_of(refused.value) == grpc.StatusCode.UNAUTHENTICATED
    assert momento.refresh(second.inner_jwt, second.refresh_token).api_key


# -- list caches -----------------------------------------------------------------------------


def test_standin_list_caches_with_data_scoped_key_is_permission_denied(
    standin: MomentoStandIn, momento: MomentoClient
) -> None:
    # GIVEN a key scoped to the data plane only
    key = standin.mint_key(7 * DAY, scope="data")

    # WHEN it lists caches
    with pytest.raises(grpc.RpcError) as denied:
        momento.list_caches(key.inner_jwt)

    # THEN it authenticates but may not do this: PERMISSION_DENIED, not UNAUTHENTICATED
    assert status_of(denied.value) == grpc.StatusCode.PERMISSION_DENIED
    assert standin.verify_calls == 1


@pytest.mark.parametrize("case", ["unknown", "expired", "revoked", "stored-v1-form"])
def test_standin_list_caches_with_bad_key_is_unauthenticated(
    standin: MomentoStandIn, momento: MomentoClient, clock: FakeClock, case: str
) -> None:
    # GIVEN a key the control plane must not accept
    key = standin.mint_key(3600)
    presented = key.stored_key if case == "stored-v1-form" else key.inner_jwt
    if case == "unknown":
        presented = MomentoStandIn().mint_key(3600).inner_jwt  # another service's key
    if case == "expired":
        clock.advance(3600)
    if case == "revoked":
        standin.revoke(key.inner_jwt)

    # WHEN it lists caches
    with pytest.raises(grpc.RpcError) as refused:
        momento.list_caches(presented)

    # THEN the key does not authenticate
    assert status_of(refused.value) == grpc.StatusCode.UNAUTHENTICATED


def test_standin_serves_momento_sdk_list_caches(standin: MomentoStandIn) -> None:
    # GIVEN Momento's own SDK aimed at the stand-in (any port but 443 means plain text)
    keys = {"all": standin.mint_key(DAY * 2), "data": standin.mint_key(DAY * 2, scope="data")}

    def list_caches(inner_jwt: str) -> ListCachesResponse:
        host = "127.0.0.1"
        credentials = CredentialProvider(inner_jwt, host, host, host, standin.port)
        with CacheClient(Configurations.Laptop.v1(), credentials, timedelta(seconds=60)) as sdk:
            return sdk.list_caches()

    # WHEN it lists caches with a full key, a data-only key and a bogus key
    full, data_only, bogus = (
        list_caches(keys["all"].inner_jwt),
        list_caches(keys["data"].inner_jwt),
        list_caches("bogus"),
    )

    # THEN the SDK sees success, a permission error and an authentication error
    assert isinstance(full, ListCaches.Success)
    assert isinstance(data_only, ListCaches.Error)
    assert data_only.error_code == MomentoErrorCode.PERMISSION_ERROR
    assert isinstance(bogus, ListCaches.Error)
    assert bogus.error_code == MomentoErrorCode.AUTHENTICATION_ERROR


# -- faults and delays -----------------------------------------------------------------------


@pytest.mark.parametrize("status", [grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.INTERNAL])
def test_standin_refresh_fault_fires_count_times_then_heals(
    standin: MomentoStandIn, momento: MomentoClient, status: grpc.StatusCode
) -> None:
    # GIVEN two injected refresh failures
    key = standin.mint_key(7 * DAY)
    standin.inject_fault("refresh", status, count=2, message="try later")

    # WHEN the client refreshes three times
    seen = []
    for _ in range(3):
        try:
            momento.refresh(key.inner_jwt, key.refresh_token)
            seen.append(grpc.StatusCode.OK)
        except grpc.RpcError as failed:
            seen.append(status_of(failed))

    # THEN two calls fail with that status, the third succeeds, and the faults spent nothing
    assert seen == [status, status, grpc.StatusCode.OK]
    assert standin.refresh_calls == 3
    assert len(standin.grants) == 1


def test_standin_verify_fault_fires_count_times_then_heals(
    standin: MomentoStandIn, momento: MomentoClient
) -> None:
    # GIVEN one injected list-caches failure
    key = standin.mint_key(7 * DAY)
    standin.inject_fault("verify", grpc.StatusCode.UNAVAILABLE)

    # WHEN the key is verified twice
    with pytest.raises(grpc.RpcError) as failed:
        momento.list_caches(key.inner_jwt)
    healthy = momento.list_caches(key.inner_jwt)

    # THEN the first check fails as injected and the second passes
    assert status_of(failed.value) == grpc.StatusCode.UNAVAILABLE
    assert len(healthy.cache) == 1
    assert standin.verify_calls == 2


def test_standin_delay_trips_client_deadline_until_cleared(
    standin: MomentoStandIn, momento: MomentoClient
) -> None:
    # GIVEN a refresh service slower than the client's deadline
    key = standin.mint_key(7 * DAY)
    standin.set_delay("refresh", 5.0)

    # WHEN the client refreshes with a short deadline, then again after the delay is cleared
    with pytest.raises(grpc.RpcError) as timed_out:
        momento.refresh(key.inner_jwt, key.refresh_token, timeout=0.2)
    standin.clear_faults()
    reply = momento.refresh(key.inner_jwt, key.refresh_token)

    # THEN the first attempt times out having changed nothing, so the retry succeeds
    assert status_of(timed_out.value) == grpc.StatusCode.DEADLINE_EXCEEDED
    assert reply.api_key
    assert len(standin.grants) == 1


def test_standin_delay_after_grant_loses_the_new_key(
    standin: MomentoStandIn, momento: MomentoClient
) -> None:
    # GIVEN a service that grants the refresh but answers too late
    key = standin.mint_key(7 * DAY)
    standin.set_delay("refresh", 5.0, phase="after")

    # WHEN the client times out and retries with the same refresh token
    with pytest.raises(grpc.RpcError) as timed_out:
        momento.refresh(key.inner_jwt, key.refresh_token, timeout=0.2)
    standin.clear_faults()
    with pytest.raises(grpc.RpcError) as retried:
        momento.refresh(key.inner_jwt, key.refresh_token)

    # THEN a key was granted that the client never saw, its token is spent, the old key lives on
    assert status_of(timed_out.value) == grpc.StatusCode.DEADLINE_EXCEEDED
    assert status_of(retried.value) == grpc.StatusCode.INVALID_ARGUMENT
    assert len(standin.grants) == 1
    assert standin.is_accepted(key.stored_key)


def test_standin_fault_on_unknown_method_is_refused(standin: MomentoStandIn) -> None:
    # GIVEN / WHEN a fault is aimed at a method the stand-in does not have
    # THEN the test author hears about it at once
    with pytest.raises(ValueError, match="unknown method"):
        standin.inject_fault("rotate", grpc.StatusCode.INTERNAL)  # type: ignore[arg-type]


# -- ledger ----------------------------------------------------------------------------------


def test_standin_grants_ledger_chains_each_refresh(
    standin: MomentoStandIn, momento: MomentoClient, clock: FakeClock
) -> None:
    # GIVEN a key refreshed three times in a row, a day apart
    key = standin.mint_key(30 * DAY, form="legacy")
    current, token = key.inner_jwt, key.refresh_token
    for _ in range(3):
        clock.advance(DAY)
        reply = momento.refresh(current, token)
        current, token = reply.api_key, reply.refresh_token

    # WHEN the ledger is read
    grants = standin.grants

    # THEN each grant replaced the key granted before it, at the time it happened
    assert grants[0].old_inner_jwt == key.inner_jwt
    assert [g.new_key.inner_jwt for g in grants[:-1]] == [g.old_inner_jwt for g in grants[1:]]
    assert grants[-1].new_key.inner_jwt == current
    assert [grant.granted_at for grant in grants] == [
        clock.now - 2 * DAY,
        clock.now - DAY,
        clock.now,
    ]
    assert all(grant.new_key.form == "v1" for grant in grants)


def test_standin_all_secret_strings_holds_everything_issued(
    standin: MomentoStandIn, momento: MomentoClient
) -> None:
    # GIVEN keys of every form, one of them refreshed
    keys = [standin.mint_key(3600, form=form) for form in ("v1", "legacy", "v2", "disposable")]
    reply = momento.refresh(keys[0].inner_jwt, keys[0].refresh_token)

    # WHEN the leak-check set is read
    secrets = standin.all_secret_strings()

    # THEN it holds every stored form, inner JWT and refresh token, the refreshed ones included
    for key in keys:
        assert {key.stored_key, key.inner_jwt} <= secrets
        assert key.refresh_token is None or key.refresh_token in secrets
    assert {
        reply.api_key,
        reply.refresh_token,
        encode_v1_key(reply.endpoint, reply.api_key),
    } <= secrets


def test_standin_issued_key_repr_hides_the_secrets(standin: MomentoStandIn) -> None:
    # GIVEN a minted key
    key = standin.mint_key(3600)

    # WHEN it is printed, as in a failing assertion
    shown = repr(key)

    # THEN none of its secret strings appear
    assert key.inner_jwt not in shown and key.stored_key not in shown
    assert key.refresh_token is not None and key.refresh_token not in shown


# -- minting ---------------------------------------------------------------------------------


def test_standin_mint_v1_key_is_padded_base64_of_endpoint_and_jwt(standin: MomentoStandIn) -> None:
    # GIVEN / WHEN a v1 key is minted
    key = standin.mint_key(3600)

    # THEN it is the console's form, and Momento's SDK finds its control endpoint
    wrapper = json.loads(base64.b64decode(key.stored_key, validate=True))
    assert wrapper == {"endpoint": standin.endpoint, "api_key": key.inner_jwt}
    assert base64.b64encode(base64.b64decode(key.stored_key)).decode() == key.stored_key
    resolved = sdk_resolver.resolve(key.stored_key)
    assert resolved.control_endpoint == f"control.{standin.endpoint}"
    assert resolved.auth_token == key.inner_jwt


def test_standin_mint_legacy_and_v2_keys_carry_their_claims(
    standin: MomentoStandIn, clock: FakeClock
) -> None:
    # GIVEN / WHEN a legacy key and a v2 key are minted
    legacy: IssuedKey = standin.mint_key(3600, form="legacy")
    v2 = standin.mint_key(3600, form="v2")

    # THEN the legacy JWT names its hosts and the v2 JWT says it is global, without refresh token
    claims = jwt.decode(legacy.stored_key, options={"verify_signature": False})
    assert claims["cp"] == f"control.{standin.endpoint}"
    assert claims["c"] == f"cache.{standin.endpoint}"
    assert claims["exp"] == legacy.valid_until == clock.now + 3600
    assert sdk_resolver.resolve(legacy.stored_key).control_endpoint == claims["cp"]
    assert jwt.decode(v2.stored_key, options={"verify_signature": False})["t"] == "g"
    assert v2.refresh_token is None


@pytest.mark.parametrize(
    ("lifetime", "form"),
    [(2 * DAY, "disposable"), (0, "disposable"), (-1, "v1"), (3600, "v3")],
    ids=["long-disposable", "immortal-disposable", "negative-lifetime", "unknown-form"],
)
def test_standin_mint_refuses_impossible_keys(
    standin: MomentoStandIn, lifetime: int, form: str
) -> None:
    # GIVEN / WHEN a key Momento would never issue is requested
    # THEN the fixture refuses it instead of making an unrealistic test
    with pytest.raises(ValueError):
        standin.mint_key(lifetime, form=form)  # type: ignore[arg-type]


# -- the server itself -----------------------------------------------------------------------


def test_standin_listens_on_loopback_only(standin: MomentoStandIn) -> None:
    # GIVEN / WHEN a stand-in runs
    # THEN its only listening socket is on 127.0.0.1
    assert listening_addresses(standin.port) == {"127.0.0.1"}


def test_standin_refuses_a_port_already_taken(standin: MomentoStandIn) -> None:
    # GIVEN a stand-in on some port
    # WHEN a second one is asked for the same port
    # THEN it fails loudly instead of sharing the port
    with pytest.raises(OSError), MomentoStandIn(port=standin.port):
        pass


def test_standin_main_serves_until_sigterm() -> None:
    # GIVEN the stand-in started as its own process
    process = subprocess.Popen(
        [sys.executable, "-m", "localenv.momento_standin", "--port", "0", "--mint-lifetime", "600"],
        cwd=REPO_ROOT,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        listening = process.stdout.readline().strip()
        token_file = json.loads(process.stdout.readline())

        # WHEN a client uses the printed key, then the process is sent SIGTERM
        address = listening.removeprefix("listening on ")
        client = MomentoClient(address)
        inner_jwt = json.loads(base64.b64decode(token_file["apiKey"]))["api_key"]
        reply = client.refresh(inner_jwt, token_file["refreshToken"])
        client.channel.close()
        process.send_signal(signal.SIGTERM)

        # THEN it served on loopback and exits cleanly
        assert address.startswith("127.0.0.1:")
        assert reply.valid_until >= int(token_file["validUntil"])
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
