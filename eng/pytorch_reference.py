"""PyTorch eager baseline for the GPU check: the canonical AlexNet (Krizhevsky et al. 2012, one tower with
groups = 2, LRN as the project defines it: torch's LocalResponseNorm(size, alpha * size, beta, k)), batch 128,
SGD momentum 0.9 / weight decay 5e-4, timed with CUDA events in FP32 and in TF32 (cuDNN and cuBLAS).
Prints 'RESULT key=value' lines that eng/gpu-check.sh reads."""
import argparse

import torch
import torch.nn as nn
import torch.nn.functional as F


def canonical_alexnet() -> nn.Sequential:
    def lrn():
        return nn.LocalResponseNorm(5, alpha=1e-4 * 5, beta=0.75, k=2.0)

    return nn.Sequential(
        nn.Conv2d(3, 96, 11, stride=4), nn.ReLU(inplace=True), lrn(), nn.MaxPool2d(3, 2),
        nn.Conv2d(96, 256, 5, padding=2, groups=2), nn.ReLU(inplace=True), lrn(), nn.MaxPool2d(3, 2),
        nn.Conv2d(256, 384, 3, padding=1), nn.ReLU(inplace=True),
        nn.Conv2d(384, 384, 3, padding=1, groups=2), nn.ReLU(inplace=True),
        nn.Conv2d(384, 256, 3, padding=1, groups=2), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2),
        nn.Flatten(),
        nn.Dropout(0.5), nn.Linear(9216, 4096), nn.ReLU(inplace=True),
        nn.Dropout(0.5), nn.Linear(4096, 4096), nn.ReLU(inplace=True),
        nn.Linear(4096, 1000),
    )


def time_ms(fn, steps: int) -> float:
    for _ in range(5):
        fn()
    torch.cuda.synchronize()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(steps):
        fn()
    end.record()
    torch.cuda.synchronize()
    return start.elapsed_time(end) / steps


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args()
    assert torch.cuda.is_available(), "PyTorch sees no CUDA device"
    device = torch.device("cuda")
    torch.backends.cudnn.benchmark = True
    print(f"PyTorch {torch.__version__}, CUDA {torch.version.cuda}, cuDNN {torch.backends.cudnn.version()}, {torch.cuda.get_device_name()}")
    torch.manual_seed(0)
    x = torch.randn(args.batch, 3, 227, 227, device=device)
    y = torch.randint(0, 1000, (args.batch,), device=device)
    for mode in ("fp32", "tf32"):
        tf32 = mode == "tf32"
        torch.backends.cuda.matmul.allow_tf32 = tf32
        torch.backends.cudnn.allow_tf32 = tf32  # on by default in PyTorch: FP32 mode must switch it off
        model = canonical_alexnet().to(device)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)

        def train_step():
            optimizer.zero_grad(set_to_none=True)
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            optimizer.step()

        def forward():
            with torch.no_grad():
                model(x)

        model.train()
        train = time_ms(train_step, args.steps)
        model.eval()
        fwd = time_ms(forward, args.steps)
        print(f"{mode}: training step {train:.2f} ms ({args.batch / train * 1e3:.0f} images/s), forward {fwd:.2f} ms ({args.batch / fwd * 1e3:.0f} images/s)")
        print(f"RESULT torch_{mode}_train_images_per_s={args.batch / train * 1e3:.1f}")
        print(f"RESULT torch_{mode}_forward_images_per_s={args.batch / fwd * 1e3:.1f}")


if __name__ == "__main__":
    main()
