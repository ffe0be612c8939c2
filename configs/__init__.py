"""The shipped configurations (``*.yaml``, ``sweeps/*.yaml``), installed as ``gatera_lab.configs``.

`gatera_lab.commands.shipped_configs` finds them by name, e.g. ``gatera-lab fit --config hira_gate``.
"""
