using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace AlexNetCompiler.Cpu;

/// <summary>
/// Fast cross-channel LRN. The window runs over channels, so the vectors run over the spatial positions: one
/// Vector512 holds 16 neighbouring pixels of one channel (a Vector256 8, for the rest of a block and on machines
/// without AVX-512) and the window sum is a handful of FMAs over the channel planes. Work items are (sample, block of <see cref="BlockFloats"/> pixels) spread over the threads.
/// <para>
/// scale^-beta is the expensive part: beta = 0.75 (AlexNet) is computed exactly as r * sqrt(r) with
/// r = 1 / sqrt(scale); any other beta as exp(-beta * log(scale)) lane by lane.
/// </para>
/// </summary>
public static unsafe partial class LrnKernels
{
    /// <summary>Pixels per work item: 64 Vector256 lanes' worth keeps a backward block ([C, 256] temporaries) in L2.</summary>
    private const int BlockFloats = 256;

    public static void Forward(in LrnGeometry g, int batch, ReadOnlySpan<float> input, Span<float> output, Span<float> scale, CpuContext ctx)
    {
        ArgumentNullException.ThrowIfNull(ctx);
        ThrowIfShapesMismatch(g, batch, input.Length, output.Length, nameof(output));
        if (!scale.IsEmpty && scale.Length != input.Length)
            throw new ArgumentException($"LRN: scale has {scale.Length} floats, expected {input.Length} or none.", nameof(scale));
        if (batch == 0) return;
        fixed (float* pIn = input, pOut = output, pScale = scale)
        {
            var job = new LrnJob(g, batch, ctx) { Input = pIn, Output = pOut, Scale = scale.IsEmpty ? null : pScale };
            ctx.For(batch * job.Blocks, &ForwardItem, Unsafe.AsPointer(ref job));
        }
    }

    public static void Backward(in LrnGeometry g, int batch, ReadOnlySpan<float> input, ReadOnlySpan<float> output,
        ReadOnlySpan<float> scale, ReadOnlySpan<float> dOutput, Span<float> dInput, CpuContext ctx)
    {
        ArgumentNullException.ThrowIfNull(ctx);
        ThrowIfShapesMismatch(g, batch, input.Length, output.Length, nameof(output));
        if (scale.Length != input.Length || dOutput.Length != input.Length || dInput.Length != input.Length)
            throw new ArgumentException($"LRN backward: scale ({scale.Length}), dOutput ({dOutput.Length}) and dInput ({dInput.Length}) must each have {input.Length} floats.");
        if (batch == 0) return;
        fixed (float* pIn = input, pOut = output, pScale = scale, pDy = dOutput, pDx = dInput)
        {
            var job = new LrnJob(g, batch, ctx) { Input = pIn, Output = pOut, Scale = pScale, DOutput = pDy, DInput = pDx };
            ctx.ReserveScratch(ScratchSlot.Temporary, (long)g.Channels * BlockFloats);
            ctx.For(batch * job.Blocks, &BackwardItem, Unsafe.AsPointer(ref job));
        }
    }

    private struct LrnJob
    {
        public LrnGeometry G;
        public int Plane, Blocks, Before, After;
        public float* Input, Output, Scale, DOutput, DInput;
        public CpuContext Ctx;

        public LrnJob(in LrnGeometry g, int batch, CpuContext ctx)
        {
            G = g;
            Plane = g.Height * g.Width;
            Blocks = (Plane + BlockFloats - 1) / BlockFloats;
            Before = g.Size / 2;
            After = (g.Size - 1) / 2;
            Ctx = ctx;
        }
    }

    private static void ForwardItem(void* state, int item, int threadIndex)
    {
        ref LrnJob job = ref Unsafe.AsRef<LrnJob>(state);
        int n = item / job.Blocks, block = item % job.Blocks;
        int p0 = block * BlockFloats, count = Math.Min(BlockFloats, job.Plane - p0);
        int channels = job.G.Channels, plane = job.Plane;
        long sampleOffset = (long)n * channels * plane + p0;
        float* x = job.Input + sampleOffset, y = job.Output + sampleOffset;
        float* scaleOut = job.Scale == null ? null : job.Scale + sampleOffset;
        float alpha = job.G.Alpha, k = job.G.K, beta = job.G.Beta;
        var alphaV = Vector256.Create(alpha);
        var kV = Vector256.Create(k);
        for (int c = 0; c < channels; c++)
        {
            int first = Math.Max(0, c - job.Before), last = Math.Min(channels - 1, c + job.After);
            long at = (long)c * plane;
            int p = 0;
            if (Vector512.IsHardwareAccelerated)
            {
                // The same lane arithmetic as below, sixteen pixels at a time: the square roots and the division
                // cost the same per instruction at either width where the vector units are 512 bits wide.
                for (; p <= count - 16; p += 16)
                {
                    Vector512<float> sum = Vector512<float>.Zero;
                    for (int cc = first; cc <= last; cc++)
                    {
                        Vector512<float> v = Vector512.Load(x + (long)cc * plane + p);
                        sum = Vector512.FusedMultiplyAdd(v, v, sum);
                    }
                    Vector512<float> s = Vector512.FusedMultiplyAdd(Vector512.Create(alpha), sum, Vector512.Create(k));
                    (Vector512.Load(x + at + p) * PowNegBeta(s, beta)).Store(y + at + p);
                    if (scaleOut != null) s.Store(scaleOut + at + p);
                }
            }
            if (Vector256.IsHardwareAccelerated)
            {
                for (; p <= count - 8; p += 8)
                {
                    // scale = k + alpha * sum_{c' in window} x_c'^2
                    Vector256<float> sum = Vector256<float>.Zero;
                    for (int cc = first; cc <= last; cc++)
                    {
                        Vector256<float> v = Vector256.Load(x + (long)cc * plane + p);
                        sum = Vector256.FusedMultiplyAdd(v, v, sum);
                    }
                    Vector256<float> s = Vector256.FusedMultiplyAdd(alphaV, sum, kV);
                    (Vector256.Load(x + at + p) * PowNegBeta(s, beta)).Store(y + at + p);
                    if (scaleOut != null) s.Store(scaleOut + at + p);
                }
            }
            for (; p < count; p++)
            {
                float sum = 0f;
                for (int cc = first; cc <= last; cc++)
                {
                    float v = x[(long)cc * plane + p];
                    sum = MathF.FusedMultiplyAdd(v, v, sum);
                }
                float s = MathF.FusedMultiplyAdd(alpha, sum, k);
                y[at + p] = x[at + p] * PowNegBeta(s, beta);
                if (scaleOut != null) scaleOut[at + p] = s;
            }
        }
    }

    private static void BackwardItem(void* state, int item, int threadIndex)
    {
        ref LrnJob job = ref Unsafe.AsRef<LrnJob>(state);
        int n = item / job.Blocks, block = item % job.Blocks;
        int p0 = block * BlockFloats, count = Math.Min(BlockFloats, job.Plane - p0);
        int channels = job.G.Channels, plane = job.Plane;
        long sampleOffset = (long)n * channels * plane + p0;
        float* x = job.Input + sampleOffset, y = job.Output + sampleOffset, scale = job.Scale + sampleOffset;
        float* dy = job.DOutput + sampleOffset, dx = job.DInput + sampleOffset;
        float beta = job.G.Beta;
        float factor = 2f * job.G.Alpha * beta;

        // ratio[c, p] = dy_c * y_c / scale_c for the block: each one feeds `size` channels' sums.
        float* ratio = job.Ctx.Scratch(threadIndex, ScratchSlot.Temporary, (long)channels * BlockFloats);
        for (int c = 0; c < channels; c++)
        {
            long at = (long)c * plane;
            float* r = ratio + (long)c * BlockFloats;
            int p = 0;
            if (Vector512.IsHardwareAccelerated)
            {
                for (; p <= count - 16; p += 16)
                    (Vector512.Load(dy + at + p) * Vector512.Load(y + at + p) / Vector512.Load(scale + at + p)).Store(r + p);
            }
            if (Vector256.IsHardwareAccelerated)
            {
                for (; p <= count - 8; p += 8)
                    (Vector256.Load(dy + at + p) * Vector256.Load(y + at + p) / Vector256.Load(scale + at + p)).Store(r + p);
            }
            for (; p < count; p++) r[p] = dy[at + p] * y[at + p] / scale[at + p];
        }

        // dx_j = dy_j * scale_j^-beta - 2 alpha beta x_j * sum_{c in [j - after, j + before]} ratio_c
        var factorV = Vector256.Create(factor);
        for (int j = 0; j < channels; j++)
        {
            int first = Math.Max(0, j - job.After), last = Math.Min(channels - 1, j + job.Before);
            long at = (long)j * plane;
            int p = 0;
            if (Vector512.IsHardwareAccelerated)
            {
                for (; p <= count - 16; p += 16)
                {
                    Vector512<float> cross = Vector512<float>.Zero;
                    for (int c = first; c <= last; c++) cross += Vector512.Load(ratio + (long)c * BlockFloats + p);
                    Vector512<float> direct = Vector512.Load(dy + at + p) * PowNegBeta(Vector512.Load(scale + at + p), beta);
                    Vector512.FusedMultiplyAdd(Vector512.Create(-factor) * Vector512.Load(x + at + p), cross, direct).Store(dx + at + p);
                }
            }
            if (Vector256.IsHardwareAccelerated)
            {
                for (; p <= count - 8; p += 8)
                {
                    Vector256<float> cross = Vector256<float>.Zero;
                    for (int c = first; c <= last; c++) cross += Vector256.Load(ratio + (long)c * BlockFloats + p);
                    Vector256<float> direct = Vector256.Load(dy + at + p) * PowNegBeta(Vector256.Load(scale + at + p), beta);
                    Vector256.FusedMultiplyAdd(-factorV * Vector256.Load(x + at + p), cross, direct).Store(dx + at + p);
                }
            }
            for (; p < count; p++)
            {
                float cross = 0f;
                for (int c = first; c <= last; c++) cross += ratio[(long)c * BlockFloats + p];
                float direct = dy[at + p] * PowNegBeta(scale[at + p], beta);
                dx[at + p] = MathF.FusedMultiplyAdd(-factor * x[at + p], cross, direct);
            }
        }
    }

    /// <summary>s^-beta for s > 0, sixteen lanes (<see cref="PowNegBeta(Vector256{float}, float)"/> lane by lane).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> PowNegBeta(Vector512<float> s, float beta)
    {
        if (beta == 0.75f)
        {
            Vector512<float> r = Vector512<float>.One / Vector512.Sqrt(s);
            return r * Vector512.Sqrt(r);
        }
        if (beta == 0.5f) return Vector512<float>.One / Vector512.Sqrt(s);
        if (beta == 1f) return Vector512<float>.One / s;
        return Vector512.Exp(Vector512.Log(s) * Vector512.Create(-beta));
    }

    /// <summary>s^-beta for s > 0 (scale >= k > 0 in practice).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> PowNegBeta(Vector256<float> s, float beta)
    {
        if (beta == 0.75f)
        {
            // s^-3/4 = s^-1/2 * s^-1/4 = r * sqrt(r) with r = 1/sqrt(s): two square roots and a division,
            // each correctly rounded, instead of a log and an exp.
            Vector256<float> r = Vector256<float>.One / Vector256.Sqrt(s);
            return r * Vector256.Sqrt(r);
        }
        if (beta == 0.5f) return Vector256<float>.One / Vector256.Sqrt(s);
        if (beta == 1f) return Vector256<float>.One / s;
        return Vector256.Exp(Vector256.Log(s) * Vector256.Create(-beta));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float PowNegBeta(float s, float beta)
    {
        if (beta == 0.75f)
        {
            float r = 1f / MathF.Sqrt(s);
            return r * MathF.Sqrt(r);
        }
        return MathF.Pow(s, -beta);
    }
}
