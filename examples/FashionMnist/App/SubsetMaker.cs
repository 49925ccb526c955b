using AlexNetCompiler.Data;

namespace FashionMnist.App;

/// <summary>
/// Writes a class-balanced, seeded subset of Fashion-MNIST as four gzip IDX files: the embedded default data
/// is made with <c>alexnet-fashion make-subset</c> (see eng/make-fashion-subset.sh), so it can be rebuilt exactly.
/// </summary>
public static class SubsetMaker
{
    public static (Dataset Train, Dataset Test) Make(string sourceFolder, string outputFolder, int trainPerClass, int testPerClass, ulong seed)
    {
        (Dataset train, Dataset test) = FashionMnistFiles.Load(sourceFolder);
        Dataset trainSubset = train.Select(train.BalancedSubsetIndices(trainPerClass, seed), "subset (train)");
        Dataset testSubset = test.Select(test.BalancedSubsetIndices(testPerClass, seed + 1), "subset (test)");
        Directory.CreateDirectory(outputFolder);
        Write(trainSubset, Path.Combine(outputFolder, FashionMnistFiles.TrainImages + ".gz"), Path.Combine(outputFolder, FashionMnistFiles.TrainLabels + ".gz"));
        Write(testSubset, Path.Combine(outputFolder, FashionMnistFiles.TestImages + ".gz"), Path.Combine(outputFolder, FashionMnistFiles.TestLabels + ".gz"));
        return (trainSubset, testSubset);
    }

    public static void Write(Dataset data, string imagesPath, string labelsPath)
    {
        // Pixels were bytes / 255 on reading; rounding back recovers the original bytes exactly.
        IdxFile.Write(imagesPath, data.Channels == 1 ? [data.Count, data.Height, data.Width] : [data.Count, data.Channels, data.Height, data.Width], IdxDataset.ToBytes(data.Images), gzip: true);
        IdxFile.Write(labelsPath, [data.Count], data.Labels.Select(l => (byte)l).ToArray(), gzip: true);
    }
}
