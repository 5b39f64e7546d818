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
import time


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dir")
    ap.add_argument("--C", type=float, default=1.0)
    ap.add_argument("--max-iter", type=int, default=1000)
    args = ap.parse_args()

    # One loader for both baselines: same files, same checks, same label order as headstart's.
    from sklearn_heads import fail, load, np, sklearn
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score, f1_score
    from sklearn.preprocessing import StandardScaler

    data = load(args.dir)
    if len(data["labels"]) < 2:
        fail("the train split needs at least 2 distinct labels")
    X_train = data["X_train"].astype(np.float64)
    X_test = data["X_test"].astype(np.float64)
    y_train, y_test = data["y_train"], data["y_test"]
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
                "n_train": len(y_train),
                "n_test": len(y_test),
                "C": args.C,
                "iterations": int(np.max(clf.n_iter_)),
            }
        )
    )


if __name__ == "__main__":
    main()
