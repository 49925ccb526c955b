"""Last step of `bash eng/gpu-check.sh run`: gathers what every part left in the work folder (the part table,
nvidia-smi, PyTorch's figures, the check's JSON, the main job's training logs) into OUT/results.json, and prints a
summary of at most 10,000 characters. Needs only the Python standard library. Exit code 0 when every part ran and
every correctness check passed, 1 otherwise."""
import argparse
import array
import csv
import datetime
import json
import os
import struct

SUMMARY_LIMIT = 10_000


def load_json(path):
    """The parsed file, or None when it is missing or not valid JSON (a part killed mid-write leaves no file: the
    parts write atomically)."""
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def read_parts(work):
    parts = {}
    try:
        with open(os.path.join(work, "parts.tsv"), encoding="utf-8") as f:
            for line in f:
                fields = line.rstrip("\n").split("\t")
                if len(fields) == 4:
                    parts[fields[0]] = {"state": fields[1], "seconds": int(fields[2]), "limit_s": int(fields[3])}
    except OSError:
        pass
    return parts


def read_nvidia_smi(work):
    try:
        with open(os.path.join(work, "nvidia-smi.csv"), encoding="utf-8") as f:
            rows = list(csv.reader(f))
    except OSError:
        return None
    if len(rows) < 2:
        return {"output": " ".join(",".join(r) for r in rows)}
    return {key.strip(): value.strip() for key, value in zip(rows[0], rows[1])}


def read_training(work, folder):
    log = load_json(os.path.join(work, folder, "training-log.json"))
    if log is None:
        return None
    epochs = log.get("epochs") or []
    last = epochs[-1] if epochs else {}
    return {
        "network": log.get("network"),
        "device": log.get("device"),
        "status": log.get("status"),
        "data": log.get("data"),
        "batch_size": (log.get("settings") or {}).get("batch_size"),
        "epochs": [{k: e.get(k) for k in ("epoch", "train_loss", "train_accuracy", "test_loss", "test_accuracy", "seconds", "images_per_second")} for e in epochs],
        "test_accuracy": last.get("test_accuracy"),
        "images_per_second": last.get("images_per_second"),
    }


def read_safetensors(path):
    """{name: array of float32} of a safetensors file's F32 tensors (8-byte little-endian header length, JSON header,
    data), or None when it cannot be read."""
    try:
        with open(path, "rb") as f:
            (length,) = struct.unpack("<Q", f.read(8))
            header = json.loads(f.read(length))
            data = f.read()
    except (OSError, ValueError, struct.error):
        return None
    tensors = {}
    for name, entry in header.items():
        if name == "__metadata__" or entry.get("dtype") != "F32":
            continue
        start, end = entry["data_offsets"]
        values = array.array("f")
        values.frombytes(data[start:end])
        tensors[name] = values
    return tensors


def distributed_comparison(work, train):
    """The one-rank NCCL run against the plain GPU run of the same command: the final parameters (last.safetensors) and
    the per-epoch figures. Equal bit for bit when both runs chose the same GEMM tiles (one rank's sum is the identity);
    a different tile choice changes float32 summation order, so the pass criterion is the emulator tests' (training and
    test loss within 1e-3 relative, test accuracy within 5 points)."""
    plain, nccl = train.get("fashionnet"), train.get("distributed_nccl")
    if not plain or not nccl:
        return None
    result = {"plain_device": plain.get("device"), "nccl_device": nccl.get("device"), "status": nccl.get("status")}
    a = read_safetensors(os.path.join(work, "train-fashionnet", "last.safetensors"))
    b = read_safetensors(os.path.join(work, "train-distributed-nccl", "last.safetensors"))
    if a is not None and b is not None and a.keys() == b.keys():
        largest = max((abs(v) for t in a.values() for v in t), default=0.0)
        difference = max((abs(x - y) for name in a for x, y in zip(a[name], b[name])), default=0.0)
        result.update(parameters_identical=all(a[name] == b[name] for name in a), max_abs_parameter_difference=difference,
                      largest_parameter=largest, parameter_difference_relative=difference / largest if largest else None)
    epochs = []
    ok = nccl.get("status") == "completed" and len(plain["epochs"]) == len(nccl["epochs"]) and len(nccl["epochs"]) > 0
    for p, n in zip(plain["epochs"], nccl["epochs"]):
        row = {"epoch": p.get("epoch")}
        for key in ("train_loss", "test_loss"):
            x, y = p.get(key), n.get(key)
            row[key] = [x, y]
            ok &= x is not None and y is not None and abs(x - y) <= 1e-3 * abs(x)
        x, y = p.get("test_accuracy"), n.get("test_accuracy")
        row["test_accuracy"] = [x, y]
        ok &= x is not None and y is not None and abs(x - y) <= 0.05 + 1e-9
        epochs.append(row)
    result["epochs"] = epochs
    result["pass"] = bool(ok)
    return result


def comparison(check, torch):
    """Ours against PyTorch eager, per network, mode and pass, where both sides measured."""
    result = {}
    ours_timing = (check or {}).get("timing") or {}
    torch_timing = (torch or {}).get("timing") or {}
    for net in ("alexnet", "fashionnet"):
        for mode in ("fp32", "tf32"):
            ours = (ours_timing.get(net) or {}).get(mode) or {}
            theirs = (torch_timing.get(net) or {}).get(mode) or {}
            for kind in ("train", "forward"):
                a = ours.get(f"{kind}_images_per_s")
                b = theirs.get(f"{kind}_images_per_s")
                entry = {"ours_images_per_s": a, "torch_images_per_s": b, "ratio": a / b if a and b else None,
                         "ours_tflops": ours.get(f"{kind}_tflops"), "ours_peak_fraction": ours.get(f"{kind}_peak_fraction")}
                result.setdefault(net, {}).setdefault(mode, {})[kind] = entry
    return result


def correctness_rows(check):
    """(net, mode, tile, passed, worst tensor, its error / tolerance, failing tensors) per checked tile."""
    rows = []
    for net, modes in ((check or {}).get("correctness") or {}).items():
        for mode, tiles in modes.items():
            for tile, result in tiles.items():
                tensors = result.get("tensors") or {}
                worst, worst_ratio, failing = None, 0.0, []
                for name, t in tensors.items():
                    rel, tol = t.get("relative"), t.get("tolerance")
                    ratio = float("inf") if rel is None or not tol else rel / tol
                    if ratio >= worst_ratio:
                        worst, worst_ratio = name, ratio
                    if not t.get("pass"):
                        failing.append(f"{name} {rel if rel is None else format(rel, '.2e')} > {tol:.1e}")
                rows.append((net, mode, tile, bool(result.get("pass")), worst, worst_ratio, failing, result.get("cache_hit")))
    return rows


def fmt(value, spec):
    """The value in the format spec; a missing one as '-' of the same width."""
    if value is None:
        width = "".join(c for c in spec.split(".")[0] if c.isdigit())
        return "-".rjust(int(width) if width else 1)
    return format(value, spec)


def summary(results):
    lines = []
    check = results.get("check") or {}
    device = check.get("device") or {}
    smi = results.get("nvidia_smi") or {}
    lines.append(f"GPU check {results['date']}: {device.get('name') or smi.get('name') or 'no device'}"
                 f" ({device.get('architecture', '?')}, driver {smi.get('driver_version', device.get('driver_cuda', '?'))},"
                 f" SM clock {smi.get('clocks.sm [MHz]', '?')} of max {smi.get('clocks.max.sm [MHz]', '?')}),"
                 f" NVRTC {check.get('nvrtc', '?')}, {results['elapsed_s']} s of {results['total_s']} s")
    lines.append(f"Tolerances: {check.get('tolerances', '-')}")
    lines.append("")
    lines.append("Parts:")
    for name, p in results["parts"].items():
        lines.append(f"  {name:22} {p['state']:45} {p['seconds']:4d} s (limit {p['limit_s']} s)")
    lines.append("")
    lines.append("Ours vs PyTorch eager (cuDNN), batch 128, same GPU:")
    lines.append(f"  {'':24} {'ours img/s':>12} {'PyTorch img/s':>14} {'ratio':>7} {'TFLOP/s':>8} {'of peak':>8}")
    for net, modes in results["comparison"].items():
        for mode, kinds in modes.items():
            for kind, c in kinds.items():
                lines.append(f"  {net:10} {mode} {kind:8} {fmt(c['ours_images_per_s'], '12.0f')} {fmt(c['torch_images_per_s'], '14.0f')}"
                             f" {fmt(c['ratio'], '6.2f') + ('x' if c['ratio'] else ' ')} {fmt(c['ours_tflops'], '8.1f')} {fmt(c['ours_peak_fraction'], '8.1%')}")
    lines.append("")
    rows = correctness_rows(check)
    passed = sum(1 for r in rows if r[3])
    lines.append(f"Correctness against the CPU backend: {passed} of {len(rows)} network/mode/tile checks pass"
                 f" ({'all' if check.get('correctness_pass') else 'NOT all'}); worst tensor per check, error/tolerance:")
    for net, mode, tile, ok, worst, ratio, failing, cache_hit in rows:
        lines.append(f"  {'ok  ' if ok else 'FAIL'} {net:10} {mode} {tile:8} worst {worst} at {ratio:.2f} of its tolerance"
                     f"{'' if cache_hit else ' (kernels compiled here: cache miss)'}")
        for f in failing[:8]:
            lines.append(f"         {f}")
        if len(failing) > 8:
            lines.append(f"         ... and {len(failing) - 8} more (results.json)")
    lines.append("")
    for net in ("alexnet",):
        for mode in ("fp32", "tf32"):
            timing = ((check.get("timing") or {}).get(net) or {}).get(mode) or {}
            kernels = sorted(timing.get("kernels") or [], key=lambda k: -(k.get("ms") or 0))[:8]
            if kernels:
                lines.append(f"Slowest kernels, {net} {mode} training pass (ms, TFLOP/s, of peak):")
                for k in kernels:
                    lines.append(f"  {k['name'] + (' [' + k['tile'] + ']' if k.get('tile') else ''):52} {fmt(k.get('ms'), '8.3f')}"
                                 f"  {fmt(k.get('tflops'), '6.1f')}  {fmt(k.get('peak_fraction'), '6.1%')}")
            if timing.get("gemm_ms_tuned"):
                lines.append(f"  GEMM tiles tuned per kernel: {timing['gemm_ms_first_tile'] / timing['gemm_ms_tuned']:.2f}x faster than 64x64 everywhere")
    lines.append("")
    lines.append("Main job, `alexnet-fashion train` on the embedded subset:")
    for key, t in results["train"].items():
        if t is None:
            lines.append(f"  {key:16} no training log")
            continue
        lines.append(f"  {key:16} {t['status']}, {len(t['epochs'])} epochs, test accuracy {fmt(t['test_accuracy'], '.2%')},"
                     f" {fmt(t['images_per_second'], '.0f')} img/s (last epoch), batch {t['batch_size']}; {(t['device'] or '')[:160]}")
    gpu, cpu = results["train"].get("fashionnet"), results["train"].get("fashionnet_cpu")
    if gpu and cpu and gpu.get("test_accuracy") is not None and cpu.get("test_accuracy") is not None:
        lines.append(f"  FashionNet GPU vs CPU test accuracy after the same epochs: {100 * (gpu['test_accuracy'] - cpu['test_accuracy']):+.2f} points")
    d = results.get("distributed_nccl")
    if d:
        lines.append(f"  --distributed over NCCL (one rank) vs the plain GPU run: {'same' if d.get('pass') else 'NOT the same'} per-epoch figures;"
                     f" parameters {'identical' if d.get('parameters_identical') else 'differ by ' + fmt(d.get('max_abs_parameter_difference'), '.2e') + ' at most'}")
    problems = [f"error   {e.get('part')}: {e.get('message')}" for e in (check.get("errors") or []) + ((results.get("torch") or {}).get("errors") or [])]
    problems += [f"skipped {s.get('part')}: {s.get('reason')}" for s in (check.get("skipped") or []) + ((results.get("torch") or {}).get("skipped") or [])]
    if problems:
        lines.append("")
        lines.append("Errors and skipped parts:")
        lines.extend("  " + (p if len(p) < 300 else p[:300] + "...") for p in problems[:20])
        if len(problems) > 20:
            lines.append(f"  ... and {len(problems) - 20} more (results.json)")
    text = "\n".join(lines)
    if len(text) > SUMMARY_LIMIT:
        text = text[: SUMMARY_LIMIT - 60] + "\n... (summary cut at 10,000 characters; results.json has all)"
    return text


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--work", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--total-s", type=int, required=True)
    parser.add_argument("--elapsed-s", type=int, required=True)
    args = parser.parse_args()
    check = load_json(os.path.join(args.work, "check.json"))
    torch = load_json(os.path.join(args.work, "torch.json"))
    results = {
        "schema": 1,
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "total_s": args.total_s,
        "elapsed_s": args.elapsed_s,
        "parts": read_parts(args.work),
        "nvidia_smi": read_nvidia_smi(args.work),
        "torch": torch,
        "check": check,
        "train": {
            "fashionnet": read_training(args.work, "train-fashionnet"),
            "alexnet": read_training(args.work, "train-alexnet"),
            "fashionnet_cpu": read_training(args.work, "train-fashionnet-cpu"),
            "distributed_nccl": read_training(args.work, "train-distributed-nccl"),
        },
        "comparison": comparison(check, torch),
    }
    results["distributed_nccl"] = distributed_comparison(args.work, results["train"])
    results["correctness_pass"] = bool(check and check.get("correctness_pass"))
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, "results.json")
    with open(path + ".tmp", "w", encoding="utf-8") as f:
        json.dump(results, f, indent=1)
    os.replace(path + ".tmp", path)
    print()
    print(summary(results))
    print(f"\nWrote {path} and {os.path.join(args.out, 'gpu-check.log')}")
    asked = [p for p in results["parts"].values() if p["state"] != "not asked"]
    distributed = results["distributed_nccl"]
    return 0 if results["correctness_pass"] and all(p["state"] == "ok" for p in asked) and (distributed is None or distributed["pass"]) else 1


if __name__ == "__main__":
    raise SystemExit(main())
