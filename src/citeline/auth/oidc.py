"""Sign-in with an OpenID provider: the authorization code flow with PKCE, as a relying party.

`OidcClient.authorization_url` keeps a state, a nonce and a PKCE verifier in Redis for ten
minutes; `OidcClient.complete` takes them back once, redeems the code and verifies the ID token.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx
import jwt
import redis
from jwt.algorithms import has_crypto

from citeline.errors import (
    ConfigurationError,
    InvalidInput,
    ServiceUnavailable,
    Unauthorized,
    UpstreamError,
)

STATE_PREFIX = "citeline:oidc:state:"
STATE_TTL_SECONDS = 600
SCOPE = "openid email profile"
CLOCK_SKEW_SECONDS = 60
# The ID token algorithms accepted, with the JWK key type each needs: never `none` nor HS*.
_KEY_TYPES = {
    **dict.fromkeys(("RS256", "RS384", "RS512", "PS256", "PS384", "PS512"), "RSA"),
    **dict.fromkeys(("ES256", "ES384", "ES512"), "EC"),
    "EdDSA": "OKP",
}


@dataclass(frozen=True)
class Identity:
    issuer: str
    subject: str
    email: str | None
    email_verified: bool
    name: str | None
    return_to: str  # what was passed to authorization_url


class OidcClient:
    """A relying party of one OpenID provider; discovery and its keys are cached per instance."""

    def __init__(
        self,
        issuer: str,
        client_id: str,
        client_secret: str | None,
        redirect_uri: str,
        connection: redis.Redis,
        *,
        timeout: float = 10.0,
    ) -> None:
        if not has_crypto:
            raise ConfigurationError(
                "OpenID Connect needs the cryptography package (pyjwt[crypto])"
            )
        self.issuer = issuer
        self.client_id = client_id
        self.redirect_uri = redirect_uri
        self._client_secret = client_secret
        self._connection = connection
        self._timeout = timeout
        self._metadata: dict[str, Any] | None = None
        self._jwks: list[dict[str, Any]] | None = None

    def authorization_url(self, return_to: str) -> str:
        """Make state, nonce and a PKCE verifier; keep them in Redis (key prefix
        `citeline:oidc:state:`, TTL 600 s, one-time); return the provider's authorize URL
        (scope `openid email profile`)."""
        _check_return_to(return_to)
        endpoint = self._discover()["authorization_endpoint"]
        state, nonce, verifier = (secrets.token_urlsafe(32) for _ in range(3))
        record = json.dumps({"nonce": nonce, "verifier": verifier, "return_to": return_to})
        try:
            self._connection.set(STATE_PREFIX + state, record, ex=STATE_TTL_SECONDS, nx=True)
        except redis.RedisError as exc:
            raise ServiceUnavailable(f"sign-in state store unavailable: {exc}") from exc
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
        params = {
            "response_type": "code",
            "client_id": self.client_id,
            "redirect_uri": self.redirect_uri,
            "scope": SCOPE,
            "state": state,
            "nonce": nonce,
            "code_challenge": challenge.rstrip(b"=").decode(),
            "code_challenge_method": "S256",
        }
        return str(httpx.URL(endpoint).copy_merge_params(params))

    def complete(self, code: str, state: str) -> Identity:
        """Take the state once (GETDEL), exchange the code with the verifier at the token
        endpoint (client_secret_basic when a secret is set, else public client), verify the ID
        token: signature from the JWKS (asymmetric algorithms only, never `none` or HS*), iss,
        aud, exp, nonce; return the identity."""
        record = self._take_state(state)
        tokens = self._redeem(code, record["verifier"])
        claims = self._verify_id_token(tokens["id_token"], record["nonce"])
        access_token = tokens.get("access_token")
        # Strict providers put profile claims in the userinfo response only.
        if not {"email", "name"} <= claims.keys() and isinstance(access_token, str):
            claims = {**self._userinfo(access_token, claims["sub"]), **claims}
        email, name = claims.get("email"), claims.get("name")
        return Identity(
            issuer=self.issuer,
            subject=claims["sub"],
            email=email if isinstance(email, str) else None,
            email_verified=claims.get("email_verified") in (True, "true"),
            name=name if isinstance(name, str) else None,
            return_to=record["return_to"],
        )

    def _take_state(self, state: str) -> dict[str, str]:
        if not state or len(state) > 128:
            raise Unauthorized("unknown sign-in state")
        try:
            raw = self._connection.getdel(STATE_PREFIX + state)
        except redis.RedisError as exc:
            raise ServiceUnavailable(f"sign-in state store unavailable: {exc}") from exc
        if raw is None:
            raise Unauthorized("unknown, expired or already used sign-in state")
        record: dict[str, str] = json.loads(raw)
        return record

    def _redeem(self, code: str, verifier: str) -> dict[str, Any]:
        data = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": self.redirect_uri,
            "code_verifier": verifier,
        }
        auth = None
        if self._client_secret is None:
            data["client_id"] = self.client_id
        else:  # client_secret_basic: RFC 6749 2.3.1 form-encodes both before joining them
            auth = httpx.BasicAuth(
                quote(self.client_id, safe=""), quote(self._client_secret, safe="")
            )
        endpoint = self._discover()["token_endpoint"]
        response = self._request("POST", endpoint, data=data, auth=auth)
        if response.status_code != 200:
            body = _lenient_json(response)
            error = body.get("error") or f"HTTP {response.status_code}"
            description = f" ({body['error_description']})" if body.get("error_description") else ""
            if error in ("invalid_client", "unauthorized_client"):
                raise UpstreamError(f"the provider refused Citeline's client: {error}{description}")
            raise Unauthorized(f"the provider refused the authorization code: {error}{description}")
        tokens = _json(response)
        if not isinstance(tokens.get("id_token"), str):
            raise UpstreamError("the provider's token response has no ID token")
        return tokens

    def _verify_id_token(self, token: str, nonce: str) -> dict[str, Any]:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise Unauthorized(f"ID token is malformed: {exc}") from exc
        alg, kid = header.get("alg"), header.get("kid")
        if alg not in _KEY_TYPES:
            raise Unauthorized(
                f"ID token is signed with {alg!r}; only asymmetric keys are accepted"
            )
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                self._signing_key(kid, alg),
                algorithms=[alg],
                audience=self.client_id,
                issuer=self.issuer,
                leeway=CLOCK_SKEW_SECONDS,
                options={"require": ["iss", "sub", "aud", "exp", "iat", "nonce"]},
            )
        except jwt.PyJWTError as exc:
            raise Unauthorized(f"ID token rejected: {exc}") from exc
        audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
        if len(audiences) > 1 and claims.get("azp") != self.client_id:
            raise Unauthorized(
                f"ID token has several audiences and its azp is not {self.client_id}"
            )
        if not hmac.compare_digest(str(claims["nonce"]), nonce):
            raise Unauthorized("ID token nonce does not match the sign-in request")
        return claims

    def _signing_key(self, kid: object, alg: str) -> Any:
        fetched = self._jwks is None
        if self._jwks is None:
            self._jwks = self._fetch_jwks()
        matches = _matching_keys(self._jwks, kid, alg)
        if not matches and not fetched:  # the provider may have rotated its keys since
            self._jwks = self._fetch_jwks()
            matches = _matching_keys(self._jwks, kid, alg)
        if len(matches) != 1:
            raise Unauthorized(
                f"no single key of the provider matches the ID token ({alg}, kid {kid})"
            )
        try:
            return jwt.PyJWK(matches[0], alg).key
        except jwt.PyJWTError as exc:
            raise UpstreamError(f"the provider's key {kid} is unusable: {exc}") from exc

    def _fetch_jwks(self) -> list[dict[str, Any]]:
        keys = _json(self._request("GET", self._discover()["jwks_uri"], check=True)).get("keys")
        if not isinstance(keys, list):
            raise UpstreamError("the provider's JWKS has no key list")
        return [key for key in keys if isinstance(key, dict)]

    def _userinfo(self, access_token: str, subject: str) -> dict[str, Any]:
        endpoint = self._discover().get("userinfo_endpoint")
        if not isinstance(endpoint, str):
            return {}
        headers = {"Authorization": f"Bearer {access_token}"}
        claims = _json(self._request("GET", endpoint, headers=headers, check=True))
        if claims.get("sub") != subject:
            raise Unauthorized("the userinfo subject differs from the ID token's")
        return claims

    def _discover(self) -> dict[str, Any]:
        if self._metadata is None:
            url = self.issuer.rstrip("/") + "/.well-known/openid-configuration"
            metadata = _json(self._request("GET", url, check=True))
            if metadata.get("issuer") != self.issuer:
                raise UpstreamError(
                    f"the provider's discovery names issuer {metadata.get('issuer')!r}, "
                    f"not {self.issuer!r}"
                )
            for name in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
                if not isinstance(metadata.get(name), str):
                    raise UpstreamError(f"the provider's discovery has no {name}")
            self._metadata = metadata
        return self._metadata

    def _request(
        self, method: str, url: str, *, check: bool = False, **kwargs: Any
    ) -> httpx.Response:
        """Send one request; 5xx and transport failures are ServiceUnavailable, other non-2xx
        answers an UpstreamError when `check`."""
        headers = {"Accept": "application/json", **kwargs.pop("headers", {})}
        try:
            response = httpx.request(method, url, headers=headers, timeout=self._timeout, **kwargs)
        except httpx.TransportError as exc:
            raise ServiceUnavailable(f"OpenID provider unreachable ({url}): {exc}") from exc
        if response.status_code >= 500:
            raise ServiceUnavailable(
                f"OpenID provider failed: {url} answered {response.status_code}"
            )
        if check and response.status_code != 200:
            raise UpstreamError(f"OpenID provider: {url} answered {response.status_code}")
        return response


def _check_return_to(return_to: str) -> None:
    # Browsers read "/\host" as "//host" and drop tabs and newlines, so both are refused too.
    if (
        not return_to.startswith("/")
        or return_to[1:2] in ("/", "\\")
        or len(return_to) > 2048
        or any(char == "\\" or ord(char) < 0x20 or ord(char) == 0x7F for char in return_to)
    ):
        raise InvalidInput(
            "return_to must be a path on this site starting with a single '/'", field="return_to"
        )


def _matching_keys(keys: list[dict[str, Any]], kid: object, alg: str) -> list[dict[str, Any]]:
    return [
        key
        for key in keys
        if key.get("kty") == _KEY_TYPES[alg]
        and key.get("use", "sig") == "sig"
        and key.get("alg", alg) == alg
        and (kid is None or key.get("kid") == kid)
    ]


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError as exc:
        raise UpstreamError(f"OpenID provider: {response.url} answered non-JSON") from exc
    if not isinstance(body, dict):
        raise UpstreamError(
            f"OpenID provider: {response.url} answered a JSON {type(body).__name__}"
        )
    return body


def _lenient_json(response: httpx.Response) -> dict[str, Any]:
    try:
        return _json(response)
    except UpstreamError:
        return {}


__all__ = ["Identity", "OidcClient"]
