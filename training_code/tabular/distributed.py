"""Training one model on several instances: who the hosts are, and XGBoost's collective.

SageMaker starts the same script on every instance of a training job and tells each one where it
stands: SM_HOSTS and SM_CURRENT_HOST (set by the training toolkit), or the platform's own
/opt/ml/input/config/resourceconfig.json. The XGBoost image's script mode does nothing more: joining
the instances into one training is the script's job, as in AWS's own XGBoost container
(sagemaker_xgboost_container/distributed.py), which this follows:

- the first host runs XGBoost's tracker, the rendezvous the workers find each other through, on a
  fixed port (every host computes the same address; no side channel is needed);
- every host, the first included, joins the collective as the worker whose rank is its place in the
  host list (sortby="task"), so rank 0 is the first host;
- `hist` then builds every tree from histograms summed across the workers (allreduce), and the
  quantile sketch is merged the same way: N instances grow ONE model, each from its shard of the
  train channel (ShardedByS3Key), and every worker ends up holding the same trees.

Only rank 0 writes (model, metrics, checkpoints). Everything here is a no-op on one host.
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import numpy as np

# The most instances a training job may use (the pipeline's TrainingInstanceCount is capped at it),
# and the part files preprocess.py splits the train split into so that ShardedByS3Key gives every
# host some: 24 parts share out evenly over 1, 2, 3, 4, 6 and 8 hosts, within one part over 5 and 7.
MAX_HOSTS = 8
TRAIN_PARTS = 24
TRACKER_PORT = 9099  # the port AWS's XGBoost container uses; a training instance is single-tenant
PORT_ENV = "XGBOOST_TRACKER_PORT"  # another port (two clusters on one machine: the tests)
# How long the hosts wait for each other to come up: instances boot and load their shards at
# different speeds, and their DNS names appear late (SageMaker docs). A host that never comes fails
# the job then, not at MaxRuntimeInSeconds.
CONNECT_TIMEOUT_S = 900
TIMEOUT_ENV = "XGBOOST_CONNECT_TIMEOUT"
RESOURCE_CONFIG = Path("/opt/ml/input/config/resourceconfig.json")

T = TypeVar("T")


@dataclass(frozen=True)
class Cluster:
    hosts: tuple[str, ...]
    current: str
    port: int = TRACKER_PORT
    timeout_s: int = CONNECT_TIMEOUT_S

    def __post_init__(self) -> None:
        if self.current not in self.hosts:
            raise ValueError(f"current host {self.current!r} is not one of the hosts {list(self.hosts)}")

    @property
    def size(self) -> int:
        return len(self.hosts)

    @property
    def rank(self) -> int:
        return self.hosts.index(self.current)

    @property
    def distributed(self) -> bool:
        return self.size > 1

    @property
    def writes(self) -> bool:
        """Whether this host writes the model, the metrics and the checkpoints (the first does)."""
        return self.rank == 0


SINGLE = Cluster(("localhost",), "localhost")


def cluster(env: Mapping[str, str] | None = None, resource_config: Path = RESOURCE_CONFIG) -> Cluster:
    """This job's hosts, from the toolkit's SM_HOSTS / SM_CURRENT_HOST, else the platform's
    resourceconfig.json, else one host (a local run)."""
    env = os.environ if env is None else env
    port, timeout = int(env.get(PORT_ENV) or TRACKER_PORT), int(env.get(TIMEOUT_ENV) or CONNECT_TIMEOUT_S)
    if env.get("SM_HOSTS") and env.get("SM_CURRENT_HOST"):
        return Cluster(tuple(json.loads(env["SM_HOSTS"])), env["SM_CURRENT_HOST"], port, timeout)
    if resource_config.is_file():
        config = json.loads(resource_config.read_text())
        return Cluster(tuple(config["hosts"]), config["current_host"], port, timeout)
    return SINGLE


@contextmanager
def collective(c: Cluster) -> Iterator[None]:
    """Join the cluster's XGBoost collective for the duration of the block (nothing on one host).
    XGBoost's training calls inside the block then work across all hosts."""
    if not c.distributed:
        yield
        return
    from threading import Thread

    from xgboost import collective as coll
    from xgboost.tracker import RabitTracker

    deadline = time.monotonic() + c.timeout_s
    address = _resolve(c.hosts[0], deadline)
    tracker, waiter = None, None
    if c.writes:
        tracker = RabitTracker(n_workers=c.size, host_ip=address, port=c.port, sortby="task", timeout=c.timeout_s)
        tracker.start()
        waiter = Thread(target=tracker.wait_for, daemon=True)  # returns once every worker has left
        waiter.start()
    else:
        # A worker's own connect gives up after a few tries, and the other hosts may be up long
        # before the first one's tracker: wait until it listens (the tracker logs a warning for
        # this probe, as in AWS's container).
        _wait_for_listener(address, c.port, deadline)
    coll.init(dmlc_tracker_uri=address, dmlc_tracker_port=c.port, dmlc_task_id=str(c.rank))
    try:
        if coll.get_rank() != c.rank or coll.get_world_size() != c.size:
            raise RuntimeError(f"collective: rank {coll.get_rank()} of {coll.get_world_size()}, "
                               f"expected {c.rank} of {c.size}")
        yield
    finally:
        coll.finalize()
        if waiter is not None and tracker is not None:
            # The first host hosts the tracker: it stays up until every worker has finalized.
            waiter.join(timeout=max(deadline - time.monotonic(), 60.0))
            if not waiter.is_alive():  # else it is left to the process's exit
                tracker.free()


def share(value: T, c: Cluster) -> T:
    """Rank 0's value on every host (a broadcast): what one host decides, all act on."""
    if not c.distributed:
        return value
    from xgboost import collective as coll

    shared: T = coll.broadcast(value, 0)
    return shared


def gather_rows(local: np.ndarray, c: Cluster) -> np.ndarray:
    """Every host's rows, in rank order: the whole train split from its shards, so metrics over it
    are the numbers one process would compute. A sum of zero-padded float64 blocks (allreduce): exact
    for float32 scores and labels, which come back in their own dtype."""
    if not c.distributed:
        return local
    from xgboost import collective as coll

    rows = np.asarray(local, dtype=np.float64)

    counts = np.zeros(c.size, dtype=np.int64)
    counts[c.rank] = rows.shape[0]
    counts = coll.allreduce(counts, coll.Op.SUM)
    start = int(counts[: c.rank].sum())
    whole = np.zeros((int(counts.sum()), *rows.shape[1:]), dtype=np.float64)
    whole[start: start + rows.shape[0]] = rows
    return coll.allreduce(whole, coll.Op.SUM).reshape(whole.shape).astype(local.dtype)


def _resolve(host: str, deadline: float) -> str:
    while True:
        try:
            return socket.gethostbyname(host)
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(1.0)


def _wait_for_listener(address: str, port: int, deadline: float) -> None:
    while True:
        try:
            with socket.create_connection((address, port), timeout=5.0):
                return
        except OSError as e:
            if time.monotonic() > deadline:
                raise TimeoutError(f"no XGBoost tracker at {address}:{port} (the first host)") from e
            time.sleep(1.0)
