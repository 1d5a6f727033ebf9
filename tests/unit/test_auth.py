"""Bearer tokens: what verifies, what is refused, and what each role may do (shared/platform/
auth.py, shared/ops/tokens.py). Tokens are signed for real (ES256) and checked by PyJWT."""

from __future__ import annotations

import time
from pathlib import Path

import jwt
import pytest

from shared.ops.tokens import SigningKeys
from shared.platform.auth import (
    ROLE_PERMISSIONS,
    Permission,
    TokenVerifier,
    principal_from_claims,
)


@pytest.fixture
def keys(tmp_path: Path) -> SigningKeys:
    keys = SigningKeys(tmp_path / "auth")
    keys.ensure()
    return keys


def verifier(keys: SigningKeys, audience: str = "oms") -> TokenVerifier:
    return TokenVerifier(issuer="oms-local", audience=audience, jwks_file=keys.jwks_file)


def test_a_signed_token_gives_its_roles_permissions(keys: SigningKeys):
    principal = verifier(keys).verify(keys.issue(["operator"], subject="ada"))
    assert principal.subject == "ada"
    assert principal.can(Permission.ORDERS_OPERATE) and principal.can(Permission.PERSONAL_DATA)
    assert not principal.can(Permission.STOCK_WRITE)


def test_scoped_roles_act_for_their_channel_or_carrier_only():
    amazon = principal_from_claims({"sub": "poller", "roles": ["channel:amazon"]})
    assert amazon.may_act_for_channel("amazon") and not amazon.may_act_for_channel("ebay")
    assert not amazon.can(Permission.ORDERS_READ)
    dhl = principal_from_claims({"sub": "dhl", "roles": ["carrier:dhl"]})
    assert dhl.may_act_for_carrier("dhl") and not dhl.may_act_for_carrier("ups")
    keycloak = principal_from_claims({"sub": "k", "realm_access": {"roles": ["viewer"]}})
    assert keycloak.can(Permission.ORDERS_READ) and not keycloak.can(Permission.PERSONAL_DATA)
    assert principal_from_claims({"sub": "x", "roles": ["no-such-role"]}).permissions == set()


@pytest.mark.parametrize(
    "case", ["wrong_audience", "expired", "unknown_key", "alg_none", "hmac", "wrong_issuer"]
)
def test_bad_tokens_are_refused(keys: SigningKeys, tmp_path: Path, case: str):
    if case == "wrong_audience":
        token = keys.issue(["admin"], audience="someone-else")
    elif case == "wrong_issuer":
        token = keys.issue(["admin"], issuer="https://evil.example")
    elif case == "expired":
        token = keys.issue(["admin"], ttl_s=-120)
    elif case == "unknown_key":
        token = SigningKeys(tmp_path / "other").issue(["admin"])
    elif case == "alg_none":
        claims = {"iss": "oms-local", "aud": "oms", "sub": "x", "exp": time.time() + 60}
        token = jwt.encode(claims, None, algorithm="none", headers={"kid": keys.ensure()})
    else:
        claims = {"iss": "oms-local", "aud": "oms", "sub": "x", "exp": time.time() + 60}
        token = jwt.encode(claims, "secret" * 8, algorithm="HS256", headers={"kid": keys.ensure()})
    with pytest.raises(jwt.PyJWTError):
        verifier(keys).verify(token)


def test_a_rotated_key_keeps_old_tokens_valid_until_retired(keys: SigningKeys):
    old_kid = keys.ensure()
    old_token = keys.issue(["viewer"])
    new_kid = keys.rotate()
    assert new_kid != old_kid
    check = verifier(keys)
    assert check.verify(old_token).can(Permission.ORDERS_READ)
    assert check.verify(keys.issue(["viewer"])).can(Permission.ORDERS_READ)
    keys.retire(old_kid)
    with pytest.raises(jwt.PyJWTError):
        verifier(keys).verify(old_token)


def test_every_role_of_the_issue_exists():
    assert {"admin", "operator", "customer_service", "warehouse", "finance", "viewer"} <= set(
        ROLE_PERMISSIONS
    )
    assert ROLE_PERMISSIONS["admin"] == frozenset(Permission)


def test_a_verified_token_is_remembered_but_not_past_its_expiry(keys: SigningKeys):
    check = TokenVerifier(issuer="oms-local", audience="oms", jwks_file=keys.jwks_file, leeway_s=0)
    token = keys.issue(["viewer"], ttl_s=1)
    first = check.verify(token)
    assert check.verify(token) is first, "the second use is not verified again"
    time.sleep(1.1)
    with pytest.raises(jwt.PyJWTError):
        check.verify(token)
