"""training.modeling.metrics against confusion matrices worked out by hand."""

import numpy as np
import pytest

from training.modeling.metrics import ConfusionMatrix, confusion_matrix, metrics_from_confusion


def test_confusion_counts_and_ignore() -> None:
    truth = np.array([[0, 0, 1], [1, 2, 255]])
    pred = np.array([[0, 1, 1], [1, 0, 2]])
    m = confusion_matrix(pred, truth, num_classes=3)
    # rows = truth, cols = prediction; the 255 pixel is skipped
    expected = np.array([[1, 1, 0], [0, 2, 0], [1, 0, 0]])
    assert m.tolist() == expected.tolist()


def test_scores_by_hand() -> None:
    # truth/pred rows above: class0 tp=1 fp=1 fn=1; class1 tp=2 fp=1 fn=0; class2 tp=0 fp=0 fn=1
    metrics = metrics_from_confusion(np.array([[1, 1, 0], [0, 2, 0], [1, 0, 0]]), ["bg", "a", "b"])
    per = {c["name"]: c for c in metrics["per_class"]}
    assert per["bg"]["iou"] == pytest.approx(1 / 3)
    assert per["bg"]["f1"] == pytest.approx(2 / 4)
    assert per["a"]["iou"] == pytest.approx(2 / 3)
    assert per["a"]["f1"] == pytest.approx(4 / 5)
    assert per["b"]["iou"] == 0.0 and per["b"]["f1"] == 0.0  # in truth, never predicted: counts
    assert per["b"]["support"] == 1 and per["b"]["predicted"] == 0
    assert metrics["miou"] == pytest.approx((1 / 3 + 2 / 3 + 0) / 3)
    assert metrics["mean_f1"] == pytest.approx((0.5 + 0.8 + 0) / 3)
    assert metrics["pixel_accuracy"] == pytest.approx(3 / 5)
    assert metrics["pixels"] == 5
    assert metrics["confusion"] == [[1, 1, 0], [0, 2, 0], [1, 0, 0]]


def test_class_absent_from_truth_and_prediction_is_left_out_of_means() -> None:
    matrix = np.array([[3, 1, 0], [0, 4, 0], [0, 0, 0]])
    metrics = metrics_from_confusion(matrix)
    assert metrics["per_class"][2]["iou"] is None and metrics["per_class"][2]["f1"] is None
    assert metrics["miou"] == pytest.approx((3 / 4 + 4 / 5) / 2)
    # predicted but absent from the truth: scores 0 and counts
    matrix2 = np.array([[3, 0, 1], [0, 4, 0], [0, 0, 0]])
    m2 = metrics_from_confusion(matrix2)
    assert m2["per_class"][2]["iou"] == 0.0
    assert m2["miou"] == pytest.approx((3 / 4 + 1 + 0) / 3)


def test_accumulation_equals_one_big_matrix() -> None:
    rng = np.random.default_rng(0)
    acc = ConfusionMatrix(4)
    truths, preds = [], []
    for _ in range(5):
        t = rng.integers(0, 4, size=(7, 9))
        t[rng.random((7, 9)) < 0.1] = 255
        p = rng.integers(0, 4, size=(7, 9))
        acc.update(p, t)
        truths.append(t)
        preds.append(p)
    whole = confusion_matrix(np.concatenate(preds), np.concatenate(truths), 4)
    assert np.array_equal(acc.matrix, whole)
    assert acc.matrix.sum() == sum(int((t != 255).sum()) for t in truths)
    perfect = ConfusionMatrix(4)
    perfect.update(truths[0], truths[0])
    assert perfect.compute()["miou"] == pytest.approx(1.0)


def test_bad_input_is_rejected() -> None:
    with pytest.raises(ValueError):
        confusion_matrix(np.zeros((2, 2)), np.zeros((2, 3)), 3)
    with pytest.raises(ValueError):
        confusion_matrix(np.zeros((2, 2)), np.full((2, 2), 3), 3)
    assert metrics_from_confusion(np.zeros((2, 2)))["miou"] is None
