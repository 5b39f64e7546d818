#!/usr/bin/env python3
"""The anchor `npm run bench:serve` measures headstart's server against: what a Python user would
write in ten minutes to serve the same head. FastAPI + NumPy + scikit-learn, one uvicorn worker,
the same GloVe vectors and the same logistic-regression weights (temperature folded in), with a
tokenizer that cuts plain-ASCII text as headstart's glove tokenizer does (lowercase, PTB-style
clitics); the benchmark checks that both answer the same probabilities before it measures.

Usage: /usr/bin/python3 scripts/serve_anchor.py <dir> --port N
<dir> holds vocab.txt (one word a line, line i = id i), vectors.npy (float32 [words, dim]) and
head.json ({"labels", "weights" (k*d, row-major), "bias" (k), "temperature"}), which
scripts/bench-serve.ts writes.
"""

import argparse
import json
import os
import re
from typing import List, Optional

import numpy as np
import uvicorn
from fastapi import FastAPI
from pydantic import BaseModel
from sklearn.linear_model import LogisticRegression

TOKEN = re.compile(r"(?:[a-z]\.){2,}|[0-9]+(?:[.,:/][0-9]+)+|[a-z0-9]+(?:['-][a-z0-9]+)*|\.{2,}|-{2,}|\S")
CLITIC = re.compile(r"^(.+)'(s|m|re|ve|ll|d)$")

parser = argparse.ArgumentParser()
parser.add_argument("dir")
parser.add_argument("--port", type=int, required=True)
args = parser.parse_args()

with open(os.path.join(args.dir, "vocab.txt"), encoding="utf-8") as f:
    index = {w: i for i, w in enumerate(f.read().split("\n"))}
vectors = np.load(os.path.join(args.dir, "vectors.npy"))
with open(os.path.join(args.dir, "head.json"), encoding="utf-8") as f:
    head = json.load(f)
labels = head["labels"]
k, d = len(labels), vectors.shape[1]
W = np.asarray(head["weights"], dtype=np.float64).reshape(k, d) / head["temperature"]
b = np.asarray(head["bias"], dtype=np.float64) / head["temperature"]
clf = LogisticRegression()
clf.classes_ = np.arange(k)
if k == 2:  # sklearn's binary form: one row, sigmoid of the logit difference
    clf.coef_, clf.intercept_ = (W[1] - W[0])[None, :], np.array([b[1] - b[0]])
else:
    clf.coef_, clf.intercept_, clf.multi_class = W, b, "multinomial"


def tokens(text):
    for tok in TOKEN.findall(text.lower()):
        parts = []
        while True:
            if len(tok) > 3 and tok.endswith("n't"):
                parts.append("n't")
                tok = tok[:-3]
                continue
            m = CLITIC.match(tok)
            if m:
                parts.append("'" + m.group(2))
                tok = m.group(1)
                continue
            break
        yield tok
        yield from reversed(parts)


def embed(texts):
    out = np.zeros((len(texts), d), dtype=np.float32)
    for i, text in enumerate(texts):
        ids = [index[t] for t in tokens(text) if t in index]
        if ids:
            out[i] = vectors[ids].mean(axis=0)
    return out


class PredictRequest(BaseModel):
    inputs: Optional[List[str]] = None
    embeddings: Optional[List[List[float]]] = None


app = FastAPI()


@app.post("/v1/heads/{head}/predict")
async def predict(head: str, req: PredictRequest):
    X = embed(req.inputs) if req.inputs is not None else np.asarray(req.embeddings, dtype=np.float32)
    P = clf.predict_proba(X)
    return {
        "head": head,
        "predictions": [
            {"label": labels[int(p.argmax())], "score": float(p.max()), "scores": dict(zip(labels, map(float, p)))}
            for p in P
        ],
    }


uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning", access_log=False)
