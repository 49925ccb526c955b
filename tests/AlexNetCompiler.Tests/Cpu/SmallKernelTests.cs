using AlexNetCompiler.Cpu;
using AlexNetCompiler.Training;

namespace AlexNetCompiler.Tests.Cpu;

/// <summary>ReLU fast vs reference, dropout's mask, softmax cross-entropy properties (torch comparisons live in ReferenceTests).</summary>
public sealed class SmallKernelTests
{
    private static float[] Random(int length, ulong seed)
    {
        var random = new SeededRandom(seed);
        return Enumerable.Range(0, length).Select(_ => random.NextGaussian(0f, 1f)).ToArray();
    }

    [Theory]
    [InlineData(1)]
    [InlineData(37)]
    [InlineData(4099)]
    public void ReluFastEqualsReference(int length)
    {
        // Selection only, no arithmetic: results must be bit-identical, NaN included.
        float[] data = Random(length, 1);
        data[0] = float.NaN;
        if (length > 2) data[2] = -0f;
        float[] reference = (float[])data.Clone(), fast = (float[])data.Clone();
        ReluKernels.ForwardReference(reference);
        ReluKernels.Forward(fast);
        Assert.Equal(reference.Select(BitConverter.SingleToInt32Bits), fast.Select(BitConverter.SingleToInt32Bits));
        Assert.True(float.IsNaN(fast[0]));
        Assert.All(fast.Skip(1), v => Assert.True(v >= 0));

        float[] grad = Random(length, 2);
        float[] gradReference = (float[])grad.Clone(), gradFast = (float[])grad.Clone();
        ReluKernels.BackwardReference(reference, gradReference);
        ReluKernels.Backward(fast, gradFast);
        Assert.Equal(gradReference, gradFast);
        for (int i = 0; i < length; i++) Assert.Equal(reference[i] > 0 ? grad[i] : 0f, gradFast[i]);
    }

    [Theory]
    [InlineData(0.5f)]
    [InlineData(0.1f)]
    [InlineData(0.9f)]
    public void DropoutKeepsTheExpectedFractionAndScalesKeptValues(float p)
    {
        const int n = 100_000;
        float[] input = Enumerable.Repeat(2f, n).ToArray();
        var output = new float[n];
        DropoutKernels.Forward(p, seed: 77, input, output);
        int kept = output.Count(v => v != 0f);
        // Binomial(n, 1-p): standard deviation sqrt(n p (1-p)) <= 158; allow 5 of them.
        double expected = n * (1 - p);
        Assert.InRange(kept, expected - 5 * Math.Sqrt(n * p * (1 - p)), expected + 5 * Math.Sqrt(n * p * (1 - p)));
        Assert.All(output, v => Assert.True(v == 0f || v == 2f / (1f - p)));
        for (int i = 0; i < 1000; i++) Assert.Equal(DropoutKernels.Keep(p, 77, i), output[i] != 0f);
    }

    [Theory]
    [InlineData(1, 0.5f)]
    [InlineData(15, 0.5f)]
    [InlineData(17, 0.25f)]
    [InlineData(4099, 0.5f)]
    [InlineData(4099, 0.9f)]
    public void DropoutFastEqualsReference(int length, float p)
    {
        // Same mask and the same single multiply per kept element: bit-identical.
        float[] input = Random(length, 8);
        float[] reference = new float[length], fast = new float[length];
        DropoutKernels.ForwardReference(p, 31, input, reference);
        DropoutKernels.Forward(p, 31, input, fast);
        Assert.Equal(reference, fast);
        DropoutKernels.BackwardReference(p, 32, input, reference);
        DropoutKernels.Backward(p, 32, input, fast);
        Assert.Equal(reference, fast);
    }

    [Theory]
    [InlineData(0, 0.5f)]
    [InlineData(3, 0.5f)]
    [InlineData(1000, 0.25f)]
    public void DropoutShardAtAnOffsetDrawsTheWholeTensorsMaskForItsElements(int firstIndex, float p)
    {
        // A data-parallel shard starting at element firstIndex of a batch must keep and scale exactly what the
        // whole batch does there: bit-identical, in the fast kernel (vector body and scalar tail) and the reference.
        const int shardLength = 37, wholeLength = 1100;
        float[] whole = Random(wholeLength, 11);
        var wholeOutput = new float[wholeLength];
        DropoutKernels.ForwardReference(p, 5, whole, wholeOutput);
        float[] shard = whole.AsSpan(firstIndex, shardLength).ToArray();
        float[] fast = new float[shardLength], reference = new float[shardLength];
        DropoutKernels.Forward(p, 5, shard, fast, firstIndex);
        DropoutKernels.ForwardReference(p, 5, shard, reference, firstIndex);
        Assert.Equal(wholeOutput.AsSpan(firstIndex, shardLength).ToArray(), fast);
        Assert.Equal(wholeOutput.AsSpan(firstIndex, shardLength).ToArray(), reference);
        DropoutKernels.Backward(p, 5, shard, fast, firstIndex);
        Assert.Equal(wholeOutput.AsSpan(firstIndex, shardLength).ToArray(), fast);
        Assert.Throws<ArgumentOutOfRangeException>(() => DropoutKernels.Forward(p, 5, shard, fast, firstIndex: -1));
    }

    [Fact]
    public void DropoutBackwardRecomputesTheForwardMask()
    {
        float[] input = Random(5000, 3);
        var output = new float[input.Length];
        DropoutKernels.Forward(0.5f, 123, input, output);
        float[] dOutput = Random(input.Length, 4);
        var dInput = new float[input.Length];
        DropoutKernels.Backward(0.5f, 123, dOutput, dInput);
        for (int i = 0; i < input.Length; i++)
        {
            Assert.Equal(output[i] == 0f, dInput[i] == 0f);
            Assert.Equal(output[i] != 0f ? dOutput[i] * 2f : 0f, dInput[i]);
        }
    }

    [Fact]
    public void DropoutMaskDependsOnTheSeedAndIsIdentityAtZero()
    {
        int differences = 0;
        for (int i = 0; i < 1000; i++) if (DropoutKernels.Keep(0.5f, 1, i) != DropoutKernels.Keep(0.5f, 2, i)) differences++;
        Assert.InRange(differences, 400, 600); // independent masks disagree about half the time
        float[] input = Random(100, 5);
        var output = new float[100];
        DropoutKernels.Forward(0f, 9, input, output);
        Assert.Equal(input, output);
        DropoutKernels.Forward(1f, 9, input, output);
        Assert.All(output, v => Assert.Equal(0f, v));
        Assert.Throws<ArgumentOutOfRangeException>(() => DropoutKernels.Forward(1.5f, 9, input, output));
    }

    [Fact]
    public void DropoutWorksInPlace()
    {
        float[] data = Random(1000, 6);
        float[] copy = (float[])data.Clone();
        var expected = new float[data.Length];
        DropoutKernels.Forward(0.3f, 5, copy, expected);
        DropoutKernels.Forward(0.3f, 5, data, data);
        Assert.Equal(expected, data);
    }

    [Fact]
    public void SoftmaxProbabilitiesSumToOneAndLossIsStable()
    {
        // Logits near float's limit: a naive exp overflows to infinity; the stable form gives finite values.
        float[] logits = [1e30f, -1e30f, 0f, 88f, 89f, 90f];
        var probabilities = new float[6];
        float loss = SoftmaxCrossEntropyKernels.Forward(2, 3, logits, [1, 2], probabilities);
        Assert.True(float.IsFinite(loss));
        // Sample 0: label 1 has logit -1e30 below the max 1e30: loss 2e30 / 2 averaged with sample 1.
        Assert.Equal(1f, probabilities[0]);
        float sample1 = (float)(Math.Log(Math.Exp(-2) + Math.Exp(-1) + 1)); // logsumexp - 90
        Assert.Equal((2e30 + sample1) / 2, loss, 1e24);
        Assert.Equal(1.0, probabilities.Skip(3).Sum(), 6);
    }
}
