using AlexNetCompiler.Data;
using FashionMnist.App;

namespace AlexNetCompiler.Tests.Data;

public sealed class ImageBatchLoaderTests : IDisposable
{
    private const int Side = 12, Crop = 9, Length = 3 * Crop * Crop;
    private readonly TempFolder _temp = new();
    private readonly ImageCache _cache;
    private readonly ImagePipeline _pipeline;

    public ImageBatchLoaderTests()
    {
        string images = Path.Combine(_temp.Path, "images");
        for (int i = 0; i < 12; i++)
            ImageFiles.WriteNoise(Path.Combine(images, i % 3 == 0 ? "b" : "a", $"{i:D2}.{(i % 2 == 0 ? "png" : "jpg")}"), Side, Side, seed: i);
        _cache = ImageCache.Open(ImageFolder.Scan(images), Side, Path.Combine(_temp.Path, "cache"), SkiaImageDecoder.Instance);
        ImageSet all = ImageSet.All("all", _cache);
        _pipeline = new ImagePipeline(new ImagePipelineOptions { Side = Side, CropSize = Crop }, ImageStatistics.Compute(all));
    }

    public void Dispose()
    {
        _cache.Dispose();
        _temp.Dispose();
    }

    private static List<(float[] Images, int[] Labels, int[] Indices)> Collect(ImageBatchLoader loader, int epoch) =>
        loader.Epoch(epoch).Select(b => (b.ImageSpan.ToArray(), b.LabelSpan.ToArray(), b.Indices[..b.Count])).ToList();

    [Fact]
    public void TrainingEpoch_HoldsEveryImageOnce_InBatchesOfTheGivenSize()
    {
        var loader = new ImageBatchLoader(ImageSet.All("all", _cache), _pipeline, batchSize: 5, training: true, seed: 3);

        var batches = Collect(loader, epoch: 0);

        Assert.Equal([5, 5, 2], batches.Select(b => b.Labels.Length));
        Assert.Equal(Enumerable.Range(0, 12), batches.SelectMany(b => b.Indices).Order());
        Assert.All(batches, b => Assert.Equal(b.Indices.Select(_cache.Label), b.Labels));
        Assert.All(batches, b => Assert.Equal(b.Labels.Length * Length, b.Images.Length));
    }

    [Fact]
    public void TrainingBatches_ArePureFunctionsOfSeedEpochAndIndex_WhateverTheThreads()
    {
        var one = new ImageBatchLoader(ImageSet.All("all", _cache), _pipeline, 4, training: true, seed: 9, threads: 1);
        var four = new ImageBatchLoader(ImageSet.All("all", _cache), _pipeline, 4, training: true, seed: 9, threads: 4);

        var a = Collect(one, 2);
        var b = Collect(four, 2);

        for (int i = 0; i < a.Count; i++)
        {
            Assert.Equal(a[i].Indices, b[i].Indices);
            Assert.Equal(a[i].Images, b[i].Images);
        }
        Assert.NotEqual(a.SelectMany(x => x.Indices), Collect(one, 3).SelectMany(x => x.Indices));
    }

    [Fact]
    public void EvaluationBatches_AreInOrder_AndTheCentreCrops()
    {
        ImageSet set = ImageSet.All("all", _cache);
        var loader = new ImageBatchLoader(set, _pipeline, 5, training: false);
        var expected = new float[Length];

        var batches = Collect(loader, 0);

        Assert.Equal(Enumerable.Range(0, 12), batches.SelectMany(b => b.Indices));
        int n = 0;
        foreach (var batch in batches)
            for (int i = 0; i < batch.Labels.Length; i++, n++)
            {
                _pipeline.Centre(set.Pixels(n), expected);
                Assert.Equal(expected, batch.Images.AsSpan(i * Length, Length).ToArray());
            }
    }

    [Fact]
    public void HeldOutSplit_BatchesHoldTheSetsImagesAndLabels_NotTheCachesAtTheSameIndex()
    {
        (ImageSet train, ImageSet validation) = ImageSet.HeldOutSplit(_cache, 0.25, seed: 5);
        Assert.NotEqual(Enumerable.Range(0, validation.Count), validation.Indices); // else set and cache indices agree
        var expected = new float[Length];

        foreach (ImageSet set in new[] { train, validation })
        {
            var batches = Collect(new ImageBatchLoader(set, _pipeline, 3, training: false), 0);

            Assert.Equal(Enumerable.Range(0, set.Count), batches.SelectMany(b => b.Indices));
            foreach (var batch in batches)
                for (int i = 0; i < batch.Labels.Length; i++)
                {
                    Assert.Equal(set.Label(batch.Indices[i]), batch.Labels[i]);
                    _pipeline.Centre(set.Pixels(batch.Indices[i]), expected);
                    Assert.Equal(expected, batch.Images.AsSpan(i * Length, Length).ToArray());
                }
        }
        // Training batches too: each sample's label is its set image's.
        var trainingBatches = Collect(new ImageBatchLoader(validation, _pipeline, 2, training: true, seed: 1), 0);
        Assert.All(trainingBatches, b => Assert.Equal(b.Indices.Select(validation.Label), b.Labels));
    }

    [Fact]
    public void Epoch_WhileAnotherIsOpen_IsRefused_AndAllowedOnceItIsLeft()
    {
        var loader = new ImageBatchLoader(ImageSet.All("all", _cache), _pipeline, 4, training: true);
        using (IEnumerator<Batch> open = loader.Epoch(0).GetEnumerator())
        {
            Assert.True(open.MoveNext());
            Assert.Contains("previous epoch", Assert.Throws<InvalidOperationException>(() => loader.Epoch(1)).Message);
        }
        Assert.Equal(3, loader.Epoch(1).Count());
    }

    [Fact]
    public void Epoch_LeftEarly_ThenTheCacheDisposed_DoesNotTouchTheUnmappedPixels()
    {
        // Large enough batches that the one in preparation is still being filled when the loop is left.
        const int side = 96, count = 64;
        string images = Path.Combine(_temp.Path, "large");
        for (int i = 0; i < count; i++)
            ImageFiles.Write(Path.Combine(images, i % 2 == 0 ? "a" : "b", $"{i:D2}.png"), side, side, (x, y) => new SkiaSharp.SKColor((byte)(x * 2 + i), (byte)(y * 2), (byte)i));
        var cache = ImageCache.Open(ImageFolder.Scan(images), side, Path.Combine(_temp.Path, "large-cache"), SkiaImageDecoder.Instance);
        ImageSet set = ImageSet.All("large", cache);
        var pipeline = new ImagePipeline(new ImagePipelineOptions { Side = side, CropSize = 85 }, ImageStatistics.Compute(set));
        var loader = new ImageBatchLoader(set, pipeline, batchSize: count / 2, training: true, threads: 1);

        foreach (Batch batch in loader.Epoch(0))
        {
            Assert.Equal(count / 2, batch.Count);
            break;
        }
        // The worker preparing the second batch reads mapped pixels: were it still running, this would unmap them under
        // it and end the test process. A race, so this test catches the fault only when the unmapping lands inside a
        // read; Epoch_WhileAnotherIsOpen shows deterministically that leaving the loop runs the clean-up.
        cache.Dispose();

        Assert.Throws<ObjectDisposedException>(() => set.Pixels(0));
    }

    [Fact]
    public void Statistics_OfNoImages_AreRefused()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => ImageStatistics.Compute(ImageSet.All("all", _cache), maxImages: 0));
    }

    [Fact]
    public void Loader_ForAnotherSide_IsRefused()
    {
        var pipeline = new ImagePipeline(new ImagePipelineOptions { Side = 16, CropSize = 9 }, _pipeline.Statistics);
        Assert.Contains("12x12", Assert.Throws<ArgumentException>(() => new ImageBatchLoader(ImageSet.All("all", _cache), pipeline, 4, true)).Message);
    }
}
