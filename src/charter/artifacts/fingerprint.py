"""Fingerprints of a model version: architecture, training data and config.

The registry compares each fingerprint with the parent version's to check the
declared semantic-version bump: a different architecture needs a major bump,
different training data a minor one, anything else a patch. All digests are
``sha256:<hex>`` over canonical JSON (:mod:`charter.domain.canonical`), so they
are stable across machines, Python versions and file orderings.

What counts as *architecture*: the estimator classes of a scikit-learn pickle
(hyperparameter *values* such as ``C=1`` vs ``C=2`` are config, not
architecture), the architecture and shape fields of a Hugging Face
``config.json``, or the architecture keys of a GGUF header. Model files are only
ever read as data: pickles are scanned statically and never unpickled.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import json
import math
import os
import re
import struct
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from charter.artifacts._pickle_scan import looks_like_pickle, scan_globals
from charter.domain.canonical import canonical_digest
from charter.domain.errors import InvalidInputError, NotFoundError

__all__ = [
    "UNKNOWN_ARCHITECTURE",
    "ArchitectureFingerprint",
    "architecture_fingerprint",
    "config_fingerprint",
    "data_fingerprint",
    "dataset_digest",
    "is_config_file",
]

_CHUNK = 4 << 20  # large reads keep hashing near hashlib's ~1.5 GB/s
_MAX_CONFIG_BYTES = 16 << 20
_MAX_SAFE_INT = 2**53 - 1
_ESTIMATOR_PACKAGES = ("sklearn", "xgboost", "lightgbm", "catboost")
_DOTTED = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*")
_HF_FIELDS = (
    "architectures", "model_type", "hidden_size", "num_hidden_layers",
    "num_attention_heads", "intermediate_size", "vocab_size", "num_key_value_heads",
    "max_position_embeddings",
    # The same shapes under older names (GPT-2 style, T5 style).
    "n_embd", "n_layer", "n_head", "n_inner", "n_positions", "d_model", "num_layers",
    "num_heads", "d_ff",
)  # fmt: skip
_GGUF_FIELDS = (
    "block_count", "embedding_length", "feed_forward_length", "attention.head_count",
    "attention.head_count_kv", "context_length", "expert_count", "vocab_size",
)  # fmt: skip
_GGUF_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f",
                 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}  # fmt: skip
_CONFIG_NAMES = frozenset(
    {"config.json", "params.json", "generation_config.json", "hyperparameters.json"}
)

#: Digest used when no architecture can be read. It is a constant, so two such
#: versions compare *equal*: the bump check cannot see an architecture change
#: it cannot read, and the registry should ask the user to declare one instead.
UNKNOWN_ARCHITECTURE = canonical_digest({"method": "unknown"})


@dataclass(frozen=True)
class ArchitectureFingerprint:
    """What a version's architecture is, as far as its files tell.

    Attributes:
        digest: ``sha256:<hex>``, always ``canonical_digest(description)``.
        method: how it was found: ``declared``, ``hf-config``, ``gguf``,
            ``sklearn-pickle`` or ``unknown``.
        description: the JSON-ready facts that were hashed, for display.
        details: facts shown but not hashed, because they depend on the reading
            environment rather than the file (e.g. parameter names of an
            estimator class, which vary with the installed library version).
    """

    digest: str
    method: str
    description: dict[str, Any]
    details: dict[str, Any] = field(default_factory=dict)


def architecture_fingerprint(
    files: Sequence[tuple[str, Path]], *, declared: str | None = None
) -> ArchitectureFingerprint:
    """Fingerprint the architecture of a version from its artifact files.

    Tried in order: a ``declared`` value; a Hugging Face ``config.json`` at the
    artifact root; GGUF headers; scikit-learn (and xgboost, lightgbm, catboost)
    pickles and joblib files, compressed or not. Pickles are scanned statically,
    never unpickled; estimator modules they name may be *imported* (library
    code, not file content) to list parameter names. If nothing applies the
    method is ``unknown`` and the digest is :data:`UNKNOWN_ARCHITECTURE`.

    Args:
        files: ``(relpath, abspath)`` of every file of the artifact.
        declared: an architecture name given by the user; wins over the files.

    Returns:
        The fingerprint; ``description`` holds exactly what ``digest`` covers.

    Raises:
        InvalidInputError: ``declared`` is empty or blank.
        NotFoundError: a listed file does not exist.
    """
    if declared is not None:
        if not declared.strip():
            raise InvalidInputError("declared architecture must not be empty", field="declared")
        return _fingerprint("declared", {"declared": declared})
    ordered = sorted((_normalise(rel), path) for rel, path in files)
    for rel, path in ordered:
        if not path.is_file():
            raise NotFoundError(f"artifact file {rel!r} not found at {path}", path=rel)
    for detect in (_hf_config, _gguf, _sklearn_pickles):
        found = detect(ordered)
        if found is not None:
            return found
    return _fingerprint("unknown", {"method": "unknown"})


def data_fingerprint(datasets: Sequence[tuple[str, str, str | None]]) -> str:
    """Fingerprint the training data declared for a version.

    Only ``role == "train"`` counts: evaluation sets do not change the model.
    Name and digest both count, so renaming a training set is a data change
    too; a dataset declared twice counts once.

    Args:
        datasets: ``(name, role, digest)``; ``digest`` may be None when unknown.

    Returns:
        ``sha256:<hex>`` over the sorted list; the empty list has its own digest.
    """
    entries = {(name, digest) for name, role, digest in datasets if role == "train"}
    ordered = sorted(entries, key=lambda item: (item[0], item[1] is not None, item[1] or ""))
    return canonical_digest([{"name": name, "digest": digest} for name, digest in ordered])


def config_fingerprint(
    params: Mapping[str, str], config_files: Sequence[tuple[str, str]] = ()
) -> str:
    """Fingerprint a version's configuration: parameters and config files.

    Args:
        params: hyperparameters and settings as strings (order does not matter).
        config_files: ``(relpath, digest)`` of files for which
            :func:`is_config_file` is true.

    Returns:
        ``sha256:<hex>`` over the params and the sorted config files.

    Raises:
        InvalidInputError: a parameter name or value is not a string.
    """
    for key, value in params.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise InvalidInputError(
                f"config parameter {key!r} must map a string to a string", field="params"
            )
    files = sorted([_normalise(rel), digest] for rel, digest in config_files)
    return canonical_digest({"params": dict(params), "files": files})


def is_config_file(relpath: str) -> bool:
    """Tell whether an artifact file holds configuration (folded into the config fingerprint).

    Args:
        relpath: the file's path inside the artifact.

    Returns:
        True for ``config.json``, ``params.json``, ``generation_config.json``,
        ``hyperparameters.json`` (in any folder) and any ``.yaml`` / ``.yml``.
    """
    name = _normalise(relpath).rsplit("/", 1)[-1].lower()
    return name in _CONFIG_NAMES or name.endswith((".yaml", ".yml"))


def dataset_digest(path: Path) -> tuple[str, int]:
    """Digest a local dataset: one file, or a folder of files.

    A file's digest is the sha256 of its bytes (as in artifact manifests). A
    folder's digest is over the sorted list of ``{path, digest, size}`` of every
    file below it (hidden ones included), so it depends on names and contents
    but not on creation order or timestamps. Symlinks are followed only while
    they stay inside the folder.

    Args:
        path: the dataset file or folder.

    Returns:
        ``(digest, total size in bytes)``.

    Raises:
        NotFoundError: ``path`` does not exist.
        InvalidInputError: a symlink leaves the folder or loops, an entry is not
            a regular file or folder, or a file cannot be read.
    """
    if not path.exists():
        raise NotFoundError(f"dataset {path} not found", path=str(path))
    try:
        root = path.resolve(strict=True)
        if root.is_file():
            return _hash_file(root)
        if not root.is_dir():
            raise InvalidInputError(f"dataset {path} is not a file or folder", path=str(path))
        hashed = [(rel, *_hash_file(file)) for rel, file in sorted(_walk(root))]
    except (OSError, RuntimeError) as exc:  # RuntimeError: symlink loop in resolve()
        raise InvalidInputError(f"cannot read dataset {path}: {exc}", path=str(path)) from exc
    entries = [{"path": rel, "digest": digest, "size": size} for rel, digest, size in hashed]
    return canonical_digest(entries), sum(size for _rel, _digest, size in hashed)


def _fingerprint(method: str, description: dict[str, Any]) -> ArchitectureFingerprint:
    return ArchitectureFingerprint(canonical_digest(description), method, description)


def _normalise(relpath: str) -> str:
    rel = relpath.replace("\\", "/")
    while rel.startswith("./"):
        rel = rel[2:]
    return rel


def _hf_config(files: Sequence[tuple[str, Path]]) -> ArchitectureFingerprint | None:
    path = dict(files).get("config.json")
    if path is None or path.stat().st_size > _MAX_CONFIG_BYTES:
        return None
    try:
        config = json.loads(path.read_bytes())
    except (ValueError, RecursionError):
        return None  # not JSON: some other tool's config.json, not a transformers model
    if not isinstance(config, dict) or not ({"architectures", "model_type"} & config.keys()):
        return None
    return _fingerprint("hf-config", {"hf_config": _hf_facts(config)})


def _hf_facts(config: Mapping[str, Any]) -> dict[str, Any]:
    facts = {key: config[key] for key in _HF_FIELDS if _is_plain(config.get(key))}
    # Composite models (vision-language, encoder-decoder) keep shapes in sub-configs.
    for key, value in config.items():
        if key.endswith("_config") and isinstance(value, dict):
            sub = _hf_facts(value)
            if sub:
                facts[key] = sub
    return facts


def _is_plain(value: Any) -> bool:
    # Only what canonical JSON carries faithfully: no NaN, no objects, and integers
    # within I-JSON's exact range (a crafted file must not make hashing fail).
    if isinstance(value, list):
        return all(isinstance(item, str) for item in value)
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, int):
        return abs(value) <= _MAX_SAFE_INT
    return isinstance(value, str)


def _gguf(files: Sequence[tuple[str, Path]]) -> ArchitectureFingerprint | None:
    for _rel, path in files:
        meta = _gguf_metadata(path)
        arch = meta.get("general.architecture")
        if isinstance(arch, str):  # split models: only the first shard carries it
            keys = [f"{arch}.{field}" for field in _GGUF_FIELDS]
            facts = {key: meta[key] for key in keys if _is_plain(meta.get(key))}
            return _fingerprint("gguf", {"gguf": {"general.architecture": arch, **facts}})
    return None


def _gguf_metadata(path: Path) -> dict[str, Any]:
    """Read the scalar key/values of a GGUF header (arrays skipped); {} if not GGUF."""
    meta: dict[str, Any] = {}
    with path.open("rb") as fh:
        head = fh.read(8)
        if len(head) < 8 or head[:4] != b"GGUF":
            return meta
        # Version 1 used 32-bit counts and lengths; later versions 64-bit.
        width = "<I" if struct.unpack("<I", head[4:])[0] == 1 else "<Q"
        try:
            _tensors, count = _unpack(fh, width), _unpack(fh, width)
            for _ in range(count):
                key = _gguf_string(fh, width)
                value = _gguf_value(fh, _unpack(fh, "<I"), width, depth=0)
                if key is not None and value is not None:
                    meta[key] = value
        except (struct.error, ValueError, OverflowError, OSError):
            pass  # truncated or odd header: keep the keys read so far
    return meta


def _unpack(fh: IO[bytes], fmt: str) -> Any:
    return struct.unpack(fmt, fh.read(struct.calcsize(fmt)))[0]


def _gguf_string(fh: IO[bytes], width: str) -> str | None:
    size = _unpack(fh, width)
    if size > 65536:  # a long string (a chat template) is never an architecture key
        fh.seek(size, os.SEEK_CUR)
        return None
    return fh.read(size).decode("utf-8")


def _gguf_value(fh: IO[bytes], vtype: int, width: str, *, depth: int) -> Any:
    if vtype in _GGUF_SCALARS:
        return _unpack(fh, _GGUF_SCALARS[vtype])
    if vtype == 8:
        return _gguf_string(fh, width)
    if vtype != 9 or depth > 4:
        raise ValueError(f"unsupported GGUF value type {vtype}")
    item_type, length = _unpack(fh, "<I"), _unpack(fh, width)
    if item_type in _GGUF_SCALARS:  # arrays (token lists, scores) are stepped over
        fh.seek(length * struct.calcsize(_GGUF_SCALARS[item_type]), os.SEEK_CUR)
    else:
        for _ in range(length):
            _gguf_value(fh, item_type, width, depth=depth + 1)
    return None


def _sklearn_pickles(files: Sequence[tuple[str, Path]]) -> ArchitectureFingerprint | None:
    classes: dict[tuple[str, str], None] = {}
    for rel, path in files:
        if looks_like_pickle(rel, path):
            for module, name in scan_globals(path):
                if _is_estimator_module(module):
                    classes.setdefault((module, name), None)
    if not classes:
        return None
    # Only the class paths are hashed: parameter names come from the installed
    # library, so hashing them would make one file's digest differ by machine.
    found = _fingerprint("sklearn-pickle", {"estimators": [f"{m}.{n}" for m, n in classes]})
    params = {f"{m}.{n}": list(_param_names(m, n)) for m, n in classes}
    return ArchitectureFingerprint(
        found.digest, found.method, found.description, {"params": params}
    )


def _is_estimator_module(module: str) -> bool:
    top = module.split(".", 1)[0]
    # sklearn.externals once vendored joblib: its NumpyArrayWrapper is plumbing.
    return top in _ESTIMATOR_PACKAGES and not module.startswith("sklearn.externals")


@functools.lru_cache(maxsize=1024)
def _param_names(module: str, name: str) -> tuple[str, ...]:
    # Importing an estimator library's module runs that library's code, never
    # the pickle's; the name is validated so a crafted one cannot reach others.
    if not (_is_estimator_module(module) and _DOTTED.fullmatch(module) and name.isidentifier()):
        return ()
    try:
        cls = getattr(importlib.import_module(module), name, None)
        getter = getattr(cls, "_get_param_names", None)
        if isinstance(cls, type) and callable(getter):
            return tuple(str(param) for param in getter())
    except Exception:  # params are descriptive: a broken or missing library must not fail
        return ()
    return ()


def _walk(root: Path) -> Iterator[tuple[str, Path]]:
    """Yield ``(posix relpath, real path)`` of every file below ``root``."""
    pending: list[tuple[Path, str, frozenset[Path]]] = [(root, "", frozenset({root}))]
    while pending:
        folder, prefix, ancestors = pending.pop()
        with os.scandir(folder) as entries:
            for entry in entries:
                rel, target = prefix + entry.name, Path(entry.path)
                if entry.is_symlink():
                    target = target.resolve()
                    if not target.is_relative_to(root):
                        raise InvalidInputError(
                            f"symlink {rel!r} points outside the dataset folder", path=rel
                        )
                if target.is_dir():
                    if target in ancestors:
                        raise InvalidInputError(f"symlink {rel!r} loops", path=rel)
                    pending.append((target, rel + "/", ancestors | {target}))
                elif target.is_file():
                    yield rel, target
                else:
                    raise InvalidInputError(f"{rel!r} is not a regular file", path=rel)


def _hash_file(path: Path) -> tuple[str, int]:
    digest, size = hashlib.sha256(), 0
    buffer = bytearray(_CHUNK)
    view = memoryview(buffer)
    with path.open("rb", buffering=0) as fh:
        while count := fh.readinto(buffer):
            digest.update(view[:count])
            size += count
    return "sha256:" + digest.hexdigest(), size
