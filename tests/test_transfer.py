"""Pretrained weights reach every unchanged layer despite the indices shifted by insertions."""

from __future__ import annotations

import pytest
import torch

from src import attention
from src.arch import architecture
from src.arch.bases import load_base, plain_graph
from src.arch.rewrite import insert_attention
from src.ultralytics_glue import model as glue_model
from src.ultralytics_glue import trainer as glue_trainer
from src.ultralytics_glue.layout import base_layout


def ema_rewrite(pos):
    arch = architecture.resolve("yolo11", "n", pos, base_layout)
    return insert_attention(arch.base, arch.channels, "EMA", lambda c: attention.yaml_args("ema", c, {}), arch.position)


@pytest.fixture(scope="module")
def base_checkpoint(tmp_path_factory):
    model = glue_model.build_model({**plain_graph(load_base("yolo11")), "scale": "n"}, nc=3)
    torch.manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p))  # distinguishable from a fresh init
    path = tmp_path_factory.mktemp("ckpt") / "base.pt"
    torch.save({"model": model}, path)
    return path, model


@pytest.mark.parametrize("after,replace", [([4, 6, 10], []), ([16, 19, 22], []), ([], [10])])
def test_every_base_tensor_transfers(base_checkpoint, after, replace):
    path, base_model = base_checkpoint
    rewrite = ema_rewrite({"after": after, "replace": replace})
    model = glue_model.build_model({**rewrite.model, "scale": "n"}, nc=3)
    done, total = glue_trainer.transfer_weights(model, path, rewrite.layer_map)
    base_state = base_model.state_dict()
    replaced = sum(1 for k in base_state if any(k.startswith(f"model.{i}.") for i in replace))
    assert total == len(base_state)
    assert done == total - replaced
    state = model.state_dict()
    for old, new in rewrite.layer_map.items():
        for key, value in base_state.items():
            if key.startswith(f"model.{old}."):
                assert torch.equal(state[f"model.{new}." + key.split(".", 2)[2]], value), key


def test_name_matching_alone_loses_most_tensors(base_checkpoint):
    """What ultralytics' own intersect_dicts would do: the problem this module solves."""
    from ultralytics.utils.torch_utils import intersect_dicts

    path, base_model = base_checkpoint
    rewrite = ema_rewrite({"after": [4, 6, 10]})
    model = glue_model.build_model({**rewrite.model, "scale": "n"}, nc=3)
    naive = intersect_dicts(base_model.state_dict(), model.state_dict())
    assert len(naive) < 0.5 * len(base_model.state_dict())
