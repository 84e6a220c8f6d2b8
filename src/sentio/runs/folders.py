"""Run folders read back as :class:`~sentio.runs.run.Run`: a training artifact
(model.meta.json, metrics.json), a strattest ``--out`` folder (summary.json), a walk-forward
folder (walkforward.json) and a sweep folder (sweep.json). Reading only: every JSON file goes
through the artifact's bounded reader (``sentio.model.metadata.load_json``), nothing is
written, and a file of the wrong shape is one :class:`RunsError` naming it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from sentio.core.errors import SentioError, excerpt
from sentio.core.hashing import sha256_file
from sentio.model.metadata import load_json
from sentio.runs.fields import flatten, numbers
from sentio.runs.run import Run, RunsError

# The file that makes a folder a run, in the order they are looked for.
MARKERS = {
    "sweep.json": "sweep",
    "walkforward.json": "walk-forward",
    "model.meta.json": "model",
    "summary.json": "strattest",
}
SCORES = ("auc", "log_loss", "brier", "accuracy")


def kind_of(folder: Path) -> str | None:
    """The kind of run ``folder`` holds (by its marker file), or None."""
    return next((kind for name, kind in MARKERS.items() if (folder / name).is_file()), None)


@contextmanager
def reading(path: Path) -> Iterator[None]:
    """A JSON file that is unreadable or lacks a field becomes one RunsError naming it."""
    try:
        yield
    except RunsError:
        raise
    except SentioError as exc:  # load_json's ArtifactError names the file already
        raise RunsError(str(exc)) from None
    except OSError as exc:
        raise RunsError(f"{exc.filename or path}: cannot read ({exc.strerror or exc})") from None
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
        raise RunsError(
            f"{path}: lacks or mistypes a field ({excerpt(exc, 80)}); not a file sentio wrote "
            "as it is now"
        ) from None


def _json(path: Path) -> dict:
    doc = load_json(path)
    if not isinstance(doc, dict):
        raise RunsError(f"{path}: a JSON {type(doc).__name__}, not an object")
    return doc


def read_model(folder: Path) -> Run:
    """A training artifact: config from model.meta.json, scores from metrics.json."""
    meta_path, metrics_path = folder / "model.meta.json", folder / "metrics.json"
    with reading(meta_path):
        meta = _json(meta_path)
        data = {k: v for k, v in meta["data"].items() if k not in ("splits", "files")}
        config = flatten(
            {
                "model": meta["config"],
                "train": meta.get("train_config", {}),
                "label": {k: v for k, v in meta["label"].items() if k != "definition"},
                "data": data,
                "seed": meta.get("seed"),
                "warm_start": meta.get("warm_start"),
            }
        )
        hashes = {
            "manifest": sha256_file(folder / "manifest.json"),
            "model_id": meta.get("version"),
            "spec_hash": meta["expects"]["spec_hash"],
            "fingerprint": meta.get("fingerprint"),
        }
        hashes |= {f"data.{f['path']}": f.get("sha256") for f in meta["data"].get("files", [])}
        thresholds = {k: meta["thresholds"].get(k) for k in ("long", "short")}
    with reading(metrics_path):
        metrics = _json(metrics_path)
        edge = metrics.get("edge") or {}  # null in an artifact trained before the verdict
        scores = {
            part: {k: metrics["evaluation"][part]["model"].get(k) for k in SCORES}
            for part in metrics["evaluation"]
        }
        figures = numbers(scores) | numbers(
            {
                "edge": {k: edge.get(k) for k in ("auc", "auc_ci95", "log_loss_gain")},
                "best_epoch": metrics.get("best_epoch"),
                "epochs_run": len(metrics.get("history", [])),
                "samples": metrics.get("samples", {}).get("samples"),
                "thresholds": thresholds,
            }
        )
    return Run(
        "model",
        str(folder),
        when=meta.get("saved_at"),
        auc=edge.get("auc", scores.get("validation", {}).get("auc")),
        edge=edge.get("verdict"),
        config=config,
        hashes=hashes,
        numbers=figures,
    )


def verdict_numbers(verdict: dict | None) -> dict[str, float]:
    """The verdict's figures (mean, interval, baseline, count) as numbers."""
    keep = ("mean_pct", "ci95_pct", "baseline_mean_pct", "count", "corrected_ci_pct")
    return numbers({"verdict": {k: (verdict or {}).get(k) for k in keep}})


def backtest_numbers(doc: dict) -> dict[str, float]:
    """Every figure of a strattest or walk-forward document (summary.json, walkforward.json):
    each run's summary (``strategy.mean_rpb_pct`` ...), its costs (``costs.strategy.spread``
    ...), the out-of-sample AUCs of a walk-forward run, the verdict and the counts."""
    figures = numbers(doc["summary"]) | numbers(doc.get("costs") or {}, "costs.")
    figures |= numbers(doc.get("out_of_sample") or {}, "out_of_sample.")
    figures |= verdict_numbers(doc.get("verdict"))
    counts = {k: doc.get(k) for k in ("blocks_asked", "blocks_run", "sessions")}
    if isinstance(doc.get("folds"), list):
        counts["folds"] = len(doc["folds"])
        counts["promoted"] = sum(bool(f["promoted"]) for f in doc["folds"])
    return figures | numbers(counts)


def read_strattest(folder: Path) -> Run:
    """A strattest ``--out`` folder: summary.json, the document ``strattest --json`` prints."""
    path = folder / "summary.json"
    with reading(path):
        doc = _json(path)
        recorded = doc.get("audit") or {}
        hashes = {"summary.json": sha256_file(path)}
        hashes |= {f"audit.{k}": recorded.get(k) for k in ("db", "run_id", "head") if recorded}
        if doc.get("model_manifest_hash"):
            hashes["model.manifest_hash"] = doc["model_manifest_hash"]
        return Run(
            "strattest",
            str(folder),
            when=doc.get("written_at"),
            net_mean_pct=doc["summary"]["strategy"].get("mean_rpb_pct"),
            verdict=(doc.get("verdict") or {}).get("kind"),
            config=flatten(doc["config"]) | {"in_sample": doc.get("in_sample")},
            hashes=hashes,
            numbers=backtest_numbers(doc),
        )


def _saved_at(models: list[Path]) -> str | None:
    """The newest ``saved_at`` of these artifacts' model.meta.json (unreadable ones skipped):
    the time a walk-forward or sweep run stamped its last model."""
    times = []
    for meta in models:
        try:
            times.append(str(_json(meta)["saved_at"]))
        except (SentioError, KeyError):
            continue
    return max(times, default=None)


def _last_fold(folder: Path) -> list[Path]:
    folds = sorted((folder / "folds").glob("*/model/model.meta.json"))
    return folds[-1:]


def read_walkforward(folder: Path) -> Run:
    """A walk-forward folder: walkforward.json (folds/NNN/model are its artifacts)."""
    path = folder / "walkforward.json"
    with reading(path):
        doc = _json(path)
        folds = doc["folds"]
        hashes = {"walkforward.json": sha256_file(path)}
        hashes |= {f"fold.{f['fold']:03d}.candidate": f["candidate_manifest_sha256"] for f in folds}
        return Run(
            "walk-forward",
            str(folder),
            when=_saved_at(_last_fold(folder)),
            auc=(doc.get("out_of_sample") or {}).get("walk_forward", {}).get("auc"),
            net_mean_pct=doc["summary"]["walk_forward"].get("mean_rpb_pct"),
            verdict=(doc.get("verdict") or {}).get("kind"),
            config=flatten(doc["config"]),
            hashes=hashes,
            numbers=backtest_numbers(doc),
        )


def read_sweep(folder: Path) -> Run:
    """A sweep folder: sweep.json (variants/NNN are walk-forward folders, each readable on
    its own)."""
    path = folder / "sweep.json"
    with reading(path):
        doc = _json(path)
        best = doc["best"]
        top = doc["ranked"][0]
        figures = numbers(best, "best.") | verdict_numbers(doc.get("verdict"))
        figures |= {"variants_tried": doc["variants_tried"], "sessions": doc["sessions"]["count"]}
        lasts = [m for v in sorted((folder / "variants").glob("*")) for m in _last_fold(v)]
        return Run(
            "sweep",
            str(folder),
            when=_saved_at(lasts),
            auc=top.get("oos_auc"),
            net_mean_pct=best.get("mean_session_return_pct"),
            verdict=(doc.get("verdict") or {}).get("kind"),
            config=flatten({"fixed": doc["grid"]["fixed"], "grid": doc["grid"]["grid"]}),
            hashes={"sweep.json": sha256_file(path)},
            numbers=figures,
        )


READERS: dict[str, Callable[[Path], Run]] = {
    "model": read_model,
    "strattest": read_strattest,
    "walk-forward": read_walkforward,
    "sweep": read_sweep,
}


def read_folder(folder: Path) -> Run:
    """The run in ``folder``; RunsError when it holds none or cannot be read."""
    kind = kind_of(folder)
    if kind is None:
        raise RunsError(f"{folder}: not a run folder (it holds none of {', '.join(MARKERS)})")
    return READERS[kind](folder)


__all__ = [
    "MARKERS",
    "READERS",
    "backtest_numbers",
    "kind_of",
    "read_folder",
    "read_model",
    "read_strattest",
    "read_sweep",
    "read_walkforward",
    "reading",
    "verdict_numbers",
]
