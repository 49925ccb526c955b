using System.Diagnostics;
using AlexNetCompiler.Cpu;

namespace AlexNetCompiler.Bench;

/// <summary>GFLOP/s of the fast CPU kernels on the shapes of the canonical AlexNet.</summary>
internal static unsafe class KernelBench
{
    public static void RunGemm(int threads)
    {
        using var ctx = new CpuContext(threads);
        using var one = new CpuContext(1);
        Console.WriteLine($"GEMM micro-kernel: {Gemm.BestKernel}");
        (int M, int N, int K, bool TA, bool TB, string Name)[] shapes =
        [
            (384, 384, 384, false, false, "square 384 (in cache)"),
            (96, 3025, 363, false, false, "conv1 fwd (1 sample)"),
            (128, 729, 1200, false, false, "conv2 fwd (1 sample, 1 group)"),
            (384, 169, 2304, false, false, "conv3 fwd"),
            (1200, 729, 128, true, false, "conv2 dInput cols (W^T dY)"),
            (128, 1200, 729, false, true, "conv2 dW (dY col^T)"),
            (16, 4096, 9216, false, true, "fc6 fwd (X W^T)"),
            (16, 9216, 4096, false, false, "fc6 dX (dY W)"),
            (4096, 9216, 16, true, false, "fc6 dW (dY^T X)"),
        ];
        foreach (var s in shapes)
        {
            float[] a = Random(s.M * s.K, 1), b = Random(s.K * s.N, 2), c = new float[s.M * s.N];
            int lda = s.TA ? s.M : s.K, ldb = s.TB ? s.K : s.N;
            fixed (float* pa = a, pb = b, pc = c)
            {
                float* pa2 = pa, pb2 = pb, pc2 = pc;
                double t1 = Time(() => Gemm.Multiply(s.M, s.N, s.K, pa2, lda, s.TA, pb2, ldb, s.TB, pc2, s.N, false, GemmEpilogue.None, one), cpuTime: true);
                double tn = Time(() => Gemm.Multiply(s.M, s.N, s.K, pa2, lda, s.TA, pb2, ldb, s.TB, pc2, s.N, false, GemmEpilogue.None, ctx));
                double flops = 2.0 * s.M * s.N * s.K;
                Console.WriteLine($"  {s.Name,-32} M={s.M,5} N={s.N,5} K={s.K,5}  1 thread (CPU time) {flops / t1 / 1e9,7:F1} GFLOP/s   {threads} threads {flops / tn / 1e9,7:F1} GFLOP/s");
            }
        }
    }

    /// <summary>The layer shapes <see cref="RunLayers"/> times, per network.</summary>
    private sealed record LayerShapes(string Title, (string Name, Conv2dGeometry G, bool FirstLayer)[] Convs,
        (string Name, LrnGeometry G)[] Lrns, (string Name, PoolGeometry G)[] Pools, (string Name, int In, int Out)[] Denses);

    /// <summary>The classifier both AlexNets share (9216 -> 4096 -> 4096 -> 1000).</summary>
    private static readonly (string Name, int In, int Out)[] AlexNetDenses = [("fc6", 9216, 4096), ("fc7", 4096, 4096), ("fc8", 4096, 1000)];

    private static LayerShapes ShapesOf(string network) => network switch
    {
        "canonical" => new LayerShapes("Canonical AlexNet",
            [
                ("conv1", new Conv2dGeometry(3, 227, 227, 96, 55, 55, 11, 11, 4, 4, 0, 0, 1), true),
                ("conv2", new Conv2dGeometry(96, 27, 27, 256, 27, 27, 5, 5, 1, 1, 2, 2, 2), false),
                ("conv3", new Conv2dGeometry(256, 13, 13, 384, 13, 13, 3, 3, 1, 1, 1, 1, 1), false),
                ("conv4", new Conv2dGeometry(384, 13, 13, 384, 13, 13, 3, 3, 1, 1, 1, 1, 2), false),
                ("conv5", new Conv2dGeometry(384, 13, 13, 256, 13, 13, 3, 3, 1, 1, 1, 1, 2), false),
            ],
            [("lrn1", new LrnGeometry(96, 55, 55, 5, 1e-4f, 0.75f, 2f)), ("lrn2", new LrnGeometry(256, 27, 27, 5, 1e-4f, 0.75f, 2f))],
            [
                ("pool1", new PoolGeometry(96, 55, 55, 27, 27, 3, 3, 2, 2, 0, 0)),
                ("pool2", new PoolGeometry(256, 27, 27, 13, 13, 3, 3, 2, 2, 0, 0)),
                ("pool5", new PoolGeometry(256, 13, 13, 6, 6, 3, 3, 2, 2, 0, 0)),
            ],
            AlexNetDenses),
        "torchvision" => new LayerShapes("torchvision AlexNet (adaptive average pool not timed)",
            [
                ("conv1", new Conv2dGeometry(3, 224, 224, 64, 55, 55, 11, 11, 4, 4, 2, 2, 1), true),
                ("conv2", new Conv2dGeometry(64, 27, 27, 192, 27, 27, 5, 5, 1, 1, 2, 2, 1), false),
                ("conv3", new Conv2dGeometry(192, 13, 13, 384, 13, 13, 3, 3, 1, 1, 1, 1, 1), false),
                ("conv4", new Conv2dGeometry(384, 13, 13, 256, 13, 13, 3, 3, 1, 1, 1, 1, 1), false),
                ("conv5", new Conv2dGeometry(256, 13, 13, 256, 13, 13, 3, 3, 1, 1, 1, 1, 1), false),
            ],
            [],
            [
                ("pool1", new PoolGeometry(64, 55, 55, 27, 27, 3, 3, 2, 2, 0, 0)),
                ("pool2", new PoolGeometry(192, 27, 27, 13, 13, 3, 3, 2, 2, 0, 0)),
                ("pool5", new PoolGeometry(256, 13, 13, 6, 6, 3, 3, 2, 2, 0, 0)),
            ],
            AlexNetDenses),
        // The main job's network (examples/FashionMnist/FashionNet.cs).
        "fashion" => new LayerShapes("FashionNet",
            [
                ("conv1", new Conv2dGeometry(1, 28, 28, 32, 28, 28, 3, 3, 1, 1, 1, 1, 1), true),
                ("conv2", new Conv2dGeometry(32, 14, 14, 64, 14, 14, 3, 3, 1, 1, 1, 1, 1), false),
                ("conv3", new Conv2dGeometry(64, 7, 7, 128, 7, 7, 3, 3, 1, 1, 1, 1, 1), false),
                ("conv4", new Conv2dGeometry(128, 7, 7, 128, 7, 7, 3, 3, 1, 1, 1, 1, 2), false),
                ("conv5", new Conv2dGeometry(128, 7, 7, 64, 7, 7, 3, 3, 1, 1, 1, 1, 2), false),
            ],
            [("lrn1", new LrnGeometry(32, 28, 28, 5, 1e-4f, 0.75f, 2f)), ("lrn2", new LrnGeometry(64, 14, 14, 5, 1e-4f, 0.75f, 2f))],
            [
                ("pool1", new PoolGeometry(32, 28, 28, 14, 14, 3, 3, 2, 2, 1, 1)),
                ("pool2", new PoolGeometry(64, 14, 14, 7, 7, 3, 3, 2, 2, 1, 1)),
                ("pool5", new PoolGeometry(64, 7, 7, 3, 3, 3, 3, 2, 2, 0, 0)),
            ],
            [("fc1", 576, 512), ("fc2", 512, 256), ("fc3", 256, 10)]),
        _ => throw new ArgumentException($"kernels --net {network}: expected canonical, torchvision or fashion."),
    };

    /// <summary>Every layer kernel of a network (either AlexNet or FashionNet), forward and backward, at the given batch.</summary>
    public static void RunLayers(int threads, int batch, string network = "canonical")
    {
        using var ctx = new CpuContext(threads);
        // One thread: time by CPU time, which on a shared machine counts only the cycles the kernels got.
        bool cpu = threads == 1;
        LayerShapes shapes = ShapesOf(network);
        Console.WriteLine($"{shapes.Title} layers, batch {batch}, {threads} thread(s), {(cpu ? "CPU" : "wall")} time:");
        double forwardTotal = 0, backwardTotal = 0;
        var convs = shapes.Convs;
        foreach (var (name, g, first) in convs)
        {
            float[] x = Random(batch * g.InputLength, 1), w = Random(g.WeightLength, 2), b = Random(g.OutChannels, 3);
            float[] y = new float[batch * g.OutputLength], dy = Random(y.Length, 4);
            float[] dx = first ? [] : new float[x.Length], dw = new float[w.Length], db = new float[g.OutChannels];
            double flops = 2.0 * batch * g.OutputLength * (g.InChannels / g.Groups) * g.KernelHeight * g.KernelWidth;
            double tf = Time(() => Conv2dKernels.Forward(g, batch, x, w, b, y, true, ctx), cpu);
            double tb = Time(() => Conv2dKernels.Backward(g, batch, x, w, dy, dx, dw, db, ctx), cpu);
            // Inference keeps the weights' prepared form between calls (the generated forward pass outside training).
            var cache = new Conv2dWeightCache();
            double ti = Time(() => Conv2dKernels.Forward(g, batch, x, w, b, y, true, ctx, weightCache: cache), cpu);
            double bflops = flops * (first ? 1 : 2);
            forwardTotal += tf; backwardTotal += tb;
            Console.WriteLine($"  {name,-6} forward {tf * 1e3,8:F2} ms {flops / tf / 1e9,7:F1} GFLOP/s   backward {tb * 1e3,8:F2} ms {bflops / tb / 1e9,7:F1} GFLOP/s" +
                $"   forward with the weight cache (inference) {ti * 1e3,8:F2} ms");
        }
        var lrns = shapes.Lrns;
        foreach (var (name, g) in lrns)
        {
            float[] x = Random(batch * g.Length, 5), y = new float[x.Length], s = new float[x.Length], dy = Random(x.Length, 6), dx = new float[x.Length];
            double tf = Time(() => LrnKernels.Forward(g, batch, x, y, s, ctx), cpu);
            double tb = Time(() => LrnKernels.Backward(g, batch, x, y, s, dy, dx, ctx), cpu);
            forwardTotal += tf; backwardTotal += tb;
            Console.WriteLine($"  {name,-6} forward {tf * 1e3,8:F2} ms   backward {tb * 1e3,8:F2} ms");
        }
        var pools = shapes.Pools;
        foreach (var (name, g) in pools)
        {
            float[] x = Random(batch * g.InputLength, 7), y = new float[batch * g.OutputLength], dy = Random(y.Length, 8), dx = new float[x.Length];
            int[] arg = new int[y.Length];
            double tf = Time(() => MaxPoolKernels.Forward(g, batch, x, y, arg, ctx), cpu);
            double tb = Time(() => MaxPoolKernels.Backward(g, batch, dy, arg, dx, ctx), cpu);
            // Inference keeps no indices (the generated forward pass passes none outside training).
            double ti = Time(() => MaxPoolKernels.Forward(g, batch, x, y, Span<int>.Empty, ctx), cpu);
            forwardTotal += tf; backwardTotal += tb;
            Console.WriteLine($"  {name,-6} forward {tf * 1e3,8:F2} ms   backward {tb * 1e3,8:F2} ms   forward without indices (inference) {ti * 1e3,8:F2} ms");
        }
        var denses = shapes.Denses;
        foreach (var (name, inF, outF) in denses)
        {
            var (forward, backward, backwardWithUpdate) = DenseCalls(batch, inF, outF, ctx);
            double flops = 2.0 * batch * inF * outF;
            double tf = Time(forward, cpu);
            double tb = Time(backward, cpu);
            double tu = Time(backwardWithUpdate, cpu);
            forwardTotal += tf; backwardTotal += tb;
            Console.WriteLine($"  {name,-6} forward {tf * 1e3,8:F2} ms {flops / tf / 1e9,7:F1} GFLOP/s   backward {tb * 1e3,8:F2} ms {2 * flops / tb / 1e9,7:F1} GFLOP/s" +
                $"   backward with the update {tu * 1e3,8:F2} ms");
        }
        Console.WriteLine($"  sum of kernels: forward {forwardTotal * 1e3:F1} ms, backward {backwardTotal * 1e3:F1} ms, step ~{(forwardTotal + backwardTotal) * 1e3:F1} ms ({batch / (forwardTotal + backwardTotal):F1} img/s, ReLU/dropout/loss/SGD not included)");
    }

    /// <summary>
    /// The 3x3 stride-1 layers of both AlexNets (conv3-conv5, 13x13, padding 1) with each convolution algorithm forced:
    /// forward (bias and ReLU fused, as the networks call it) and backward (input, weight and bias gradients; the weight
    /// gradient runs im2col + GEMM under both, so the difference is the input gradient's), wall time, min / median / max
    /// of <paramref name="repetitions"/> samples after warming (<see cref="Timing"/>).
    /// </summary>
    public static void RunConvAlgorithms(int threads, int batch, int repetitions)
    {
        // One context per algorithm, so that each one's scratch can be reported.
        using var im2colContext = new CpuContext(threads);
        using var winogradContext = new CpuContext(threads);
        Console.WriteLine($"3x3 convolutions, batch {batch}, {threads} thread(s), wall time in ms (min / median / max of {repetitions}):");
        (string Name, Conv2dGeometry G)[] convs =
        [
            ("AlexNet2012 conv3", new Conv2dGeometry(256, 13, 13, 384, 13, 13, 3, 3, 1, 1, 1, 1, 1)),
            ("AlexNet2012 conv4", new Conv2dGeometry(384, 13, 13, 384, 13, 13, 3, 3, 1, 1, 1, 1, 2)),
            ("AlexNet2012 conv5", new Conv2dGeometry(384, 13, 13, 256, 13, 13, 3, 3, 1, 1, 1, 1, 2)),
            ("torchvision conv3", new Conv2dGeometry(192, 13, 13, 384, 13, 13, 3, 3, 1, 1, 1, 1, 1)),
            ("torchvision conv4", new Conv2dGeometry(384, 13, 13, 256, 13, 13, 3, 3, 1, 1, 1, 1, 1)),
            ("torchvision conv5", new Conv2dGeometry(256, 13, 13, 256, 13, 13, 3, 3, 1, 1, 1, 1, 1)),
        ];
        foreach (var (name, g) in convs)
        {
            float[] x = Random(batch * g.InputLength, 1), w = Random(g.WeightLength, 2), b = Random(g.OutChannels, 3);
            float[] y = new float[batch * g.OutputLength], dy = Random(y.Length, 4), dx = new float[x.Length];
            float[] dw = new float[w.Length], db = new float[g.OutChannels];
            foreach (Conv2dAlgorithm algorithm in new[] { Conv2dAlgorithm.Im2Col, Conv2dAlgorithm.Winograd })
            {
                CpuContext ctx = algorithm == Conv2dAlgorithm.Winograd ? winogradContext : im2colContext;
                TimingSummary forward = TimingSummary.Of(Timing.WarmThenTime(repetitions,
                    () => Conv2dKernels.Forward(g, batch, x, w, b, y, true, ctx, algorithm)).Seconds);
                TimingSummary backward = TimingSummary.Of(Timing.WarmThenTime(repetitions,
                    () => Conv2dKernels.Backward(g, batch, x, w, dy, dx, dw, db, ctx, algorithm)).Seconds);
                Console.WriteLine($"  {name,-18} {algorithm,-8} forward {Ms(forward)}   backward {Ms(backward)}");
            }
        }
        Console.WriteLine($"  scratch held after all layers: im2col {im2colContext.ScratchBytes / 1048576.0:F1} MiB, Winograd {winogradContext.ScratchBytes / 1048576.0:F1} MiB (GEMM packing and im2col columns included)");
    }

    /// <summary>
    /// Both AlexNets' 5x5 layers (conv2, 27x27, padding 2), im2col + GEMM against Winograd F(2x2, 5x5), forward (bias and
    /// ReLU fused) and backward (both gradients by the forced algorithm): after both are warmed (<see cref="Timing"/>),
    /// <paramref name="pairs"/> pairs of single calls, the order within a pair alternating, so that the machine's slow
    /// and fast spells fall on both alike. Reports each side's min / median / max and the quartiles of the per-pair
    /// ratio Winograd / im2col.
    /// </summary>
    public static void RunConvPairs(int threads, int batch, int pairs)
    {
        using var ctx = new CpuContext(threads);
        Console.WriteLine($"5x5 convolutions, batch {batch}, {threads} thread(s), {pairs} alternating pairs, wall time in ms (min / median / max):");
        (string Name, Conv2dGeometry G)[] convs =
        [
            ("AlexNet2012 conv2", new Conv2dGeometry(96, 27, 27, 256, 27, 27, 5, 5, 1, 1, 2, 2, 2)),
            ("torchvision conv2", new Conv2dGeometry(64, 27, 27, 192, 27, 27, 5, 5, 1, 1, 2, 2, 1)),
        ];
        foreach (var (name, g) in convs)
        {
            float[] x = Random(batch * g.InputLength, 1), w = Random(g.WeightLength, 2), b = Random(g.OutChannels, 3);
            float[] y = new float[batch * g.OutputLength], dy = Random(y.Length, 4), dx = new float[x.Length];
            float[] dw = new float[w.Length], db = new float[g.OutChannels];
            foreach (bool backward in new[] { false, true })
            {
                Action Call(Conv2dAlgorithm algorithm) => backward
                    ? () => Conv2dKernels.Backward(g, batch, x, w, dy, dx, dw, db, ctx, algorithm)
                    : () => Conv2dKernels.Forward(g, batch, x, w, b, y, true, ctx, algorithm);
                Action im2col = Call(Conv2dAlgorithm.Im2Col), winograd = Call(Conv2dAlgorithm.Winograd);
                Timing.WarmThenTime(1, im2col);
                Timing.WarmThenTime(1, winograd);
                double[] tIm2col = new double[pairs], tWinograd = new double[pairs], ratio = new double[pairs];
                for (int i = 0; i < pairs; i++)
                {
                    if (i % 2 == 0) { tIm2col[i] = Timing.TimeOnce(im2col, 1); tWinograd[i] = Timing.TimeOnce(winograd, 1); }
                    else { tWinograd[i] = Timing.TimeOnce(winograd, 1); tIm2col[i] = Timing.TimeOnce(im2col, 1); }
                    ratio[i] = tWinograd[i] / tIm2col[i];
                }
                Array.Sort(ratio);
                string pass = backward ? "backward" : "forward ";
                Console.WriteLine($"  {name,-18} {pass} im2col {Ms(TimingSummary.Of(tIm2col))}   Winograd {Ms(TimingSummary.Of(tWinograd))}   " +
                    $"Winograd / im2col per pair: quartiles {ratio[pairs / 4]:F3} / {ratio[pairs / 2]:F3} / {ratio[3 * pairs / 4]:F3}");
            }
        }
    }

    /// <summary>
    /// AlexNet's dense layers at one batch: the forward product, the backward pass, and the backward pass with the SGD
    /// update applied inside it (a training step's path), one call of each in turn per round after three warming rounds,
    /// so that the machine's slow and fast spells fall on all three alike.
    /// </summary>
    public static void RunDense(int threads, int batch, int rounds)
    {
        using var ctx = new CpuContext(threads);
        Console.WriteLine($"Dense layers, batch {batch}, {threads} thread(s), {rounds} rounds, wall time in ms (min / median / max):");
        foreach (var (name, inF, outF) in AlexNetDenses)
        {
            var (forward, backward, backwardWithUpdate) = DenseCalls(batch, inF, outF, ctx);
            Action[] calls = [forward, backward, backwardWithUpdate];
            var seconds = new double[calls.Length][];
            for (int c = 0; c < calls.Length; c++) seconds[c] = new double[rounds];
            for (int round = -3; round < rounds; round++)
                for (int c = 0; c < calls.Length; c++)
                {
                    double t = Timing.TimeOnce(calls[c], 1);
                    if (round >= 0) seconds[c][round] = t;
                }
            Console.WriteLine($"  {name,-4} forward {Ms(TimingSummary.Of(seconds[0]))}   backward {Ms(TimingSummary.Of(seconds[1]))}   " +
                $"backward with the update {Ms(TimingSummary.Of(seconds[2]))}");
        }
    }

    /// <summary>
    /// One dense layer's forward product, backward pass, and backward pass as a training step runs it (the weight's
    /// SGD update applied inside, the weight being the optimizer's whole parameter buffer; past the first step, whose
    /// rule does not read the velocity), on random buffers.
    /// </summary>
    private static (Action Forward, Action Backward, Action BackwardWithUpdate) DenseCalls(int batch, int inF, int outF, CpuContext ctx)
    {
        float[] x = Random(batch * inF, 9), w = Random(outF * inF, 10), b = Random(outF, 11), y = new float[batch * outF], dy = Random(y.Length, 12);
        float[] dx = new float[x.Length], dw = new float[w.Length], db = new float[outF];
        var sgd = new AlexNetCompiler.Training.Sgd(w.Length, BenchSetup.Sgd, ctx) { StepCount = 1 };
        return (() => DenseKernels.Forward(batch, inF, outF, x, w, b, y, true, ctx),
            () => DenseKernels.Backward(batch, inF, outF, x, w, dy, dx, dw, db, ctx),
            () => DenseKernels.Backward(batch, inF, outF, x, w, dy, dx, dw, db, ctx, sgd.UpdateOf(w, 0, w.Length)));
    }

    private static string Ms(TimingSummary t) => $"{t.Min * 1e3,7:F2} / {t.Median * 1e3,7:F2} / {t.Max * 1e3,7:F2}";

    /// <summary>The generated network alone: Forward and TrainStep at one batch.</summary>
    public static void RunNetwork(BenchNetwork net, int batch, int threads)
    {
        using var ctx = new CpuContext(threads);
        INetwork model = BenchSetup.CreateOurs(net, batch, ctx);
        float[] images = BenchSetup.Images(net.Descriptor, batch);
        int[] labels = BenchSetup.Labels(net.Descriptor, batch);
        var logits = new float[batch * net.Descriptor.ClassCount];
        var sgd = new AlexNetCompiler.Training.Sgd(model.Parameters.Length, BenchSetup.Sgd);
        double tf = Time(() => model.Forward(images, batch, logits));
        double cf = Time(() => model.Forward(images, batch, logits), cpuTime: true);
        ulong step = 0;
        double tt = Time(() => model.TrainStep(images, labels, batch, sgd, step++));
        double ct = Time(() => model.TrainStep(images, labels, batch, sgd, step++), cpuTime: true);
        // Process CPU time (all threads, spinning included) next to wall time: with several threads their ratio
        // shows how busy the threads were; on a shared machine the CPU time is the steadier number.
        Console.WriteLine($"  {net.Key,-12} batch {batch,3}, {threads} thread(s): forward {tf * 1e3,8:F1} ms wall ({batch / tf,6:F1} img/s), {cf * 1e3,8:F1} ms CPU   train step {tt * 1e3,8:F1} ms wall ({batch / tt,6:F1} img/s), {ct * 1e3,8:F1} ms CPU");
    }

    internal static float[] Random(int length, int seed)
    {
        var rng = new Random(seed);
        var x = new float[length];
        for (int i = 0; i < length; i++) x[i] = (float)(rng.NextDouble() * 2 - 1);
        return x;
    }

    /// <summary>Median seconds per call over a few repetitions after half a second of warm-up, at least ~0.3 s of work.</summary>
    /// <param name="cpuTime">Measure the process's CPU time (all threads) instead of wall time: on a shared machine
    /// this counts only the cycles the work actually got.</param>
    internal static double Time(Action action, bool cpuTime = false)
    {
        // Half a second of calls first: the runtime replaces the first, unoptimised code of hot methods in the
        // background, and the replacement must be in place before anything is timed.
        var warm = Stopwatch.StartNew();
        do action(); while (warm.Elapsed.TotalSeconds < 0.5);
        var sw = Stopwatch.StartNew();
        action();
        double once = sw.Elapsed.TotalSeconds;
        int reps = Math.Clamp((int)(0.3 / Math.Max(once, 1e-6)), 3, 200);
        var times = new double[reps];
        for (int i = 0; i < reps; i++)
        {
            TimeSpan cpu0 = ThreadCpuTime();
            sw.Restart();
            action();
            times[i] = cpuTime ? (ThreadCpuTime() - cpu0).TotalSeconds : sw.Elapsed.TotalSeconds;
        }
        Array.Sort(times);
        return Math.Max(times[reps / 2], 1e-9);
    }

    private static TimeSpan ThreadCpuTime()
    {
        return Process.GetCurrentProcess().TotalProcessorTime;
    }
}

internal static unsafe class MicroKernelBench
{
    public static void Run()
    {
        const int kc = 256;
        float* a = (float*)System.Runtime.InteropServices.NativeMemory.AlignedAlloc(6 * kc * 4, 64);
        float* b = (float*)System.Runtime.InteropServices.NativeMemory.AlignedAlloc(32 * kc * 4, 64);
        float* c = (float*)System.Runtime.InteropServices.NativeMemory.AlignedAlloc(6 * 32 * 4, 64);
        for (int i = 0; i < 6 * kc; i++) a[i] = 0.001f * i;
        for (int i = 0; i < 32 * kc; i++) b[i] = 0.002f;
        for (int rep = 0; rep < 3; rep++)
        {
            TimeSpan cpu0 = Process.GetCurrentProcess().TotalProcessorTime;
            int calls = 200000;
            for (int i = 0; i < calls; i++) MicroKernels.Kernel6x32Vector512(kc, a, b, 32, c, 32, false);
            double s = (Process.GetCurrentProcess().TotalProcessorTime - cpu0).TotalSeconds;
            Console.WriteLine($"micro-kernel 6x32 in L1: {2.0 * 6 * 32 * kc * calls / s / 1e9:F1} GFLOP/s (CPU time)");
        }
    }
}
