using AlexNetCompiler.Cpu;
using AlexNetCompiler.Data;
using AlexNetCompiler.Training;
using FashionMnist;
using FashionMnist.App;

namespace AlexNetCompiler.Tests.App;

public sealed class TestViewsTests
{
    [Fact]
    public void TenViews_AreTheFiveCropsAndTheirReflections()
    {
        // One 5x5 image with a single lit pixel at the centre (2, 2), crop padding 1. A crop whose top-left corner
        // is (oy, ox) in padded coordinates moves the pixel to (2 + 1 - oy, 2 + 1 - ox): the four corner crops put it
        // at (3, 3), (3, 1), (1, 3), (1, 1); the centre crop leaves it; a reflection maps column x to 4 - x.
        var image = new float[25];
        image[2 * 5 + 2] = 1f;
        var data = new Dataset("one", image, [0], 1, 5, 5, ["a", "b"]);
        var seen = new List<(int Y, int X)>();
        ForwardPass forward = (images, count, logits) =>
        {
            for (int n = 0; n < count; n++)
            {
                ReadOnlySpan<float> sample = images.Slice(n * 25, 25);
                int lit = sample.IndexOf(1f);
                Assert.Equal(1, sample.ToArray().Count(v => v != 0f)); // nothing else lit, padding is zero
                seen.Add((lit / 5, lit % 5));
                logits[n * 2] = 0f;
                logits[n * 2 + 1] = 0f;
            }
        };

        Evaluator.EvaluateViews(forward, 2, 4, data, Normalization.Identity(1), views: 10, cropPadding: 1);

        var expected = new[] { (2, 2), (2, 2), (3, 3), (3, 3), (3, 1), (3, 1), (1, 3), (1, 3), (1, 1), (1, 1) };
        Assert.Equal(expected.OrderBy(p => p), seen.OrderBy(p => p));
    }

    [Fact]
    public void TwoViews_AverageTheSoftmaxOfTheImageAndItsReflection()
    {
        // Right half lit; the network's logit k is the sum over half k of the image. The image gives logits (0, 8),
        // its reflection (8, 0): the averaged probabilities are (0.5, 0.5) and the loss is ln 2 for either label.
        var image = new float[16];
        for (int y = 0; y < 4; y++) { image[y * 4 + 2] = 1f; image[y * 4 + 3] = 1f; }
        var data = new Dataset("half", image, [1], 1, 4, 4, ["left", "right"]);
        ForwardPass forward = (images, count, logits) =>
        {
            for (int n = 0; n < count; n++)
            {
                float left = 0, right = 0;
                for (int y = 0; y < 4; y++)
                    for (int x = 0; x < 4; x++)
                        if (x < 2) left += images[n * 16 + y * 4 + x]; else right += images[n * 16 + y * 4 + x];
                logits[n * 2] = left;
                logits[n * 2 + 1] = right;
            }
        };

        EvaluationResult single = Evaluator.EvaluateViews(forward, 2, 1, data, Normalization.Identity(1), views: 1, cropPadding: 1);
        Assert.Equal(1.0, single.Accuracy);
        Assert.Equal(Math.Log(1 + Math.Exp(-8)), single.Loss, 1e-9);

        EvaluationResult both = Evaluator.EvaluateViews(forward, 2, 1, data, Normalization.Identity(1), views: 2, cropPadding: 1);
        Assert.Equal(Math.Log(2), both.Loss, 1e-9);
    }

    [Fact]
    public void OneView_MatchesTheLoaderEvaluation_OnTheGeneratedNetwork()
    {
        LoadedData data = TinyData.Slice(1, 6);
        using var cpu = new CpuContext(2);
        var network = new FashionNet(16, cpu);
        Initializer.Initialize(FashionNet.Model, network.Parameters, InitScheme.He, seed: 4);
        Normalization normalization = data.Train.ComputeNormalization();
        using var loader = new BatchLoader(data.Test, 16, normalization);

        EvaluationResult viaLoader = Evaluator.Evaluate(network, loader);
        EvaluationResult viaViews = Evaluator.EvaluateViews(network.Forward, 10, 16, data.Test, normalization, views: 1, cropPadding: 2);

        Assert.Equal(viaLoader.Confusion, viaViews.Confusion);
        // Same logits; the two losses differ only in rounding: both subtract the maximum logit in float32 (an error
        // of one ulp of a logit, ~2e-6 for logits near 30) before their double log-sum-exp / log-softmax. Relative 1e-6.
        Assert.Equal(viaLoader.Loss, viaViews.Loss, viaLoader.Loss * 1e-6);
    }

    [Theory]
    [InlineData(3, 2, "--views 3")]
    [InlineData(10, 0, "--crop-padding 0")]
    public void BadViewSettings_AreRejected(int views, int padding, string named)
    {
        var data = new Dataset("one", new float[25], [0], 1, 5, 5, ["a", "b"]);
        var e = Assert.Throws<ArgumentException>(() =>
            Evaluator.EvaluateViews((_, _, _) => { }, 2, 1, data, Normalization.Identity(1), views, padding));
        Assert.Contains(named, e.Message);
    }
}
