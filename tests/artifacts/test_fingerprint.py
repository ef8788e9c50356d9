"""Architecture, data and config fingerprints (charter.artifacts.fingerprint)."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import pickle
import random
import struct
import sys
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer, load_iris
from sklearn.decomposition import PCA
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import MinMaxScaler, StandardScaler
from sklearn.svm import LinearSVC

from charter.artifacts._pickle_scan import scan_globals
from charter.artifacts.fingerprint import (
    UNKNOWN_ARCHITECTURE,
    ArchitectureFingerprint,
    architecture_fingerprint,
    config_fingerprint,
    data_fingerprint,
    dataset_digest,
    is_config_file,
)
from charter.domain.canonical import canonical_digest
from charter.domain.errors import InvalidInputError, NotFoundError

LOGREG = "sklearn.linear_model._logistic.LogisticRegression"
PIPELINE_CLASSES = [
    "sklearn.pipeline.Pipeline",
    "sklearn.preprocessing._data.StandardScaler",
    "sklearn.ensemble._forest.RandomForestClassifier",
    "sklearn.tree._classes.DecisionTreeClassifier",
    "sklearn.tree._tree.Tree",
]
JOBLIB_COMPRESSIONS = [0, 3, ("zlib", 3), ("gzip", 3), ("bz2", 3), ("lzma", 3), ("xz", 3)]


# -- helpers -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def iris() -> tuple[Any, Any]:
    return load_iris(return_X_y=True)


@pytest.fixture(scope="module")
def cancer() -> tuple[Any, Any]:
    X, y = load_breast_cancer(return_X_y=True)
    return StandardScaler().fit_transform(X), y


def pipeline(**rf: Any) -> Pipeline:
    forest = RandomForestClassifier(**{"n_estimators": 5, "max_depth": 3, "random_state": 0, **rf})
    return Pipeline([("scale", StandardScaler()), ("forest", forest)])


def files_of(folder: Path) -> list[tuple[str, Path]]:
    return [(p.relative_to(folder).as_posix(), p) for p in folder.rglob("*") if p.is_file()]


def save(obj: Any, folder: Path, name: str = "model.pkl", compress: Any = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    if compress is None:
        path.write_bytes(pickle.dumps(obj))
    else:
        joblib.dump(obj, path, compress=compress)
    return folder


def fingerprint(folder: Path) -> ArchitectureFingerprint:
    return architecture_fingerprint(files_of(folder))


def classes(fp: ArchitectureFingerprint) -> list[str]:
    return list(fp.description["estimators"])


# -- scikit-learn pickles ---------------------------------------------------------------


def test_pickled_logistic_regression_names_its_class_and_params(tmp_path, iris):
    fp = fingerprint(save(LogisticRegression(max_iter=500).fit(*iris), tmp_path))

    assert fp.method == "sklearn-pickle"
    assert classes(fp) == [LOGREG]
    assert {"C", "penalty", "max_iter"} <= set(fp.details["params"][LOGREG])
    assert fp.digest == canonical_digest(fp.description)
    assert "params" not in fp.description  # machine-dependent: shown, never hashed


@pytest.mark.parametrize("compress", JOBLIB_COMPRESSIONS, ids=str)
def test_joblib_pipeline_is_read_past_its_array_bytes(tmp_path, iris, compress):
    # Uncompressed joblib puts raw numpy bytes after each array wrapper; the
    # forest comes after the scaler's arrays, so finding it proves they were skipped.
    fp = fingerprint(save(pipeline().fit(*iris), tmp_path, "model.joblib", compress))

    assert classes(fp) == PIPELINE_CLASSES
    assert fp.details["params"][PIPELINE_CLASSES[0]] == [
        "memory",
        "steps",
        "transform_input",
        "verbose",
    ]


def test_every_container_format_gives_one_architecture(tmp_path, iris):
    model = pipeline().fit(*iris)
    digests = set()
    for protocol in range(6):
        folder = tmp_path / f"pickle{protocol}"
        folder.mkdir()
        (folder / "model.pkl").write_bytes(pickle.dumps(model, protocol))
        digests.add(fingerprint(folder).digest)
    for index, compress in enumerate(JOBLIB_COMPRESSIONS):
        digests.add(
            fingerprint(save(model, tmp_path / f"joblib{index}", "m.joblib", compress)).digest
        )
    (tmp_path / "framed").mkdir()
    joblib.dump(model, tmp_path / "framed" / "m.joblib", protocol=2)  # no FRAME opcodes
    digests.add(fingerprint(tmp_path / "framed").digest)

    assert len(digests) == 1


def test_object_arrays_nested_in_joblib_are_scanned_through(tmp_path, cancer):
    # String labels make classes_ an object array: joblib writes it as a nested
    # pickle in the middle of the stream; the scaler after it must still be seen.
    X, y = cancer
    labels = np.array(["benign", "malignant"], dtype=object)[y]
    model = [LogisticRegression(max_iter=1000).fit(X, labels), MinMaxScaler().fit(X)]
    for compress in (0, 3):
        fp = fingerprint(save(model, tmp_path / str(compress), "m.joblib", compress))
        assert classes(fp) == [LOGREG, "sklearn.preprocessing._data.MinMaxScaler"]


def test_retraining_on_more_data_keeps_the_architecture(tmp_path, cancer):
    X, y = cancer
    small = fingerprint(save(LogisticRegression().fit(X[:200], y[:200]), tmp_path / "a"))
    large = fingerprint(save(LogisticRegression().fit(X, y), tmp_path / "b"))
    assert small.digest == large.digest

    small = fingerprint(save(pipeline().fit(X[:200], y[:200]), tmp_path / "c", "m.joblib", 0))
    large = fingerprint(save(pipeline().fit(X, y), tmp_path / "d", "m.joblib", 0))
    assert small.digest == large.digest


def test_hyperparameter_values_are_config_not_architecture(tmp_path, cancer):
    one = fingerprint(save(LogisticRegression(C=1.0).fit(*cancer), tmp_path / "a"))
    two = fingerprint(save(LogisticRegression(C=2.0).fit(*cancer), tmp_path / "b"))
    deeper = fingerprint(save(pipeline(max_depth=None).fit(*cancer), tmp_path / "c"))
    shallow = fingerprint(save(pipeline().fit(*cancer), tmp_path / "d"))

    assert one.digest == two.digest
    assert deeper.digest == shallow.digest


def test_changing_the_estimator_or_the_steps_changes_the_architecture(tmp_path, cancer):
    logreg = fingerprint(save(LogisticRegression().fit(*cancer), tmp_path / "a"))
    svc = fingerprint(save(LinearSVC().fit(*cancer), tmp_path / "b"))
    base = fingerprint(save(pipeline().fit(*cancer), tmp_path / "c"))
    steps = pipeline().steps
    more = Pipeline([steps[0], ("pca", PCA(n_components=5)), steps[1]]).fit(*cancer)
    other = Pipeline([("scale", MinMaxScaler()), steps[1]]).fit(*cancer)

    digests = {
        logreg.digest,
        svc.digest,
        base.digest,
        fingerprint(save(more, tmp_path / "d")).digest,
        fingerprint(save(other, tmp_path / "e")).digest,
    }
    assert len(digests) == 5


def test_pickle_is_recognised_by_content_whatever_its_name(tmp_path, iris):
    save(LogisticRegression(max_iter=500).fit(*iris), tmp_path, "weights.bin")
    assert classes(fingerprint(tmp_path)) == [LOGREG]


def test_pickle_without_estimators_is_unknown(tmp_path):
    save({"weights": np.arange(10.0)}, tmp_path)
    assert fingerprint(tmp_path).method == "unknown"


# -- hostile and damaged pickles ------------------------------------------------------


class Payload:
    """Runs a shell command when unpickled."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("compress", [None, 0, 3], ids=["pickle", "joblib", "joblib-z"])
def test_scanning_a_malicious_pickle_executes_nothing(tmp_path, compress):
    marker = tmp_path / "pwned"
    folder = save([LogisticRegression(), Payload(marker)], tmp_path / "m", "m.pkl", compress)

    fp = fingerprint(folder)

    assert classes(fp) == [LOGREG]
    assert not marker.exists()
    # The payload is live: loading it (which registration never does) would run it.
    joblib.load(folder / "m.pkl")
    assert marker.exists()


def test_scanning_never_imports_modules_outside_estimator_libraries(tmp_path, monkeypatch):
    # A crafted module whose import leaves a trace; its name starts like a
    # trusted library's to catch a bare prefix check.
    marker = tmp_path / "imported"
    (tmp_path / "xgboost_canary.py").write_text(f"open({str(marker)!r}, 'w').close()\nT = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    folder = tmp_path / "m"
    folder.mkdir()
    # Protocol 0 by hand: GLOBAL xgboost_canary.T, then a sklearn class.
    data = b"cxgboost_canary\nT\n(tRcsklearn.linear_model._logistic\nLogisticRegression\n."
    (folder / "m.pkl").write_bytes(data)

    assert classes(fingerprint(folder)) == [LOGREG]
    assert "xgboost_canary" not in sys.modules
    assert not marker.exists()


def test_damaged_pickles_keep_what_was_found(tmp_path, iris):
    whole = save(pipeline().fit(*iris), tmp_path / "whole", "m.joblib", 0) / "m.joblib"
    data = whole.read_bytes()
    (tmp_path / "cut").mkdir()
    (tmp_path / "cut" / "m.joblib").write_bytes(data[: len(data) // 2])
    (tmp_path / "cut-gz").mkdir()
    (tmp_path / "cut-gz" / "m.pkl").write_bytes(gzip.compress(data)[:600])
    (tmp_path / "noise").mkdir()
    (tmp_path / "noise" / "m.pkl").write_bytes(os.urandom(4096))

    assert classes(fingerprint(tmp_path / "cut"))[0] == "sklearn.pipeline.Pipeline"
    assert classes(fingerprint(tmp_path / "cut-gz"))[0] == "sklearn.pipeline.Pipeline"
    assert fingerprint(tmp_path / "noise").method == "unknown"


def test_huge_declared_payload_is_skipped_not_allocated(tmp_path):
    # BINBYTES8 claiming 2**62 bytes: reading it would need exabytes of memory.
    path = tmp_path / "m.pkl"
    path.write_bytes(
        b"\x80\x04\x8c\x07sklearn\x8c\x03Foo\x93\x8e" + struct.pack("<Q", 2**62) + b"xx"
    )
    assert scan_globals(path) == [("sklearn", "Foo")]


def test_randomly_corrupted_pickles_never_raise(tmp_path, iris):
    rng = random.Random(7)
    model = pipeline().fit(*iris)
    path = tmp_path / "m.joblib"
    joblib.dump(model, path, compress=0)
    sources = [path.read_bytes(), pickle.dumps(model, 0), pickle.dumps(model, 5)]
    for source in sources:
        for _ in range(100):
            data = bytearray(source)
            for _ in range(rng.randint(1, 4)):
                data[rng.randrange(len(data))] = rng.randrange(256)
            path.write_bytes(bytes(data[: rng.randint(1, len(data))]))
            scan_globals(path)  # must return, whatever the bytes


# -- Hugging Face and GGUF ----------------------------------------------------------------

LLAMA = {
    "architectures": ["LlamaForCausalLM"],
    "model_type": "llama",
    "hidden_size": 4096,
    "num_hidden_layers": 32,
    "num_attention_heads": 32,
    "num_key_value_heads": 8,
    "intermediate_size": 14336,
    "vocab_size": 128256,
    "max_position_embeddings": 8192,
    "torch_dtype": "bfloat16",
    "rms_norm_eps": 1e-5,
    "transformers_version": "4.40.0",
}


def hf_folder(folder: Path, **changes: Any) -> Path:
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps({**LLAMA, **changes}))
    (folder / "model.safetensors").write_bytes(b"\0" * 64)
    return folder


def test_hf_config_hashes_architecture_and_shape_fields(tmp_path):
    fp = fingerprint(hf_folder(tmp_path / "m"))

    assert fp.method == "hf-config"
    facts = fp.description["hf_config"]
    assert facts["architectures"] == ["LlamaForCausalLM"]
    assert facts["num_hidden_layers"] == 32
    assert "torch_dtype" not in facts
    assert "transformers_version" not in facts


def test_hf_config_ignores_non_architecture_fields(tmp_path):
    base = fingerprint(hf_folder(tmp_path / "a"))
    other = fingerprint(
        hf_folder(
            tmp_path / "b", torch_dtype="float16", transformers_version="4.44", rms_norm_eps=1e-6
        )
    )
    assert base.digest == other.digest


@pytest.mark.parametrize(
    "change",
    [
        {"num_hidden_layers": 40},
        {"hidden_size": 5120},
        {"architectures": ["MistralForCausalLM"]},
        {"text_config": {"hidden_size": 1024}},
    ],
    ids=str,
)
def test_hf_config_shape_changes_change_the_architecture(tmp_path, change):
    assert (
        fingerprint(hf_folder(tmp_path / "a")).digest
        != fingerprint(hf_folder(tmp_path / "b", **change)).digest
    )


def test_hf_config_wins_over_pickles_and_must_be_at_the_root(tmp_path, iris):
    folder = hf_folder(tmp_path / "m")
    save(LogisticRegression(max_iter=500).fit(*iris), folder)
    assert fingerprint(folder).method == "hf-config"

    nested = tmp_path / "nested"
    (nested / "sub").mkdir(parents=True)
    (nested / "sub" / "config.json").write_text(json.dumps(LLAMA))
    assert fingerprint(nested).method == "unknown"


@pytest.mark.parametrize("text", ["{not json", '{"hidden_size": 8}', "[1, 2]"])
def test_config_json_that_is_not_a_transformers_config_is_ignored(tmp_path, text):
    (tmp_path / "config.json").write_text(text)
    assert fingerprint(tmp_path).method == "unknown"


def test_hostile_config_values_do_not_break_hashing(tmp_path):
    folder = hf_folder(tmp_path / "m", vocab_size=2**60, hidden_size=float("nan"))
    facts = fingerprint(folder).description["hf_config"]
    assert "vocab_size" not in facts
    assert "hidden_size" not in facts


def gguf_string(text: str) -> bytes:
    data = text.encode()
    return struct.pack("<Q", len(data)) + data


def write_gguf(path: Path, blocks: int = 32, file_type: int = 15) -> Path:
    tokens = [f"tok{i}" for i in range(100)]
    pairs = [
        gguf_string("general.architecture") + struct.pack("<I", 8) + gguf_string("llama"),
        gguf_string("general.file_type") + struct.pack("<II", 4, file_type),
        gguf_string("tokenizer.ggml.tokens")
        + struct.pack("<IIQ", 9, 8, len(tokens))
        + b"".join(gguf_string(t) for t in tokens),
        gguf_string("tokenizer.ggml.scores") + struct.pack("<IIQ", 9, 6, 100) + b"\0" * 400,
        gguf_string("llama.block_count") + struct.pack("<II", 4, blocks),
        gguf_string("llama.embedding_length") + struct.pack("<II", 4, 4096),
        gguf_string("llama.rope.freq_base") + struct.pack("<If", 6, 500000.0),
    ]
    header = b"GGUF" + struct.pack("<IQQ", 3, 0, len(pairs))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(header + b"".join(pairs) + b"\0" * 32)
    return path.parent


def test_gguf_header_gives_the_architecture(tmp_path):
    fp = fingerprint(write_gguf(tmp_path / "a" / "model.gguf"))

    assert fp.method == "gguf"
    assert fp.description == {
        "gguf": {
            "general.architecture": "llama",
            "llama.block_count": 32,
            "llama.embedding_length": 4096,
        }
    }
    requantised = fingerprint(write_gguf(tmp_path / "b" / "model.gguf", file_type=7))
    deeper = fingerprint(write_gguf(tmp_path / "c" / "model.gguf", blocks=40))
    assert requantised.digest == fp.digest
    assert deeper.digest != fp.digest


def test_truncated_or_fake_gguf_is_not_trusted(tmp_path):
    folder = write_gguf(tmp_path / "a" / "model.gguf")
    data = (folder / "model.gguf").read_bytes()
    (folder / "model.gguf").write_bytes(data[:30])
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "model.gguf").write_bytes(b"GGUF" + b"\xff" * 40)

    assert fingerprint(folder).method == "unknown"
    assert fingerprint(tmp_path / "b").method == "unknown"


# -- declared, unknown, missing ------------------------------------------------------


def test_declared_architecture_wins(tmp_path):
    fp = architecture_fingerprint(files_of(hf_folder(tmp_path / "m")), declared="my-net-v2")

    assert fp.method == "declared"
    assert fp.description == {"declared": "my-net-v2"}
    assert fp.digest == canonical_digest({"declared": "my-net-v2"})


def test_blank_declared_architecture_is_refused():
    with pytest.raises(InvalidInputError):
        architecture_fingerprint([], declared="  ")


def test_unknown_architecture_has_one_constant_digest(tmp_path):
    (tmp_path / "weights.bin").write_bytes(b"\x01\x02\x03")
    fp = fingerprint(tmp_path)
    empty = architecture_fingerprint([])

    assert fp.method == empty.method == "unknown"
    assert fp.digest == empty.digest == UNKNOWN_ARCHITECTURE
    assert canonical_digest({"method": "unknown"}) == UNKNOWN_ARCHITECTURE


def test_missing_artifact_file_is_not_found(tmp_path):
    with pytest.raises(NotFoundError):
        architecture_fingerprint([("model.pkl", tmp_path / "absent.pkl")])


# -- data and config fingerprints ------------------------------------------------------

TRAIN = ("loans-2023", "train", "sha256:" + "a" * 64)
EVAL = ("loans-holdout", "eval", "sha256:" + "b" * 64)


def test_data_fingerprint_covers_training_sets_only():
    assert data_fingerprint([TRAIN, EVAL]) == data_fingerprint([TRAIN])
    assert data_fingerprint([EVAL]) == data_fingerprint([]) == canonical_digest([])


def test_data_fingerprint_ignores_order_and_repeats():
    other = ("loans-2024", "train", None)
    assert data_fingerprint([TRAIN, other]) == data_fingerprint([other, TRAIN, TRAIN])


def test_data_fingerprint_changes_with_new_data():
    base = data_fingerprint([TRAIN])
    assert data_fingerprint([(TRAIN[0], "train", "sha256:" + "c" * 64)]) != base
    assert data_fingerprint([(TRAIN[0], "train", None)]) != base
    assert data_fingerprint([TRAIN, ("extra", "train", None)]) != base


def test_config_fingerprint_covers_params_and_config_files():
    files = [("config.json", "sha256:" + "1" * 64), ("train.yaml", "sha256:" + "2" * 64)]
    base = config_fingerprint({"lr": "0.1", "epochs": "3"}, files)

    assert config_fingerprint({"epochs": "3", "lr": "0.1"}, files[::-1]) == base
    assert config_fingerprint({"lr": "0.2", "epochs": "3"}, files) != base
    assert config_fingerprint({"lr": "0.1", "epochs": "3"}, files[:1]) != base
    assert config_fingerprint({"lr": "0.1", "epochs": "3"}) != base


def test_config_fingerprint_refuses_non_string_values():
    with pytest.raises(InvalidInputError):
        config_fingerprint({"lr": 0.1})  # type: ignore[dict-item]


@pytest.mark.parametrize(
    ("relpath", "expected"),
    [
        ("config.json", True),
        ("text_encoder/config.json", True),
        ("generation_config.json", True),
        ("params.json", True),
        ("hyperparameters.json", True),
        ("conf/train.yaml", True),
        ("Pipeline.YML", True),
        ("tokenizer.json", False),
        ("model.safetensors", False),
        ("config.json.bak", False),
    ],
)
def test_is_config_file(relpath, expected):
    assert is_config_file(relpath) is expected


# -- dataset digests -------------------------------------------------------------------


def make_tree(root: Path, files: dict[str, bytes]) -> Path:
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    return root


def test_dataset_file_digest_is_its_sha256(tmp_path):
    data = os.urandom(9 * 1024 * 1024 + 3)  # spans several read chunks
    (tmp_path / "d.bin").write_bytes(data)

    assert dataset_digest(tmp_path / "d.bin") == (
        "sha256:" + hashlib.sha256(data).hexdigest(),
        len(data),
    )


def test_dataset_folder_digest_is_independent_of_creation_order(tmp_path):
    files = {"a.csv": b"1,2\n", "sub/b.csv": b"3,4\n", "sub/deeper/c.csv": b"5\n", ".meta": b""}
    first = dataset_digest(make_tree(tmp_path / "x", files))
    second = dataset_digest(make_tree(tmp_path / "y", dict(reversed(files.items()))))

    assert first == second
    assert first[1] == 4 + 4 + 2
    expected = [
        {
            "path": rel,
            "digest": "sha256:" + hashlib.sha256(files[rel]).hexdigest(),
            "size": len(files[rel]),
        }
        for rel in sorted(files)
    ]
    assert first[0] == canonical_digest(expected)


def test_dataset_folder_digest_sees_content_and_names(tmp_path):
    base = dataset_digest(make_tree(tmp_path / "a", {"x.csv": b"1", "y.csv": b"2"}))
    changed = dataset_digest(make_tree(tmp_path / "b", {"x.csv": b"1", "y.csv": b"3"}))
    renamed = dataset_digest(make_tree(tmp_path / "c", {"x.csv": b"1", "z.csv": b"2"}))
    empty = tmp_path / "d"
    empty.mkdir()

    assert len({base, changed, renamed}) == 3
    assert dataset_digest(empty) == (canonical_digest([]), 0)


def test_dataset_symlink_inside_the_folder_reads_as_its_target(tmp_path):
    copied = make_tree(tmp_path / "a", {"data/x.csv": b"1", "link.csv": b"1"})
    linked = make_tree(tmp_path / "b", {"data/x.csv": b"1"})
    (linked / "link.csv").symlink_to("data/x.csv")
    (linked / "alias").symlink_to("data", target_is_directory=True)
    (copied / "alias").mkdir()
    (copied / "alias" / "x.csv").write_bytes(b"1")

    assert dataset_digest(linked) == dataset_digest(copied)


@pytest.mark.parametrize("kind", ["file", "folder"])
def test_dataset_symlink_escaping_the_folder_is_refused(tmp_path, kind):
    outside = make_tree(tmp_path / "outside", {"secret.txt": b"s"})
    root = make_tree(tmp_path / "d", {"ok.csv": b"1"})
    target = outside / "secret.txt" if kind == "file" else outside
    (root / "sub").mkdir()
    (root / "sub" / "escape").symlink_to(target)

    with pytest.raises(InvalidInputError, match="outside"):
        dataset_digest(root)


def test_dataset_symlink_loop_is_refused(tmp_path):
    root = make_tree(tmp_path / "d", {"sub/x.csv": b"1"})
    (root / "sub" / "up").symlink_to(root, target_is_directory=True)

    with pytest.raises(InvalidInputError, match="loops"):
        dataset_digest(root)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs POSIX FIFOs")
def test_dataset_special_file_is_refused_not_read(tmp_path):
    root = make_tree(tmp_path / "d", {"x.csv": b"1"})
    os.mkfifo(root / "pipe")  # reading it would block forever

    with pytest.raises(InvalidInputError):
        dataset_digest(root)


def test_missing_dataset_is_not_found(tmp_path):
    with pytest.raises(NotFoundError):
        dataset_digest(tmp_path / "absent")
