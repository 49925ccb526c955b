using AlexNetCompiler.Data;

namespace AlexNetCompiler.Tests.Data;

public sealed class BatchLoaderTests
{
    /// <summary>n samples of 1x2x2 whose four pixels all equal (index + 1) / 1000, label index % 10.</summary>
    private static Dataset Numbered(int n)
    {
        var images = new float[n * 4];
        for (int i = 0; i < n; i++) images.AsSpan(i * 4, 4).Fill((i + 1) / 1000f);
        return new Dataset("numbered", images, Enumerable.Range(0, n).Select(i => i % 10).ToArray(), 1, 2, 2,
            Enumerable.Range(0, 10).Select(i => i.ToString()).ToArray());
    }

    [Theory]
    [InlineData(103, 10, false)]
    [InlineData(103, 10, true)]
    [InlineData(64, 16, true)]
    [InlineData(5, 32, true)]
    public void EverySampleOncePerEpoch(int count, int batchSize, bool shuffle)
    {
        Dataset data = Numbered(count);
        using var loader = new BatchLoader(data, batchSize, Normalization.Identity(1), shuffle: shuffle, seed: 3);
        Assert.Equal((count + batchSize - 1) / batchSize, loader.BatchesPerEpoch);
        for (int epoch = 0; epoch < 3; epoch++)
        {
            var seen = new List<int>();
            int batches = 0;
            foreach (Batch batch in loader.Epoch(epoch))
            {
                Assert.Equal(batches, batch.Number);
                batches++;
                for (int i = 0; i < batch.Count; i++)
                {
                    int index = batch.Indices[i];
                    seen.Add(index);
                    Assert.Equal(data.Labels[index], batch.Labels[i]);
                    Assert.Equal((index + 1) / 1000f, batch.Images[i * 4 + 3]);
                }
            }
            Assert.Equal(loader.BatchesPerEpoch, batches);
            Assert.Equal(Enumerable.Range(0, count), seen.Order());
            if (!shuffle) Assert.Equal(Enumerable.Range(0, count), seen);
        }
    }

    private static List<int> Order(BatchLoader loader, int epoch) =>
        loader.Epoch(epoch).SelectMany(b => b.Indices.Take(b.Count).ToArray()).ToList();

    [Fact]
    public void Shuffle_DependsOnlyOnSeedAndEpoch()
    {
        Dataset data = Numbered(200);
        using var a = new BatchLoader(data, 16, Normalization.Identity(1), shuffle: true, seed: 11);
        using var b = new BatchLoader(data, 16, Normalization.Identity(1), shuffle: true, seed: 11);
        using var other = new BatchLoader(data, 16, Normalization.Identity(1), shuffle: true, seed: 12);
        List<int> epoch0 = Order(a, 0), epoch1 = Order(a, 1);
        Assert.NotEqual(epoch0, epoch1);
        // Epoch 1 straight away in a fresh loader (a resumed run) gives the same order.
        Assert.Equal(epoch1, Order(b, 1));
        Assert.Equal(epoch0, Order(b, 0));
        Assert.NotEqual(epoch0, Order(other, 0));
    }

    [Fact]
    public void AugmentedBatches_AreReproducible_AndNormalised()
    {
        var data = new Dataset("r", Enumerable.Range(0, 40 * 36).Select(i => (i * 37 % 101) / 100f).ToArray(),
            Enumerable.Range(0, 40).Select(i => i % 2).ToArray(), 1, 6, 6, ["a", "b"]);
        var options = new AugmentationOptions { RandomCrop = true, HorizontalFlip = true, Rotation = true, BrightnessContrast = true };
        var normalization = new Normalization([0.5f], [0.25f]);
        float[] Run(int epoch)
        {
            using var loader = new BatchLoader(data, 8, normalization, new Augmenter(options, 1, 6, 6), shuffle: true, seed: 9);
            return loader.Epoch(epoch).SelectMany(batch => batch.ImageSpan.ToArray()).ToArray();
        }
        float[] first = Run(2), again = Run(2), next = Run(3);
        Assert.Equal(first, again);
        Assert.NotEqual(first, next);
        // Augmented values lie in [0, 1] before normalisation, so in [(0 - 0.5)/0.25, (1 - 0.5)/0.25] = [-2, 2] after.
        Assert.All(first, v => Assert.InRange(v, -2f - 1e-5f, 2f + 1e-5f));
    }

    [Fact]
    public void LeavingEarly_ThenNextEpoch_Works()
    {
        Dataset data = Numbered(50);
        using var loader = new BatchLoader(data, 7, Normalization.Identity(1), shuffle: true, seed: 1);
        foreach (Batch batch in loader.Epoch(0))
        {
            if (batch.Number == 2) break;
        }
        Assert.Equal(50, Order(loader, 1).Distinct().Count());
    }

    [Fact]
    public void StartingMidEpoch_GivesTheRemainingBatchesOfTheSameOrder()
    {
        Dataset data = Numbered(45);
        using var loader = new BatchLoader(data, 8, Normalization.Identity(1), shuffle: true, seed: 2);
        List<int> full = Order(loader, 3);
        List<int> tail = loader.Epoch(3, firstBatch: 2).SelectMany(b => b.Indices.Take(b.Count).ToArray()).ToList();
        Assert.Equal(full.Skip(16), tail);
        Assert.Empty(loader.Epoch(3, firstBatch: loader.BatchesPerEpoch));
        Assert.Throws<ArgumentOutOfRangeException>(() => loader.Epoch(3, firstBatch: loader.BatchesPerEpoch + 1));
    }

    [Fact]
    public void PrepareBatch_MatchesBackgroundBatches()
    {
        Dataset data = Numbered(30);
        using var loader = new BatchLoader(data, 8, new Normalization([0.01f], [2f]), shuffle: true, seed: 4);
        List<float[]> background = loader.Epoch(5).Select(b => b.ImageSpan.ToArray()).ToList();
        Batch batch = loader.CreateBatch();
        for (int number = 0; number < loader.BatchesPerEpoch; number++)
        {
            loader.PrepareBatch(5, number, batch);
            Assert.Equal(background[number], batch.ImageSpan.ToArray());
        }
    }

    [Fact]
    public void MismatchedNormalisation_IsRejected()
    {
        Dataset data = Numbered(3);
        var e = Assert.Throws<ArgumentException>(() => new BatchLoader(data, 2, Normalization.Identity(3)));
        Assert.Contains("3 channels", e.Message);
    }
}
