"""Several attention modules in one model (entries): one rewrite of the base graph, each module where
its role says on every base, a plain checkpoint transferring into it, conflicts failing before any
rewrite, and the one-entry case writing exactly the YAML a single module always got."""

from __future__ import annotations

import functools
import hashlib

import pytest
import torch
import yaml
from conftest import position_presets

from src import attention
from src.arch import architecture
from src.arch.bases import layers_of, load_base, plain_graph
from src.arch.keys import INSIDE_KEY
from src.arch.positions import Position, PositionError
from src.arch.rewrite import (
    Entry,
    EntryConflict,
    dump_yaml,
    entries_file_name,
    insert_attention,
    insert_entries,
    model_file_name,
)
from src.results.schema import entry_label
from src.ultralytics_glue import trainer as glue_trainer
from src.ultralytics_glue.inside import AttentionBottleneck, bottlenecks, specs_of
from src.ultralytics_glue.layout import base_layout
from src.ultralytics_glue.model import build_model

PRESETS = position_presets()  # loaded from conf/pos/, as a job gets them
# The base indices each role names, read off the base YAMLs (as tests/test_positions.py's BY_ROLE).
ROLES = {
    "yolo11": {"neck": [16, 19, 22], "backbone_p5": [10], "inside_neck": [16, 19, 22], "inside_backbone": [2, 4, 6, 8]},
    "yolo26": {"neck": [16, 19, 22], "backbone_p5": [10], "inside_neck": [16, 19, 22], "inside_backbone": [2, 4, 6, 8]},
    "yolov8": {"neck": [15, 18, 21], "backbone_p5": [9], "inside_neck": [15, 18, 21], "inside_backbone": [2, 4, 6, 8]},
    "yolo12": {"neck": [14, 17, 20], "backbone_p5": [8], "inside_neck": [14, 17, 20], "inside_backbone": [2, 4]},
}
# (attn, pos preset) per entry, in entry order: two after-entries; inside and after on the same
# blocks (allowed); two inside-entries (the `inside:` key as a list)
COMBOS = {
    "ema@neck+se@backbone_p5": [("ema", "neck"), ("se", "backbone_p5")],
    "ema@inside_neck+se@neck": [("ema", "inside_neck"), ("se", "neck")],
    "ema@inside_neck+se@inside_backbone": [("ema", "inside_neck"), ("se", "inside_backbone")],
}
# sha256 (first 16 hex) of the YAML insert_attention wrote for EMA at each preset, scale n, recorded
# before several entries existed (commit 4b0a4f1): the one-entry case must not change a byte.
TODAYS_YAML = {
    ("yolo11", "backbone"): "1b35d274e3fc429e",
    ("yolo11", "backbone_p5"): "a86c2f910fc6b459",
    ("yolo11", "inside_backbone"): "d2bb02a7c55933c0",
    ("yolo11", "inside_neck"): "ec38972d3e5d580f",
    ("yolo11", "neck"): "18281afc03a4edd2",
    ("yolo11", "replace_c2psa"): "7fcfd75bee24d467",
    ("yolov8", "backbone"): "82eb5d4a099364df",
    ("yolov8", "backbone_p5"): "3c15df452ce4860c",
    ("yolov8", "inside_backbone"): "83e4a4a87aee22a7",
    ("yolov8", "inside_neck"): "d38d0d8a2914205a",
    ("yolov8", "neck"): "c1067acfc2fbb23d",
}


def entry(base_name: str, attn: str, preset: str) -> tuple[architecture.Architecture, Entry]:
    arch = architecture.resolve(base_name, "n", PRESETS[preset], base_layout)
    spec = {"module": attn, "params": {}, "mode": arch.position.inside_mode}
    cls = attention.get_class(attn).__name__
    args = functools.partial(attention.yaml_args, attn, params={})
    return arch, Entry(cls, args, arch.position, spec, entry_label(attn, preset))


def combo_entries(base_name: str, combo: str) -> tuple[architecture.Architecture, list[Entry]]:
    pairs = [entry(base_name, attn, preset) for attn, preset in COMBOS[combo]]
    return pairs[0][0], [e for _, e in pairs]


def expected_after(afters: list[list[int]]) -> tuple[dict[int, int], list[list[int]]]:
    """Where each base layer and each entry's after-module land, counted from the base indices alone:
    a layer moves by the modules placed after earlier layers; modules after the same layer stack in
    entry order."""
    n_layers = 30  # more than any base has
    moved = {i: i + sum(j < i for after in afters for j in after) for i in range(n_layers)}
    placed = [[moved[i] + 1 + sum(i in other for other in afters[:k]) for i in after] for k, after in enumerate(afters)]
    return moved, placed


def digest(model: dict, path) -> str:
    return hashlib.sha256(dump_yaml(model, path).read_text().encode()).hexdigest()[:16]


# ------------------------------------------------------------------------ one entry: today's YAML
@pytest.mark.parametrize("base_name,preset", sorted(TODAYS_YAML))
def test_one_entry_writes_todays_yaml(tmp_path, base_name, preset):
    arch, one = entry(base_name, "ema", preset)
    old_way = insert_attention(arch.base, arch.channels, one.module, one.module_args, one.position, one.inside_spec)
    new_way = insert_entries(arch.base, arch.channels, [one])
    assert digest(old_way.model, tmp_path / "a.yaml") == TODAYS_YAML[base_name, preset]
    assert digest(new_way.model, tmp_path / "b.yaml") == TODAYS_YAML[base_name, preset]
    assert isinstance(old_way.model.get(INSIDE_KEY, {}), dict)  # one entry: the single dict, as before
    (placed,) = new_way.entries
    assert (placed.label, placed.inserted, placed.inside) == (one.label, new_way.inserted, new_way.inside)


def test_file_names():
    assert model_file_name("yolo11", "n", "ema", "neck") == "yolo11n-ema-neck.yaml"  # as before
    assert entries_file_name("yolo11", "n", ["ema@neck"]) == "yolo11n-ema-neck.yaml"
    assert entries_file_name("yolo11", "s", ["ema@neck", "cot@backbone_p5"]) == "yolo11s-ema-neck-cot-backbone_p5.yaml"
    long = entries_file_name("yolo11", "n", [f"ema@custom:after{i}" for i in range(40)])
    assert long.startswith("yolo11n-ema-custom-after0-") and len(long) < 255
    assert long != entries_file_name("yolo11", "n", [f"ema@custom:after{i}" for i in range(41)])


# ------------------------------------------------------------------------------------ conflicts
def named(label: str, **position) -> Entry:
    def never(c: int) -> list:
        raise AssertionError("the rewrite started before the conflict check")

    return Entry("SELayer", never, Position(**position), {"module": "se", "params": {}, "mode": "branch"}, label)


@pytest.mark.parametrize(
    "first,second,message",
    [
        (
            named("se@replace_c2psa", replace=[10]),
            named("ema@backbone_p5", after=[10]),
            "entries 'se@replace_c2psa' and 'ema@backbone_p5' conflict at base layer 10: "
            "'se@replace_c2psa' replaces it and 'ema@backbone_p5' is placed after it",
        ),
        (  # the order of the entries does not matter
            named("ema@backbone_p5", after=[4, 10]),
            named("se@replace_c2psa", replace=[10]),
            "entries 'se@replace_c2psa' and 'ema@backbone_p5' conflict at base layer 10: "
            "'se@replace_c2psa' replaces it",
        ),
        (
            named("se@replace10", replace=[10]),
            named("ema@replace10", replace=[10]),
            "'se@replace10' replaces it and 'ema@replace10' replaces it too",
        ),
        (
            named("se@replace8", replace=[8]),
            named("ema@inside_backbone", inside=[2, 4, 6, 8]),
            "conflict at base layer 8: 'se@replace8' replaces it and 'ema@inside_backbone' puts attention inside it",
        ),
        (
            named("ema@inside_neck", inside=[16, 19, 22]),
            named("cot@custom:inside19-22", inside=[19, 22]),
            "entries 'ema@inside_neck' and 'cot@custom:inside19-22' conflict at base layers 19, 22: both put "
            "attention inside its bottlenecks",
        ),
    ],
)
def test_conflicts_fail_before_any_rewrite_naming_both(first, second, message):
    base = load_base("yolo11")
    with pytest.raises(EntryConflict) as info:
        insert_entries(base, [64] * 24, [first, second])  # `never` is not called
    assert message in str(info.value)
    assert isinstance(info.value, PositionError)  # the config checks report it as a bad position


def test_after_the_same_layer_and_after_plus_inside_are_allowed():
    base = load_base("yolo11")
    entries = [
        Entry("EMA", lambda c: [c], Position(after=[10]), label="ema"),
        Entry("SELayer", lambda c: [c], Position(after=[10], inside=[8]), {"module": "se"}, label="se"),
        Entry("CoT", lambda c: [c], Position(after=[8]), label="cot"),
    ]
    rewrite = insert_entries(base, list(range(24)), entries)
    layers = layers_of(rewrite.model)
    assert [layers[i][2:] for i in (9, 12, 13)] == [["CoT", [8]], ["EMA", [10]], ["SELayer", [10]]]  # entry order
    assert [p.inserted for p in rewrite.entries] == [{12: 10}, {13: 10}, {9: 8}]
    assert [p.inside for p in rewrite.entries] == [[], [8], []]
    assert rewrite.model[INSIDE_KEY] == {"layers": [8], "module": "se"}
    assert layers[14][0] == -1 and layers[24][0] == [-1, 13]  # what read layer 10 reads the last stacked module


# ------------------------------------------------------------------- real builds on every base
@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """(base, combo) -> (rewrite, model built by ultralytics from the dumped YAML file), once each."""
    folder = tmp_path_factory.mktemp("entries")

    @functools.cache
    def build(base_name: str, combo: str):
        arch, entries = combo_entries(base_name, combo)
        rewrite = insert_entries(arch.base, arch.channels, entries)
        path = dump_yaml(rewrite.model, folder / entries_file_name(base_name, "n", [e.label for e in entries]))
        return rewrite, build_model(path, nc=3)

    return build


@pytest.fixture(scope="module")
def plain(tmp_path_factory):
    """base -> (path of a plain checkpoint with distinguishable weights, its model), once each."""
    folder = tmp_path_factory.mktemp("plain")

    @functools.cache
    def checkpoint(base_name: str):
        model = build_model({**plain_graph(load_base(base_name)), "scale": "n"}, nc=3)
        torch.manual_seed(0)
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn_like(p))
        torch.save({"model": model}, folder / f"{base_name}.pt")
        return folder / f"{base_name}.pt", model

    return checkpoint


@pytest.mark.parametrize("combo", sorted(COMBOS))
@pytest.mark.parametrize("base_name", sorted(ROLES))
def test_each_module_where_its_role_says(built, plain, base_name, combo):
    rewrite, model = built(base_name, combo)
    _, plain_model = plain(base_name)
    roles = [(attn, preset, ROLES[base_name][preset]) for attn, preset in COMBOS[combo]]
    afters = [indices if not preset.startswith("inside") else [] for _, preset, indices in roles]
    moved, placed = expected_after(afters)
    assert [p.label for p in rewrite.entries] == [entry_label(a, p) for a, p, _ in roles]
    for (attn, preset, indices), done, after_new in zip(roles, rewrite.entries, placed, strict=True):
        cls = attention.get_class(attn)
        if preset.startswith("inside"):
            assert done.inside == [moved[i] for i in indices] and not done.inserted
            for i in indices:  # every bottleneck of the block holds the module, none elsewhere
                wrapped = [m for m in model.model[moved[i]].modules() if isinstance(m, AttentionBottleneck)]
                assert len(wrapped) == len(bottlenecks(plain_model.model[i])) > 0
                assert all(type(w.attn) is cls for w in wrapped)
        else:
            assert sorted(done.inserted) == after_new and not done.inside
            assert all(type(model.model[i]) is cls for i in after_new)
    blocks = [i for _, preset, indices in roles if preset.startswith("inside") for i in indices]
    wrapped_total = sum(isinstance(m, AttentionBottleneck) for m in model.modules())
    assert wrapped_total == sum(len(bottlenecks(plain_model.model[i])) for i in blocks)
    assert sorted(rewrite.layer_map.items()) == [(i, moved[i]) for i in range(len(plain_model.model))]
    n_inside = sum(preset.startswith("inside") for _, preset, _ in roles)
    assert type(rewrite.model.get(INSIDE_KEY)) is {0: type(None), 1: dict, 2: list}[n_inside]
    model.train()
    out = model(torch.zeros(1, 3, 64, 64))
    out = out.get("one2many", out)  # yolo26 (end-to-end) has two heads
    assert [f.shape[-1] for f in out["feats"]] == [8, 4, 2]


@pytest.mark.parametrize("combo", sorted(COMBOS))
@pytest.mark.parametrize("base_name", sorted(ROLES))
def test_plain_checkpoint_transfers_every_tensor(built, plain, base_name, combo):
    rewrite, model = built(base_name, combo)
    path, plain_model = plain(base_name)
    done, total = glue_trainer.transfer_weights(model, path, rewrite.layer_map)
    base_state = plain_model.state_dict()
    assert done == total == len(base_state)
    state = model.state_dict()
    for old, new in rewrite.layer_map.items():
        for key, value in base_state.items():
            if key.startswith(f"model.{old}."):
                assert torch.equal(state[f"model.{new}." + key.split(".", 2)[2]], value), key


# --------------------------------------------------------------------------- the `inside:` key
def test_inside_key_as_dict_or_list():
    one = {"layers": [16], "module": "ema", "params": {}, "mode": "branch"}
    two = {"layers": [2, 4], "module": "se", "params": {}, "mode": "conv"}
    assert specs_of(None) == [] and specs_of(one) == [one] and specs_of([one, two]) == [one, two]
    with pytest.raises(ValueError, match="layer 4 is named by two specs"):
        specs_of([two, {**one, "layers": [4]}])


def test_several_inside_specs_round_trip_through_the_yaml_file(tmp_path):
    arch, entries = combo_entries("yolo11", "ema@inside_neck+se@inside_backbone")
    rewrite = insert_entries(arch.base, arch.channels, entries)
    path = dump_yaml(rewrite.model, tmp_path / "m.yaml")
    assert "inside:\n  - {layers: [16, 19, 22], module: ema" in path.read_text()
    assert yaml.safe_load(path.read_text())[INSIDE_KEY] == [
        {"layers": [16, 19, 22], "module": "ema", "params": {}, "mode": "branch"},
        {"layers": [2, 4, 6, 8], "module": "se", "params": {}, "mode": "branch"},
    ]
