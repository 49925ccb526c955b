using System.Runtime.Intrinsics;

namespace AlexNetCompiler.Cpu;

/// <summary>Small vectorised loops shared by the fast kernels (pointer based, no bounds checks).</summary>
internal static unsafe class SimdSpan
{
    /// <summary>dst[i] += src[i] for i in [0, length).</summary>
    public static void AddInPlace(float* dst, float* src, long length)
    {
        long i = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            for (; i <= length - 16; i += 16) (Vector512.Load(dst + i) + Vector512.Load(src + i)).Store(dst + i);
        }
        else if (Vector256.IsHardwareAccelerated)
        {
            for (; i <= length - 8; i += 8) (Vector256.Load(dst + i) + Vector256.Load(src + i)).Store(dst + i);
        }
        for (; i < length; i++) dst[i] += src[i];
    }

    /// <summary>Sum of x[0 .. length) with 16 float lanes (partial sums keep rounding error low).</summary>
    public static float Sum(float* x, long length)
    {
        long i = 0;
        float total = 0f;
        if (Vector512.IsHardwareAccelerated && length >= 16)
        {
            Vector512<float> acc0 = Vector512<float>.Zero, acc1 = Vector512<float>.Zero;
            for (; i <= length - 32; i += 32)
            {
                acc0 += Vector512.Load(x + i);
                acc1 += Vector512.Load(x + i + 16);
            }
            for (; i <= length - 16; i += 16) acc0 += Vector512.Load(x + i);
            total = Vector512.Sum(acc0 + acc1);
        }
        else if (Vector256.IsHardwareAccelerated && length >= 8)
        {
            Vector256<float> acc = Vector256<float>.Zero;
            for (; i <= length - 8; i += 8) acc += Vector256.Load(x + i);
            total = Vector256.Sum(acc);
        }
        for (; i < length; i++) total += x[i];
        return total;
    }
}
