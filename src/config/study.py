"""Several attention modules in one model, and the factorial studies made of them (README
"Factorial studies").

`variant` names what a job's model holds: the study's component names joined by `+` (`A+B`, with
`study.components: {A: ema@neck, B: cot@backbone_p5}`), or the entries written out
(`ema@neck+cot@backbone_p5`); `none` is the baseline; null keeps the model of `attn=` and `pos=`.
Each entry is an attention config and a position preset exactly as conf/attn and conf/pos hold
them, so one entry of a variant is today's single-module job. `expand` turns the variant into the
job's config: a one-entry variant becomes that entry's `attn` and `pos` (the same config, hash and
result as `attn=ema pos=neck`); several become `entries` plus `attn` / `pos` names that say the
whole variant (`ema+cot`, `neck+backbone_p5`), so the tables, W&B, plan and the baseline rules read
them as before. `study_variants` is the resolver a study's sweep uses to list every subset.
"""

from __future__ import annotations

import copy
import itertools
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import yaml

from src.results import BASELINE
from src.results.schema import AT, ENTRIES, PLUS, STUDY, VARIANT, entry_label  # ENTRIES: the config's key too
from src.runtime import CONF_DIR

FACTORIAL, CUMULATIVE = "factorial", "cumulative"
DESIGNS = (FACTORIAL, CUMULATIVE)  # every subset | the chain +A, +A+B, ... in component order
RESOLVER = "study_variants"


class StudyError(ValueError):
    """A bad study or variant; the message names the bad value and the valid choices."""


def subsets(names: Sequence[str], design: str = FACTORIAL) -> list[tuple[str, ...]]:
    """A study's variants in the order papers print them: the baseline `()`, then by size and in
    component order ((), A, B, C, AB, AC, BC, ABC); a cumulative study: (), A, AB, ABC."""
    if design not in DESIGNS:
        raise StudyError(f"unknown study.design {design!r}; valid choices: {', '.join(DESIGNS)}")
    names = list(names)
    if design == CUMULATIVE:
        return [tuple(names[:k]) for k in range(len(names) + 1)]
    return [s for k in range(len(names) + 1) for s in itertools.combinations(names, k)]


def variant_name(subset: Sequence[str]) -> str:
    """`A+B` for ("A", "B"); `none` for the baseline."""
    return PLUS.join(subset) or BASELINE


def study_variants(components: Mapping[str, Any] | None, design: str = FACTORIAL) -> str:
    """The sweep values of a study's `variant` (`none,A,B,A+B`): conf/experiment/factorial_quick.yaml
    sweeps `variant: ${study_variants:${study.components},${study.design}}`."""
    if not components:
        raise StudyError("study.components is empty: name at least one component, e.g. {A: ema@neck}")
    return ",".join(variant_name(s) for s in subsets(list(components), design))


def register_resolver() -> None:
    """Make `${study_variants:...}` known to OmegaConf (the entry point calls it before Hydra composes)."""
    from omegaconf import OmegaConf

    if not OmegaConf.has_resolver(RESOLVER):
        OmegaConf.register_new_resolver(RESOLVER, lambda c, d=FACTORIAL: study_variants(_plain(c), d))


def parse_component(spec: Any, where: str) -> dict[str, Any]:
    """`ema@neck` or {attn: ema, pos: neck, params: {...}} -> {"attn", "pos", "params"}."""
    if isinstance(spec, str):
        attn, at, pos = spec.partition(AT)
        if not at or not attn or not pos or AT in pos:
            raise StudyError(f"{where}={spec!r}: write a component as <attn>@<pos>, e.g. ema@neck")
        return {"attn": attn, "pos": pos, "params": {}}
    if isinstance(spec, Mapping) and {"attn", "pos"} <= set(spec) and set(spec) <= {"attn", "pos", "params"}:
        return {"attn": str(spec["attn"]), "pos": str(spec["pos"]), "params": dict(spec.get("params") or {})}
    raise StudyError(f"{where}={spec!r}: a component is <attn>@<pos> or {{attn: ..., pos: ..., params: {{...}}}}")


def variant_components(variant: str, components: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """The entries a variant names, in its order; [] for the baseline."""
    text = str(variant).strip()
    if text == BASELINE:
        return []
    known = dict(components or {})
    out, seen = [], set()
    for part in text.split(PLUS):
        if part in known:
            out.append(parse_component(known[part], f"study.components.{part}"))
        elif AT in part:
            out.append(parse_component(part, "variant"))
        else:
            valid = ", ".join([*known, "<attn>@<pos>", BASELINE])
            raise StudyError(f"variant={text!r}: unknown component {part!r}; valid choices: {valid}")
        key = (out[-1]["attn"], out[-1]["pos"])
        if key in seen:
            raise StudyError(f"variant={text!r}: {AT.join(key)} is named twice")
        seen.add(key)
    return out


def study_record(cfg: Mapping[str, Any]) -> dict[str, Any]:
    """What result.json says of a variant job's study (VARIANT, STUDY); {} for any other job."""
    if cfg.get("variant") is None:
        return {}
    spec = cfg.get("study") or {}
    parsed = {n: parse_component(v, f"study.components.{n}") for n, v in (spec.get("components") or {}).items()}
    components = [[name, entry_label(c["attn"], c["pos"])] for name, c in parsed.items()]
    study = {"design": spec.get("design", FACTORIAL), "components": components} if components else None
    return {VARIANT: str(cfg["variant"]), STUDY: study}


def option_dirs() -> list[Path]:
    """Where a config group option is looked up: conf/, then each `file://` entry of
    `hydra.searchpath` where Hydra is set up (as Hydra searches them for `attn=` / `pos=`)."""
    dirs = [CONF_DIR]
    try:
        from hydra.core.hydra_config import HydraConfig

        extra = HydraConfig.get().searchpath
    except ValueError:  # Hydra not set up: a plain script, a test
        return dirs
    return dirs + [Path(str(p).removeprefix("file://")) for p in extra or () if str(p).startswith("file://")]


def group_option(group: str, option: str) -> dict[str, Any] | None:
    """A config group option as plain data (unresolved), from the first of `option_dirs` that has
    it; None where none does."""
    for folder in option_dirs():
        path = folder / group / f"{option}.yaml"
        if path.is_file():
            return yaml.safe_load(path.read_text()) or {}
    return None


def conf_option(group: str, name: str) -> dict[str, Any]:
    """A group option of a variant's entry as plain data; StudyError naming the valid options."""
    found = group_option(group, name)
    if found is None:
        valid = ", ".join(sorted({p.stem for d in option_dirs() for p in (d / group).glob("*.yaml")}))
        raise StudyError(f"unknown {group} {name!r} in a variant; valid choices: {valid}")
    return found


def validate(cfg: Mapping[str, Any]) -> None:
    """StudyError unless `study` (design, components) and `variant` name things that exist: the
    study's components, conf/attn and conf/pos options. File reads only: the entry point runs it
    before Hydra makes a dir."""
    spec = cfg.get("study")
    if spec is not None:
        if not isinstance(spec, Mapping) or not isinstance(spec.get("components"), Mapping):
            raise StudyError(f"study={spec!r}: give study.components, e.g. {{A: ema@neck, B: cot@backbone_p5}}")
        subsets(list(spec["components"]), spec.get("design", FACTORIAL))
        for name, component in spec["components"].items():
            if PLUS in str(name) or AT in str(name) or str(name) == BASELINE:
                raise StudyError(f"study.components.{name}: a name has no {PLUS} or {AT} and is not {BASELINE}")
            _options_exist(parse_component(component, f"study.components.{name}"))
    if cfg.get("variant") is not None:
        for component in variant_components(cfg["variant"], (spec or {}).get("components")):
            _options_exist(component)


def _options_exist(component: Mapping[str, Any]) -> None:
    conf_option("attn", component["attn"])
    conf_option("pos", component["pos"])


def expand(cfg: dict[str, Any], option: Callable[[str, str], dict[str, Any]] = conf_option) -> dict[str, Any]:
    """The job config with its `variant` spelled out (see the module docstring); unchanged without one."""
    variant = cfg.get("variant")
    if variant is None:
        return cfg
    out = copy.deepcopy(cfg)
    components = variant_components(variant, (cfg.get("study") or {}).get("components"))
    entries = []
    for c in components:
        attn = option("attn", c["attn"])
        attn["params"] = {**(attn.get("params") or {}), **c["params"]}
        entries.append({"attn": attn, "pos": option("pos", c["pos"])})
    if not entries:
        out["attn"] = option("attn", BASELINE)
    elif len(entries) == 1:
        out["attn"], out["pos"] = entries[0]["attn"], entries[0]["pos"]
    else:
        out[ENTRIES] = entries
        out["attn"] = {"name": PLUS.join(e["attn"]["name"] for e in entries), "params": {}}
        out["pos"] = {"name": PLUS.join(e["pos"]["name"] for e in entries), "after": [], "replace": [], "inside": []}
    return out


def expanded(cfg: dict[str, Any]) -> dict[str, Any]:
    """`expand`, or the config as it is where the variant is bad (the job's checks then name it)."""
    try:
        return expand(cfg)
    except StudyError:
        return cfg


def entries_of(cfg: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The (attn, pos) configs a job's model holds: [] for the baseline, one for `attn=` / `pos=`."""
    if cfg.get(ENTRIES):
        return list(cfg[ENTRIES])
    return [] if cfg["attn"]["name"] == BASELINE else [{"attn": cfg["attn"], "pos": cfg["pos"]}]


def _plain(node: Any) -> Any:
    from omegaconf import OmegaConf

    return OmegaConf.to_container(node, resolve=True) if OmegaConf.is_config(node) else node
