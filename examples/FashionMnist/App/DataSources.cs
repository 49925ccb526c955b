using System.Reflection;
using AlexNetCompiler.Data;

namespace FashionMnist.App;

/// <summary>Training and test images held in memory, and where they came from, with a sentence for the user.</summary>
public sealed record LoadedData(Dataset Train, Dataset Test, string Description, bool IsFullSet) : ITrainingData
{
    public IReadOnlyList<string> ClassNames => Train.ClassNames;
    public int TrainCount => Train.Count;
    public int TestCount => Test.Count;
    public int Channels => Train.Channels;
    public int Height => Train.Height;
    public int Width => Train.Width;
    public IReadOnlyDictionary<string, string> CheckpointMetadata { get; } = new Dictionary<string, string>();
    /// <summary>
    /// Padding of the 10-view test's corner crops (<see cref="Evaluator.Evaluate(ForwardPass, int, int, Dataset, Normalization, int, int, CancellationToken)"/>):
    /// the training crop padding, which only in-memory images have (an image folder's views come from its pipeline).
    /// </summary>
    public int CropPadding { get; init; } = 2;

    public Normalization ComputeNormalization() => Train.ComputeNormalization();

    public IBatchSource CreateTrainLoader(TrainSettings settings, Normalization normalization, int shardRank, int shardCount, out IDisposable? owned)
    {
        Augmenter? augmenter = settings.Augmentation.Any ? new Augmenter(settings.Augmentation, Train.Channels, Train.Height, Train.Width) : null;
        var loader = new BatchLoader(Train, settings.BatchSize, normalization, augmenter, shuffle: true, seed: settings.Seed, shardRank: shardRank, shardCount: shardCount);
        owned = loader;
        return loader;
    }

    public EvaluationResult Evaluate(ForwardPass forward, int outputs, int maxBatch, Normalization normalization, int views,
        CancellationToken cancel = default) =>
        Evaluator.Evaluate(forward, outputs, maxBatch, Test, normalization, views, CropPadding, cancel);
}

/// <summary>
/// Finds the data to train on: <c>--data DIR</c> (Fashion-MNIST IDX files or a CIFAR-10 binary folder), the
/// words <c>embedded</c> / <c>debian</c>, or, with no option, the full Fashion-MNIST from Debian's
/// dataset-fashion-mnist package when installed and the embedded subset otherwise.
/// </summary>
public static class DataSources
{
    public const string EmbeddedName = "embedded";
    public const string DebianName = "debian";

    private const string ResourcePrefix = "FashionMnist.Data.";
    private static readonly string[] EmbeddedFiles =
    [
        "train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz",
    ];

    public static LoadedData Load(string? data, int channels, int height, int width)
    {
        LoadedData loaded = data switch
        {
            null or "" => FashionMnistFiles.Exists(FashionMnistFiles.DebianFolder) ? DefaultFullSetOrSubset(channels, height, width) : LoadEmbedded(),
            EmbeddedName => LoadEmbedded(),
            DebianName => FashionMnistFiles.Exists(FashionMnistFiles.DebianFolder)
                ? LoadFolder(FashionMnistFiles.DebianFolder)
                : throw new DirectoryNotFoundException($"{FashionMnistFiles.DebianFolder}: Fashion-MNIST not installed (apt-get install dataset-fashion-mnist)."),
            _ => LoadFolder(data),
        };
        // An empty split would "train" on nothing or report an accuracy of 0/0.
        if (loaded.Test.Count == 0) throw new InvalidDataException($"{loaded.Description}: the test set holds no images.");
        return FitToNetwork(loaded, channels, height, width);
    }

    /// <summary>What a data folder holds, as <see cref="Detect"/> finds it.</summary>
    public enum FolderKind { Unknown, FashionMnist, Cifar10, ImageFolder }

    /// <summary>
    /// The one detection of what a data folder holds, in the order <see cref="LoadFolder"/> loads it and
    /// <see cref="NetworkChoice.ForData"/> picks a network by: Fashion-MNIST IDX files first, then CIFAR-10 batches,
    /// then an image folder. A tree that cannot be listed counts as unknown.
    /// </summary>
    public static FolderKind Detect(string folder)
    {
        if (FashionMnistFiles.Exists(folder)) return FolderKind.FashionMnist;
        if (Cifar10.Exists(folder)) return FolderKind.Cifar10;
        try
        {
            return ImageFolder.Looks(folder) ? FolderKind.ImageFolder : FolderKind.Unknown;
        }
        catch (Exception e) when (e is UnauthorizedAccessException or IOException)
        {
            return FolderKind.Unknown;
        }
    }

    /// <summary>A folder of Fashion-MNIST (or MNIST-layout) IDX files, or of CIFAR-10 binary batches.</summary>
    public static LoadedData LoadFolder(string folder)
    {
        if (!Directory.Exists(folder))
            throw new DirectoryNotFoundException($"{folder}: data folder not found.");
        FolderKind kind = Detect(folder);
        if (kind == FolderKind.FashionMnist)
        {
            (Dataset train, Dataset test) = FashionMnistFiles.Load(folder);
            return new LoadedData(train, test, $"Fashion-MNIST IDX files in {folder} ({train.Count:N0} train / {test.Count:N0} test)", train.Count >= 60000);
        }
        if (kind == FolderKind.Cifar10)
        {
            (Dataset train, Dataset test) = Cifar10.Load(folder);
            return new LoadedData(train, test, $"CIFAR-10 binary batches in {folder} ({train.Count:N0} train / {test.Count:N0} test)", train.Count >= 50000);
        }
        if (kind == FolderKind.ImageFolder)
            throw new NotSupportedException(
                $"{folder}: a folder of images by class; train and eval read it through the decoded-image cache (docs/images.md), not into memory.");
        throw new FileNotFoundException(
            $"{folder}: found neither Fashion-MNIST IDX files ({FashionMnistFiles.TrainImages}[.gz], {FashionMnistFiles.TrainLabels}[.gz], " +
            $"{FashionMnistFiles.TestImages}[.gz], {FashionMnistFiles.TestLabels}[.gz]) nor CIFAR-10 batches (data_batch_*.bin, test_batch.bin).");
    }

    /// <summary>The balanced subset compiled into this program (see Data/README.md).</summary>
    public static LoadedData LoadEmbedded()
    {
        Assembly assembly = typeof(DataSources).Assembly;
        IdxFile Read(string file)
        {
            using Stream stream = assembly.GetManifestResourceStream(ResourcePrefix + file)
                ?? throw new FileNotFoundException($"Embedded resource {ResourcePrefix + file} is missing from {assembly.GetName().Name}.");
            using var memory = new MemoryStream();
            stream.CopyTo(memory);
            return IdxFile.FromFileBytes(memory.ToArray(), "embedded " + file);
        }
        Dataset train = IdxDataset.FromFiles(Read(EmbeddedFiles[0]), "embedded " + EmbeddedFiles[0], Read(EmbeddedFiles[1]), "embedded " + EmbeddedFiles[1],
            FashionMnistFiles.ClassNames, "embedded subset (train)");
        Dataset test = IdxDataset.FromFiles(Read(EmbeddedFiles[2]), "embedded " + EmbeddedFiles[2], Read(EmbeddedFiles[3]), "embedded " + EmbeddedFiles[3],
            FashionMnistFiles.ClassNames, "embedded subset (test)");
        return new LoadedData(train, test, $"embedded Fashion-MNIST subset ({train.Count:N0} train / {test.Count:N0} test)", false);
    }

    /// <summary>
    /// With no --data: the installed full set, unless it would not fit at the network's input size (the full set
    /// upscaled to AlexNet's 227x227 needs 14.4 GB); then the embedded subset, saying why.
    /// </summary>
    private static LoadedData DefaultFullSetOrSubset(int channels, int height, int width)
    {
        LoadedData full = LoadFolder(FashionMnistFiles.DebianFolder);
        string? reason = WhyItWouldNotFit(full, channels, height, width);
        if (reason is null) return full;
        LoadedData subset = LoadEmbedded();
        return subset with { Description = $"{subset.Description}; the full set in {FashionMnistFiles.DebianFolder} was left out: {reason}" };
    }

    /// <summary>
    /// Why the images, converted to the network's input by <see cref="FitToNetwork"/>, would not fit in memory, or
    /// null when they fit. Each split is one float32 array (at most <see cref="Array.MaxLength"/> values: 41,675 images
    /// of 1x227x227), and all of it may take at most half the memory available to the process, leaving the rest
    /// for the network (AlexNet plans 1.2 GiB for a training step at batch 64) and the batches.
    /// </summary>
    public static string? WhyItWouldNotFit(LoadedData data, int channels, int height, int width) =>
        WhyItWouldNotFit(data.Train.Count, data.Test.Count, channels, height, width, GC.GetGCMemoryInfo().TotalAvailableMemoryBytes);

    public static string? WhyItWouldNotFit(int trainCount, int testCount, int channels, int height, int width, long availableBytes)
    {
        long imageLength = (long)channels * height * width;
        long bytes = (trainCount + (long)testCount) * imageLength * sizeof(float);
        string need = $"{trainCount:N0} + {testCount:N0} images at [{channels}, {height}, {width}] need {Gigabytes(bytes)} as float32 ({imageLength * sizeof(float) / 1000.0:N0} KB each)";
        long largestSplit = Math.Max(trainCount, testCount) * imageLength;
        if (largestSplit > Array.MaxLength)
            return $"{need}, and one array holds at most {Array.MaxLength / imageLength:N0} of them";
        if (bytes > availableBytes / 2)
            return $"{need}, more than half of the {Gigabytes(availableBytes)} available";
        return null;
    }

    private static string Gigabytes(long bytes) => $"{bytes / 1e9:0.0} GB";

    /// <summary>
    /// Converts data of another shape (e.g. CIFAR-10's 3x32x32, or Fashion-MNIST's 28x28 for AlexNet's 227x227) to the
    /// network's input: grey, then bilinear resize. Refuses, naming the data, when the result would not fit in memory.
    /// </summary>
    public static LoadedData FitToNetwork(LoadedData data, int channels, int height, int width)
    {
        Dataset train = data.Train, test = data.Test;
        if (train.Channels == channels && train.Height == height && train.Width == width &&
            test.Channels == channels && test.Height == height && test.Width == width)
            return data;
        if (WhyItWouldNotFit(data, channels, height, width) is { } reason)
            throw new NotSupportedException(
                $"{data.Description}: {reason}. Use --data embedded, or a smaller subset: alexnet-fashion make-subset --source DIR " +
                "--train-per-class 2000 --test-per-class 500 --output SUBSET, then --data SUBSET.");
        string description = data.Description + $", converted from [{train.Channels}, {train.Height}, {train.Width}] to the network's [{channels}, {height}, {width}]";
        return data with { Train = Convert(train, channels, height, width), Test = Convert(test, channels, height, width), Description = description };
    }

    private static Dataset Convert(Dataset source, int channels, int height, int width)
    {
        // Grey to colour repeats the grey plane in every channel (Fashion-MNIST for CifarNet).
        bool repeatGrey = source.Channels == 1 && channels > 1;
        if (channels != 1 && channels != source.Channels && !repeatGrey)
            throw new InvalidDataException($"{source.Name}: cannot convert {source.Channels}-channel images to {channels} channels.");
        int length = channels * height * width;
        var images = new float[(long)source.Count * length];
        var grey = new float[source.Height * source.Width];
        for (int n = 0; n < source.Count; n++)
        {
            ReadOnlySpan<float> image = source.Image(n);
            Span<float> destination = images.AsSpan(n * length, length);
            if (channels == 1)
            {
                ImageConversion.ToGrey(image, source.Channels, source.Height, source.Width, grey);
                ImageConversion.ResizeBilinear(grey, source.Height, source.Width, destination, height, width);
            }
            else
            {
                int sourcePlane = source.Height * source.Width, plane = height * width;
                for (int c = 0; c < channels; c++)
                {
                    ReadOnlySpan<float> sourceChannel = repeatGrey ? image : image.Slice(c * sourcePlane, sourcePlane);
                    ImageConversion.ResizeBilinear(sourceChannel, source.Height, source.Width, destination.Slice(c * plane, plane), height, width);
                }
            }
        }
        return new Dataset(source.Name, images, (int[])source.Labels.Clone(), channels, height, width, source.ClassNames);
    }
}

/// <summary>Channel and size conversions for whole images (plain loops; used once per image).</summary>
public static class ImageConversion
{
    /// <summary>ITU-R BT.601 luma for 3 channels, the mean for other counts, a copy for one.</summary>
    public static void ToGrey(ReadOnlySpan<float> image, int channels, int height, int width, Span<float> grey)
    {
        int plane = height * width;
        for (int i = 0; i < plane; i++)
        {
            if (channels == 3) grey[i] = 0.299f * image[i] + 0.587f * image[plane + i] + 0.114f * image[2 * plane + i];
            else
            {
                float sum = 0;
                for (int c = 0; c < channels; c++) sum += image[c * plane + i];
                grey[i] = sum / channels;
            }
        }
    }

    /// <summary>
    /// Shrinks one plane by averaging, for each destination pixel, the block of source pixels it covers (rows
    /// floor(y * H / h) up to floor((y + 1) * H / h), at least one; columns alike): every source pixel counts, whatever
    /// the ratio, where bilinear sampling would skip pixels below a 2x reduction.
    /// </summary>
    public static void ShrinkByAreaAverage(ReadOnlySpan<float> source, int sourceHeight, int sourceWidth, Span<float> destination, int height, int width)
    {
        for (int y = 0; y < height; y++)
        {
            int y0 = (int)((long)y * sourceHeight / height), y1 = Math.Max(y0 + 1, (int)((long)(y + 1) * sourceHeight / height));
            for (int x = 0; x < width; x++)
            {
                int x0 = (int)((long)x * sourceWidth / width), x1 = Math.Max(x0 + 1, (int)((long)(x + 1) * sourceWidth / width));
                double sum = 0;
                for (int sy = y0; sy < y1; sy++)
                    for (int sx = x0; sx < x1; sx++) sum += source[sy * sourceWidth + sx];
                destination[y * width + x] = (float)(sum / ((y1 - y0) * (x1 - x0)));
            }
        }
    }

    /// <summary>
    /// Bilinear resize of one plane with pixel-centre alignment (the "align_corners=False" convention).
    /// When shrinking by more than 2x, first averages boxes so that small details are not skipped.
    /// </summary>
    public static void ResizeBilinear(ReadOnlySpan<float> source, int sourceHeight, int sourceWidth, Span<float> destination, int height, int width)
    {
        if (sourceHeight >= 2 * height && sourceWidth >= 2 * width)
        {
            int factorY = sourceHeight / height, factorX = sourceWidth / width;
            int boxHeight = sourceHeight / factorY, boxWidth = sourceWidth / factorX;
            var boxed = new float[boxHeight * boxWidth];
            for (int y = 0; y < boxHeight; y++)
                for (int x = 0; x < boxWidth; x++)
                {
                    float sum = 0;
                    for (int dy = 0; dy < factorY; dy++)
                        for (int dx = 0; dx < factorX; dx++)
                            sum += source[(y * factorY + dy) * sourceWidth + x * factorX + dx];
                    boxed[y * boxWidth + x] = sum / (factorY * factorX);
                }
            ResizeBilinear(boxed, boxHeight, boxWidth, destination, height, width);
            return;
        }
        float scaleY = (float)sourceHeight / height, scaleX = (float)sourceWidth / width;
        for (int y = 0; y < height; y++)
        {
            float sy = Math.Clamp((y + 0.5f) * scaleY - 0.5f, 0, sourceHeight - 1);
            int y0 = (int)sy, y1 = Math.Min(y0 + 1, sourceHeight - 1);
            float fy = sy - y0;
            for (int x = 0; x < width; x++)
            {
                float sx = Math.Clamp((x + 0.5f) * scaleX - 0.5f, 0, sourceWidth - 1);
                int x0 = (int)sx, x1 = Math.Min(x0 + 1, sourceWidth - 1);
                float fx = sx - x0;
                float top = source[y0 * sourceWidth + x0] * (1 - fx) + source[y0 * sourceWidth + x1] * fx;
                float bottom = source[y1 * sourceWidth + x0] * (1 - fx) + source[y1 * sourceWidth + x1] * fx;
                destination[y * width + x] = top * (1 - fy) + bottom * fy;
            }
        }
    }
}
