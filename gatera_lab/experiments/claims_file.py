"""`ClaimsSpec`: the papers' claims and published rows (``configs/sweeps/claims.yaml``), typed and parsed by
jsonargparse. The claims are data; `report_claims` evaluates them on the records.

- `ComparisonClaim`: average test accuracy of the final runs of ``A`` minus ``B`` for each ``[A, B]`` of
  ``pairs`` (pooled over the pairs present in the sweep), with the paper's difference in points (None:
  claimed positive, no published number);
- `EntropyClaim`: the entropy sweep's runs at each positive lambda minus lambda 0 (``label`` may use
  ``{method}`` and ``{value}``);
- `VariantClaim`: a sweep variant's runs of ``A`` minus the final runs of ``B`` for each ``[A, B]`` of
  ``pairs``, paired by seed; the project's own hypothesis about its sign (no paper number);
- `GateClaimSpec`: per-row gate statistic ``larger`` above ``smaller`` (`claims.row_values` keys);
- `PublishedRows`: reference accuracies (%) by row name and task key, and their source.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Optional

import yaml
from jsonargparse import ArgumentParser

from gatera_lab.errors import ConfigError


@dataclass(frozen=True)
class ComparisonClaim:
    label: str
    pairs: list[tuple[str, str]]
    paper: Optional[float] = None  # noqa: UP045 (jsonargparse reads the annotation)


@dataclass(frozen=True)
class EntropyClaim:
    label: str = "{method} at lambda {value} minus lambda 0 (no entropy term)"
    paper: Optional[float] = None  # noqa: UP045


@dataclass(frozen=True)
class VariantClaim:
    label: str
    variant: str
    pairs: list[tuple[str, str]]
    hypothesis: Literal["positive", "negative"] = "positive"


@dataclass(frozen=True)
class GateClaimSpec:
    label: str
    larger: str
    smaller: str


@dataclass(frozen=True)
class PublishedRows:
    source: str = ""
    rows: dict[str, dict[str, float]] = field(default_factory=dict)


@dataclass(frozen=True)
class ClaimsSpec:
    comparisons: list[ComparisonClaim] = field(default_factory=list)
    entropy: Optional[EntropyClaim] = None  # noqa: UP045
    variants: list[VariantClaim] = field(default_factory=list)
    gates: list[GateClaimSpec] = field(default_factory=list)
    published: PublishedRows = field(default_factory=PublishedRows)


def load_claims(path: str | os.PathLike[str] | None) -> ClaimsSpec:
    """The claims file at ``path`` (no claims for None); errors name the file and the option."""
    if path is None:
        return ClaimsSpec()
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as error:
        raise ConfigError(
            f"option 'claims': claims file {str(path)!r} is not readable YAML: {error}"
        ) from None
    parser = ArgumentParser(exit_on_error=False, default_env=False)
    parser.add_class_arguments(ClaimsSpec, fail_untyped=True)
    try:
        return ClaimsSpec(**parser.instantiate(parser.parse_object(data or {})).as_dict())
    except Exception as error:  # jsonargparse's ArgumentError: names the key
        text = " ".join(line.strip() for line in str(error).splitlines() if line.strip())
        raise ConfigError(f"claims file {str(path)!r}: {text}") from None
