using AlexNetCompiler.Data;

namespace AlexNetCompiler.Tests.Data;

public sealed class AugmentationTests
{
    private const int C = 2, H = 7, W = 9;

    /// <summary>Values in [0, 1], all distinct, no symmetry (so flips and rotations change them).</summary>
    private static float[] Sample(int seed = 1)
    {
        var values = new float[C * H * W];
        var random = new SplitMixRandom((ulong)seed);
        for (int i = 0; i < values.Length; i++) values[i] = random.NextSingle();
        return values;
    }

    private static readonly AugmentationOptions All = new()
    {
        RandomCrop = true, CropPadding = 2, HorizontalFlip = true, Rotation = true, MaxRotationDegrees = 10, BrightnessContrast = true,
    };

    [Fact]
    public void FlipTwice_IsIdentity_AndFlipMirrorsRows()
    {
        float[] original = Sample(), flipped = (float[])original.Clone();
        ImageOps.FlipHorizontal(flipped, C, H, W);
        Assert.Equal(original[(1 * H + 3) * W + 0], flipped[(1 * H + 3) * W + W - 1]);
        Assert.NotEqual(original, flipped);
        ImageOps.FlipHorizontal(flipped, C, H, W);
        Assert.Equal(original, flipped);
    }

    [Fact]
    public void RotationByZero_IsIdentity()
    {
        float[] original = Sample(), rotated = new float[original.Length];
        ImageOps.Rotate(original, rotated, C, H, W, 0f);
        Assert.Equal(original, rotated);
    }

    [Fact]
    public void RotationBy90_OnSquareImage_MovesPixelsAsExpected()
    {
        // Square 5x5, one channel: 90 degrees counter-clockwise on screen maps source (row r, column c)
        // to (row W-1-c, column r), i.e. destination[y, x] = source[x, W-1-y].
        const int n = 5;
        var source = new float[n * n];
        for (int i = 0; i < source.Length; i++) source[i] = i / 25f;
        var rotated = new float[n * n];
        ImageOps.Rotate(source, rotated, 1, n, n, 90f);
        for (int y = 0; y < n; y++)
            for (int x = 0; x < n; x++)
                // cos(90°) in double is 6e-17, not 0: bilinear weights are off by that much, far below float32 resolution.
                Assert.Equal(source[x * n + (n - 1 - y)], rotated[y * n + x], 5);
    }

    [Fact]
    public void RotationSmallAngle_StaysInRange_AndFillsCornersWithZero()
    {
        var ones = Enumerable.Repeat(1f, H * W).ToArray();
        var rotated = new float[H * W];
        ImageOps.Rotate(ones, rotated, 1, H, W, 10f);
        Assert.All(rotated, v => Assert.InRange(v, 0f, 1f + 1e-6f));
        // The centre pixel maps to itself; the corners rotate partly outside the image and lose weight.
        Assert.Equal(1f, rotated[(H / 2) * W + W / 2], 5);
        Assert.True(rotated[0] < 1f);
    }

    [Fact]
    public void CropAtCentreOffset_IsIdentity_AndShiftsOtherwise()
    {
        float[] original = Sample(), cropped = new float[original.Length];
        ImageOps.CropPadded(original, cropped, C, H, W, padding: 2, offsetY: 2, offsetX: 2);
        Assert.Equal(original, cropped);

        // Offset (1, 3): destination (y, x) = source (y - 1, x + 1); row 0 and the last column are padding.
        ImageOps.CropPadded(original, cropped, C, H, W, padding: 2, offsetY: 1, offsetX: 3);
        for (int c = 0; c < C; c++)
            for (int y = 0; y < H; y++)
                for (int x = 0; x < W; x++)
                {
                    int sy = y - 1, sx = x + 1;
                    float expected = sy >= 0 && sx < W ? original[(c * H + sy) * W + sx] : 0f;
                    Assert.Equal(expected, cropped[(c * H + y) * W + x]);
                }
        Assert.Throws<ArgumentOutOfRangeException>(() => ImageOps.CropPadded(original, cropped, C, H, W, 2, 5, 0));
    }

    [Fact]
    public void BrightnessContrast_NeutralIsIdentity_AndContrastKeepsMean()
    {
        float[] original = Sample(), adjusted = (float[])original.Clone();
        ImageOps.AdjustBrightnessContrast(adjusted, 0f, 1f);
        for (int i = 0; i < original.Length; i++) Assert.Equal(original[i], adjusted[i], 6);

        // Values in [0.4, 0.6] with contrast 1.5 stay inside [0, 1] (no clamping), so the mean is unchanged.
        float[] mid = original.Select(v => 0.4f + 0.2f * v).ToArray();
        float meanBefore = mid.Average();
        ImageOps.AdjustBrightnessContrast(mid, 0f, 1.5f);
        Assert.Equal(meanBefore, mid.Average(), 5);
        ImageOps.AdjustBrightnessContrast(mid, 0.1f, 1f);
        Assert.Equal(meanBefore + 0.1f, mid.Average(), 5);
    }

    [Fact]
    public void Augmenter_KeepsShapeAndRange_AndIsDeterministicUnderSeed()
    {
        var augmenter = new Augmenter(All, C, H, W);
        var scratch = new float[C * H * W];
        for (int seed = 0; seed < 50; seed++)
        {
            float[] a = Sample(seed), b = Sample(seed);
            var ra = SplitMixRandom.For(42, 3, seed);
            var rb = SplitMixRandom.For(42, 3, seed);
            augmenter.Apply(a, scratch, ref ra);
            augmenter.Apply(b, scratch, ref rb);
            Assert.Equal(a, b);
            Assert.Equal(C * H * W, a.Length);
            Assert.All(a, v => Assert.InRange(v, 0f, 1f));
        }
    }

    [Fact]
    public void Augmenter_DifferentStreams_GiveDifferentResults()
    {
        var augmenter = new Augmenter(All, C, H, W);
        var scratch = new float[C * H * W];
        var results = new HashSet<string>();
        for (int epoch = 0; epoch < 10; epoch++)
        {
            float[] a = Sample();
            var random = SplitMixRandom.For(7, epoch, 0);
            augmenter.Apply(a, scratch, ref random);
            results.Add(string.Join(",", a));
        }
        Assert.True(results.Count >= 9, $"only {results.Count} distinct augmentations of 10");
    }

    [Fact]
    public void Augmenter_NoOptions_IsIdentity()
    {
        var augmenter = new Augmenter(AugmentationOptions.None, C, H, W);
        float[] a = Sample();
        var random = new SplitMixRandom(1);
        augmenter.Apply(a, new float[a.Length], ref random);
        Assert.Equal(Sample(), a);
    }

    [Fact]
    public void Normalization_AppliesPerChannel_AndDatasetStatisticsAreCorrect()
    {
        // Channel 0 holds 0 and 1 (mean 0.5, std 0.5), channel 1 holds 0.25 everywhere (std 0 -> floor 1e-6).
        float[] images = [0, 1, 0.25f, 0.25f, 1, 0, 0.25f, 0.25f];
        var data = new Dataset("t", images, [0, 1], 2, 1, 2, ["a", "b"]);
        Normalization n = data.ComputeNormalization();
        Assert.Equal([0.5f, 0.25f], n.Mean);
        Assert.Equal(0.5f, n.Std[0], 6);
        Assert.Equal(1e-6f, n.Std[1]);

        float[] sample = [0, 1, 0.25f, 0.75f];
        new Normalization([0.5f, 0.25f], [0.5f, 0.25f]).Apply(sample, 1, 2);
        Assert.Equal([-1f, 1f, 0f, 2f], sample);

        Normalization parsed = Normalization.Parse(n.MeanText, n.StdText);
        Assert.Equal(n.Mean, parsed.Mean);
        Assert.Equal(n.Std, parsed.Std);
    }

    [Fact]
    public void BalancedSubset_HasEqualClassCounts_AndNoDuplicates()
    {
        int[] labels = Enumerable.Range(0, 300).Select(i => i % 3 == 0 ? 0 : i % 3 == 1 ? 1 : 2).ToArray();
        var data = new Dataset("t", new float[300], labels, 1, 1, 1, ["a", "b", "c"]);
        int[] chosen = data.BalancedSubsetIndices(40, seed: 5);
        Assert.Equal(120, chosen.Length);
        Assert.Equal(120, chosen.Distinct().Count());
        Assert.Equal([40, 40, 40], data.Select(chosen).ClassCounts());
        Assert.Equal(chosen, data.BalancedSubsetIndices(40, seed: 5));
        Assert.Throws<ArgumentException>(() => data.BalancedSubsetIndices(101, seed: 5));
    }
}
