"""SST-2 sentiment with an LSTM (report §2.2 and §3.5.2; Alfo5123/ConcreteDropout @ de313d5
experiments/nlp/model.py): embedding -> dropout on the LSTM *inputs* -> one LSTM layer -> a
linear layer on the last state -> 2 classes. Concrete dropout there (:class:`ConcreteDropout`
wrapping the batch-first ``nn.LSTM``: one mask per (sentence, feature) shared over time, the
penalty on ``weight_ih_l0``; the report's weight / dropout regularisers 1e-6 and 2e-5) against a
fixed Bernoulli p = 0.5 at the same place and with the same noise shape. Binary SST-2 from the
original trees (neutral roots dropped; the report's torchtext call kept the neutral class under
a binary head). Each model trains through ``reprobook.train.fit``; the test accuracy is taken at
the epoch of best dev accuracy (``EarlyStopping(restore_best=True)``).
"""
from __future__ import annotations

import time
from collections import Counter

import torch
import torch.nn as nn
import torch.nn.functional as F

from .kernels import ConcreteDropout

PAD, UNK = 0, 1


def encode_sst(data: dict, min_count: int = 1) -> dict:
    """Lower-cased tokens -> ids (vocabulary: train tokens seen >= ``min_count`` times; 0 pad,
    1 unknown); each split as (ids (n, L_max) right-padded, lengths (n,), labels (n,))."""
    counts = Counter(t.lower() for sent in data["train"][0] for t in sent)
    vocab = {w: i + 2 for i, w in enumerate(sorted(w for w, c in counts.items() if c >= min_count))}
    out = {"vocab_size": len(vocab) + 2}
    for split in ("train", "dev", "test"):
        sents, labels = data[split]
        if not sents:
            raise ValueError(f"SST split {split!r} is empty")
        lengths = torch.tensor([max(len(s), 1) for s in sents])
        ids = torch.full((len(sents), int(lengths.max())), PAD, dtype=torch.long)
        for i, s in enumerate(sents):
            row = [vocab.get(t.lower(), UNK) for t in s] or [UNK]
            ids[i, :len(row)] = torch.tensor(row)
        out[split] = (ids, lengths, labels.long())
    return out


class SSTClassifier(nn.Module):
    """Embedding(V, emb) -> input dropout -> LSTM(emb, hidden) -> Linear(hidden, 2) on the
    state at each sentence's last token. ``dropout="concrete"``: a :class:`ConcreteDropout`
    around the LSTM (learned p, its regulariser); ``"fixed"``: Bernoulli(p) drops with one mask
    per (sentence, feature) shared over time, inverted scaling, none at eval."""

    def __init__(self, vocab_size: int, emb: int = 100, hidden: int = 256,
                 dropout: str = "concrete", p: float = 0.5, weight_regularizer: float = 1e-6,
                 dropout_regularizer: float = 2e-5, init_p: float = 0.1):
        super().__init__()
        if dropout not in ("concrete", "fixed"):
            raise ValueError(f"dropout must be 'concrete' or 'fixed', not {dropout!r}")
        if not 0 <= p < 1:
            raise ValueError(f"p must lie in [0, 1) (got {p})")
        self.embed = nn.Embedding(vocab_size, emb, padding_idx=PAD)
        lstm = nn.LSTM(emb, hidden, batch_first=True)
        self.kind, self.fixed_p = dropout, p
        if dropout == "concrete":
            self.rnn = ConcreteDropout(lstm, weight_regularizer, dropout_regularizer, init_p,
                                       mc=False)
        else:
            self.rnn = lstm
        self.out = nn.Linear(hidden, 2)

    def forward(self, ids, lengths):
        x = self.embed(ids)
        if self.kind == "fixed" and self.training and self.fixed_p > 0:
            keep = (torch.rand(x.shape[0], 1, x.shape[2], device=x.device) >= self.fixed_p)
            x = x * keep.to(x.dtype) / (1 - self.fixed_p)
        h, _ = self.rnn(x)
        last = h[torch.arange(len(ids), device=ids.device), lengths - 1]
        return self.out(last)

    def regularizer(self) -> torch.Tensor:
        return self.rnn.regularizer() if self.kind == "concrete" else torch.zeros(())

    @property
    def p(self) -> float:
        return float(self.rnn.p.detach()) if self.kind == "concrete" else self.fixed_p


def _accuracy(model, split, batch: int = 500) -> float:
    ids, lengths, y = split
    model.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, len(y), batch):
            L = int(lengths[i:i + batch].max())
            pred = model(ids[i:i + batch, :L], lengths[i:i + batch]).argmax(1)
            correct += int((pred == y[i:i + batch]).sum())
    return 100 * correct / len(y)


def train_sst(enc: dict, dropout: str, emb: int, hidden: int, epochs: int, batch: int = 64,
              lr: float = 1e-3, train_rows: int | None = None, seed: int = 0,
              device="cpu") -> dict:
    """One model: Adam, ``epochs`` epochs of minibatches (each trimmed to its longest
    sentence), dev accuracy and p after every epoch, the weights of the best dev epoch
    restored, then the test accuracy."""
    from ..train import EarlyStopping, fit
    torch.manual_seed(seed)
    model = SSTClassifier(enc["vocab_size"], emb, hidden, dropout)
    ids, lengths, y = (t[:train_rows] for t in enc["train"])

    def loss_fn(m, xb, lb, yb):
        logits = m(xb[:, :int(lb.max())], lb)
        return F.cross_entropy(logits, yb) + m.regularizer(), \
            {"acc": (logits.argmax(1) == yb).float().mean()}

    def on_epoch(epoch, m):
        return {"dev_acc": _accuracy(m, enc["dev"]), "p": m.p}

    stop = EarlyStopping("dev_acc", mode="max", restore_best=True)
    t0 = time.perf_counter()
    hist = fit(model, (ids, lengths, y), loss_fn, torch.optim.Adam(model.parameters(), lr=lr),
               epochs=epochs, batch=batch, seed=seed, device=device, on_epoch=on_epoch,
               early_stopping=stop)
    return {"test_acc": _accuracy(model, enc["test"]), "dev_acc": stop.best,
            "best_epoch": hist["best_epoch"], "dev_acc_curve": hist["dev_acc"],
            "train_acc_curve": [100 * a for a in hist["acc"]], "p_curve": hist["p"],
            "p": hist["p"][hist["best_epoch"]], "train_s": round(time.perf_counter() - t0, 2)}


def run_sst(emb: int, hidden: int, epochs: int, batch: int = 64, lr: float = 1e-3,
            train_rows: int | None = None, seed: int = 0, device="cpu"):
    """Concrete vs fixed p = 0.5 on the LSTM inputs, same seed and data order."""
    from ..data import load_sst
    data = load_sst(binary=True)
    enc = encode_sst(data)
    res = {k: train_sst(enc, k, emb, hidden, epochs, batch, lr, train_rows, seed, device)
           for k in ("concrete", "fixed")}
    c, f = res["concrete"], res["fixed"]
    return {"runs": res, "n_train": len(enc["train"][2]) if train_rows is None else train_rows,
            "n_dev": len(enc["dev"][2]), "n_test": len(enc["test"][2]),
            "vocab_size": enc["vocab_size"], "epochs": epochs,
            "dev_gap": c["dev_acc"] - f["dev_acc"], "test_gap": c["test_acc"] - f["test_acc"],
            "dev_acc": {"concrete": c["dev_acc"], "fixed": f["dev_acc"]},
            "concrete_test_acc": c["test_acc"], "fixed_test_acc": f["test_acc"],
            "concrete_p": c["p"]}, data["source"]


def plot_sst(v: dict):
    """Dev accuracy per epoch (concrete vs fixed 0.5) and the learned p."""
    import matplotlib.pyplot as plt
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(9, 3.2))
    for k, r in v["runs"].items():
        a1.plot(range(1, len(r["dev_acc_curve"]) + 1), r["dev_acc_curve"], "o-", ms=3,
                label=f"{k} (dev)")
    a1.set(xlabel="epoch", ylabel="accuracy (%)", title="SST-2 dev accuracy")
    a1.legend(fontsize=8)
    pc = v["runs"]["concrete"]["p_curve"]
    a2.plot(range(1, len(pc) + 1), pc, "o-", ms=3, label="concrete p")
    a2.axhline(0.5, color="grey", ls=":", label="fixed p")
    a2.set(xlabel="epoch", ylabel="p on the LSTM inputs", title="learned dropout rate")
    a2.legend(fontsize=8)
    fig.tight_layout()
    return fig
