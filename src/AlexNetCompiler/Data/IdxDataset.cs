namespace AlexNetCompiler.Data;

/// <summary>Builds a <see cref="Dataset"/> from an IDX image file and an IDX label file (MNIST layout).</summary>
public static class IdxDataset
{
    /// <summary>
    /// Reads images [N, H, W] (or [N, C, H, W]) and labels [N], checking that the counts agree and every
    /// label is below the class count. Errors name the offending file.
    /// </summary>
    public static Dataset Load(string imagesPath, string labelsPath, IReadOnlyList<string> classNames, string? name = null) =>
        FromFiles(IdxFile.Read(imagesPath), imagesPath, IdxFile.Read(labelsPath), labelsPath, classNames, name);

    /// <summary>As <see cref="Load"/>, for files already read (e.g. embedded resources); the paths only name them in errors.</summary>
    public static Dataset FromFiles(IdxFile images, string imagesPath, IdxFile labels, string labelsPath, IReadOnlyList<string> classNames, string? name = null)
    {
        int channels, height, width;
        switch (images.Dimensions.Length)
        {
            case 3:
                (channels, height, width) = (1, images.Dimensions[1], images.Dimensions[2]);
                break;
            case 4:
                (channels, height, width) = (images.Dimensions[1], images.Dimensions[2], images.Dimensions[3]);
                break;
            default:
                throw new InvalidDataException($"{imagesPath}: an image file must have 3 dimensions [count, height, width] (or 4 with channels); it has {images.Dimensions.Length}: [{string.Join(", ", images.Dimensions)}].");
        }
        if (height == 0 || width == 0 || channels == 0)
            throw new InvalidDataException($"{imagesPath}: image size [{channels}, {height}, {width}] has a zero dimension.");
        // With no images the data is empty whatever the image size claims; one image must still be indexable by int.
        long plane = (long)channels * height; // below 2^62; multiplied by width only once it is known to be small
        if (plane > int.MaxValue || plane * width > int.MaxValue)
            throw new InvalidDataException($"{imagesPath}: image size [{channels}, {height}, {width}] exceeds {int.MaxValue} values per image.");
        if (labels.Dimensions.Length != 1)
            throw new InvalidDataException($"{labelsPath}: a label file must have 1 dimension [count]; it has {labels.Dimensions.Length}: [{string.Join(", ", labels.Dimensions)}].");
        int count = images.Dimensions[0];
        if (labels.Dimensions[0] != count)
            throw new InvalidDataException($"{labelsPath}: {labels.Dimensions[0]} labels but {imagesPath} holds {count} images.");

        var labelValues = new int[count];
        for (int i = 0; i < count; i++)
        {
            int label = labels.Data[i];
            if (label >= classNames.Count)
                throw new InvalidDataException($"{labelsPath}: label {label} at index {i} is outside [0, {classNames.Count}).");
            labelValues[i] = label;
        }
        return new Dataset(name ?? imagesPath, ToUnitFloats(images.Data), labelValues, channels, height, width, classNames);
    }

    /// <summary>Bytes 0..255 to floats 0..1.</summary>
    public static float[] ToUnitFloats(ReadOnlySpan<byte> bytes)
    {
        var values = new float[bytes.Length];
        const float scale = 1f / 255f;
        for (int i = 0; i < bytes.Length; i++) values[i] = bytes[i] * scale;
        return values;
    }

    /// <summary>Floats in [0, 1] back to bytes, rounding to nearest (used to write subsets).</summary>
    public static byte[] ToBytes(ReadOnlySpan<float> values)
    {
        var bytes = new byte[values.Length];
        for (int i = 0; i < values.Length; i++) bytes[i] = (byte)Math.Clamp(MathF.Round(values[i] * 255f), 0f, 255f);
        return bytes;
    }
}

/// <summary>Fashion-MNIST (Xiao, Rasul and Vollgraf 2017, Zalando Research): file names and class names.</summary>
public static class FashionMnistFiles
{
    /// <summary>Where Debian's dataset-fashion-mnist package installs the full set.</summary>
    public const string DebianFolder = "/usr/share/datasets/fashion-mnist";

    public static readonly IReadOnlyList<string> ClassNames =
        ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"];

    public const string TrainImages = "train-images-idx3-ubyte";
    public const string TrainLabels = "train-labels-idx1-ubyte";
    public const string TestImages = "t10k-images-idx3-ubyte";
    public const string TestLabels = "t10k-labels-idx1-ubyte";

    /// <summary>True when the folder holds the four IDX files (gzip or raw).</summary>
    public static bool Exists(string folder) =>
        new[] { TrainImages, TrainLabels, TestImages, TestLabels }.All(f => Find(folder, f) is not null);

    /// <summary>Loads the training and test splits from a folder of the four IDX files (".gz" or not).</summary>
    public static (Dataset Train, Dataset Test) Load(string folder)
    {
        if (!Directory.Exists(folder))
            throw new DirectoryNotFoundException($"{folder}: data folder not found.");
        Dataset train = IdxDataset.Load(Require(folder, TrainImages), Require(folder, TrainLabels), ClassNames, folder + " (train)");
        Dataset test = IdxDataset.Load(Require(folder, TestImages), Require(folder, TestLabels), ClassNames, folder + " (test)");
        return (train, test);
    }

    private static string Require(string folder, string baseName) =>
        Find(folder, baseName) ?? throw new FileNotFoundException($"{folder}: neither {baseName}.gz nor {baseName} found.", Path.Combine(folder, baseName));

    private static string? Find(string folder, string baseName)
    {
        foreach (string candidate in new[] { baseName + ".gz", baseName })
        {
            string path = Path.Combine(folder, candidate);
            if (File.Exists(path)) return path;
        }
        return null;
    }
}
