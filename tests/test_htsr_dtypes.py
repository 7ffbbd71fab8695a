"""The analyser's answer does not depend on the dtype a model was saved in.

One randomly initialised model saved as float32, float16 and bfloat16, each as a PyTorch
state_dict (.pt) and as .safetensors, read through the command line's loader: every layer gets
the same phase and no rank loss. The rank rule itself still finds a truly rank-deficient
matrix in every dtype (so the test fails if the tolerance were simply dropped).
"""
import json
import struct

import numpy as np
import pytest
import torch
import torch.nn as nn

from reprobook import htsr

SAFETENSORS_DTYPE = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16",
                     torch.float64: "F64"}


def write_safetensors(path, tensors: dict) -> None:
    """The safetensors layout (8-byte header length, JSON header, little-endian data)."""
    header, blobs, off = {}, [], 0
    for name, t in tensors.items():
        t = t.contiguous()
        raw = (t.view(torch.int16) if t.dtype == torch.bfloat16 else t).numpy().tobytes()
        header[name] = {"dtype": SAFETENSORS_DTYPE[t.dtype], "shape": list(t.shape),
                        "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    h = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def model() -> nn.Module:
    """Wide enough (N = 512) that float16's or bfloat16's epsilon times N exceeds 1/2."""
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(32, 64, 3), nn.Flatten(), nn.Linear(512, 256),
                         nn.Linear(256, 128), nn.Linear(640, 512))


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    root = tmp_path_factory.mktemp("dtypes")
    sd = {k: v for k, v in model().state_dict().items() if k.endswith("weight")}
    files = {}
    for dtype in SAFETENSORS_DTYPE:
        cast = {k: v.to(dtype) for k, v in sd.items()}
        name = str(dtype).split(".")[-1]
        torch.save(cast, root / f"{name}.pt")
        write_safetensors(root / f"{name}.safetensors", cast)
        files[f"{name}.pt"] = root / f"{name}.pt"
        files[f"{name}.safetensors"] = root / f"{name}.safetensors"
    return files


def test_same_phases_in_every_dtype_and_format(saved):
    tables = {name: htsr.analyze(htsr.load_weights_file(str(path)))
              for name, path in saved.items()}
    ref = tables["float32.pt"]
    assert len(ref) == 4 and set(ref["phase"]) == {"Random-like"}
    for name, df in tables.items():
        assert list(df["layer"]) == list(ref["layer"]), name
        assert list(df["phase"]) == list(ref["phase"]), name
        assert (df["rank_loss"] == 0).all(), name
        # the values moved only by the rounding of the weights (bfloat16: 8 mantissa bits)
        np.testing.assert_allclose(df["stable_rank"], ref["stable_rank"], rtol=0.02)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_rank_rule_still_finds_rank_deficient_weights(dtype):
    """A rank-16 product stays rank 16 in float32 and in float64 (also a float32 matrix
    upcast); float16/bfloat16 rounding makes such a matrix full rank in value (noise at
    1e-3 of its norm, above the rule), which is the weights' change, not the analyser's."""
    g = torch.Generator().manual_seed(1)
    low = torch.randn(512, 16, generator=g) @ torch.randn(16, 256, generator=g)  # rank 16
    row = htsr.analyze(low.to(dtype)).iloc[0]
    assert row["rank_loss"] == 256 - 16
    assert row["phase"] == "Rank-collapse"
    assert htsr.analyze(torch.randn(512, 256, generator=g).to(dtype)).iloc[0]["rank_loss"] == 0
