using AlexNetCompiler.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace AlexNetCompiler.ReferenceTests;

/// <summary>Moving float arrays in and out of TorchSharp, seeded test data, and tolerance checks.</summary>
internal static class TorchInterop
{
    public static Tensor ToTensor(float[] data, params long[] shape) => torch.tensor(data, shape, dtype: ScalarType.Float32);

    public static Tensor ToLeaf(float[] data, params long[] shape) => ToTensor(data, shape).requires_grad_(true);

    public static float[] ToArray(Tensor tensor) => tensor.detach().to(ScalarType.Float32).contiguous().data<float>().ToArray();

    /// <summary>Values N(0, scale^2) from a fixed seed.</summary>
    public static float[] RandomArray(int length, ulong seed, float scale = 1f)
    {
        var random = new SeededRandom(seed);
        var values = new float[length];
        for (int i = 0; i < length; i++) values[i] = random.NextGaussian(0f, scale);
        return values;
    }

    /// <summary>
    /// Element-wise |actual - expected| &lt;= absolute + relative * |expected|; on failure names the tensor, the
    /// first offending index and how many elements fail.
    /// </summary>
    public static void AssertClose(ReadOnlySpan<float> expected, ReadOnlySpan<float> actual, double relative, double absolute, string what)
    {
        Assert.True(expected.Length == actual.Length, $"{what}: length {actual.Length}, expected {expected.Length}");
        int failures = 0, first = -1;
        double worst = 0;
        for (int i = 0; i < expected.Length; i++)
        {
            double difference = Math.Abs((double)actual[i] - expected[i]);
            double allowed = absolute + relative * Math.Abs(expected[i]);
            if (!(difference <= allowed))
            {
                if (first < 0) first = i;
                failures++;
            }
            if (difference > worst) worst = difference;
        }
        Assert.True(failures == 0,
            $"{what}: {failures} of {expected.Length} elements differ; first at {first}: got {(first >= 0 ? actual[first] : 0)}, expected {(first >= 0 ? expected[first] : 0)} (largest |d| {worst:G3}, allowed {absolute} + {relative}*|ref|)");
    }
}
