"""Find and validate the two result trees. Everything is checked before anything is written:
a missing, truncated or incomplete record, records of different schema versions, a tree of the
wrong device or two runs of different workloads give one UserError line naming the file and
what is wrong. Runs from different machines, days or code versions are allowed and stated."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common.errors import UserError
from common.fixture_guard import refuse_fixture
from common.layout import record_file, tree_name
from common.records import Record, load_record

# record files: common.layout.record_file
REQUIRED_KINDS = ("performance_analysis", "pipeline_deep_dive", "winning_solution", "augmentation_analysis",
                  "utilization_patterns")
OPTIONAL_KINDS = ("visualizations", "run_summary", "scaling")
SCRIPT = {"cuda": "comprehensive_gpu_analysis.py", "cpu": "comprehensive_cpu_analysis.py"}
FLAG = {"cuda": "--gpu", "cpu": "--cpu"}

# fields each record must hold (when its status is ok) for the comparison; '*' is every item / value
SUMMARY = "summary"
SUMMARY_OR_NONE = "summary or none"  # a measurement that a record may leave out (null, with its reason beside it)
FIELDS: dict[str, list[tuple[str, Any]]] = {
    "performance_analysis": [("data.batch_sweep", list), ("data.precision", list),
                             ("data.inference_latency", dict), ("data.inference_latency.*.summary", SUMMARY),
                             ("data.inference_throughput", list)],
    "pipeline_deep_dive": [("data.configs", dict), ("data.configs.*.levers", dict), ("data.configs.*.stages_s", dict),
                           ("data.configs.*.stages_s.*", SUMMARY), ("data.configs.*.step_wall_s", SUMMARY),
                           ("data.configs.*.end_to_end_images_per_s", SUMMARY),
                           ("data.configs.*.model_only_images_per_s", SUMMARY)],
    "winning_solution": [("data.rungs", list), ("data.rungs.*.name", str), ("data.rungs.*.levers", dict),
                         ("data.rungs.*.images_per_s", SUMMARY),
                         ("data.rungs.*.model_only_images_per_s", SUMMARY_OR_NONE),
                         ("data.summary.winner_index", int)],
    "augmentation_analysis": [("data.cpu_per_sample.per_transform_us", dict),
                              ("data.cpu_per_sample.per_transform_us.*", SUMMARY),
                              ("data.cpu_per_sample.chain_images_per_s", SUMMARY),
                              ("data.device_batched.per_transform_us", dict),
                              ("data.device_batched.per_transform_us.*", SUMMARY),
                              ("data.device_batched.chain_images_per_s", SUMMARY), ("data.quality", dict)],
    "utilization_patterns": [("data.per_stage", dict)],
    "visualizations": [],
    "run_summary": [],
    "scaling": [("data.rows", list), ("data.rows.*.images_per_s", SUMMARY)],
}


@dataclass
class Run:
    """The records of one result tree."""

    device: str  # "cuda" or "cpu"
    root: Path
    records: dict[str, Record] = field(default_factory=dict)
    paths: dict[str, Path] = field(default_factory=dict)

    def ok(self, kind: str) -> Record | None:
        rec = self.records.get(kind)
        return rec if rec is not None and rec.status == "ok" else None

    @property
    def environment(self) -> dict[str, Any]:
        for kind in REQUIRED_KINDS + OPTIONAL_KINDS:
            rec = self.records.get(kind)
            if rec is not None and rec.environment:
                return rec.environment
        return {}

    def file(self, kind: str) -> str:
        return self.paths[kind].name


@dataclass
class Inputs:
    gpu: Run
    cpu: Run
    notes: list[str] = field(default_factory=list)


def resolve_tree(path: str | Path, device: str) -> Path:
    """Accept a result tree (holding metrics/) or its metrics/ folder."""
    path = Path(path)
    if path.name == "metrics" and not (path / "metrics").is_dir():
        path = path.parent
    if not path.exists():
        raise UserError(f"{path}: folder not found ({FLAG[device]}); give the {tree_name(device)} folder of a run "
                        f"of {SCRIPT[device]}")
    return path


def gpu_skipped(root: Path) -> str | None:
    """The reason when the GPU tree holds only a 'skipped' status record, else None."""
    status = root / "metrics" / "gpu_status.json"
    if not status.exists():
        return None
    rec = load_record(status)
    if rec.status != "skipped":
        return None
    return rec.reason or "no reason recorded"


def _walk(obj: Any, parts: list[str], where: str):
    """Yield (dotted path, value) for every match of ``parts`` ('*' expands)."""
    if not parts:
        yield where, obj
        return
    head, rest = parts[0], parts[1:]
    if head == "*":
        items = obj.items() if isinstance(obj, dict) else enumerate(obj) if isinstance(obj, list) else []
        for k, v in items:
            yield from _walk(v, rest, f"{where}.{k}")
        return
    if not isinstance(obj, dict) or head not in obj:
        yield f"{where}.{head}".lstrip("."), _MISSING
        return
    yield from _walk(obj[head], rest, f"{where}.{head}".lstrip("."))


class _Missing:
    pass


_MISSING = _Missing()


def _is_summary(v: Any) -> bool:
    return (isinstance(v, dict) and isinstance(v.get("values"), list) and len(v["values"]) > 0
            and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in v["values"])
            and isinstance(v.get("unit"), str) and isinstance(v.get("median"), (int, float)))


def check_fields(rec: Record, path: Path) -> None:
    raw = {"data": rec.data}
    for spec, typ in FIELDS.get(rec.kind, []):
        for where, value in _walk(raw, spec.split("."), ""):
            if value is _MISSING:
                raise UserError(f"{path}: field '{where}' missing; the record is incomplete, re-run the analysis")
            if typ == SUMMARY_OR_NONE and value is None:
                continue
            if typ in (SUMMARY, SUMMARY_OR_NONE):
                if not _is_summary(value):
                    raise UserError(f"{path}: field '{where}' is not a measurement summary with raw 'values'; "
                                    "re-run the analysis")
            elif not isinstance(value, typ) or isinstance(value, bool):
                raise UserError(f"{path}: field '{where}' should be {typ.__name__}, got {type(value).__name__}")
    if rec.kind == "winning_solution":
        n = len(rec.data["rungs"])
        if n == 0 or not 0 <= rec.data["summary"]["winner_index"] < n:
            raise UserError(f"{path}: field 'data.summary.winner_index' does not name one of the {n} rungs; "
                            "re-run the analysis")


def load_run(root: Path, device: str) -> Run:
    run = Run(device=device, root=root)
    other = "cpu" if device == "cuda" else "cuda"
    for kind in REQUIRED_KINDS + OPTIONAL_KINDS:
        path = record_file(root, device, kind)
        if not path.exists():
            if kind in OPTIONAL_KINDS:
                continue
            if record_file(root, other, kind).exists():
                raise UserError(f"{path}: record not found, but {record_file(root, other, kind).name} is there: "
                                f"{root} is a {tree_name(other)} tree; point {FLAG[device]} at a "
                                f"{tree_name(device)} tree")
            raise UserError(f"{path}: record not found; run {SCRIPT[device]} (all sections) first, or point "
                            f"{FLAG[device]} at a complete {tree_name(device)} tree")
        rec = load_record(path, kind=kind)
        refuse_fixture(rec, path)
        if rec.device != device:
            raise UserError(f"{path}: field 'device' is {rec.device!r}, expected {device!r}; point {FLAG[device]} at a "
                            f"{tree_name(device)} tree")
        if rec.status == "ok":
            check_fields(rec, path)
        run.records[kind] = rec
        run.paths[kind] = path
    return run


def _env_get(env: dict, *keys: str) -> Any:
    cur: Any = env
    for k in keys:
        if not isinstance(cur, dict):
            return None
        cur = cur.get(k)
    return cur


def _check_comparable(gpu: Run, cpu: Run) -> list[str]:
    """Refuse different workloads; return notes on what differs but may be compared."""
    notes: list[str] = []
    versions = [(r.schema_version, run.paths[k]) for run in (gpu, cpu) for k, r in run.records.items()]
    v0, p0 = versions[0]
    for v, p in versions[1:]:
        if v != v0:
            raise UserError(f"{p}: schema version {v} differs from {p0} (version {v0}); re-run the older analysis "
                            "with this suite so both trees use one record format")
    ge, ce = gpu.environment, cpu.environment
    gp, cp = gpu.paths["performance_analysis"], cpu.paths["performance_analysis"]
    gd, cd = ge.get("dataset") or {}, ce.get("dataset") or {}
    if gd.get("image_size") and cd.get("image_size") and list(gd["image_size"]) != list(cd["image_size"]):
        raise UserError(f"{cp}: dataset image size {cd['image_size']} differs from the GPU run's {gd['image_size']} "
                        f"({gp}); the runs measured different workloads, re-run one on the other's data")
    if bool(gd.get("synthetic")) != bool(cd.get("synthetic")):
        which = "GPU" if gd.get("synthetic") else "CPU"
        raise UserError(f"{gp if which == 'GPU' else cp}: the {which} run used SYNTHETIC data and the other real "
                        "MedNIST; the workloads are not comparable, re-run both on the same data")
    gc, cc = gd.get("class_counts"), cd.get("class_counts")
    if gc and cc and sorted(gc) != sorted(cc):
        raise UserError(f"{cp}: dataset classes {sorted(cc)} differ from the GPU run's {sorted(gc)} ({gp}); "
                        "re-run both on the same data")
    gw, cw = gpu.ok("winning_solution"), cpu.ok("winning_solution")
    if gw and cw and gw.data.get("train_flops_per_image") and cw.data.get("train_flops_per_image") \
            and gw.data["train_flops_per_image"] != cw.data["train_flops_per_image"]:
        raise UserError(f"{cpu.paths['winning_solution']}: the model costs {cw.data['train_flops_per_image']} FLOP "
                        f"per training image, the GPU run's {gw.data['train_flops_per_image']} "
                        f"({gpu.paths['winning_solution']}): different models, not comparable")
    # allowed differences, stated
    gh, ch = ge.get("hostname"), ce.get("hostname")
    gcpu, ccpu = ge.get("cpu_model"), ce.get("cpu_model")
    if gh != ch or gcpu != ccpu:
        notes.append(f"The runs come from different machines: GPU run on host {gh} (host CPU {gcpu}), CPU run on "
                     f"host {ch} (CPU {ccpu}, {ce.get('threads_used')} threads).")
    else:
        notes.append(f"Both runs come from the same machine (host {gh}, CPU {gcpu}).")
    gt, ct = (ge.get("time_utc") or "")[:10], (ce.get("time_utc") or "")[:10]
    if gt != ct:
        notes.append(f"The runs were made on different days: GPU run {gt or 'unknown'}, CPU run {ct or 'unknown'}.")
    gg, cg = _env_get(ge, "git", "commit"), _env_get(ce, "git", "commit")
    if gg != cg:
        notes.append(f"Different code versions: git {str(gg)[:10]} (GPU run) vs {str(cg)[:10]} (CPU run).")
    dirty = [x for x, v in (("GPU run", _env_get(ge, "git", "dirty")), ("CPU run", _env_get(ce, "git", "dirty")))
             if v]
    if dirty:
        notes.append(f"Uncommitted changes were present in the checkout of the {' and the '.join(dirty)}.")
    for lib in ("torch", "monai"):
        if ge.get(lib) != ce.get(lib):
            notes.append(f"{lib} versions differ: {ge.get(lib)} (GPU run) vs {ce.get(lib)} (CPU run).")
    gq, cq = _env_get(ge, "config", "quick"), _env_get(ce, "config", "quick")
    if bool(gq) != bool(cq):
        notes.append(f"Measurement modes differ: GPU run {'quick' if gq else 'full'}, CPU run "
                     f"{'quick' if cq else 'full'} (fewer steps and repeats in quick mode: wider intervals).")
    gb, cb = _env_get(ge, "config", "batch_size"), _env_get(ce, "config", "batch_size")
    if gb != cb:
        notes.append(f"Recipe batch sizes differ: {gb} (GPU run) vs {cb} (CPU run); per-stage times are compared "
                     "per image, and every comparison lists the settings that differ.")
    gm, cm = gd.get("archive_md5") or gd.get("source"), cd.get("archive_md5") or cd.get("source")
    if gm != cm or gd.get("total") != cd.get("total"):
        notes.append(f"Data sources differ: {gd.get('source')} ({gd.get('total')} images) for the GPU run, "
                     f"{cd.get('source')} ({cd.get('total')} images) for the CPU run; same image size and classes.")
    if gd.get("synthetic"):
        notes.append("Both runs used SYNTHETIC MedNIST-shaped data: speeds are real, accuracies mean little.")
    for run, label in ((gpu, "GPU"), (cpu, "CPU")):
        for kind, rec in run.records.items():
            if rec.status != "ok":
                notes.append(f"{label} run: {run.paths[kind].name} has status {rec.status}"
                             f"{': ' + rec.reason if rec.reason else ''}; its comparisons are not available.")
    return notes


def load_inputs(gpu_root: Path, cpu_root: Path) -> Inputs:
    """Load both trees and validate them; raises UserError (nothing written) on any problem."""
    gpu = load_run(gpu_root, "cuda")
    cpu = load_run(cpu_root, "cpu")
    return Inputs(gpu=gpu, cpu=cpu, notes=_check_comparable(gpu, cpu))

