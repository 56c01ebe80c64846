"""Tokens: through msal against an https authority on loopback (a test-only CA), directly against an http one."""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Iterator
from pathlib import Path

import pytest

from segmenta.destinations.base import DestinationError
from segmenta.destinations.tokens import Tokens
from tests.destinations.conftest import CLIENT_ID, CLIENT_SECRET, TENANT
from tests.destinations.fake_dataverse import FakeAuthority

SCOPE = "https://socktown.crm.dynamics.com/.default"


def _self_signed(tmp: Path) -> tuple[str, str]:
    """A certificate for 127.0.0.1, signed by itself: the test's own CA."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    certfile, keyfile = tmp / "cert.pem", tmp / "key.pem"
    certfile.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    keyfile.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return str(certfile), str(keyfile)


@pytest.fixture()
def tls_authority(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeAuthority]:
    certfile, keyfile = _self_signed(tmp_path)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", certfile)  # msal's requests session trusts the test CA
    a = FakeAuthority(tenant=TENANT, client_id=CLIENT_ID, client_secret=CLIENT_SECRET)
    a.use_tls(certfile, keyfile)
    with a:
        a.base_url = a.url
        yield a


def test_an_https_authority_is_asked_through_msal(tls_authority: FakeAuthority) -> None:
    tokens = Tokens(authority=tls_authority.url, tenant_id=TENANT, client_id=CLIENT_ID, client_secret=CLIENT_SECRET, scope=SCOPE)
    token = tokens.get()
    assert tokens.via == "msal"
    assert tls_authority.tokens[token] == SCOPE
    assert tls_authority.discovery_gets == 1  # msal read the OpenID configuration first
    (req,) = tls_authority.requests
    assert req["grant_type"] == "client_credentials" and req["client_id"] == CLIENT_ID and req["scope"] == SCOPE
    assert tokens.get() == token  # cached until it nears its expiry


def test_msal_errors_name_the_authoritys_error_not_the_secret(tls_authority: FakeAuthority) -> None:
    tokens = Tokens(
        authority=tls_authority.url, tenant_id=TENANT, client_id=CLIENT_ID, client_secret="wrong-secret-42", scope=SCOPE
    )
    with pytest.raises(DestinationError, match="invalid_client") as info:
        tokens.get()
    assert "wrong-secret-42" not in str(info.value)


def test_an_http_authority_gets_the_plain_client_credentials_request(authority: FakeAuthority) -> None:
    tokens = Tokens(authority=authority.url, tenant_id=TENANT, client_id=CLIENT_ID, client_secret=CLIENT_SECRET, scope=SCOPE)
    token = tokens.get()
    assert tokens.via == "oauth2" and authority.tokens[token] == SCOPE
    assert authority.discovery_gets == 0
    with pytest.raises(DestinationError, match="tenant"):
        Tokens(
            authority=authority.url, tenant_id="other-tenant", client_id=CLIENT_ID, client_secret=CLIENT_SECRET, scope=SCOPE
        ).get()
