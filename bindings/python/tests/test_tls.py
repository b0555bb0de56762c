"""TLS through the bindings: the ``tls_ca_file``, ``tls_cert`` and
``tls_key`` keywords reach the C options structs (rask_scheduler_options,
rask_cluster_options, rask_worker_options, rask_client_options).

The CA and the certificate are made at test time with the ``openssl``
command; without it the tests are skipped."""

import shutil
import subprocess

import pytest

import rask

pytestmark = pytest.mark.skipif(
    shutil.which("openssl") is None, reason="the openssl command (to make test certificates) is not installed"
)


def _openssl(*args):
    r = subprocess.run(["openssl", *map(str, args)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """(ca, cert, key) paths: a CA, and a certificate it signed for server
    and client use that names a host other than the one connected to."""
    d = tmp_path_factory.mktemp("pki")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    _openssl(
        "req", "-x509", *ec, "-keyout", d / "ca-key.pem", "-out", d / "ca.pem", "-days", "2",
        "-subj", "/CN=rask test CA",
    )  # fmt: skip
    _openssl("req", *ec, "-keyout", d / "key.pem", "-out", d / "node.csr", "-subj", "/CN=rask node")
    ext = d / "ext.cnf"
    ext.write_text(
        "basicConstraints=CA:FALSE\n"
        "keyUsage=digitalSignature\n"
        "extendedKeyUsage=serverAuth,clientAuth\n"
        "subjectAltName=DNS:rask-node.invalid\n"
    )
    _openssl(
        "x509", "-req", "-in", d / "node.csr", "-CA", d / "ca.pem", "-CAkey", d / "ca-key.pem",
        "-CAcreateserial", "-out", d / "cert.pem", "-days", "2", "-extfile", ext,
    )  # fmt: skip
    return d / "ca.pem", d / "cert.pem", d / "key.pem"


def kw(pki):
    ca, cert, key = pki
    return {"tls_ca_file": ca, "tls_cert": cert, "tls_key": key}


def test_a_tls_local_cluster_and_its_clients(pki):
    with rask.LocalCluster(n_workers=2, **kw(pki)) as cluster:
        assert cluster.address.startswith("tls://")
        # The client takes the cluster's TLS files.
        with rask.Client(cluster) as client:
            assert client.submit("inc", 41).result(30) == 42
            [f] = client.scatter([list(range(1000))])
            assert client.gather([f]) == [list(range(1000))]
        # A client without TLS is refused with a clear error.
        with pytest.raises(rask.RaskConnectionError, match="requires TLS"):
            rask.Client(cluster.address.replace("tls://", "tcp://"))
        with pytest.raises(rask.RaskConnectionError, match="no TLS configuration"):
            rask.Client(cluster.address)
        # Explicit keywords with an address string.
        with rask.Client(cluster.address, **kw(pki)) as client:
            assert client.submit("inc", 1).result(30) == 2


def test_a_tls_scheduler_with_a_python_worker(pki):
    with rask.Scheduler(**kw(pki)) as scheduler:
        assert scheduler.address.startswith("tls://")
        with rask.Worker(scheduler, functions={"triple": lambda x: 3 * x}) as w:
            assert w.address.startswith("tls://")
            with rask.Client(scheduler) as client:
                assert client.submit("triple", 14).result(30) == 42


def test_incomplete_or_bad_tls_files_are_invalid_arguments(pki, tmp_path):
    ca, cert, key = pki
    with pytest.raises(rask.InvalidArgumentError, match="missing: key file"):
        rask.Scheduler(tls_ca_file=ca, tls_cert=cert)
    missing = tmp_path / "nope.pem"
    with pytest.raises(rask.InvalidArgumentError, match="nope.pem"):
        rask.LocalCluster(n_workers=1, tls_ca_file=missing, tls_cert=cert, tls_key=key)
    with pytest.raises(rask.InvalidArgumentError, match="does not fit"):
        # The CA's key, not the certificate's.
        rask.Scheduler(tls_ca_file=ca, tls_cert=cert, tls_key=ca.parent / "ca-key.pem")
