#!/usr/bin/env python3
"""Reference baseline for the benchmark: StandardScaler + LogisticRegression on an exported dataset.

Usage: /usr/bin/python3 scripts/sklearn_baseline.py <dir> [--C 1.0] [--max-iter 1000]

<dir> holds embeddings.npy (float32 [n, dim]) and rows.jsonl (one JSON object per line with
"label" and "split": "train" | "test"), as written by `headstart export`. Prints one JSON line.

headstart's logreg head at the same regularization uses l2 = 1 / (C * n_train). For two classes
sklearn fits a binomial model, which matches headstart's multinomial fit at l2 = 1 / (2 * C * n_train).
"""

import argparse
import json
import os
import sys
import time


def fail(msg, code=2):
    print(f"sklearn_baseline: {msg}", file=sys.stderr)
    sys.exit(code)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dir")
    ap.add_argument("--C", type=float, default=1.0)
    ap.add_argument("--max-iter", type=int, default=1000)
    args = ap.parse_args()

    try:
        import numpy as np
        import sklearn
        from sklearn.linear_model import LogisticRegression
        from sklearn.metrics import accuracy_score, f1_score
        from sklearn.preprocessing import StandardScaler
    except ImportError as e:
        fail(
            f"scikit-learn is not available ({e}). Install it with `apt-get install -y python3-sklearn` "
            "and run this script with /usr/bin/python3.",
            3,
        )

    emb_path = os.path.join(args.dir, "embeddings.npy")
    rows_path = os.path.join(args.dir, "rows.jsonl")
    for p in (emb_path, rows_path):
        if not os.path.isfile(p):
            fail(f"missing {p}")
    X = np.load(emb_path)
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
        # Labels may be strings or numbers; JSON text keeps 1 and "1" apart.
        return json.dumps(label, sort_keys=True)

    train = [i for i, r in enumerate(rows) if r.get("split", "train") != "test" and r.get("label") is not None]
    test = [i for i, r in enumerate(rows) if r.get("split") == "test" and r.get("label") is not None]
    if not train or not test:
        fail(f"need labelled train and test rows (train={len(train)}, test={len(test)})")
    labels = sorted({key(rows[i]["label"]) for i in train})
    index = {lab: c for c, lab in enumerate(labels)}
    if len(labels) < 2:
        fail("the train split needs at least 2 distinct labels")
    y_train = np.array([index[key(rows[i]["label"])] for i in train])
    # Test labels unseen in training can never be predicted; map them to -1 so they count as errors.
    y_test = np.array([index.get(key(rows[i]["label"]), -1) for i in test])

    X_train = X[train].astype(np.float64)
    X_test = X[test].astype(np.float64)
    t0 = time.perf_counter()
    scaler = StandardScaler().fit(X_train)
    clf = LogisticRegression(C=args.C, max_iter=args.max_iter)
    clf.fit(scaler.transform(X_train), y_train)
    train_seconds = time.perf_counter() - t0
    pred = clf.predict(scaler.transform(X_test))

    present = sorted(set(y_test.tolist()) | set(pred.tolist()))
    print(
        json.dumps(
            {
                "accuracy": float(accuracy_score(y_test, pred)),
                "macroF1": float(f1_score(y_test, pred, labels=present, average="macro", zero_division=0)),
                "trainSeconds": round(train_seconds, 4),
                "sklearn": sklearn.__version__,
                "n_train": len(train),
                "n_test": len(test),
                "C": args.C,
                "iterations": int(np.max(clf.n_iter_)),
            }
        )
    )


if __name__ == "__main__":
    main()
