"""The ``gatera-lab`` subcommands beside LightningCLI's, and the command line's helpers.

The entry point is `gatera_lab.cli.main`; it imports each subcommand here by its module path when named:

- `export_command`, `gates_command`, `generate_command`, `eval_command`, `compare_command`: one subcommand
  each, all through `command_entry.run_command` (error handling, shared options, the output file);
- `shipped_configs`, `config_file_check`: ``--config NAME`` and the check of ``--config`` files;
- `console`: the quieter console and the run header; `prompts_file`: ``generate --prompts-file``.
"""
