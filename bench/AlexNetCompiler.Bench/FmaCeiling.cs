using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace AlexNetCompiler.Bench;

/// <summary>
/// The machine's measured single-precision ceiling: every thread runs independent fused multiply-adds on the widest
/// vectors the runtime accelerates, with more accumulators than the FMA latency times the FMA ports, so nothing but
/// the FMA units limits it. It is what a perfect kernel written in C# could reach; the bench divides by it.
/// </summary>
internal static class FmaCeiling
{
    private const int Iterations = 16_000_000;
    private const int Accumulators = 16;

    public static string VectorName =>
        Vector512.IsHardwareAccelerated ? "Vector512" : Vector256.IsHardwareAccelerated ? "Vector256" : "Vector128";

    private static int FloatsPerVector =>
        Vector512.IsHardwareAccelerated ? 16 : Vector256.IsHardwareAccelerated ? 8 : 4;

    /// <summary>GFLOP/s of all threads together: best and median of the timed rounds after warming.</summary>
    public static (double Best, double Median) Measure(int threads, int rounds = 7)
    {
        double flops = 2.0 * FloatsPerVector * Accumulators * (double)Iterations * threads;
        Timing.Result r = Timing.WarmThenTime(rounds, () => RunOnThreads(threads));
        TimingSummary s = TimingSummary.Of(r.Seconds);
        return (flops / s.Min / 1e9, flops / s.Median / 1e9);
    }

    private static void RunOnThreads(int threads)
    {
        var workers = new Thread[threads];
        float sink = 0;
        for (int t = 0; t < threads; t++)
        {
            workers[t] = new Thread(() =>
            {
                float r = Vector512.IsHardwareAccelerated ? Run512() : Vector256.IsHardwareAccelerated ? Run256() : Run128();
                Interlocked.Exchange(ref sink, r); // keeps the loop's result alive
            });
            workers[t].Start();
        }
        foreach (Thread w in workers) w.Join();
        GC.KeepAlive(sink);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static float Run512()
    {
        Vector512<float> m = Vector512.Create(0.999999f), a = Vector512.Create(1e-7f);
        Vector512<float> c0 = Vector512.Create(1f), c1 = c0, c2 = c0, c3 = c0, c4 = c0, c5 = c0, c6 = c0, c7 = c0;
        Vector512<float> c8 = c0, c9 = c0, c10 = c0, c11 = c0, c12 = c0, c13 = c0, c14 = c0, c15 = c0;
        for (int i = 0; i < Iterations; i++)
        {
            c0 = Vector512.FusedMultiplyAdd(c0, m, a); c1 = Vector512.FusedMultiplyAdd(c1, m, a);
            c2 = Vector512.FusedMultiplyAdd(c2, m, a); c3 = Vector512.FusedMultiplyAdd(c3, m, a);
            c4 = Vector512.FusedMultiplyAdd(c4, m, a); c5 = Vector512.FusedMultiplyAdd(c5, m, a);
            c6 = Vector512.FusedMultiplyAdd(c6, m, a); c7 = Vector512.FusedMultiplyAdd(c7, m, a);
            c8 = Vector512.FusedMultiplyAdd(c8, m, a); c9 = Vector512.FusedMultiplyAdd(c9, m, a);
            c10 = Vector512.FusedMultiplyAdd(c10, m, a); c11 = Vector512.FusedMultiplyAdd(c11, m, a);
            c12 = Vector512.FusedMultiplyAdd(c12, m, a); c13 = Vector512.FusedMultiplyAdd(c13, m, a);
            c14 = Vector512.FusedMultiplyAdd(c14, m, a); c15 = Vector512.FusedMultiplyAdd(c15, m, a);
        }
        Vector512<float> s = ((c0 + c1) + (c2 + c3)) + ((c4 + c5) + (c6 + c7)) + ((c8 + c9) + (c10 + c11)) + ((c12 + c13) + (c14 + c15));
        return Vector512.Sum(s);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static float Run256()
    {
        Vector256<float> m = Vector256.Create(0.999999f), a = Vector256.Create(1e-7f);
        Vector256<float> c0 = Vector256.Create(1f), c1 = c0, c2 = c0, c3 = c0, c4 = c0, c5 = c0, c6 = c0, c7 = c0;
        Vector256<float> c8 = c0, c9 = c0, c10 = c0, c11 = c0, c12 = c0, c13 = c0, c14 = c0, c15 = c0;
        for (int i = 0; i < Iterations; i++)
        {
            c0 = Vector256.FusedMultiplyAdd(c0, m, a); c1 = Vector256.FusedMultiplyAdd(c1, m, a);
            c2 = Vector256.FusedMultiplyAdd(c2, m, a); c3 = Vector256.FusedMultiplyAdd(c3, m, a);
            c4 = Vector256.FusedMultiplyAdd(c4, m, a); c5 = Vector256.FusedMultiplyAdd(c5, m, a);
            c6 = Vector256.FusedMultiplyAdd(c6, m, a); c7 = Vector256.FusedMultiplyAdd(c7, m, a);
            c8 = Vector256.FusedMultiplyAdd(c8, m, a); c9 = Vector256.FusedMultiplyAdd(c9, m, a);
            c10 = Vector256.FusedMultiplyAdd(c10, m, a); c11 = Vector256.FusedMultiplyAdd(c11, m, a);
            c12 = Vector256.FusedMultiplyAdd(c12, m, a); c13 = Vector256.FusedMultiplyAdd(c13, m, a);
            c14 = Vector256.FusedMultiplyAdd(c14, m, a); c15 = Vector256.FusedMultiplyAdd(c15, m, a);
        }
        Vector256<float> s = ((c0 + c1) + (c2 + c3)) + ((c4 + c5) + (c6 + c7)) + ((c8 + c9) + (c10 + c11)) + ((c12 + c13) + (c14 + c15));
        return Vector256.Sum(s);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static float Run128()
    {
        Vector128<float> m = Vector128.Create(0.999999f), a = Vector128.Create(1e-7f);
        Vector128<float> c0 = Vector128.Create(1f), c1 = c0, c2 = c0, c3 = c0, c4 = c0, c5 = c0, c6 = c0, c7 = c0;
        for (int i = 0; i < Iterations * 2; i++)
        {
            c0 = Vector128.FusedMultiplyAdd(c0, m, a); c1 = Vector128.FusedMultiplyAdd(c1, m, a);
            c2 = Vector128.FusedMultiplyAdd(c2, m, a); c3 = Vector128.FusedMultiplyAdd(c3, m, a);
            c4 = Vector128.FusedMultiplyAdd(c4, m, a); c5 = Vector128.FusedMultiplyAdd(c5, m, a);
            c6 = Vector128.FusedMultiplyAdd(c6, m, a); c7 = Vector128.FusedMultiplyAdd(c7, m, a);
        }
        return Vector128.Sum(((c0 + c1) + (c2 + c3)) + ((c4 + c5) + (c6 + c7)));
    }
}
