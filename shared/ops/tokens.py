"""Local token signing: the development stand-in for an identity provider.

`make run` creates an EC P-256 signing key under `.local/auth/` and publishes its public half as
a JWKS file the services read (`OMS_AUTH_JWKS_FILE`); `oms token issue` signs tokens (ES256)
with it, the claims an identity provider would put in: `iss`, `aud`, `sub`, `exp`, `roles`.
In production the services read the provider's JWKS URL instead and none of this runs.

Rotation: `rotate()` adds a new key to the JWKS and signs with it from then on; the old public
key stays in the JWKS (tokens it signed stay valid until they expire) until `retire()` drops it.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

DEFAULT_ISSUER = "oms-local"
DEFAULT_AUDIENCE = "oms"
ALGORITHM = "ES256"


@dataclass(frozen=True)
class SigningKeys:
    directory: Path

    @property
    def jwks_file(self) -> Path:
        return self.directory / "jwks.json"

    @property
    def current_file(self) -> Path:
        return self.directory / "current-kid"

    def private_key_file(self, kid: str) -> Path:
        return self.directory / f"{kid}.pem"

    def ensure(self) -> str:
        """The kid of the signing key, created (with the JWKS) when there is none."""
        if self.current_file.exists() and self.jwks_file.exists():
            return self.current_file.read_text().strip()
        return self.rotate()

    def rotate(self) -> str:
        """A new signing key; the JWKS keeps the previous public keys."""
        self.directory.mkdir(parents=True, exist_ok=True)
        key = ec.generate_private_key(ec.SECP256R1())
        public = ECAlgorithm.to_jwk(key.public_key(), as_dict=True)
        thumbprint = json.dumps(
            {k: public[k] for k in ("crv", "kty", "x", "y")}, separators=(",", ":"), sort_keys=True
        )
        kid = base64.urlsafe_b64encode(hashlib.sha256(thumbprint.encode()).digest()[:12]).decode()
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        private_file = self.private_key_file(kid)
        private_file.write_bytes(pem)
        os.chmod(private_file, 0o600)
        keys = self._jwks()["keys"]
        keys.append({**public, "kid": kid, "alg": ALGORITHM, "use": "sig"})
        self._write_jwks(keys)
        self.current_file.write_text(kid + "\n")
        return kid

    def retire(self, kid: str) -> None:
        """Drop a key that no longer signs (after its tokens expired) from the JWKS."""
        if kid == self.current_file.read_text().strip():
            raise ValueError("the current signing key cannot be retired: rotate first")
        self._write_jwks([k for k in self._jwks()["keys"] if k.get("kid") != kid])
        self.private_key_file(kid).unlink(missing_ok=True)

    def _jwks(self) -> dict[str, Any]:
        if not self.jwks_file.exists():
            return {"keys": []}
        loaded: dict[str, Any] = json.loads(self.jwks_file.read_text())
        return loaded

    def _write_jwks(self, keys: list[dict[str, Any]]) -> None:
        tmp = self.jwks_file.with_suffix(".tmp")
        tmp.write_text(json.dumps({"keys": keys}, indent=2) + "\n")
        tmp.replace(self.jwks_file)

    def issue(
        self,
        roles: list[str],
        *,
        subject: str | None = None,
        ttl_s: float = 3600,
        issuer: str = DEFAULT_ISSUER,
        audience: str = DEFAULT_AUDIENCE,
        extra: dict[str, Any] | None = None,
    ) -> str:
        kid = self.ensure()
        now = int(time.time())
        claims = {
            "iss": issuer,
            "aud": audience,
            "sub": subject or f"local:{'+'.join(roles)}",
            "iat": now,
            "exp": now + int(ttl_s),
            "jti": uuid.uuid4().hex,
            "roles": roles,
            **(extra or {}),
        }
        private = self.private_key_file(kid).read_bytes()
        return jwt.encode(claims, private, algorithm=ALGORITHM, headers={"kid": kid})


# `.local/` of the checkout (git-ignored), where the dev tooling keeps its state too.
LOCAL_KEYS_DIR = Path(__file__).resolve().parents[2] / ".local" / "auth"


def local_keys() -> SigningKeys:
    """The signing key `make run` and `oms token issue` use: `.local/auth/`."""
    return SigningKeys(LOCAL_KEYS_DIR)


def operator_token_file() -> Path:
    return local_keys().directory / "operator.token"
