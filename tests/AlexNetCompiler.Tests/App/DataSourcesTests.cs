using AlexNetCompiler.Data;
using AlexNetCompiler.Tests.Data;
using FashionMnist.App;

namespace AlexNetCompiler.Tests.App;

public sealed class DataSourcesTests : IDisposable
{
    private readonly TempFolder _folder = new();

    public void Dispose() => _folder.Dispose();

    [Fact]
    public void EmbeddedSubset_IsBalancedFashionMnist()
    {
        LoadedData data = DataSources.LoadEmbedded();
        Assert.Equal(6000, data.Train.Count);
        Assert.Equal(1000, data.Test.Count);
        Assert.All(data.Train.ClassCounts(), c => Assert.Equal(600, c));
        Assert.All(data.Test.ClassCounts(), c => Assert.Equal(100, c));
        Assert.Equal((1, 28, 28), (data.Train.Channels, data.Train.Height, data.Train.Width));
        Assert.False(data.IsFullSet);
        // Fashion-MNIST's published training-set mean pixel is 0.2860 (std 0.3530); a 6,000-image sample is within 0.01.
        Normalization n = data.Train.ComputeNormalization();
        Assert.InRange(n.Mean[0], 0.276f, 0.296f);
        Assert.InRange(n.Std[0], 0.343f, 0.363f);
    }

    [Fact]
    public void FolderOfFashionIdx_IsRecognised()
    {
        TinyData.WriteFolder(TinyData.Slice(3, 2), _folder.Path);
        LoadedData data = DataSources.Load(_folder.Path, 1, 28, 28);
        Assert.Equal(30, data.Train.Count);
        Assert.Equal(20, data.Test.Count);
        Assert.Contains(_folder.Path, data.Description);
    }

    [Fact]
    public void Cifar10Folder_IsConvertedToTheNetworkInput()
    {
        // Two CIFAR records: a pure red image (label 3) and a white one (label 7).
        var bytes = new byte[2 * Cifar10.RecordBytes];
        bytes[0] = 3;
        bytes.AsSpan(1, 1024).Fill(255);
        bytes[Cifar10.RecordBytes] = 7;
        bytes.AsSpan(Cifar10.RecordBytes + 1, 3072).Fill(255);
        File.WriteAllBytes(_folder.File("data_batch_1.bin"), bytes);
        File.WriteAllBytes(_folder.File("test_batch.bin"), bytes);

        LoadedData data = DataSources.Load(_folder.Path, 1, 28, 28);
        Assert.Equal((1, 28, 28), (data.Train.Channels, data.Train.Height, data.Train.Width));
        Assert.Equal([3, 7], data.Train.Labels);
        Assert.Contains("converted", data.Description);
        // Grey = BT.601 luma: pure red is 0.299, white is 1 (resizing a constant image keeps it constant).
        Assert.All(data.Train.Image(0).ToArray(), v => Assert.Equal(0.299f, v, 5));
        Assert.All(data.Train.Image(1).ToArray(), v => Assert.Equal(1f, v, 5));
    }

    [Fact]
    public void FolderWithFashionAndCifarFiles_IsDetectedOnce_SoTheNetworkMatchesTheDataLoaded()
    {
        foreach (string name in new[] { FashionMnistFiles.TrainImages, FashionMnistFiles.TrainLabels, FashionMnistFiles.TestImages, FashionMnistFiles.TestLabels,
                     "data_batch_1.bin", "test_batch.bin" })
            File.WriteAllBytes(_folder.File(name), []);

        // LoadFolder takes the Fashion-MNIST files first, so the grey network is the one chosen.
        Assert.Equal(DataSources.FolderKind.FashionMnist, DataSources.Detect(_folder.Path));
        Assert.Same(NetworkChoice.Default, NetworkChoice.ForData(_folder.Path));
    }

    [Fact]
    public void UnknownFolder_SaysWhatItLookedFor()
    {
        File.WriteAllText(_folder.File("readme.txt"), "nothing here");
        var e = Assert.Throws<FileNotFoundException>(() => DataSources.Load(_folder.Path, 1, 28, 28));
        Assert.Contains(_folder.Path, e.Message);
        Assert.Contains("train-images-idx3-ubyte", e.Message);
        Assert.Contains("data_batch_", e.Message);
        Assert.Throws<DirectoryNotFoundException>(() => DataSources.Load(_folder.File("missing"), 1, 28, 28));
    }
}
