"""Gate diagnostics for GateRA-gated adapters: statistics, Lightning callbacks, gradient masking, pictures.

Callbacks (add under ``trainer.callbacks`` with ``class_path``; each diagnoses every N-th optimizer step and
does nothing for an ungated method):

- `GateEntropyMonitor`: the entropy regulariser and its weighted share of the loss;
- `GateStatisticsMonitor`: mean, std, near-binary shares per layer and module type, histograms, dead adapters;
- `PrefillDecodeMonitor`: prompt vs response gates in training, prefill vs decode gates of a probe generation,
  with the heatmap picture;
- `GradientMaskingMonitor`: adapter gradient norms and the share contributed by low-gate tokens;
- `FinalGateProbe`: at the end of training, gate statistics on held-out rows (pooled and per row) and the
  prefill / decode means of greedy continuations, written to ``final_gates.json``.

In a config (the defaults shown; measured overhead in ``benchmarks/diagnostics_overhead.py``)::

    trainer:
      callbacks:
        - class_path: gatera_lab.diagnostics.GateEntropyMonitor
          init_args: {every_n_steps: 50}
        - class_path: gatera_lab.diagnostics.GateStatisticsMonitor
          init_args: {every_n_steps: 50}
        - class_path: gatera_lab.diagnostics.PrefillDecodeMonitor
          init_args: {every_n_steps: 50, probe_every_n_steps: 500, max_new_tokens: 16}
        - class_path: gatera_lab.diagnostics.GradientMaskingMonitor
          init_args: {every_n_steps: 200}
"""

from gatera_lab.adapters.adapter_linear import gated_layers
from gatera_lab.diagnostics.entropy_monitor import GateEntropyMonitor
from gatera_lab.diagnostics.final_gate_probe import FinalGateProbe
from gatera_lab.diagnostics.gate_capture import GateCapture
from gatera_lab.diagnostics.gate_statistics import GateSummary, grouped_summaries, summarize
from gatera_lab.diagnostics.generation_trace import GateTrace, trace_generation
from gatera_lab.diagnostics.gradient_masking import GradientMaskingProbe, GradientShare
from gatera_lab.diagnostics.gradient_masking_monitor import GradientMaskingMonitor
from gatera_lab.diagnostics.plotting import gate_figure, gate_figure_size_px, save_png
from gatera_lab.diagnostics.prefill_decode_monitor import PrefillDecodeMonitor
from gatera_lab.diagnostics.statistics_monitor import GateStatisticsMonitor

__all__ = [
    "FinalGateProbe",
    "GateCapture",
    "GateEntropyMonitor",
    "GateStatisticsMonitor",
    "GateSummary",
    "GateTrace",
    "GradientMaskingMonitor",
    "GradientMaskingProbe",
    "GradientShare",
    "PrefillDecodeMonitor",
    "gate_figure",
    "gate_figure_size_px",
    "gated_layers",
    "grouped_summaries",
    "save_png",
    "summarize",
    "trace_generation",
]
