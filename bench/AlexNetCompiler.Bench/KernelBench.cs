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
                double t1 = Time(() => Gemm.Multiply(s.M, s.N, s.K, pa2, lda, s.TA, pb2, ldb, s.TB, pc2, s.N, false, GemmEpilogue.None, one));
                double tn = Time(() => Gemm.Multiply(s.M, s.N, s.K, pa2, lda, s.TA, pb2, ldb, s.TB, pc2, s.N, false, GemmEpilogue.None, ctx));
                double flops = 2.0 * s.M * s.N * s.K;
                Console.WriteLine($"  {s.Name,-32} M={s.M,5} N={s.N,5} K={s.K,5}  1 thread {flops / t1 / 1e9,7:F1} GFLOP/s   {threads} threads {flops / tn / 1e9,7:F1} GFLOP/s");
            }
        }
    }

    public static void RunLayers(int threads, int batch)
    {
    }

    internal static float[] Random(int length, int seed)
    {
        var rng = new Random(seed);
        var x = new float[length];
        for (int i = 0; i < length; i++) x[i] = (float)(rng.NextDouble() * 2 - 1);
        return x;
    }

    /// <summary>Median seconds per call over a few repetitions after one warm-up, at least ~0.3 s of work.</summary>
    internal static double Time(Action action)
    {
        action();
        var sw = Stopwatch.StartNew();
        action();
        double once = sw.Elapsed.TotalSeconds;
        int reps = Math.Clamp((int)(0.3 / Math.Max(once, 1e-6)), 3, 200);
        var times = new double[reps];
        for (int i = 0; i < reps; i++)
        {
            sw.Restart();
            action();
            times[i] = sw.Elapsed.TotalSeconds;
        }
        Array.Sort(times);
        return times[reps / 2];
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
            var sw = Stopwatch.StartNew();
            int calls = 200000;
            for (int i = 0; i < calls; i++) MicroKernels.Kernel6x32Vector512(kc, a, b, c, 32, false);
            double s = sw.Elapsed.TotalSeconds;
            Console.WriteLine($"micro-kernel 6x32 in L1: {2.0 * 6 * 32 * kc * calls / s / 1e9:F1} GFLOP/s");
        }
    }
}
