using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace AlexNetCompiler.Cpu;

/// <summary>
/// Register-blocked GEMM micro-kernels: C[MR, NR] (=|+=) A[MR, kc] * B[kc, NR] with A packed K-major in slivers of
/// MR (a[p * MR + r]) and B K-major in panels of NR = 32 (b[p * strideB + j]; strideB = 32 when packed, the
/// matrix's row stride when a panel is read in place). The whole C tile lives in
/// registers for the k loop; every step is one load per B vector, one broadcast per A row and MR x (vectors)
/// independent FMAs, enough to hide the FMA latency (4 cycles x 2 pipes needs at least 8 in flight).
/// </summary>
public static unsafe class MicroKernels
{
    /// <summary>6 x 32 with 12 Vector512 accumulators (of 32 registers).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Kernel6x32Vector512(int kc, float* a, float* b, int strideB, float* c, int ldc, bool accumulate)
    {
        Vector512<float> c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default;
        Vector512<float> c30 = default, c31 = default, c40 = default, c41 = default, c50 = default, c51 = default;
        for (int p = 0; p < kc; p++)
        {
            Vector512<float> b0 = Vector512.Load(b);
            Vector512<float> b1 = Vector512.Load(b + 16);
            Vector512<float> ai = Vector512.Create(a[0]);
            c00 = Vector512.FusedMultiplyAdd(ai, b0, c00);
            c01 = Vector512.FusedMultiplyAdd(ai, b1, c01);
            ai = Vector512.Create(a[1]);
            c10 = Vector512.FusedMultiplyAdd(ai, b0, c10);
            c11 = Vector512.FusedMultiplyAdd(ai, b1, c11);
            ai = Vector512.Create(a[2]);
            c20 = Vector512.FusedMultiplyAdd(ai, b0, c20);
            c21 = Vector512.FusedMultiplyAdd(ai, b1, c21);
            ai = Vector512.Create(a[3]);
            c30 = Vector512.FusedMultiplyAdd(ai, b0, c30);
            c31 = Vector512.FusedMultiplyAdd(ai, b1, c31);
            ai = Vector512.Create(a[4]);
            c40 = Vector512.FusedMultiplyAdd(ai, b0, c40);
            c41 = Vector512.FusedMultiplyAdd(ai, b1, c41);
            ai = Vector512.Create(a[5]);
            c50 = Vector512.FusedMultiplyAdd(ai, b0, c50);
            c51 = Vector512.FusedMultiplyAdd(ai, b1, c51);
            a += 6;
            b += strideB;
        }
        if (accumulate)
        {
            c00 += Vector512.Load(c); c01 += Vector512.Load(c + 16); float* r = c + ldc;
            c10 += Vector512.Load(r); c11 += Vector512.Load(r + 16); r += ldc;
            c20 += Vector512.Load(r); c21 += Vector512.Load(r + 16); r += ldc;
            c30 += Vector512.Load(r); c31 += Vector512.Load(r + 16); r += ldc;
            c40 += Vector512.Load(r); c41 += Vector512.Load(r + 16); r += ldc;
            c50 += Vector512.Load(r); c51 += Vector512.Load(r + 16);
        }
        c00.Store(c); c01.Store(c + 16); c += ldc;
        c10.Store(c); c11.Store(c + 16); c += ldc;
        c20.Store(c); c21.Store(c + 16); c += ldc;
        c30.Store(c); c31.Store(c + 16); c += ldc;
        c40.Store(c); c41.Store(c + 16); c += ldc;
        c50.Store(c); c51.Store(c + 16);
    }

    /// <summary>
    /// 12 x 16 with 12 Vector512 accumulators: two MR slivers of packed A (<paramref name="a0"/>, <paramref name="a1"/>)
    /// times one 16-column B whose rows are contiguous (b[p * 16 + j]), for products only 16 columns wide (a Winograd
    /// chunk of a 13x13 plane's 16 tiles), where the 6 x 32 kernel would compute half its columns for nothing. Each
    /// element is the same sequence of FMAs as in <see cref="Kernel6x32Vector512"/>, so the same bits.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Kernel12x16Vector512(int kc, float* a0, float* a1, float* b, float* c, int ldc, bool accumulate)
    {
        Vector512<float> c0 = default, c1 = default, c2 = default, c3 = default, c4 = default, c5 = default;
        Vector512<float> c6 = default, c7 = default, c8 = default, c9 = default, c10 = default, c11 = default;
        for (int p = 0; p < kc; p++)
        {
            Vector512<float> bp = Vector512.Load(b);
            c0 = Vector512.FusedMultiplyAdd(Vector512.Create(a0[0]), bp, c0);
            c1 = Vector512.FusedMultiplyAdd(Vector512.Create(a0[1]), bp, c1);
            c2 = Vector512.FusedMultiplyAdd(Vector512.Create(a0[2]), bp, c2);
            c3 = Vector512.FusedMultiplyAdd(Vector512.Create(a0[3]), bp, c3);
            c4 = Vector512.FusedMultiplyAdd(Vector512.Create(a0[4]), bp, c4);
            c5 = Vector512.FusedMultiplyAdd(Vector512.Create(a0[5]), bp, c5);
            c6 = Vector512.FusedMultiplyAdd(Vector512.Create(a1[0]), bp, c6);
            c7 = Vector512.FusedMultiplyAdd(Vector512.Create(a1[1]), bp, c7);
            c8 = Vector512.FusedMultiplyAdd(Vector512.Create(a1[2]), bp, c8);
            c9 = Vector512.FusedMultiplyAdd(Vector512.Create(a1[3]), bp, c9);
            c10 = Vector512.FusedMultiplyAdd(Vector512.Create(a1[4]), bp, c10);
            c11 = Vector512.FusedMultiplyAdd(Vector512.Create(a1[5]), bp, c11);
            a0 += 6;
            a1 += 6;
            b += 16;
        }
        if (accumulate)
        {
            c0 += Vector512.Load(c); c1 += Vector512.Load(c + ldc); c2 += Vector512.Load(c + 2 * ldc);
            c3 += Vector512.Load(c + 3 * ldc); c4 += Vector512.Load(c + 4 * ldc); c5 += Vector512.Load(c + 5 * ldc);
            c6 += Vector512.Load(c + 6 * ldc); c7 += Vector512.Load(c + 7 * ldc); c8 += Vector512.Load(c + 8 * ldc);
            c9 += Vector512.Load(c + 9 * ldc); c10 += Vector512.Load(c + 10 * ldc); c11 += Vector512.Load(c + 11 * ldc);
        }
        c0.Store(c); c1.Store(c + ldc); c2.Store(c + 2 * ldc); c3.Store(c + 3 * ldc); c4.Store(c + 4 * ldc); c5.Store(c + 5 * ldc);
        c6.Store(c + 6 * ldc); c7.Store(c + 7 * ldc); c8.Store(c + 8 * ldc); c9.Store(c + 9 * ldc); c10.Store(c + 10 * ldc); c11.Store(c + 11 * ldc);
    }

    /// <summary>6 x 16 with 6 Vector512 accumulators: <see cref="Kernel12x16Vector512"/> for a last single sliver.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Kernel6x16Vector512(int kc, float* a, float* b, float* c, int ldc, bool accumulate)
    {
        Vector512<float> c0 = default, c1 = default, c2 = default, c3 = default, c4 = default, c5 = default;
        for (int p = 0; p < kc; p++)
        {
            Vector512<float> bp = Vector512.Load(b);
            c0 = Vector512.FusedMultiplyAdd(Vector512.Create(a[0]), bp, c0);
            c1 = Vector512.FusedMultiplyAdd(Vector512.Create(a[1]), bp, c1);
            c2 = Vector512.FusedMultiplyAdd(Vector512.Create(a[2]), bp, c2);
            c3 = Vector512.FusedMultiplyAdd(Vector512.Create(a[3]), bp, c3);
            c4 = Vector512.FusedMultiplyAdd(Vector512.Create(a[4]), bp, c4);
            c5 = Vector512.FusedMultiplyAdd(Vector512.Create(a[5]), bp, c5);
            a += 6;
            b += 16;
        }
        if (accumulate)
        {
            c0 += Vector512.Load(c); c1 += Vector512.Load(c + ldc); c2 += Vector512.Load(c + 2 * ldc);
            c3 += Vector512.Load(c + 3 * ldc); c4 += Vector512.Load(c + 4 * ldc); c5 += Vector512.Load(c + 5 * ldc);
        }
        c0.Store(c); c1.Store(c + ldc); c2.Store(c + 2 * ldc); c3.Store(c + 3 * ldc); c4.Store(c + 4 * ldc); c5.Store(c + 5 * ldc);
    }

    /// <summary>6 x 16 with 12 Vector256 accumulators (of 16 registers); reads B with the 32-float panel stride.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Kernel6x16Vector256(int kc, float* a, float* b, int strideB, float* c, int ldc, bool accumulate)
    {
        Vector256<float> c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default;
        Vector256<float> c30 = default, c31 = default, c40 = default, c41 = default, c50 = default, c51 = default;
        for (int p = 0; p < kc; p++)
        {
            Vector256<float> b0 = Vector256.Load(b);
            Vector256<float> b1 = Vector256.Load(b + 8);
            Vector256<float> ai = Vector256.Create(a[0]);
            c00 = Vector256.FusedMultiplyAdd(ai, b0, c00);
            c01 = Vector256.FusedMultiplyAdd(ai, b1, c01);
            ai = Vector256.Create(a[1]);
            c10 = Vector256.FusedMultiplyAdd(ai, b0, c10);
            c11 = Vector256.FusedMultiplyAdd(ai, b1, c11);
            ai = Vector256.Create(a[2]);
            c20 = Vector256.FusedMultiplyAdd(ai, b0, c20);
            c21 = Vector256.FusedMultiplyAdd(ai, b1, c21);
            ai = Vector256.Create(a[3]);
            c30 = Vector256.FusedMultiplyAdd(ai, b0, c30);
            c31 = Vector256.FusedMultiplyAdd(ai, b1, c31);
            ai = Vector256.Create(a[4]);
            c40 = Vector256.FusedMultiplyAdd(ai, b0, c40);
            c41 = Vector256.FusedMultiplyAdd(ai, b1, c41);
            ai = Vector256.Create(a[5]);
            c50 = Vector256.FusedMultiplyAdd(ai, b0, c50);
            c51 = Vector256.FusedMultiplyAdd(ai, b1, c51);
            a += 6;
            b += strideB;
        }
        if (accumulate)
        {
            c00 += Vector256.Load(c); c01 += Vector256.Load(c + 8); float* r = c + ldc;
            c10 += Vector256.Load(r); c11 += Vector256.Load(r + 8); r += ldc;
            c20 += Vector256.Load(r); c21 += Vector256.Load(r + 8); r += ldc;
            c30 += Vector256.Load(r); c31 += Vector256.Load(r + 8); r += ldc;
            c40 += Vector256.Load(r); c41 += Vector256.Load(r + 8); r += ldc;
            c50 += Vector256.Load(r); c51 += Vector256.Load(r + 8);
        }
        c00.Store(c); c01.Store(c + 8); c += ldc;
        c10.Store(c); c11.Store(c + 8); c += ldc;
        c20.Store(c); c21.Store(c + 8); c += ldc;
        c30.Store(c); c31.Store(c + 8); c += ldc;
        c40.Store(c); c41.Store(c + 8); c += ldc;
        c50.Store(c); c51.Store(c + 8);
    }

    /// <summary>Plain loops over the 6 x 32 tile, for machines without SIMD acceleration.</summary>
    public static void KernelScalar(int kc, float* a, float* b, int strideB, float* c, int ldc, bool accumulate)
    {
        float* acc = stackalloc float[Gemm.MR * Gemm.NR];
        new Span<float>(acc, Gemm.MR * Gemm.NR).Clear();
        for (int p = 0; p < kc; p++, a += Gemm.MR, b += strideB)
        {
            for (int r = 0; r < Gemm.MR; r++)
            {
                float ar = a[r];
                float* accRow = acc + r * Gemm.NR;
                for (int j = 0; j < Gemm.NR; j++) accRow[j] += ar * b[j];
            }
        }
        for (int r = 0; r < Gemm.MR; r++)
        {
            float* dst = c + (long)r * ldc;
            float* src = acc + r * Gemm.NR;
            if (accumulate) for (int j = 0; j < Gemm.NR; j++) dst[j] += src[j];
            else for (int j = 0; j < Gemm.NR; j++) dst[j] = src[j];
        }
    }
}
