#!/usr/bin/env python3
"""scikit-learn counterparts of headstart's head types, for `npm run bench:heads`.

Usage:
  /usr/bin/python3 scripts/sklearn_heads.py --versions
  /usr/bin/python3 scripts/sklearn_heads.py <dir> --model logreg|mlp|knn|centroid [--params JSON] [--seed 0]
  /usr/bin/python3 scripts/sklearn_heads.py <dir> --serve

<dir> holds embeddings.npy (float32 [n, dim]) and rows.jsonl (one JSON object per line with "label"
and "split": "train" | "test"), as written by `headstart export` (and by bench-heads.ts for its
synthetic problem). Labels are indexed in the order of their sorted JSON text, as headstart does.

--params is the headstart head's *resolved* parameter set (JSON); it is mapped onto the sklearn
estimator as far as the two correspond, and the output says which settings were used and which
headstart parameters have no counterpart.

--serve loads the data once, then answers one JSON command per stdin line with one JSON line:
  {"op": "fit", "model": "...", "params": {...}, "seed": 0}
  {"op": "fewshot", "model": "...", "params": {...}, "seed": 0, "train": [train-row indices]}
  {"op": "exit"}
Every answer carries maxRssKiB (the process peak so far), so the caller can report peak memory.
"""

import argparse
import json
import os
import resource
import sys
import time
import warnings


def fail(msg, code=2):
    print(f"sklearn_heads: {msg}", file=sys.stderr)
    sys.exit(code)


try:
    import numpy as np
    import sklearn
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score, f1_score
    from sklearn.neighbors import KNeighborsClassifier, NearestCentroid
    from sklearn.neural_network import MLPClassifier
    from sklearn.preprocessing import StandardScaler
except ImportError as e:
    fail(
        f"scikit-learn is not available ({e}). Install it with `apt-get install -y python3-sklearn` "
        "(or `bash scripts/system-deps.sh --bench`) and run this script with /usr/bin/python3.",
        3,
    )

# MLP early stopping and small-data fits warn on every run; the numbers we print say enough.
warnings.filterwarnings("ignore", category=ConvergenceWarning)


def max_rss_kib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux


def load(dir_):
    emb_path = os.path.join(dir_, "embeddings.npy")
    rows_path = os.path.join(dir_, "rows.jsonl")
    for p in (emb_path, rows_path):
        if not os.path.isfile(p):
            fail(f"missing {p}")
    # Memory-mapped: the rows are gathered (and converted) once below, never held twice.
    X = np.load(emb_path, mmap_mode="r")
    if X.ndim != 2:
        fail(f"embeddings.npy must be 2-D, got shape {X.shape}")
    rows = []
    with open(rows_path, encoding="utf-8") as fh:
        for line_no, line in enumerate(fh, 1):
            line = line.strip()
            if not line:
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as e:
                fail(f"rows.jsonl line {line_no}: {e}")
    if len(rows) != X.shape[0]:
        fail(f"rows.jsonl has {len(rows)} rows but embeddings.npy has {X.shape[0]}")

    def key(label):
        # Same key as headstart's loader (JSON.stringify): 1 and "1" stay apart.
        return json.dumps(label, separators=(",", ":"), ensure_ascii=False)

    train = [i for i, r in enumerate(rows) if r.get("split", "train") != "test" and r.get("label") is not None]
    test = [i for i, r in enumerate(rows) if r.get("split") == "test" and r.get("label") is not None]
    if not train or not test:
        fail(f"need labelled train and test rows (train={len(train)}, test={len(test)})")
    labels = sorted({key(rows[i]["label"]) for i in train})
    index = {lab: c for c, lab in enumerate(labels)}
    y_train = np.array([index[key(rows[i]["label"])] for i in train], dtype=np.int64)
    # A test label never seen in training can never be predicted: -1 counts it as an error.
    y_test = np.array([index.get(key(rows[i]["label"]), -1) for i in test], dtype=np.int64)

    def gather(idx):
        # A contiguous block is sliced; otherwise fancy indexing copies just those rows.
        if idx[-1] - idx[0] == len(idx) - 1:
            return np.asarray(X[idx[0] : idx[-1] + 1], dtype=np.float32)
        return np.asarray(X[np.array(idx)], dtype=np.float32)

    return {
        "X_train": gather(train),
        "y_train": y_train,
        "X_test": gather(test),
        "y_test": y_test,
        "labels": labels,
    }


def l2_normalize(X):
    norms = np.linalg.norm(X, axis=1, keepdims=True)
    # A zero row stays zero instead of becoming NaN.
    return X / np.maximum(norms, 1e-12)


def first(params, names, default):
    for n in names:
        if n in params:
            return params[n], n
    return default, None


def build(model, params, seed, n_train):
    """(fit(X, y) -> predictor, settings actually used, headstart params with no counterpart)."""
    params = dict(params or {})
    used = set()

    def take(names, default):
        v, name = first(params, names, default)
        if name is not None:
            used.add(name)
        return v

    if model == "logreg":
        C = float(take(["C"], 1.0))
        cw = take(["classWeight"], "none")
        settings = {"C": C, "solver": "lbfgs", "max_iter": 1000, "class_weight": None if cw == "none" else cw}

        def fit(X, y):
            scaler = StandardScaler().fit(X)
            clf = LogisticRegression(C=C, solver="lbfgs", max_iter=1000, class_weight=settings["class_weight"])
            clf.fit(scaler.transform(X), y)
            settings["n_iter"] = int(np.max(clf.n_iter_))
            return lambda Z: clf.predict(scaler.transform(Z))

    elif model == "mlp":
        hidden = take(["hidden", "hiddenSize", "hiddenUnits", "hiddenLayerSizes", "width", "units"], 100)
        if isinstance(hidden, str):
            hidden = tuple(int(h) for h in hidden.replace("x", ",").split(",") if h.strip())
        elif isinstance(hidden, (int, float)):
            layers = int(take(["layers", "hiddenLayers", "depth"], 1))
            hidden = tuple([int(hidden)] * max(layers, 1))
        alpha = float(take(["weightDecay", "l2", "alpha"], 1e-4))
        batch = take(["batchSize", "batch"], "auto")
        batch = min(int(batch), n_train) if batch != "auto" else "auto"
        lr = float(take(["learningRate", "lr", "learningRateInit"], 1e-3))
        max_iter = int(take(["maxEpochs", "epochs", "maxIter"], 200))
        patience = int(take(["patience"], 10))
        val = float(take(["validationFraction", "valFraction", "validation"], 0.1))
        early = bool(take(["earlyStopping"], True))
        activation = take(["activation"], "relu")
        if activation not in ("relu", "tanh", "logistic", "identity"):
            activation = "relu"
        # validationFraction 0 means a fixed number of epochs; sklearn's early stopping also needs a
        # validation set of at least 2 rows.
        early = early and val > 0 and n_train * val >= 2
        if not early:
            val = 0.1  # ignored without early stopping, but sklearn still validates it
        settings = {
            "hidden_layer_sizes": list(hidden),
            "activation": activation,
            "alpha": alpha,
            "batch_size": batch,
            "learning_rate_init": lr,
            "max_iter": max_iter,
            "early_stopping": early,
            "validation_fraction": val,
            "n_iter_no_change": patience,
            "solver": "adam",
        }

        def fit(X, y):
            scaler = StandardScaler().fit(X)
            clf = MLPClassifier(
                hidden_layer_sizes=hidden,
                activation=activation,
                alpha=alpha,
                batch_size=batch,
                learning_rate_init=lr,
                max_iter=max_iter,
                early_stopping=early,
                validation_fraction=val,
                n_iter_no_change=patience,
                random_state=seed,
            )
            clf.fit(scaler.transform(X), y)
            settings["n_iter"] = int(clf.n_iter_)
            return lambda Z: clf.predict(scaler.transform(Z))

    elif model == "knn":
        k = int(take(["k", "neighbors", "nNeighbors", "n_neighbors"], 15))
        weights = take(["weights", "weighting", "vote"], "distance")
        weights = "distance" if weights in ("distance", "similarity", "weighted") else "uniform"
        k_eff = min(k, n_train)
        settings = {"n_neighbors": k_eff, "metric": "cosine", "weights": weights, "algorithm": "brute"}

        def fit(X, y):
            # The headstart kNN head works on cosine similarity; sklearn needs brute force for it.
            clf = KNeighborsClassifier(n_neighbors=k_eff, metric="cosine", weights=weights, algorithm="brute")
            clf.fit(X, y)
            return clf.predict

    elif model == "centroid":
        settings = {"input": "L2-normalized", "metric": "euclidean"}

        def fit(X, y):
            clf = NearestCentroid()
            clf.fit(l2_normalize(X), y)
            return lambda Z: clf.predict(l2_normalize(Z))

    else:
        raise ValueError(f"unknown model {model!r}; expected logreg, mlp, knn or centroid")

    # A parameter at its "off" value needs no counterpart; only ones that change the model are listed.
    neutral = {"classWeight": "none", "dropout": 0}
    unmapped = sorted(k for k in params if k not in used and not (k in neutral and params[k] == neutral[k]))
    return fit, settings, unmapped


def score(y_true, pred):
    present = sorted(set(y_true.tolist()) | set(pred.tolist()))
    return (
        float(accuracy_score(y_true, pred)),
        float(f1_score(y_true, pred, labels=present, average="macro", zero_division=0)),
    )


def run(data, cmd):
    model = cmd.get("model")
    seed = int(cmd.get("seed", 0))
    X, y = data["X_train"], data["y_train"]
    if cmd.get("op") == "fewshot":
        idx = np.array(cmd["train"], dtype=np.int64)
        X, y = X[idx], y[idx]
    fit, settings, unmapped = build(model, cmd.get("params"), seed, X.shape[0])
    t0 = time.perf_counter()
    predict = fit(X, y)
    fit_seconds = time.perf_counter() - t0
    t1 = time.perf_counter()
    pred = predict(data["X_test"])
    predict_seconds = time.perf_counter() - t1
    accuracy, macro_f1 = score(data["y_test"], pred)
    return {
        "model": model,
        "accuracy": accuracy,
        "macroF1": macro_f1,
        "fitSeconds": fit_seconds,
        "predictSeconds": predict_seconds,
        "nTrain": int(X.shape[0]),
        "nTest": int(data["X_test"].shape[0]),
        "settings": settings,
        "unmapped": unmapped,
        "maxRssKiB": max_rss_kib(),
    }


def versions():
    return {
        "python": sys.version.split()[0],
        "sklearn": sklearn.__version__,
        "numpy": np.__version__,
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dir", nargs="?")
    ap.add_argument("--model")
    ap.add_argument("--params", default="{}")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--serve", action="store_true")
    ap.add_argument("--versions", action="store_true")
    args = ap.parse_args()

    if args.versions:
        print(json.dumps(versions()))
        return
    if not args.dir:
        fail("missing <dir>")
    data = load(args.dir)
    if not args.serve:
        if not args.model:
            fail("need --model (or --serve)")
        try:
            params = json.loads(args.params)
        except json.JSONDecodeError as e:
            fail(f"--params is not JSON: {e}")
        print(json.dumps(run(data, {"op": "fit", "model": args.model, "params": params, "seed": args.seed})))
        return

    ready = {
        "ready": True,
        "nTrain": int(data["X_train"].shape[0]),
        "nTest": int(data["X_test"].shape[0]),
        "d": int(data["X_train"].shape[1]),
        "k": len(data["labels"]),
        "maxRssKiB": max_rss_kib(),
        **versions(),
    }
    print(json.dumps(ready), flush=True)
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        cmd = json.loads(line)
        if cmd.get("op") == "exit":
            print(json.dumps({"maxRssKiB": max_rss_kib()}), flush=True)
            return
        try:
            out = run(data, cmd)
        except Exception as e:  # noqa: BLE001 - report, keep serving the other heads
            out = {"error": f"{type(e).__name__}: {e}", "maxRssKiB": max_rss_kib()}
        print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
