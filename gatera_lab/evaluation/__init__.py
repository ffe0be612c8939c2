"""Multiple-choice evaluation of causal LMs: label log-likelihood scoring, generation with label matching,
per-task accuracy (torchmetrics) and the results table with its JSON / CSV files."""

from gatera_lab.evaluation.choice_items import (
    RESPONSE_PREFIX,
    EvalCollator,
    EvalItem,
    labels_from_instruction,
    tokenize_eval_item,
)
from gatera_lab.evaluation.choice_scoring import predict_by_likelihood, score_candidates
from gatera_lab.evaluation.commonsense_task_names import COMMONSENSE_COLUMNS
from gatera_lab.evaluation.evaluate_batch import BatchEvaluation, Protocol, evaluate_batch, evaluate_items
from gatera_lab.evaluation.generation_matching import (
    first_label_match,
    generate_responses,
    predict_by_generation,
)
from gatera_lab.evaluation.results_table import (
    render_table,
    row_average,
    write_results_csv,
    write_results_json,
)
from gatera_lab.evaluation.task_accuracy import TaskAccuracy

__all__ = [
    "COMMONSENSE_COLUMNS",
    "RESPONSE_PREFIX",
    "BatchEvaluation",
    "EvalCollator",
    "EvalItem",
    "Protocol",
    "TaskAccuracy",
    "evaluate_batch",
    "evaluate_items",
    "first_label_match",
    "generate_responses",
    "labels_from_instruction",
    "predict_by_generation",
    "predict_by_likelihood",
    "render_table",
    "row_average",
    "score_candidates",
    "tokenize_eval_item",
    "write_results_csv",
    "write_results_json",
]
