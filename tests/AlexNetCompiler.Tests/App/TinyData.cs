using AlexNetCompiler.Data;
using FashionMnist.App;

namespace AlexNetCompiler.Tests.App;

/// <summary>Small balanced slices of the embedded Fashion-MNIST subset, shared by the app tests.</summary>
public static class TinyData
{
    private static readonly Lazy<LoadedData> Embedded = new(DataSources.LoadEmbedded);

    public static LoadedData Embed => Embedded.Value;

    /// <summary>trainPerClass * 10 training and testPerClass * 10 test images (the test images come from the test split).</summary>
    public static LoadedData Slice(int trainPerClass, int testPerClass, ulong seed = 3)
    {
        LoadedData all = Embedded.Value;
        Dataset train = all.Train.Select(all.Train.BalancedSubsetIndices(trainPerClass, seed), "tiny (train)");
        Dataset test = all.Test.Select(all.Test.BalancedSubsetIndices(testPerClass, seed), "tiny (test)");
        return new LoadedData(train, test, $"tiny slice ({train.Count} train / {test.Count} test)", false);
    }

    /// <summary>Writes a slice as the four Fashion-MNIST IDX files (for the command-line tests' --data).</summary>
    public static void WriteFolder(LoadedData data, string folder)
    {
        Directory.CreateDirectory(folder);
        SubsetMaker.Write(data.Train, Path.Combine(folder, FashionMnistFiles.TrainImages + ".gz"), Path.Combine(folder, FashionMnistFiles.TrainLabels + ".gz"));
        SubsetMaker.Write(data.Test, Path.Combine(folder, FashionMnistFiles.TestImages + ".gz"), Path.Combine(folder, FashionMnistFiles.TestLabels + ".gz"));
    }
}
