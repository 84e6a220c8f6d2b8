"""Experiment tracking with MLflow (the optional extra ``sentio[mlflow]``; issue 17).

``sentio train --track URI`` and ``sentio strattest --track URI`` (or the environment variable
``SENTIO_MLFLOW_TRACKING_URI``) log each run to an MLflow tracking store:

- a training: its config as params (model.meta.json, dotted keys), the per-epoch history of
  metrics.json as metrics with ``step = epoch``, the final scores and the edge figures, tags
  (artifact hash, model id, seeds, sentio version, the edge verdict) and the whole artifact
  directory as artifacts (under ``artifact/``);
- a strattest or walk-forward run: every figure of its JSON document (summary.json,
  walkforward.json) as metrics, per block (per fold) returns with ``step = block`` (fold), the
  run's config (or the settings given) as params, the verdict as a tag, and the files given
  (summary.json, the HTML report, walkforward.json) as artifacts.

The URI is a local folder (or ``file:`` URI: no server, the case tests use), or an
``http(s)://`` MLflow server; any other scheme is refused by :func:`tracking_uri` before the
command does any work (docs/tracking.md says why). MLflow 3 refuses a file store unless
``MLFLOW_ALLOW_FILE_STORE=true``; a local folder is what this module is for when no server
runs, so it sets that variable for file URIs only, and only around its own calls (a value the
user set is left alone). Around the first request to a server it sets
``MLFLOW_HTTP_REQUEST_MAX_RETRIES=0`` and a 10 s timeout, so a server that is not there is one
error line within seconds instead of minutes of retries; the logging calls after it retry
``LOG_RETRIES`` times. Run names come from the artifact's manifest hash or the document's
hash, never the clock; the run is tagged ``sentio.key`` (that hash with the settings), and
logging the same run again returns the finished MLflow run already there instead of a copy.
The experiment is ``sentio`` unless ``experiment=`` or ``SENTIO_MLFLOW_EXPERIMENT`` says
otherwise. mlflow is imported only when a run is logged.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from urllib.request import url2pathname

from sentio.core.clock import build_time
from sentio.core.errors import OptionError, SentioError, excerpt
from sentio.core.hashing import canonical_json, sha256_hex
from sentio.model.metadata import load_json
from sentio.runs.fields import flatten, is_number, text
from sentio.runs.folders import backtest_numbers, read_model

ENV_URI = "SENTIO_MLFLOW_TRACKING_URI"
ENV_EXPERIMENT = "SENTIO_MLFLOW_EXPERIMENT"
DEFAULT_EXPERIMENT = "sentio"
INSTALL = "pip install 'sentio[mlflow]'"
VALUE_LIMIT = 500  # MLflow servers before 2.x refused longer param values (3.x allows 6,000)
KEY_LIMIT = 250  # MLflow's longest param, metric or tag key
PARAMS_PER_BATCH = 100  # MLflow's log_batch limits: 100 params and tags, 1,000 metrics
METRICS_PER_BATCH = 1000
REASON_CHARS = 400  # of an error's message in the one line (a path is whole: ``_reason``)
PROBE_TIMEOUT_S = 10  # the first request to a server: no retries, this timeout
LOG_RETRIES = 3
BACKTEST_KINDS = ("strattest", "walk-forward")
GIVE = "give a folder, a file: URI or an http(s):// MLflow server"  # what --track takes
_KEY_CHARS = re.compile(r"[^0-9A-Za-z_\-. /]")  # what MLflow accepts in a key


class TrackingError(SentioError):
    """MLflow cannot log as asked: the extra is missing, the store cannot be reached or
    written, or it refused a value (one line naming the URI)."""


class TrackingURI(str):
    """A tracking URI that remembers where it was given (``--track`` or
    ``SENTIO_MLFLOW_TRACKING_URI``), so that an error logging to it can say so."""

    source: str = f"--track or {ENV_URI}"

    def __new__(cls, uri: str, source: str) -> TrackingURI:
        made = super().__new__(cls, uri)
        made.source = source
        return made


def tracking_uri(flag: str | None) -> str | None:
    """Where to log: the ``--track`` flag, else ``SENTIO_MLFLOW_TRACKING_URI``, else None
    (tracking off). A local folder (or ``file:`` URI) becomes an absolute ``file:`` URI, an
    ``http(s)://`` server is kept; anything else (another scheme, a ``file:`` URI of another
    host, an empty value, a file) is an OptionError naming the flag or the variable, before
    any work is done.

    >>> tracking_uri("/tmp/mlruns")
    'file:///tmp/mlruns'
    >>> tracking_uri("http://127.0.0.1:5000")
    'http://127.0.0.1:5000'
    """
    source = "--track" if flag is not None else ENV_URI
    value = flag if flag is not None else (os.environ.get(ENV_URI) or None)
    if value is None:
        return None
    if not value.strip():
        raise OptionError(f"is empty; {GIVE}", flag=source)
    try:
        parts = urlsplit(value)
    except ValueError as exc:  # an unclosed [IPv6] address, ...
        raise OptionError(f"{excerpt(value)} is not a URI ({exc}); {GIVE}", flag=source) from None
    scheme = parts.scheme.lower()
    if scheme in ("http", "https"):
        if not parts.hostname:
            raise OptionError(f"{excerpt(value)} names no server; {GIVE}", flag=source)
        return TrackingURI(value, source)
    if value.strip().lower() == "databricks":  # MLflow's name for Databricks: not a folder
        scheme = "databricks"
    if scheme not in ("", "file") and len(scheme) != 1:  # one letter: a Windows drive
        raise OptionError(
            f"{excerpt(value)}: sentio logs to a folder or an http(s):// MLflow server, not to "
            f"{scheme}: (serve that store with `mlflow server --backend-store-uri ...` and give "
            "its http:// address; a folder whose name has a colon: ./NAME)",
            flag=source,
        )
    return TrackingURI(_file_store(value, parts, source), source)


def _file_store(value: str, parts, source: str) -> str:
    """The ``file:`` URI of a local folder given as a path or a ``file:`` URI (``file:/x``,
    ``file:///x`` and ``file://localhost/x`` name ``/x``; ``%20`` is a space)."""
    if parts.scheme.lower() == "file":
        if parts.netloc not in ("", "localhost"):
            raise OptionError(
                f"{excerpt(value)}: a file: URI names a folder on this machine (file:///path)",
                flag=source,
            )
        value = url2pathname(parts.path)
    try:
        path = Path(value).expanduser()
    except RuntimeError:  # ~user with no such user
        user = value.split("/")[0]
        raise OptionError(f"{excerpt(value)}: no user {user} here; {GIVE}", flag=source) from None
    if path.exists() and not path.is_dir():
        raise OptionError(f"{value} is a file; MLflow's file store is a folder", flag=source)
    return path.resolve().as_uri()


def log_training(
    uri: str,
    artifact: Path,
    *,
    settings: dict | None = None,
    experiment: str | None = None,
) -> str:
    """Log the training artifact in ``artifact`` to ``uri``; returns the MLflow run id.

    ``settings``: the resolved command settings, logged as ``settings.*`` params beside the
    training config that model.meta.json records."""
    artifact = Path(artifact)
    model = read_model(artifact)
    metrics = load_json(artifact / "metrics.json")
    when = _ms(model.when)
    steps = [
        (key, value, int(row["epoch"]), when)
        for row in metrics.get("history", [])
        for key, value in row.items()
        if key != "epoch" and is_number(value)
    ]
    manifest = model.hashes["manifest"]
    meta = load_json(artifact / "model.meta.json")
    seeds = {
        "seed": model.config.get("seed"),
        "train_seed": model.config.get("train.seed"),
        "data_seed": model.config.get("data.synth.seed"),
    }
    record = Record(
        name=f"train-{manifest[:12]}",
        key=_digest({"kind": "train", "manifest": manifest, "settings": settings}),
        params=model.config | flatten(_plain(settings or {}), "settings."),
        metrics=[(k, v, 0, when) for k, v in model.numbers.items()] + steps,
        tags={
            "sentio.kind": "train",
            "sentio.artifact": str(artifact),
            "sentio.artifact_hash": manifest,
            "sentio.model_id": model.hashes.get("model_id"),
            "sentio.spec_hash": model.hashes.get("spec_hash"),
            "sentio.edge": model.edge,
            "sentio.trained_with": (meta.get("versions") or {}).get("sentio"),
            **{f"sentio.{k}": v for k, v in seeds.items() if v is not None},
        },
        artifacts=[(artifact, "artifact")],
    )
    return log_record(uri, record, experiment)


def log_backtest(
    uri: str,
    summary: dict,
    *,
    kind: str,
    settings: dict | None = None,
    files: Sequence[Path] = (),
    experiment: str | None = None,
) -> str:
    """Log a backtest to ``uri``; returns the MLflow run id.

    ``summary``: the JSON document of the run (what ``strattest --json`` prints and
    summary.json holds, or walkforward.json); ``kind``: "strattest" or "walk-forward";
    ``settings``: params (default: the document's ``config``); ``files``: logged as artifacts
    (a folder whole)."""
    if kind not in BACKTEST_KINDS:
        raise ValueError(f"kind must be one of {BACKTEST_KINDS}, got {kind!r}")
    doc = _plain(summary)
    files = [Path(f) for f in files]
    missing = [str(f) for f in files if not f.exists()]
    if missing:
        raise TrackingError(f"cannot log {', '.join(missing)} to MLflow: no such file")
    when = _ms(build_time().isoformat())
    figures = [(k, v, 0, when) for k, v in backtest_numbers(doc).items()]
    digest = _digest({"kind": kind, "summary": doc, "settings": settings})
    recorded = doc.get("audit") or {}
    record = Record(
        name=f"{kind}-{_digest(doc)[:12]}",
        key=digest,
        params=flatten(_plain(settings) if settings is not None else doc.get("config") or {}),
        metrics=figures + _per_step(doc, kind, when),
        tags={
            "sentio.kind": kind,
            "sentio.verdict": (doc.get("verdict") or {}).get("kind"),
            "sentio.model": doc.get("model"),
            "sentio.in_sample": doc.get("in_sample"),
            "sentio.summary_hash": _digest(doc),
            "sentio.audit_run": recorded.get("run_id"),
            "sentio.audit_head": recorded.get("head"),
        },
        artifacts=[(f, None) for f in files],
    )
    return log_record(uri, record, experiment)


def _per_step(doc: dict, kind: str, when: int) -> list[tuple[str, float, int, int]]:
    """Per-block (strattest) or per-fold (walk-forward) figures, one step each."""
    if kind == "strattest":
        rows = doc.get("blocks") or []
        keys = {"block.return_pct": "return_pct", "block.costs": "costs"}
        keys["block.buy_and_hold_return_pct"] = "buy_and_hold_return_pct"
        step = "block"
    else:
        rows = [f | {"oos_auc": (f.get("oos") or {}).get("auc")} for f in doc.get("folds") or []]
        keys = {f"fold.{k}": k for k in ("return_pct", "single_return_pct", "oos_auc")}
        keys |= {"fold.buy_and_hold_return_pct": "buy_and_hold_return_pct"}
        keys |= {"fold.validation_auc": "validation_auc"}
        step = "fold"
    return [
        (name, row[key], int(row[step]), when)
        for row in rows
        for name, key in keys.items()
        if is_number(row.get(key))
    ]


@dataclass(frozen=True)
class Record:
    """What one MLflow run receives. ``metrics``: (key, value, step, timestamp ms);
    ``artifacts``: (local file or folder, folder inside the run's artifacts or None)."""

    name: str
    key: str
    params: Mapping[str, Any]
    metrics: list[tuple[str, float, int, int]]
    tags: Mapping[str, Any]
    artifacts: list[tuple[Path, str | None]] = field(default_factory=list)


def check_tracking(uri: str, experiment: str | None = None) -> None:
    """Fail now, in one line, when logging to ``uri`` could not work: the extra missing, the
    server not there, the store not writable (the experiment is created when absent). A
    command calls it before its work, so that a bad ``--track`` costs no training."""
    _open(uri, experiment)


def _open(uri: str, experiment: str | None):
    """An MlflowClient on ``uri`` and the id of the experiment (created when absent); the
    first request goes out without retries (see the module's docstring)."""
    mlflow = _mlflow()
    name = experiment or os.environ.get(ENV_EXPERIMENT) or DEFAULT_EXPERIMENT
    with _env(uri, retries=0, timeout=PROBE_TIMEOUT_S), _errors(uri):
        client = mlflow.MlflowClient(tracking_uri=str(uri))
        return client, _experiment(client, name, uri)


def log_record(uri: str, record: Record, experiment: str | None = None) -> str:
    """Log ``record`` as one MLflow run (or find the finished run already logged with its
    ``sentio.key``); returns the run id."""
    client, experiment_id = _open(uri, experiment)
    from mlflow.entities import Metric, Param

    from sentio import __version__

    tags = {_key(k): text(v, VALUE_LIMIT) for k, v in record.tags.items() if v is not None}
    tags |= {"sentio.key": record.key, "sentio.version": __version__}
    params = [Param(_key(k), text(v, VALUE_LIMIT)) for k, v in record.params.items()]
    metrics = [Metric(_key(k), float(v), ts, step) for k, v, step, ts in record.metrics]
    logged = f"tags.`sentio.key` = '{record.key}' and attributes.status = 'FINISHED'"
    with _env(uri, retries=LOG_RETRIES, timeout=None), _errors(uri):
        done = client.search_runs([experiment_id], logged, max_results=1)
        if done:
            return done[0].info.run_id
        run_id = client.create_run(experiment_id, run_name=record.name, tags=tags).info.run_id
        try:
            for i in range(0, len(params), PARAMS_PER_BATCH):
                client.log_batch(run_id, params=params[i : i + PARAMS_PER_BATCH])
            for i in range(0, len(metrics), METRICS_PER_BATCH):
                client.log_batch(run_id, metrics=metrics[i : i + METRICS_PER_BATCH])
            for path, folder in record.artifacts:
                if path.is_dir():  # a folder goes in whole, under its own name by default
                    client.log_artifacts(run_id, str(path), folder or path.name)
                else:
                    client.log_artifact(run_id, str(path), folder)
        except BaseException:
            with suppress(Exception):  # best effort: the first error is the one shown
                client.set_terminated(run_id, "FAILED")
            raise
        client.set_terminated(run_id, "FINISHED")
    return run_id


def _experiment(client, name: str, uri: str) -> str:
    """The id of experiment ``name``, created when absent."""
    from mlflow.exceptions import MlflowException

    found = client.get_experiment_by_name(name)
    if found is None:
        try:
            return client.create_experiment(name)
        except MlflowException:  # created meanwhile by another process
            found = client.get_experiment_by_name(name)
            if found is None:
                raise
    if found.lifecycle_stage == "deleted":
        raise TrackingError(
            f"MLflow at {uri}: the experiment {excerpt(name)} was deleted; restore it "
            f"(mlflow experiments restore) or name another with {ENV_EXPERIMENT}"
        )
    return found.experiment_id


def _mlflow():
    """mlflow, imported with its telemetry off: MLflow 3 starts a client at import that calls
    out to its vendor and writes under ~/.config, which a "no server" local store must not do
    (``MLFLOW_DISABLE_TELEMETRY``, kept as the user set it)."""
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    try:
        import mlflow
    except ImportError:
        raise TrackingError(f"tracking needs the mlflow extra: {INSTALL}") from None
    return mlflow


@contextmanager
def _env(uri: str, retries: int, timeout: int | None) -> Iterator[None]:
    """MLflow's settings for these calls (see the module's docstring); values the user set
    are kept, and everything is restored afterwards."""
    wanted = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": str(retries), "MLFLOW_DISABLE_TELEMETRY": "true"}
    if timeout is not None:
        wanted["MLFLOW_HTTP_REQUEST_TIMEOUT"] = str(timeout)
    if urlsplit(uri).scheme == "file":
        wanted["MLFLOW_ALLOW_FILE_STORE"] = "true"
    added = {k: v for k, v in wanted.items() if k not in os.environ}
    os.environ.update(added)
    try:
        yield
    finally:
        for name in added:
            os.environ.pop(name, None)


@contextmanager
def _errors(uri: str) -> Iterator[None]:
    """Whatever MLflow or the network raise becomes one TrackingError line naming the URI
    and where it was given: MLflow raises arbitrary types (a file store whose meta.yaml is
    not a mapping: a TypeError), so every Exception is caught here, around MLflow's calls
    only; sentio's own errors pass as they are."""
    try:
        yield
    except SentioError:
        raise
    except Exception as exc:
        source = getattr(uri, "source", TrackingURI.source)
        reason = _reason(exc, file_store=urlsplit(uri).scheme == "file")
        raise TrackingError(f"MLflow at {uri} ({source}): {reason}") from None


def _reason(exc: BaseException, file_store: bool = False) -> str:
    """The cause in a few words. A file the store could not read or write: the system's
    reason and the whole path; a server: the socket error when there is one (``[Errno 111]
    Connection refused``); else the message's first ``REASON_CHARS`` characters.

    >>> _reason(OSError("... (Caused by NewConnectionError(\\"...: [Errno 111] Connection refused\\"))"))
    'cannot reach the server ([Errno 111] Connection refused)'
    >>> _reason(PermissionError(13, "Permission denied", "/srv/my runs/0"), file_store=True)
    'Permission denied: /srv/my runs/0'
    """  # noqa: E501
    if isinstance(exc, OSError) and exc.filename is not None:
        return f"{exc.strerror or type(exc).__name__}: {exc.filename}"
    message = " ".join(str(exc).split()) or type(exc).__name__
    socket = re.search(r"\[Errno -?\d+\] [^\"')]+", message)
    if socket and not file_store:
        return f"cannot reach the server ({socket.group(0).strip()})"
    if "timed out" in message.lower() and not file_store:
        return "the server did not answer in time (timed out)"
    cut = message[:REASON_CHARS] + ("..." if len(message) > REASON_CHARS else "")
    return f"{type(exc).__name__}: {cut}"


def _key(name: str) -> str:
    """A key MLflow accepts (its characters, at most 250 of them). A name that had to change
    ends in ``-`` and 8 hex of the name's hash, so two names do not become one key (MLflow
    refuses a batch that logs a key twice, and a second value would overwrite the first).

    >>> _key("data.C:\\\\bars\\\\q.parquet")
    'data.C__bars_q.parquet-d7c16aeb'
    >>> _key("model.d_model")
    'model.d_model'
    """
    key = _KEY_CHARS.sub("_", name)
    if key == name and len(key) <= KEY_LIMIT:
        return key
    return f"{key[: KEY_LIMIT - 9]}-{sha256_hex(name.encode('utf-8'))[:8]}"


def _plain(obj: Any) -> Any:
    """``obj`` as plain JSON values (paths, numpy numbers and the like as their text)."""
    return json.loads(json.dumps(obj, default=str))


def _digest(obj: Any) -> str:
    """sha256 of the canonical JSON of ``obj`` (``core.hashing``)."""
    return sha256_hex(canonical_json(_plain(obj)))


def _ms(iso: str | None) -> int:
    """An ISO 8601 time as milliseconds since 1970 (MLflow's metric timestamps); the build
    time when none is recorded.

    >>> _ms("1970-01-01T00:00:01+00:00")
    1000
    """
    stamp = datetime.fromisoformat(iso) if iso else build_time()
    return int(stamp.timestamp() * 1000)


__all__ = [
    "DEFAULT_EXPERIMENT",
    "ENV_EXPERIMENT",
    "ENV_URI",
    "Record",
    "TrackingError",
    "TrackingURI",
    "check_tracking",
    "log_backtest",
    "log_record",
    "log_training",
    "tracking_uri",
]
