"""Subcommands of the `sqlft` command, one module each (see sqlft/cli.py)."""
