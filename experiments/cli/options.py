"""Options several command groups share: `--set SECTION.KEY=VALUE`, any key of a command's configuration.

A command that reads a configuration (a TOML file, a preset, a checkpoint's settings)
takes `--set` for every key its schema has, so a one-off experiment needs no flag of
its own. The values are parsed and checked by experiments.core.settings exactly like
the same values in a file; this module only declares the option and its help.
"""

from __future__ import annotations

import dataclasses

SET_METAVAR = "SECTION.KEY=VALUE"
EXPLICIT_WINS = "an explicit option for the same key (e.g. --seed) wins over --set, wherever it stands"


def add_set_option(parser, schema: type, precedence: str = EXPLICIT_WINS) -> None:
    """Add a repeatable `--set` to `parser`, naming the sections of `schema` (RunConfig, OmniglotConfig) in its help."""
    sections = ", ".join(section.name for section in dataclasses.fields(schema))
    parser.add_argument(
        "--set", action="append", default=[], metavar=SET_METAVAR,
        help=f"set one key of the configuration as its TOML file would (sections: {sections}). The value is "
             "TOML (64, 0.2, true, '[\"a\", \"b\"]') or a bare word for a string; quote the "
             f"whole argument for the shell when it holds quotes or brackets. Repeatable: of two for one key "
             f"the later wins; {precedence}.",
    )
