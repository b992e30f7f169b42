"""`nanogpt-tui export` (a run as nanoGPT's ckpt.pt or a Hugging Face GPT-2 folder, or its metrics as
TensorBoard event files or CSV) and `download-gpt2`."""

from __future__ import annotations

import argparse
import importlib.util

from core.interop.gpt2_files import FORMATS, GPT2_MODELS, HF_CONFIG, HF_WEIGHTS, HUB_OWNER, models_dir, where_to_put
from core.interop.tracking import TRACKING_FORMATS
from nanogpt_tui.cli.common import Subcommands, console, err_console


def cmd_export(args: argparse.Namespace) -> int:
    if args.format not in FORMATS:
        return export_tracking(args)
    from core.interop.gpt2_weights import ExportExists, export_checkpoint

    try:
        exported = export_checkpoint(args.run, args.format, args.out, overwrite=args.overwrite,
                                     warn=lambda caveat: err_console.print(f"[yellow]note:[/] {caveat}"))
    except ExportExists as error:
        err_console.print(f"[red]error:[/] {error}: pass --overwrite to replace them")
        return 1
    for path in exported.files:
        console.print(f"wrote {path}")
    console.print(exported.note)
    return 0


def export_tracking(args: argparse.Namespace) -> int:
    from core.interop.tracking import TrackingError, TrackingExists, export_metrics

    try:
        files = export_metrics(args.run, args.format, args.out, overwrite=args.overwrite)
    except TrackingExists as error:
        err_console.print(f"[red]error:[/] {error}: pass --overwrite to replace them")
        return 1
    except TrackingError as error:
        err_console.print(f"[red]error:[/] {error}")
        return 1
    for path in files:
        console.print(f"wrote {path}")
    if args.format == "tensorboard":
        console.print(f"see them with: tensorboard --logdir {args.out}")
    return 0


def cmd_download_gpt2(args: argparse.Namespace) -> int:
    if importlib.util.find_spec("huggingface_hub") is None:
        err_console.print(f"[red]error:[/] huggingface_hub is not installed: pip install huggingface_hub, or {where_to_put(args.name)}")
        return 1
    from huggingface_hub import hf_hub_download

    folder = models_dir() / args.name
    for filename in (HF_CONFIG, HF_WEIGHTS):
        console.print(f"downloading {HUB_OWNER}/{args.name} {filename}…")
        try:
            hf_hub_download(f"{HUB_OWNER}/{args.name}", filename, local_dir=folder)
        except Exception as error:  # offline, a proxy, a full disk: huggingface_hub raises many kinds
            reason = str(error).strip().rstrip(".")
            err_console.print(f"[red]error:[/] could not download {filename}: {reason}. Or {where_to_put(args.name)}")
            return 1
    console.print(f"[green]GPT-2 weights in {folder}[/]: train from them with --init-from {args.name}")
    return 0


def add_commands(sub: Subcommands) -> None:
    p = sub.add_parser("export", help="export a run's checkpoint for nanoGPT or Hugging Face transformers, or its "
                       "metrics for TensorBoard or a spreadsheet")
    p.add_argument("run", help="a run name, run folder or checkpoint file")
    formats = {**FORMATS, **TRACKING_FORMATS}
    p.add_argument("--format", required=True, choices=formats,
                   help="; ".join(f"{name}: {what}" for name, what in formats.items()))
    p.add_argument("--out", required=True, metavar="DIR", help="folder to write into (created if needed)")
    p.add_argument("--overwrite", action="store_true", help="replace files already in DIR")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("download-gpt2", help="download GPT-2's weights from Hugging Face (for train --init-from)")
    p.add_argument("name", choices=GPT2_MODELS, help="which GPT-2: " + ", ".join(GPT2_MODELS))
    p.set_defaults(func=cmd_download_gpt2)
