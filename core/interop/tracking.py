"""A run's metrics out to other tools: TensorBoard event files and CSV (exports of metrics.jsonl, which stays
the record), and Weights & Biases, logged live while training (nanoGPT's `wandb_log` settings).

Every tool sees the same names: `train/loss` (each logged step's loss), `train/lr`, `train/tokens_per_sec`,
`train/grad_norm`, and at each eval `val/loss` and `eval/train_loss`, all at step = iteration. The run's
settings go along as text (TensorBoard: a markdown table under `settings`) or as the run's config (wandb).

The libraries are optional extras, imported only when used: `tensorboard` (TensorBoard's event files,
written through torch.utils.tensorboard's SummaryWriter) and `wandb`. Without them the export or the run
says how to install them. Torch is imported only by the TensorBoard export.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import importlib.util
import io
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from core.common.disk import write_atomic
from core.runs.events import Eval, Event, Failed, Step
from core.runs.metrics import METRICS_FILE, event_from_record, records
from core.runs.watch import WatchError, resolve_run
from core.settings.train_config import ConfigError, TrainConfig

TRACKING_FORMATS = {
    "tensorboard": "TensorBoard event files of the run's metrics (scalars, settings as text)",
    "csv": "steps.csv (a row per logged step) and evals.csv (a row per eval) of the run's metrics",
}
STEPS_CSV, EVALS_CSV = "steps.csv", "evals.csv"
EVENT_FILE_PREFIX = "events.out.tfevents."  # TensorBoard's own name for its event files
STEP_COLUMNS = tuple(f.name for f in dataclasses.fields(Step))
EVAL_COLUMNS = tuple(f.name for f in dataclasses.fields(Eval))
TENSORBOARD_INSTALL = "pip install tensorboard (or pip install 'nanogpt-tui[tensorboard]')"


class TrackingError(ValueError):
    """A run's metrics that cannot be exported: no such run, a tool's library missing, files in the way."""


class TrackingExists(TrackingError):
    """The output folder already holds export files: each front end offers its own way to replace them."""


def scalars(event: Step | Eval) -> dict[str, float]:
    """The named values one event adds to a tracker's charts (see the module docstring)."""
    if isinstance(event, Step):
        return {"train/loss": event.loss, "train/lr": event.lr, "train/tokens_per_sec": event.tokens_per_sec,
                "train/grad_norm": event.grad_norm}
    return {"val/loss": event.val_loss, "eval/train_loss": event.train_loss}


@dataclasses.dataclass
class RunMetrics:
    """What a run's metrics.jsonl holds for a tracker: its steps and evals, in order, and its latest settings."""

    run_dir: Path
    steps: list[Step]
    evals: list[Eval]
    settings: dict[str, Any]  # the latest session's TrainConfig fields ({} for a run recorded before sessions)
    started: float | None  # when its first session began (seconds since the epoch), if recorded


def read_metrics(run_dir: Path) -> RunMetrics:
    """The steps, evals and settings of a run folder's metrics.jsonl (what is not a valid record is skipped)."""
    steps: list[Step] = []
    evals: list[Eval] = []
    settings: dict[str, Any] = {}
    started = None
    for _, record in records(run_dir / METRICS_FILE):
        kind = record.get("type")
        if kind == "session":
            config = record.get("config")
            settings = config if isinstance(config, dict) else settings
            if started is None:
                with contextlib.suppress(TypeError, ValueError):
                    started = datetime.fromisoformat(str(record.get("started"))).timestamp()
        elif kind in ("step", "eval"):
            event = event_from_record(record, run_dir)
            (steps if isinstance(event, Step) else evals).append(event)  # type: ignore[arg-type]
    return RunMetrics(run_dir, steps, evals, settings, started)


def _run_folder(spec: str) -> Path:
    """A run folder from a run name, its folder, its metrics.jsonl or one of its checkpoints."""
    path = Path(spec).expanduser()
    try:
        return resolve_run(str(path.parent) if path.suffix == ".pt" else spec)
    except WatchError as error:
        raise TrackingError(str(error)) from None


def export_metrics(spec: str, fmt: str, folder: str | Path, overwrite: bool = False) -> list[Path]:
    """Export run `spec`'s metrics.jsonl as `fmt` (a key of TRACKING_FORMATS) into `folder`; the files written."""
    if fmt not in TRACKING_FORMATS:
        raise TrackingError(f"unknown tracking format {fmt!r}: choose {' or '.join(TRACKING_FORMATS)}")
    if fmt == "tensorboard" and importlib.util.find_spec("tensorboard") is None:
        raise TrackingError(f"--format tensorboard needs the tensorboard package: {TENSORBOARD_INSTALL}")
    metrics = read_metrics(_run_folder(spec))
    if not metrics.steps and not metrics.evals:
        raise TrackingError(f"{metrics.run_dir / METRICS_FILE} holds no steps or evals yet: nothing to export")
    out = Path(folder).expanduser()
    if out.exists() and not out.is_dir():
        raise TrackingError(f"{out} is a file: export into a folder")
    existing = _existing(out, fmt)
    if existing and not overwrite:
        raise TrackingExists(f"{out} already holds {', '.join(p.name for p in existing[:3])}"
                             + (f" and {len(existing) - 3} more" if len(existing) > 3 else ""))
    try:
        out.mkdir(parents=True, exist_ok=True)
        if fmt == "csv":
            return _write_csv(metrics, out)
        for old in existing:  # two event files in one folder would show every point twice
            old.unlink()
        return [_write_tensorboard(metrics, out)]
    except OSError as error:
        raise TrackingError(f"could not export into {out}: {error}") from None


def _existing(out: Path, fmt: str) -> list[Path]:
    if not out.is_dir():
        return []
    if fmt == "csv":
        return [out / name for name in (STEPS_CSV, EVALS_CSV) if (out / name).exists()]
    return sorted(p for p in out.iterdir() if p.name.startswith(EVENT_FILE_PREFIX))


def _rows(events: list[Any], columns: tuple[str, ...]) -> Iterator[list[Any]]:
    for event in events:
        # NaN (a non-finite value, null in metrics.jsonl) as an empty cell: spreadsheets read that as no value
        yield ["" if isinstance(v, float) and v != v else v for v in (getattr(event, c) for c in columns)]


def _write_csv(metrics: RunMetrics, out: Path) -> list[Path]:
    written = []
    for name, events, columns in ((STEPS_CSV, metrics.steps, STEP_COLUMNS), (EVALS_CSV, metrics.evals, EVAL_COLUMNS)):
        def write(file: IO[bytes], events: list[Any] = events, columns: tuple[str, ...] = columns) -> None:
            text = io.TextIOWrapper(file, encoding="utf-8", newline="")
            table = csv.writer(text)
            table.writerow(columns)
            table.writerows(_rows(events, columns))
            text.detach().flush()  # (detached: closing the wrapper would close write_atomic's file)

        write_atomic(out / name, write)
        written.append(out / name)
    return written


def settings_markdown(settings: dict[str, Any]) -> str:
    """The settings as a markdown table (TensorBoard's text plugin renders markdown)."""
    return "| setting | value |\n|---|---|\n" + "".join(f"| {key} | {value} |\n" for key, value in settings.items())


def _write_tensorboard(metrics: RunMetrics, out: Path) -> Path:
    from torch.utils.tensorboard import SummaryWriter  # needs the tensorboard package (checked before)

    # Wall times from the run's own clock (its first session's start plus the training time so far), so
    # TensorBoard's relative-time axis shows the run, not the moment of the export.
    base = metrics.started if metrics.started is not None else datetime.now().timestamp()
    elapsed = {step.iter: step.elapsed_s for step in metrics.steps}
    writer = SummaryWriter(log_dir=str(out))
    try:
        for step in metrics.steps:
            for tag, value in scalars(step).items():
                writer.add_scalar(tag, value, step.iter, walltime=base + step.elapsed_s)
        for ev in metrics.evals:
            before = [seconds for it, seconds in elapsed.items() if it < ev.iter]
            for tag, value in scalars(ev).items():
                writer.add_scalar(tag, value, ev.iter, walltime=base + (max(before) if before else 0.0))
        if metrics.settings:
            writer.add_text("settings", settings_markdown(metrics.settings), 0, walltime=base)
    finally:
        writer.close()
    return _existing(out, "tensorboard")[-1]  # the one event file (any older ones were removed first)


# -- Weights & Biases, live -----------------------------------------------------------------------------


class WandbLogger:
    """Logs a run's steps and evals to a wandb run (nanoGPT's wandb_project, wandb_run_name), from the
    trainer (rank 0). wandb.init's own settings apply: WANDB_MODE=offline logs without an account
    (`wandb sync` uploads it later). Its files go in the run folder's `wandb/`."""

    def __init__(self, config: TrainConfig, run_dir: Path) -> None:
        import wandb  # (TrainConfig.problems said so already when it is not installed)

        try:
            self.run = wandb.init(project=config.wandb_project, name=config.wandb_run_name or run_dir.name,
                                  config=dataclasses.asdict(config), dir=str(run_dir))
        except Exception as error:  # not logged in, no network, a bad project name: wandb raises many kinds
            first = (str(error).strip().splitlines() or [type(error).__name__])[0]
            raise ConfigError(f"wandb could not start: {first}. Log in with `wandb login`, or set "
                              "WANDB_MODE=offline to log without an account", "wandb_log") from None
        self.failed = False

    def log(self, event: Event) -> None:
        if isinstance(event, (Step, Eval)):
            self.run.log(scalars(event), step=event.iter)
        elif isinstance(event, Failed):
            self.failed = True

    def finish(self) -> None:
        self.run.finish(exit_code=1 if self.failed else 0)
