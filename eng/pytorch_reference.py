"""PyTorch reference figures for the GPU check, measured on the GPU that runs our kernels.

Speed: the canonical AlexNet (Krizhevsky et al. 2012 as one tower, groups = 2 where the paper split the work over
two GPUs) and the example FashionNet in PyTorch eager (cuDNN, cudnn.benchmark on): the training step (forward,
cross-entropy, backward, SGD with momentum 0.9 and weight decay 5e-4) and the inference forward pass, each with
TF32 off and on for both cuBLAS and cuDNN. Our images/s are compared with these.

TF32 error: TF32 rounds the inputs of every product to a 10-bit mantissa, and how far that moves a result depends
on the network, its weights and its batch. So for every network the check program exports into --check-dir
(layers, initial parameters, input, labels, dropout masks), this script replays the check's protocol with TF32
off and then on, and records the relative L2 error ||tf32 - fp32|| / ||fp32|| of the logits, the loss, every
gradient, the worst SGD step's parameter change and the momentum buffer. The check's TF32 tolerances are a stated
multiple of these figures: our kernels must stay within a few times PyTorch's own TF32 error, while an indexing
fault gives errors of order 1. LRN is the project's (the paper's alpha on the sum of squares), i.e. torch's
local_response_norm(size, alpha * size, beta, k). The JSON file is rewritten after every figure, so a run cut
short keeps what it measured.
"""
import argparse, json, math, os, re, time, warnings

START = time.monotonic()
IMPORT_ERROR = None
try:
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
except Exception as e:  # reported in the JSON like any other failure
    torch = None
    IMPORT_ERROR = f"import torch: {type(e).__name__}: {e}"

# Recent PyTorch warns that the allow_tf32 flags will give way to fp32_precision; they still work.
warnings.filterwarnings("ignore", message="Please use the new API settings")

def say(line):
    try:
        print(line, flush=True)
    except OSError:  # a closed stdout must not stop the measurements; the JSON has them
        pass

def one_line(text, limit):
    return " ".join(str(text).split())[:limit]

class Report:
    """The JSON result, written atomically after every change."""

    def __init__(self, path, batch):
        self.path = path
        self.data = {"torch": {"version": "", "cuda": "", "cudnn": 0, "device": ""}, "batch": batch,
                     "timing": {}, "tf32_vs_fp32": {}, "errors": [], "skipped": []}

    def save(self):
        with open(self.path + ".tmp", "w") as f:
            json.dump(self.data, f, indent=1, allow_nan=False)
        os.replace(self.path + ".tmp", self.path)

    def error(self, part, message):
        self.data["errors"].append({"part": part, "message": one_line(message, 400)})
        if len(self.data["errors"]) <= 8:  # keeps stdout short; the JSON has them all
            say(f"ERROR {part}: {one_line(message, 140)}")
        self.save()

    def skip(self, part, reason):
        self.data["skipped"].append({"part": part, "reason": reason})
        self.save()
        say(f"skipped {part}: {reason}")

    def figure(self, part, key, name, value):  # a relative error; None when not finite
        self.data["tf32_vs_fp32"].setdefault(key, {})[name] = value
        if value is None:
            self.error(part, f"non-finite relative error for {name}")
        else:
            self.save()

def set_tf32(on):
    try:
        torch.backends.cuda.matmul.allow_tf32 = on
        torch.backends.cudnn.allow_tf32 = on  # on by default in PyTorch: FP32 must switch it off
    except (AttributeError, RuntimeError):  # a PyTorch without the old flags
        torch.backends.cuda.matmul.fp32_precision = torch.backends.cudnn.conv.fp32_precision = "tf32" if on else "ieee"

# ---- Speed ----

def features(key):
    relu, lrn = lambda: nn.ReLU(inplace=True), lambda: nn.LocalResponseNorm(5, alpha=1e-4 * 5, beta=0.75, k=2.0)
    if key == "alexnet":
        return [nn.Conv2d(3, 96, 11, stride=4), relu(), lrn(), nn.MaxPool2d(3, 2),
                nn.Conv2d(96, 256, 5, padding=2, groups=2), relu(), lrn(), nn.MaxPool2d(3, 2),
                nn.Conv2d(256, 384, 3, padding=1), relu(), nn.Conv2d(384, 384, 3, padding=1, groups=2), relu(),
                nn.Conv2d(384, 256, 3, padding=1, groups=2), relu(), nn.MaxPool2d(3, 2)]
    return [nn.Conv2d(1, 32, 3, padding=1), relu(), lrn(), nn.MaxPool2d(3, 2, 1),  # examples/FashionMnist/FashionNet.cs
            nn.Conv2d(32, 64, 3, padding=1), relu(), lrn(), nn.MaxPool2d(3, 2, 1),
            nn.Conv2d(64, 128, 3, padding=1), relu(), nn.Conv2d(128, 128, 3, padding=1, groups=2), relu(),
            nn.Conv2d(128, 64, 3, padding=1, groups=2), relu(), nn.MaxPool2d(3, 2)]

# name: (input shape, hidden dense widths, classes); each hidden layer is Dropout(0.5), Linear, ReLU.
TIMED = {"alexnet": ((3, 227, 227), (4096, 4096), 1000), "fashionnet": ((1, 28, 28), (512, 256), 10)}

def build(key):
    (shape, hidden, classes), layers = TIMED[key], features(key)
    with torch.no_grad():  # the classifier's input width, from a dummy image
        width = nn.Sequential(*layers)(torch.zeros(1, *shape)).numel()
    layers.append(nn.Flatten())
    for h in hidden:
        layers += [nn.Dropout(0.5), nn.Linear(width, h), nn.ReLU(inplace=True)]
        width = h
    layers.append(nn.Linear(width, classes))
    return nn.Sequential(*layers), shape, classes

def time_ms(fn, steps):
    def mean_ms(n):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        torch.cuda.synchronize()
        start.record()
        for _ in range(n):
            fn()
        end.record()
        end.synchronize()
        return start.elapsed_time(end) / n

    for _ in range(5):
        fn()
    previous = mean_ms(5)  # then warm until two successive rounds of 5 agree within 5%
    for _ in range(10):
        current = mean_ms(5)
        if abs(current - previous) <= 0.05 * previous:
            break
        previous = current
    return mean_ms(steps)

def time_network(rep, part, key, mode, batch, steps):
    set_tf32(mode == "tf32")
    torch.manual_seed(0)
    model, shape, classes = build(key)
    model, x = model.to("cuda"), torch.randn(batch, *shape, device="cuda")
    y = torch.randint(0, classes, (batch,), device="cuda")
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)

    def train_step():
        optimizer.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()
        optimizer.step()

    def forward():
        with torch.no_grad():
            model(x)

    train = time_ms(train_step, steps)  # in training mode (dropout on), as built
    model.eval()
    fwd = time_ms(forward, steps)
    figures = {"train_ms": train, "train_images_per_s": batch * 1e3 / train,
               "forward_ms": fwd, "forward_images_per_s": batch * 1e3 / fwd}
    rep.data["timing"].setdefault(key, {})[mode] = figures
    rep.save()
    say(f"{part}: train {train:.2f} ms ({figures['train_images_per_s']:.0f} images/s), "
        f"forward {fwd:.2f} ms ({figures['forward_images_per_s']:.0f} images/s)")

# ---- TF32 against FP32 on the check program's networks ----

PAIR = r"(\d+(?:x\d+)?)"
FLOAT = r"([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)"
DETAILS = {
    "Conv2d": rf"(\d+) filters, k={PAIR} s={PAIR} p={PAIR} g=(\d+)(, no bias)?(, ReLU fused)?",
    "Relu": r"(fused into \S+|in place)",
    "Lrn": rf"size=(\d+) alpha={FLOAT} beta={FLOAT} k={FLOAT}",
    "MaxPool": rf"k={PAIR} s={PAIR} p={PAIR}",
    "Dropout": rf"p={FLOAT}",
    "Dense": r"(\d+) -> (\d+)(, no bias)?(, ReLU fused)?",
    "SoftmaxCrossEntropy": r"softmax cross-entropy over (\d+) classes",
}

def pair(text):  # "3" -> (3, 3); "3x5" -> (3, 5), height x width
    h, _, w = text.partition("x")
    return int(h), int(w or h)

def parse_layers(meta):
    """The layer list as operations; anything unexpected raises."""
    shape, ops = [int(d) for d in meta["input_shape"]], []
    for position, layer in enumerate(meta["layers"]):
        kind, name, details = layer["kind"], layer["name"], layer["details"]
        where = f"layer {position} ({kind} {name}, '{details}')"
        if layer["index"] != position or kind not in DETAILS:
            raise ValueError(f"unexpected index or kind: {where}")
        m = re.fullmatch(DETAILS[kind], details)
        if m is None:
            raise ValueError(f"unexpected details: {where}")
        g = m.groups()
        op = {"kind": kind, "name": name, "index": position, "in": shape,
              "out": [int(d) for d in layer["output_shape"]], "params": [], "relu": False}
        if kind == "Conv2d":
            op.update(k=pair(g[1]), s=pair(g[2]), p=pair(g[3]), groups=int(g[4]),
                      bias=g[5] is None, relu=g[6] is not None)  # filters: checked by forward's output shape
        elif kind == "Dense":  # the widths: F.linear checks the input, forward's output shape the output
            op.update(bias=g[2] is None, relu=g[3] is not None)
        elif kind == "Relu":
            op["apply"] = g[0] == "in place"
            if not op["apply"] and not (ops and ops[-1]["relu"]):
                raise ValueError(f"no fused ReLU in the layer before: {where}")
        elif kind == "Lrn":
            op.update(size=int(g[0]), alpha=float(g[1]), beta=float(g[2]), k=float(g[3]))
        elif kind == "MaxPool":
            op.update(k=pair(g[0]), s=pair(g[1]), p=pair(g[2]))
        elif kind == "Dropout":
            p = float(g[0])
            if not 0 <= p < 1:
                raise ValueError(f"dropout probability out of range: {where}")
            op["scale"] = float(torch.tensor(1.0) / (1.0 - torch.tensor(p, dtype=torch.float32)))  # in float32
        elif kind == "SoftmaxCrossEntropy":
            op["classes"] = int(g[0])
        if kind in ("Conv2d", "Dense"):
            op["params"] = [name + ".weight"] + ([name + ".bias"] if op["bias"] else [])
        ops.append(op)
        shape = op["out"]
    if [op["kind"] for op in ops].count("SoftmaxCrossEntropy") != 1 or ops[-1]["kind"] != "SoftmaxCrossEntropy":
        raise ValueError("expected exactly one SoftmaxCrossEntropy layer, the last")
    return ops

def forward(ops, params, x, masks):
    """Logits; masks: {layer index: 0/1 mask} for dropout on, None for dropout off."""
    for op in ops:
        kind = op["kind"]
        if kind in ("Conv2d", "Dense"):
            w = params[op["name"] + ".weight"]
            b = params[op["name"] + ".bias"] if op["bias"] else None
            if kind == "Conv2d":
                x = F.conv2d(x, w, b, op["s"], op["p"], 1, op["groups"])
            else:
                x = F.linear(x.reshape(x.shape[0], -1), w, b)
            if op["relu"]:
                x = F.relu(x)
        elif kind == "Relu" and op["apply"]:
            x = F.relu(x)
        elif kind == "Lrn":
            x = F.local_response_norm(x, op["size"], alpha=op["alpha"] * op["size"], beta=op["beta"], k=op["k"])
        elif kind == "MaxPool":
            x = F.max_pool2d(x, op["k"], op["s"], op["p"])
        elif kind == "Dropout" and masks is not None:
            x = x * masks[op["index"]].view_as(x) * op["scale"]
        if list(x.shape[1:]) != op["out"]:
            raise ValueError(f"{op['name']}: output shape {list(x.shape[1:])}, expected {op['out']}")
    return x

def loss_and_gradients(ops, params, names, x, y, masks, tf32):
    set_tf32(tf32)
    leaves = {n: params[n].detach().requires_grad_(True) for n in names}
    loss = F.cross_entropy(forward(ops, leaves, x, masks), y)
    gradients = torch.autograd.grad(loss, [leaves[n] for n in names])
    return loss.detach(), dict(zip(names, gradients))

def sgd_step(params, gradients, velocity, lr, momentum, weight_decay):
    """torch.optim.SGD (dampening 0, no Nesterov): the new parameters and momentum buffers."""
    new_params, new_velocity = {}, {}
    for n, p in params.items():
        g = gradients[n].add(p, alpha=weight_decay)
        v = g if velocity is None else velocity[n].mul(momentum).add(g)
        new_velocity[n], new_params[n] = v, p.add(v, alpha=-lr)
    return new_params, new_velocity

def relative_error(pairs):
    """||tf32 - fp32|| / ||fp32|| over all (tf32, fp32) pairs together, in float64; None when not finite."""
    diff = norm = 0.0
    for tf32, fp32 in pairs:
        expected = fp32.double()
        diff += float((tf32.double() - expected).pow(2).sum())
        norm += float(expected.pow(2).sum())
    value = math.sqrt(diff / norm) if norm != 0 else math.sqrt(diff)
    return value if math.isfinite(value) else None

def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    length = int.from_bytes(data[:8], "little")
    header, base, view, tensors = json.loads(data[8:8 + length].decode("utf-8")), 8 + length, memoryview(data), {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        shape, (begin, end) = [int(d) for d in info["shape"]], info["data_offsets"]
        count = math.prod(shape)
        if info["dtype"] != "F32" or end - begin != 4 * count or begin < 0 or base + end > len(data):
            raise ValueError(f"{os.path.basename(path)}: bad entry {name}: {info}")
        buffer = bytearray(view[base + begin:base + end])  # a copy, aligned for float32
        tensors[name] = torch.frombuffer(buffer, dtype=torch.float32).reshape(shape) if count else torch.zeros(shape)
    return tensors

def check_network(rep, part, key, directory):
    with open(os.path.join(directory, key + ".json")) as f:
        meta = json.load(f)
    if meta.get("key", key) != key:
        raise ValueError(f"{key}.json names the key {meta['key']!r}")
    ops = parse_layers(meta)
    names = [p["name"] for p in meta["parameters"]]
    if sorted(names) != sorted(n for op in ops for n in op["params"]):
        raise ValueError(f"the parameters {names} do not match the layers")
    tensors = read_safetensors(os.path.join(directory, key + ".safetensors"))

    def get(name, shape):
        if name not in tensors or list(tensors[name].shape) != list(shape):
            raise ValueError(f"{key}.safetensors: no tensor {name} of shape {list(shape)}")
        return tensors[name].to("cuda")

    batch, classes = int(meta["batch"]), ops[-1]["classes"]
    if int(meta["classes"]) != classes:
        raise ValueError(f"classes {meta['classes']} but the loss layer has {classes}")
    x = get("input", [batch] + [int(d) for d in meta["input_shape"]])
    labels = get("labels", [batch])
    if not bool(((labels == labels.round()) & (labels >= 0) & (labels < classes)).all()):
        raise ValueError("labels are not class indices")
    y = labels.long()
    initial = {p["name"]: get(p["name"], p["shape"]) for p in meta["parameters"]}

    def masks(seed):  # {layer index: mask} for every Dropout layer
        found = {op["index"]: get(f"dropout.{op['index']}.{seed}", [batch] + op["in"])
                 for op in ops if op["kind"] == "Dropout"}
        if not all(bool(((m == 0) | (m == 1)).all()) for m in found.values()):
            raise ValueError(f"dropout masks of seed {seed} hold values other than 0 and 1")
        return found

    sgd, seeds = meta["sgd"], [int(s) for s in meta["step_dropout_seeds"]]
    lr, momentum, weight_decay = float(sgd["lr"]), float(sgd["momentum"]), float(sgd["weight_decay"])
    if not seeds:
        raise ValueError("no step_dropout_seeds")

    # 1. Logits, dropout off.
    logits = {}
    with torch.no_grad():
        for tf32 in (False, True):
            set_tf32(tf32)
            logits[tf32] = forward(ops, initial, x, None)
    rep.figure(part, key, "logits", relative_error([(logits[True], logits[False])]))
    if rep.data["tf32_vs_fp32"][key]["logits"] is not None and rep.data["tf32_vs_fp32"][key]["logits"] < 1e-5:
        say(f"{part}: logits barely differ; is TF32 in effect?")
    # 2. Loss with the loss seed's dropout masks, and every gradient.
    loss_masks = masks(int(meta["loss_dropout_seed"]))
    loss32, grads32 = loss_and_gradients(ops, initial, names, x, y, loss_masks, False)
    loss_tf, grads_tf = loss_and_gradients(ops, initial, names, x, y, loss_masks, True)
    rep.figure(part, key, "loss", relative_error([(loss_tf, loss32)]))
    for n in names:
        rep.figure(part, key, "gradient " + n, relative_error([(grads_tf[n], grads32[n])]))
    # 3. SGD steps: both sides start each step from the FP32 side's parameters; each keeps its own momentum.
    params, velocity32, velocity_tf, worst = initial, None, None, 0.0
    for seed in seeds:
        step_masks = masks(seed)
        _, g32 = loss_and_gradients(ops, params, names, x, y, step_masks, False)
        _, g_tf = loss_and_gradients(ops, params, names, x, y, step_masks, True)
        new32, velocity32 = sgd_step(params, g32, velocity32, lr, momentum, weight_decay)
        new_tf, velocity_tf = sgd_step(params, g_tf, velocity_tf, lr, momentum, weight_decay)
        error = relative_error([(new_tf[n] - params[n], new32[n] - params[n]) for n in names])
        worst = None if error is None or worst is None else max(worst, error)
        params = new32
    rep.figure(part, key, "sgd_step_worst", worst)
    rep.figure(part, key, "momentum", relative_error([(velocity_tf[n], velocity32[n]) for n in names]))

    got, show = rep.data["tf32_vs_fp32"][key], lambda v: "null" if v is None else f"{v:.1e}"
    grads = [v for k, v in got.items() if k.startswith("gradient ") and v is not None] or [math.nan]
    say(f"{part}: logits {show(got['logits'])}, loss {show(got['loss'])}, "
        f"gradients {min(grads):.1e}..{max(grads):.1e}, sgd_step_worst {show(worst)}, momentum {show(got['momentum'])}")

# ---- Driver ----

def main():
    parser = argparse.ArgumentParser(description="PyTorch speed and TF32-error reference for the GPU check")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--out", required=True, help="JSON file, rewritten after every figure")
    parser.add_argument("--check-dir", help="networks exported by the check program: <key>.json + <key>.safetensors")
    parser.add_argument("--deadline-s", type=float, help="seconds from the start after which no part starts")
    args = parser.parse_args()
    if args.batch < 1 or args.steps < 1:
        parser.error("--batch and --steps must be positive")
    rep = Report(args.out, args.batch)
    rep.save()

    parts = [(f"timing {k} {m}", lambda part, k=k, m=m: time_network(rep, part, k, m, args.batch, args.steps))
             for k in ("alexnet", "fashionnet") for m in ("fp32", "tf32")]
    if args.check_dir is not None:
        if not os.path.isdir(args.check_dir):
            rep.error("check-dir", f"{args.check_dir} is not a directory")
        else:
            files = [f for f in os.listdir(args.check_dir) if f.endswith(".json")
                     and os.path.abspath(os.path.join(args.check_dir, f)) != os.path.abspath(args.out)]
            for k in sorted(f[:-len(".json")] for f in files):
                parts.append((f"tf32_vs_fp32 {k}", lambda part, k=k: check_network(rep, part, k, args.check_dir)))

    problem = IMPORT_ERROR
    if torch is not None:
        try:
            rep.data["torch"].update(version=str(torch.__version__), cuda=str(torch.version.cuda or ""),
                                     cudnn=int(torch.backends.cudnn.version() or 0))
            if torch.cuda.is_available():
                rep.data["torch"]["device"] = torch.cuda.get_device_name()
            else:
                problem = "PyTorch sees no CUDA device"
        except Exception as e:
            problem = f"{type(e).__name__}: {e}"
    if problem:
        rep.error("cuda", problem)
        for name, _ in parts:
            rep.skip(name, "no CUDA")
        return 3
    rep.save()
    t = rep.data["torch"]
    say(f"PyTorch {t['version']}, CUDA {t['cuda']}, cuDNN {t['cudnn']}, {t['device']}; "
        f"timing at batch {args.batch}, {args.steps} steps; {len(parts)} parts")
    torch.backends.cudnn.benchmark = True

    for name, run in parts:
        if args.deadline_s is not None and time.monotonic() - START > args.deadline_s:
            rep.skip(name, "deadline")
            continue
        try:
            run(name)
        except Exception as e:
            rep.error(name, f"{type(e).__name__}: {e}")
    errors = rep.data["errors"]
    say(f"wrote {args.out}: {len(errors)} error(s), {len(rep.data['skipped'])} part(s) skipped, "
        f"{time.monotonic() - START:.0f} s")
    return 1 if errors else 0

if __name__ == "__main__":
    raise SystemExit(main())
