#!/usr/bin/env python3
"""Reader half of `cde import-classifiers`: scikit-learn pickles to plain arrays.

  sklearn_classifiers.py export PICKLE OUT.safetensors [--fake-label L]

Unpickles PICKLE with joblib (needs scikit-learn and joblib: pip install scikit-learn
joblib; the CoDE release was pickled with scikit-learn 1.3.2) and writes the arrays that
fix the estimator's predictions to OUT.safetensors (F64 / I64 tensors, little-endian; the
metadata names the estimator). `cde import-classifiers` turns them into its classifier
files. Supported, as the CoDE authors fit them:

  LogisticRegression (binary)          coef [D], intercept [1]
      metadata fake_index: which of classes_ is fake (decision_function > 0 means classes_[1])
  KNeighborsClassifier (n_neighbors 1, metric cosine)
      fit_x [N, D] (the fitted samples), fake [N] (1 where the sample's class is fake)
  OneClassSVM (kernel poly)            support_vectors [M, D], dual_coef [M], intercept [1]
      metadata gamma (the fitted value: 'auto' is 1 / D), degree, coef0;
      decision f(x) = sum_i dual_coef_i (gamma sv_i.x + coef0)^degree + intercept, +1 (inlier) iff f > 0

For LogisticRegression and KNeighborsClassifier, the class label L (default 1) is the
fake class; the other class is real. Before writing, the exported arrays are checked
against the estimator itself (decision_function / predict on random rows), so that a
scikit-learn whose internals differ fails here instead of giving other decisions.
Errors: one line "error: ..." naming the file, exit status 2.
"""
import argparse
import json
import struct
import sys
import warnings


class ToolError(Exception):
    pass


def write_safetensors(path, tensors, metadata):
    """tensors: name -> numpy array (float64 or int64)."""
    import numpy as np
    header, blobs, offset = {}, [], 0
    for name, a in tensors.items():
        a = np.ascontiguousarray(a)
        dtype = {np.dtype("float64"): "F64", np.dtype("int64"): "I64"}[a.dtype]
        raw = a.astype(a.dtype.newbyteorder("<"), copy=False).tobytes()
        header[name] = {"dtype": dtype, "shape": list(a.shape), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    header["__metadata__"] = {k: str(v) for k, v in metadata.items()}
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def binary_classes(est, path, fake_label):
    classes = list(est.classes_)
    if len(classes) != 2:
        raise ToolError(f"{path}: {type(est).__name__} has {len(classes)} classes {classes}, expected 2 (real and fake)")
    matches = [i for i, c in enumerate(classes) if str(c) == str(fake_label)]
    if not matches:
        raise ToolError(f"{path}: classes are {classes}; none is the fake label {fake_label!r} (give --fake-label)")
    return classes, matches[0]


def probe_rows(np, x, n=64, seed=0):
    """Random rows at the scale of the estimator's own data."""
    rng = np.random.default_rng(seed)
    x = np.asarray(x, dtype=np.float64)
    return x[rng.integers(0, len(x), n)] + rng.normal(0, 1, (n, x.shape[1])) * (x.std(0) + 1e-3)


def export(args):
    try:
        import joblib
        import numpy as np
        import sklearn
    except ImportError as e:
        raise ToolError(f"{e.name} is not installed for {sys.executable} (pip install scikit-learn joblib; "
                        "or set CDE_PYTHON to a Python that has them)")
    path = args.pickle
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            est = joblib.load(path)
        except FileNotFoundError:
            raise ToolError(f"{path}: no such file")
        except Exception as e:
            raise ToolError(f"{path}: cannot unpickle ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})")
    for w in caught:
        if "InconsistentVersionWarning" in type(w.message).__name__:
            print(f"note: {path}: pickled with scikit-learn {getattr(w.message, 'original_sklearn_version', '?')}, "
                  f"read with {sklearn.__version__}", file=sys.stderr)
    name = type(est).__name__
    module = type(est).__module__
    meta = {"estimator": name, "sklearn_version": sklearn.__version__, "source": path}
    if not module.startswith("sklearn."):
        raise ToolError(f"{path}: holds a {module}.{name}, not a scikit-learn estimator "
                        "(supported: LogisticRegression, KNeighborsClassifier, OneClassSVM)")

    if name == "LogisticRegression":
        classes, fake = binary_classes(est, path, args.fake_label)
        coef = np.asarray(est.coef_, dtype=np.float64)
        if coef.ndim != 2 or coef.shape[0] != 1:
            raise ToolError(f"{path}: LogisticRegression coef_ has shape {coef.shape}, expected (1, D)")
        w, b = coef[0], np.asarray(est.intercept_, dtype=np.float64).reshape(-1)
        if b.shape != (1,):
            raise ToolError(f"{path}: LogisticRegression intercept_ has shape {b.shape}, expected (1,)")
        x = np.random.default_rng(0).normal(0, 1, (64, w.size))
        ref = est.decision_function(x)
        if not np.allclose(x @ w + b[0], ref, rtol=1e-9, atol=1e-9):
            raise ToolError(f"{path}: coef_/intercept_ do not reproduce decision_function (scikit-learn {sklearn.__version__})")
        meta.update(fake_index=fake, classes=json.dumps([str(c) for c in classes]))
        tensors = {"coef": w, "intercept": b}
    elif name == "KNeighborsClassifier":
        classes, fake = binary_classes(est, path, args.fake_label)
        if est.n_neighbors != 1:
            raise ToolError(f"{path}: KNeighborsClassifier n_neighbors is {est.n_neighbors}; only 1-NN is supported")
        metric = getattr(est, "effective_metric_", est.metric)
        if metric != "cosine":
            raise ToolError(f"{path}: KNeighborsClassifier metric is {metric!r}; only 'cosine' is supported")
        if getattr(est, "outputs_2d_", False):
            raise ToolError(f"{path}: KNeighborsClassifier fitted on 2-D targets; expected one label per sample")
        fit_x = est._fit_X
        if hasattr(fit_x, "toarray"):
            fit_x = fit_x.toarray()
        fit_x = np.asarray(fit_x, dtype=np.float64)
        y = np.asarray(est._y).reshape(-1)
        is_fake = (y == fake).astype(np.int64)
        if is_fake.sum() == 0 or is_fake.sum() == len(is_fake):
            raise ToolError(f"{path}: KNeighborsClassifier holds samples of one class only")
        x = probe_rows(np, fit_x)
        nx = x / np.linalg.norm(x, axis=1, keepdims=True)
        nf = fit_x / np.maximum(np.linalg.norm(fit_x, axis=1, keepdims=True), 1e-300)
        mine = np.asarray(classes, dtype=object)[y[np.argmax(nx @ nf.T, axis=1)]]
        if not all(str(a) == str(b) for a, b in zip(mine, est.predict(x))):
            raise ToolError(f"{path}: _fit_X/_y do not reproduce predict (scikit-learn {sklearn.__version__})")
        meta.update(classes=json.dumps([str(c) for c in classes]), n_neighbors=1, metric="cosine")
        tensors = {"fit_x": fit_x, "fake": is_fake}
    elif name == "OneClassSVM":
        if est.kernel != "poly":
            raise ToolError(f"{path}: OneClassSVM kernel is {est.kernel!r}; only 'poly' is supported")
        sv = est.support_vectors_
        if hasattr(sv, "toarray"):
            sv = sv.toarray()
        sv = np.asarray(sv, dtype=np.float64)
        a = np.asarray(est._dual_coef_, dtype=np.float64)
        if a.ndim != 2 or a.shape != (1, sv.shape[0]):
            raise ToolError(f"{path}: OneClassSVM dual coefficients have shape {a.shape}, expected (1, {sv.shape[0]})")
        b = np.asarray(est._intercept_, dtype=np.float64).reshape(-1)
        gamma, degree, coef0 = float(est._gamma), int(est.degree), float(est.coef0)
        if degree < 0 or degree != est.degree:
            raise ToolError(f"{path}: OneClassSVM degree {est.degree} is not a non-negative integer")
        x = probe_rows(np, sv)
        mine = ((gamma * (x @ sv.T) + coef0) ** degree) @ a[0] + b[0]
        ref = est.decision_function(x)
        if not np.allclose(mine, ref, rtol=1e-9, atol=1e-9 * (np.abs(ref).max() + 1)):
            raise ToolError(f"{path}: support vectors/dual coefficients do not reproduce decision_function "
                            f"(scikit-learn {sklearn.__version__})")
        meta.update(gamma=repr(gamma), degree=degree, coef0=repr(coef0), nu=repr(float(est.nu)), kernel="poly")
        tensors = {"support_vectors": sv, "dual_coef": a[0], "intercept": b}
    else:
        raise ToolError(f"{path}: {name} is not supported (supported: LogisticRegression, "
                        "KNeighborsClassifier with n_neighbors 1 and metric cosine, OneClassSVM with kernel poly)")
    meta["dimension"] = tensors[next(iter(tensors))].shape[-1]
    write_safetensors(args.out, tensors, meta)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    e = sub.add_parser("export")
    e.add_argument("pickle")
    e.add_argument("out")
    e.add_argument("--fake-label", default="1")
    args = ap.parse_args()
    try:
        export(args)
    except ToolError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
