"""CLI details from audits BS (README followed literally) and BW (the MLP path): an empty ``--hidden`` is refused
rather than read as "no hidden layer", ``fit`` says what it trained, and the one-column warning promises no
reading of text labels that the command then refuses."""

from __future__ import annotations

import numpy as np
import pytest

from cli_helpers import call, error_line

WARN = "softmaxkit: warning: "


def _three_class_csv(path):
    rng = np.random.default_rng(0)
    y = np.arange(90) % 3
    x = rng.normal(size=(90, 2)) + y[:, None]
    path.write_text("a,b,y\n" + "".join(f"{r[0]:.5f},{r[1]:.5f},{c}\n" for r, c in zip(x, y)))
    return path


def test_an_empty_hidden_is_refused(capsys, tmp_path):
    data = _three_class_csv(tmp_path / "d.csv")
    with pytest.raises(SystemExit) as exc:  # argparse's usage error
        call(capsys, "fit", data, "--target", "y", "--hidden", "", "--out", tmp_path / "m.npz", "--no-report")
    err = capsys.readouterr().err
    assert exc.value.code == 2 and "argument --hidden: empty" in err and "'none' for no hidden layer" in err
    assert not (tmp_path / "m.npz").exists()


def test_fit_says_what_it_trained(capsys, tmp_path):
    data = _three_class_csv(tmp_path / "d.csv")
    rc, out, err = call(capsys, "fit", data, "--target", "y", "--out", tmp_path / "m.npz", "--no-report",
                        "--alpha", "1")
    assert rc == 0, err
    assert "Trained multinomial logistic regression (solver lbfgs) on 68 rows" in out
    rc, out, err = call(capsys, "fit", data, "--target", "y", "--hidden", "4,3", "--out", tmp_path / "n.npz",
                        "--no-report", "--alpha", "0.1", "--max-iter", "20")
    assert rc == 0, err
    assert "Trained a network with hidden layers 4,3 (solver adam) on 68 rows" in out
    rc, out, err = call(capsys, "fit", data, "--target", "y", "--hidden", "none", "--out", tmp_path / "o.npz",
                        "--no-report", "--alpha", "1")
    assert rc == 0 and "Trained multinomial logistic regression" in out


def test_one_probability_column_and_text_labels(capsys, tmp_path):
    """Audit BS: the warning read the column as P of "the second of the two class names in sorted order",
    then the text labels were refused; with --classes the figures are scikit-learn's."""
    from sklearn.metrics import log_loss

    p = np.array([0.9, 0.2, 0.7, 0.1, 0.6])
    y = ["malignant", "benign", "malignant", "benign", "benign"]
    (tmp_path / "one.csv").write_text("score\n" + "".join(f"{v}\n" for v in p))
    (tmp_path / "lab.csv").write_text("diagnosis\n" + "".join(f"{v}\n" for v in y))
    rc, _, err = call(capsys, "evaluate", "--probs", tmp_path / "one.csv", "--labels", tmp_path / "lab.csv")
    assert rc != 0
    assert "sorted order" not in err and "with --classes NEG,POS, of POS" in err
    assert "give the class names with --classes" in error_line(err)
    rc, out, err = call(capsys, "evaluate", "--probs", tmp_path / "one.csv", "--labels", tmp_path / "lab.csv",
                        "--classes", "benign,malignant", "--json")
    assert rc == 0, err
    import json

    got = json.loads(out)["metrics"]["log_loss"]
    assert abs(got - log_loss(y, p)) < 1e-12
    assert "P('malignant'), the second class of --classes" in err


def test_a_label_of_invisible_characters_only_is_empty(capsys, tmp_path):
    """Noted in review R16: a zero-width space alone trained a third class, '\\u200b', its column p_ unnamed."""
    rows = ["a,b,y"] + [f"{i % 7},{i % 5},{('cat', 'dog')[i % 2]}" for i in range(40)]
    rows[5] = "1,2,\u200b"
    (tmp_path / "d.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    rc, _, err = call(capsys, "fit", tmp_path / "d.csv", "--target", "y", "--out", tmp_path / "m.npz", "--no-report")
    assert rc != 0 and not (tmp_path / "m.npz").exists()
    assert "row 5 (line 6), column 'y': empty label '\\u200b' (invisible characters only: U+200B)" in error_line(err)


def test_an_id_column_is_left_out_without_a_word_when_the_classes_are_listed(capsys, tmp_path):
    """Audit BV: apply --classes a,b,c warned to list 'id' among the classes to keep it as scores."""
    rng = np.random.default_rng(0)
    z, y = rng.normal(size=(30, 3)), rng.integers(0, 3, 30)
    (tmp_path / "z.csv").write_text("id,a,b,c\n" + "".join(f"r{i},{r[0]},{r[1]},{r[2]}\n" for i, r in enumerate(z)))
    (tmp_path / "y.csv").write_text("id,y\n" + "".join(f"r{i},{'abc'[v]}\n" for i, v in enumerate(y)))
    rc, _, err = call(capsys, "calibrate", "--logits", tmp_path / "z.csv", "--labels", tmp_path / "y.csv",
                      "--classes", "a,b,c", "--out", tmp_path / "t.npz", "-q")
    assert rc == 0 and "row id" not in err, err
    rc, _, err = call(capsys, "apply", tmp_path / "t.npz", "--logits", tmp_path / "z.csv", "--classes", "a,b,c",
                      "--out", tmp_path / "a.csv", "-q")
    assert rc == 0 and "row id" not in err, err
    # without the list, a class could be named like an id: still said
    rc, _, err = call(capsys, "evaluate", "--logits", tmp_path / "z.csv", "--labels", tmp_path / "y.csv")
    assert "column 'id' left out of the scores as a row id" in err


def test_apply_says_how_many_rows_get_probability_zero(capsys, tmp_path):
    """Audit BX: an isotonic calibrator of few positives gave thousands of new rows P(yes) = 0, written without a
    word (the warning came at calibrate time only); temperature scaling never gives 0."""
    rng = np.random.default_rng(0)
    z = rng.normal(size=200) * 2
    y = (rng.random(200) < 1 / (1 + np.exp(-z + 3))).astype(int)
    np.save(tmp_path / "z.npy", z[:, None])
    np.save(tmp_path / "y.npy", y)
    for method in ("isotonic", "temperature"):
        rc, _, err = call(capsys, "calibrate", "--logits", tmp_path / "z.npy", "--labels", tmp_path / "y.npy",
                          "--method", method, "--out", tmp_path / f"{method}.npz", "-q")
        assert rc == 0, err
        rc, _, err = call(capsys, "apply", tmp_path / f"{method}.npz", "--logits", tmp_path / "z.npy", "--out",
                          tmp_path / f"{method}.csv")
        assert rc == 0, err
        probs = np.loadtxt(tmp_path / f"{method}.csv", delimiter=",", skiprows=1, usecols=(0, 1))
        zero_rows = int(np.count_nonzero((probs == 0).any(axis=1)))
        if method == "isotonic":
            assert zero_rows > 0
            assert f"{zero_rows} of 200 rows of {tmp_path / 'z.npy'} get probability exactly 0 for a class" in err
        else:
            assert zero_rows == 0 and "exactly 0" not in err
