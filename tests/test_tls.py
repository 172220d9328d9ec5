"""Any Temporal cluster: the connection comes from Temporal's environment configuration
(TEMPORAL_* variables, temporal.toml profiles), proven against a TLS endpoint on loopback.

The dev server speaks plain gRPC, so a TLS-terminating proxy (Python's ssl + asyncio, ALPN
h2) sits in front of it, with a throwaway CA, server and client certificate. The proxy
decodes the HTTP/2 headers the client sends (HPACK), so a test sees what reached the wire.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import ipaddress
import ssl
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import hpack
import pytest
import pytest_asyncio
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest
from temporalio.testing import WorkflowEnvironment

from engine.connection import connect
from engine.settings import Settings
from tests.conftest import run_offline, starter, worker_env
from workflows.errors import UsageError

# certificates


@dataclass(frozen=True)
class Pki:
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _issue(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: tuple[x509.Name, ec.EllipticCurvePrivateKey] | None,
    extensions: list[tuple[x509.ExtensionType, bool]],
) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    issuer_name, issuer_key = issuer or (_name(subject), key)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
    )
    for extension, critical in extensions:
        builder = builder.add_extension(extension, critical)
    return builder.sign(issuer_key, hashes.SHA256())


def _write(directory: Path, name: str, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey):
    cert_path, key_path = directory / f"{name}.pem", directory / f"{name}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def make_pki(directory: Path) -> Pki:
    """A throwaway CA, a server certificate for 127.0.0.1/localhost and a client one."""
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _issue(
        "test CA",
        ca_key,
        None,
        [
            (x509.BasicConstraints(ca=True, path_length=None), True),
            (x509.KeyUsage(True, False, False, False, False, True, True, False, False), True),
        ],
    )
    leaf_usage = x509.KeyUsage(True, False, False, False, False, False, False, False, False)
    server_key = ec.generate_private_key(ec.SECP256R1())
    server = _issue(
        "localhost",
        server_key,
        (ca.subject, ca_key),
        [
            (x509.BasicConstraints(ca=False, path_length=None), True),
            (leaf_usage, True),
            (x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False),
            (
                x509.SubjectAlternativeName(
                    [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
                ),
                False,
            ),
        ],
    )
    client_key = ec.generate_private_key(ec.SECP256R1())
    client = _issue(
        "test worker",
        client_key,
        (ca.subject, ca_key),
        [
            (x509.BasicConstraints(ca=False, path_length=None), True),
            (leaf_usage, True),
            (x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), False),
        ],
    )
    ca_path = directory / "ca.pem"
    ca_path.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    server_cert, server_key_path = _write(directory, "server", server, server_key)
    client_cert, client_key_path = _write(directory, "client", client, client_key)
    return Pki(ca_path, server_cert, server_key_path, client_cert, client_key_path)


# the TLS proxy


class HeaderSniffer:
    """Decodes the HTTP/2 header blocks one client connection sends, in order (HPACK keeps a
    table across the connection's blocks)."""

    PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

    def __init__(self, seen: list[tuple[str, str]]) -> None:
        self.seen = seen
        self.buffer = b""
        self.block = b""
        self.decoder = hpack.Decoder()
        self.after_preface = False

    def feed(self, data: bytes) -> None:
        self.buffer += data
        if not self.after_preface:
            if len(self.buffer) < len(self.PREFACE):
                return
            assert self.buffer.startswith(self.PREFACE), "not HTTP/2"
            self.buffer = self.buffer[len(self.PREFACE) :]
            self.after_preface = True
        while len(self.buffer) >= 9:
            length = int.from_bytes(self.buffer[:3], "big")
            kind, flags = self.buffer[3], self.buffer[4]
            if len(self.buffer) < 9 + length:
                return
            payload, self.buffer = self.buffer[9 : 9 + length], self.buffer[9 + length :]
            if kind == 0x1:  # HEADERS
                if flags & 0x8:  # PADDED
                    payload = payload[1 : len(payload) - payload[0]]
                if flags & 0x20:  # PRIORITY
                    payload = payload[5:]
                self.block = payload
            elif kind == 0x9:  # CONTINUATION
                self.block += payload
            else:
                continue
            if flags & 0x4:  # END_HEADERS
                self.seen += self.decoder.decode(self.block)
                self.block = b""


@dataclass
class TlsProxy:
    """TLS (ALPN h2) on loopback, forwarding to a plain-gRPC server."""

    address: str
    headers: list[tuple[str, str]] = field(default_factory=list)
    handshakes: int = 0


@contextlib.asynccontextmanager
async def tls_proxy(pki: Pki, upstream: str, require_client_cert: bool) -> AsyncIterator[TlsProxy]:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(pki.server_cert, pki.server_key)
    context.set_alpn_protocols(["h2"])
    if require_client_cert:
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(pki.ca)
    up_host, _, up_port = upstream.rpartition(":")
    tasks: set[asyncio.Task[None]] = set()

    async def pipe(reader, writer, sniffer: HeaderSniffer | None) -> None:
        try:
            while data := await reader.read(65536):
                if sniffer is not None:
                    sniffer.feed(data)
                writer.write(data)
                await writer.drain()
        except (ConnectionError, ssl.SSLError):
            pass
        finally:
            writer.close()

    async def handle(client_reader, client_writer) -> None:
        proxy.handshakes += 1
        server_reader, server_writer = await asyncio.open_connection(up_host, int(up_port))
        sniffer = HeaderSniffer(proxy.headers)
        await asyncio.gather(
            pipe(client_reader, server_writer, sniffer),
            pipe(server_reader, client_writer, None),
        )

    def track(reader, writer) -> None:
        task = asyncio.ensure_future(handle(reader, writer))
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    server = await asyncio.start_server(track, "127.0.0.1", 0, ssl=context)
    proxy = TlsProxy(f"127.0.0.1:{server.sockets[0].getsockname()[1]}")
    try:
        yield proxy
    finally:
        server.close()
        for task in list(tasks):
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def upstream(temporal_env: WorkflowEnvironment) -> str:
    return temporal_env.client.service_client.config.target_host


@pytest_asyncio.fixture
async def mtls_proxy(pki: Pki, upstream: str) -> AsyncIterator[TlsProxy]:
    async with tls_proxy(pki, upstream, require_client_cert=True) as proxy:
        yield proxy


@pytest_asyncio.fixture
async def tls_only_proxy(pki: Pki, upstream: str) -> AsyncIterator[TlsProxy]:
    async with tls_proxy(pki, upstream, require_client_cert=False) as proxy:
        yield proxy


def mtls_env(proxy: TlsProxy, pki: Pki, tmp_path: Path) -> dict[str, str]:
    return {
        "TEMPORAL_ADDRESS": proxy.address,
        "TEMPORAL_TLS_CLIENT_CERT_PATH": str(pki.client_cert),
        "TEMPORAL_TLS_CLIENT_KEY_PATH": str(pki.client_key),
        "TEMPORAL_TLS_SERVER_CA_CERT_PATH": str(pki.ca),
        "TEMPORAL_DEV_DIR": str(tmp_path / "dev"),
    }


async def namespace_of(settings: Settings) -> str:
    client = await connect(settings)
    described = await client.workflow_service.describe_namespace(
        DescribeNamespaceRequest(namespace=settings.namespace)
    )
    return described.namespace_info.name


# settings: what the environment configuration gives


def test_without_configuration_the_local_defaults_stand():
    settings = Settings.from_env({})
    assert (settings.address, settings.namespace) == ("localhost:7233", "default")
    assert settings.ui_url == "http://localhost:8233"
    assert settings.connect_config() == {"target_host": "localhost:7233", "namespace": "default"}


def test_an_api_key_turns_tls_on_and_a_cloud_address_links_the_cloud_ui():
    settings = Settings.from_env(
        {
            "TEMPORAL_ADDRESS": "us-east-1.aws.api.temporal.io:7233",
            "TEMPORAL_NAMESPACE": "prod.a1b2c",
            "TEMPORAL_API_KEY": "the-key",
        }
    )
    assert settings.connect_config() == {
        "target_host": "us-east-1.aws.api.temporal.io:7233",
        "namespace": "prod.a1b2c",
        "api_key": "the-key",
        "tls": True,
    }
    assert settings.ui_url == "https://cloud.temporal.io"


def test_a_profile_from_the_config_file_and_variables_over_it(tmp_path):
    config = tmp_path / "temporal.toml"
    config.write_text(
        '[profile.cloud]\naddress = "prod.a1b2c.tmprl.cloud:7233"\nnamespace = "prod.a1b2c"\n'
        '[profile.cloud.tls]\nclient_cert_path = "/certs/client.pem"\n'
        'client_key_path = "/certs/client.key"\n'
    )
    env = {"TEMPORAL_CONFIG_FILE": str(config), "TEMPORAL_PROFILE": "cloud"}
    settings = Settings.from_env(env)
    assert (settings.address, settings.namespace) == ("prod.a1b2c.tmprl.cloud:7233", "prod.a1b2c")
    assert settings.temporal_tls is not None
    assert settings.temporal_tls.client_cert == Path("/certs/client.pem")
    overridden = Settings.from_env(env | {"TEMPORAL_NAMESPACE": "staging.a1b2c"})
    assert overridden.namespace == "staging.a1b2c"
    assert overridden.address == "prod.a1b2c.tmprl.cloud:7233"


def test_a_missing_profile_is_one_clear_error(tmp_path):
    config = tmp_path / "temporal.toml"
    config.write_text('[profile.default]\naddress = "localhost:7233"\n')
    with pytest.raises(UsageError, match="Profile 'staging' not found"):
        Settings.from_env({"TEMPORAL_CONFIG_FILE": str(config), "TEMPORAL_PROFILE": "staging"})


async def test_a_missing_certificate_file_is_one_clear_error(tmp_path):
    settings = Settings.from_env(
        {
            "TEMPORAL_ADDRESS": "127.0.0.1:1",
            "TEMPORAL_TLS_CLIENT_CERT_PATH": str(tmp_path / "missing.pem"),
            "TEMPORAL_TLS_CLIENT_KEY_PATH": str(tmp_path / "missing.key"),
        }
    )
    with pytest.raises(UsageError, match=r"TLS for Temporal at 127\.0\.0\.1:1: .*missing\.pem"):
        await connect(settings)


# over the wire


async def test_mtls_with_the_client_certificate_connects(mtls_proxy, pki, tmp_path):
    settings = Settings.from_env(mtls_env(mtls_proxy, pki, tmp_path))
    assert await namespace_of(settings) == "default"
    client = await connect(settings)
    async for _ in client.list_workflows(limit=1):
        break
    assert mtls_proxy.handshakes >= 1


async def test_mtls_from_a_profile_in_temporal_toml(mtls_proxy, pki, tmp_path):
    config = tmp_path / "temporal.toml"
    config.write_text(
        f'[profile.secure]\naddress = "{mtls_proxy.address}"\nnamespace = "default"\n'
        f'[profile.secure.tls]\nclient_cert_path = "{pki.client_cert}"\n'
        f'client_key_path = "{pki.client_key}"\nserver_ca_cert_path = "{pki.ca}"\n'
    )
    env = {"TEMPORAL_CONFIG_FILE": str(config), "TEMPORAL_PROFILE": "secure"}
    assert await namespace_of(Settings.from_env(env)) == "default"


@pytest.mark.parametrize(
    ("leave_out", "error"),
    [
        pytest.param(
            ("TEMPORAL_TLS_CLIENT_CERT_PATH", "TEMPORAL_TLS_CLIENT_KEY_PATH"),
            "transport error",
            id="no-client-cert",
        ),
        pytest.param(
            ("TEMPORAL_TLS_SERVER_CA_CERT_PATH",), "UnknownIssuer", id="server-not-trusted"
        ),
    ],
)
async def test_mtls_refuses_what_it_should(mtls_proxy, pki, tmp_path, leave_out, error):
    """Without the client certificate the proxy ends the handshake; without the CA the
    client does not trust the proxy. Either way no request reaches the server."""
    env = {k: v for k, v in mtls_env(mtls_proxy, pki, tmp_path).items() if k not in leave_out}
    with pytest.raises(RuntimeError, match=error):
        await connect(Settings.from_env(env))
    assert mtls_proxy.headers == []


async def test_the_api_key_goes_over_tls_as_a_bearer_token(tls_only_proxy, pki, tmp_path):
    key = f"key-{uuid.uuid4()}"
    env = {
        "TEMPORAL_ADDRESS": tls_only_proxy.address,
        "TEMPORAL_API_KEY": key,
        "TEMPORAL_TLS_SERVER_CA_CERT_PATH": str(pki.ca),
        "TEMPORAL_DEV_DIR": str(tmp_path / "dev"),
    }
    settings = Settings.from_env(env)
    assert settings.connect_config()["api_key"] == key
    assert await namespace_of(settings) == "default"
    assert ("authorization", f"Bearer {key}") in tls_only_proxy.headers
    assert (":path", "/temporal.api.workflowservice.v1.WorkflowService/DescribeNamespace") in (
        tls_only_proxy.headers
    )


async def test_a_worker_runs_a_definition_through_mtls(mtls_proxy, pki, tmp_path):
    client = await connect(Settings.from_env(mtls_env(mtls_proxy, pki, tmp_path)))
    text = (
        "workflow:\n  name: tls-check\n  steps:\n"
        "    - {id: compute, type: set, values: {answer: '{{ 6 * 7 }}'}}\n"
    )
    _, result = await run_offline(client, text)
    assert result.outputs["answer"] == 42
    paths = {value for name, value in mtls_proxy.headers if name == ":path"}
    assert "/temporal.api.workflowservice.v1.WorkflowService/PollWorkflowTaskQueue" in paths


async def test_the_cli_lists_runs_through_mtls(mtls_proxy, pki, tmp_path):
    env = worker_env(mtls_proxy.address, f"cli-{uuid.uuid4()}")
    env = {k: v for k, v in env.items() if not k.startswith("TEMPORAL_")}
    env |= mtls_env(mtls_proxy, pki, tmp_path)
    handshakes = mtls_proxy.handshakes
    done = await asyncio.to_thread(starter, env, "list", "--limit", "1")
    assert done.returncode == 0, done.stderr
    assert "started a local Temporal dev server" not in done.stderr
    assert not (tmp_path / "dev" / "server.pid").exists()
    assert mtls_proxy.handshakes > handshakes
