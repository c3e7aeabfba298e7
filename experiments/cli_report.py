"""`kshot report DIR`: rebuild the summary table and the figures of a run from its files alone."""

from __future__ import annotations

from pathlib import Path


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "report",
        help="rebuild summary.csv/.md and figures/ of a `kshot run` directory",
        description=__doc__,
    )
    parser.add_argument("run_dir", type=Path, help="a directory written by `kshot run`")
    parser.add_argument("--no-figures", action="store_true", help="tables only")
    parser.set_defaults(handler=handle_report)


def handle_report(args) -> int:
    from experiments import report

    if not args.run_dir.is_dir():
        raise FileNotFoundError(f"run directory {args.run_dir} does not exist")
    built = report.write_report(args.run_dir, make_figures=not args.no_figures)
    print(report.accuracy_table(built["summary"]).to_string())
    print(f"wrote {args.run_dir / 'summary.csv'}, {args.run_dir / 'summary.md'} and {len(built['figures'])} figure files")
    return 0
