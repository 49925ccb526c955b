using AlexNetCompiler.Cpu;
using TorchSharp;
using static AlexNetCompiler.ReferenceTests.TorchInterop;
using static TorchSharp.torch;

namespace AlexNetCompiler.ReferenceTests;

/// <summary>SoftmaxCrossEntropyKernels against torch.nn.functional.cross_entropy (mean reduction) and softmax.</summary>
public sealed class SoftmaxCrossEntropyReferenceTests
{
    // Loss: a log-sum-exp over <= 1000 classes, we sum in double, torch in float32: rel 1e-5 + abs 1e-6.
    // Probabilities and dLogits: one exp and one division each, values in [0, 1]: |d| <= 1e-6 + 1e-4*|ref|.
    [Theory]
    [InlineData(1, 10, 1f)]
    [InlineData(4, 1000, 3f)]
    [InlineData(3, 7, 40f)]   // large logits: exp would overflow without subtracting the max
    public void LossAndGradientMatchTorch(int batch, int classes, float logitScale)
    {
        float[] logits = RandomArray(batch * classes, 41, logitScale);
        int[] labels = Enumerable.Range(0, batch).Select(i => (i * 7919 + 3) % classes).ToArray();

        using var dispose = torch.NewDisposeScope();
        Tensor x = ToLeaf(logits, batch, classes);
        Tensor loss = nn.functional.cross_entropy(x, torch.tensor(labels.Select(l => (long)l).ToArray(), dtype: ScalarType.Int64));
        loss.backward();

        var probabilities = new float[logits.Length];
        float ours = SoftmaxCrossEntropyKernels.Forward(batch, classes, logits, labels, probabilities);
        float theirs = loss.item<float>();
        Assert.True(Math.Abs(ours - theirs) <= 1e-6 + 1e-5 * Math.Abs(theirs), $"loss {ours}, torch {theirs}");
        AssertClose(ToArray(nn.functional.softmax(x, 1)), probabilities, 1e-4, 1e-6, "probabilities");

        var dLogits = new float[logits.Length];
        SoftmaxCrossEntropyKernels.Backward(batch, classes, probabilities, labels, dLogits);
        AssertClose(ToArray(x.grad!), dLogits, 1e-4, 1e-6, "dLogits");
    }

    [Fact]
    public void LabelOutOfRangeNamesTheSample()
    {
        var e = Assert.Throws<ArgumentOutOfRangeException>(() =>
            SoftmaxCrossEntropyKernels.Forward(2, 3, new float[6], [0, 3], new float[6]));
        Assert.Contains("sample 1", e.Message);
    }
}
