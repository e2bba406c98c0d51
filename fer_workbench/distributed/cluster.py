"""What every process of a distributed search shares: its role and the chief's address, and the lease's wire format."""

from __future__ import annotations

import json
import os
import re
import socket
from dataclasses import dataclass

from fer_workbench.errors import WorkbenchError

ROLES = ("chief", "worker")
LEASE_SERVICE, LEASE_METHOD = "fer_workbench.Lease", "Heartbeat"
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


def parse_oracle(address: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[IPv6]:PORT`` for IPv6) → (host, port)."""
    text = str(address or "").strip()
    host, sep, port = text.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        host = ""  # a bare IPv6 address is ambiguous
    if not sep or not host or any(c.isspace() for c in host) or not port.isdigit() or not 0 < int(port) < 65536:
        raise WorkbenchError(f"--oracle expects HOST:PORT with a port in 1-65535 (e.g. 10.0.0.5:8000 or "
                             f"[::1]:8000), got {address!r}")
    return host, int(port)


def _default_worker_id() -> str:
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", socket.gethostname()).strip("-.") or "host"
    return f"{name[:40]}-{os.getpid()}".replace("chief", "chf")


@dataclass(frozen=True)
class Cluster:
    """This process's part in a distributed search: the chief (serves the oracle) or a worker (runs trials)."""

    role: str
    host: str
    port: int
    worker_id: str = "chief"
    lease_timeout: float = 60.0
    chief_wait: float = 300.0
    max_retries: int = 1

    @classmethod
    def create(cls, role: str, oracle: str | None, worker_id: str | None = None, lease_timeout: float = 60.0,
               chief_wait: float = 300.0, max_retries: int = 1) -> Cluster:
        """Validated settings; ``worker_id`` defaults to ``<hostname>-<pid>`` (it names the worker in the log)."""
        if role not in ROLES:
            raise WorkbenchError(f"unknown role {role!r}; choose chief or worker")
        if not oracle:
            raise WorkbenchError("--role needs --oracle HOST:PORT (the chief's address)")
        host, port = parse_oracle(oracle)
        if role == "chief":
            if worker_id:
                raise WorkbenchError("--worker-id is for workers; the chief is always 'chief'")
            worker_id = "chief"
        else:
            worker_id = worker_id or _default_worker_id()
            if not _ID.fullmatch(worker_id):
                raise WorkbenchError(f"worker id {worker_id!r}: use up to 64 letters, digits, '.', '_' or '-'")
            if "chief" in worker_id:
                raise WorkbenchError(f"worker id {worker_id!r} contains 'chief', "
                                     f"which keras-tuner reserves for the chief")
        if not lease_timeout > 0 or not chief_wait > 0 or max_retries < 0:
            raise WorkbenchError("--lease-timeout and --chief-wait must be positive, --max-retries at least 0")
        return cls(role, host, port, worker_id, float(lease_timeout), float(chief_wait), int(max_retries))

    @property
    def address(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    @property
    def tuner_id(self) -> str:
        return "chief" if self.role == "chief" else self.worker_id

    @property
    def heartbeat_interval(self) -> float:
        """How often workers report while they hold a trial: four chances per lease, at least every 10 s."""
        return max(0.2, min(self.lease_timeout / 4, 10.0))

    def activate(self) -> None:
        """Set keras-tuner's environment variables: tuners built afterwards in this process take this role."""
        os.environ.update(KERASTUNER_TUNER_ID=self.tuner_id, KERASTUNER_ORACLE_IP=self.host,
                          KERASTUNER_ORACLE_PORT=str(self.port))


def to_json(value) -> bytes:
    """A lease message on the wire."""
    return json.dumps(value).encode("utf-8")


def from_json(data: bytes):
    """A lease message off the wire."""
    return json.loads(data.decode("utf-8"))
