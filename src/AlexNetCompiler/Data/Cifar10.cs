namespace AlexNetCompiler.Data;

/// <summary>
/// The CIFAR-10 binary format (Krizhevsky 2009): each record is 1 label byte then 3072 pixel bytes,
/// 1024 red, 1024 green, 1024 blue, each a 32x32 row-major plane (so CHW already). Training files are
/// data_batch_1.bin .. data_batch_5.bin, the test file test_batch.bin.
/// </summary>
public static class Cifar10
{
    public const int Channels = 3, Height = 32, Width = 32;
    public const int ImageBytes = Channels * Height * Width;
    public const int RecordBytes = 1 + ImageBytes;

    public static readonly IReadOnlyList<string> ClassNames =
        ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"];

    /// <summary>True when the folder holds at least one data_batch_*.bin and test_batch.bin.</summary>
    public static bool Exists(string folder) =>
        Directory.Exists(folder) && TrainingFiles(folder).Length > 0 && File.Exists(Path.Combine(folder, "test_batch.bin"));

    public static (Dataset Train, Dataset Test) Load(string folder)
    {
        if (!Directory.Exists(folder))
            throw new DirectoryNotFoundException($"{folder}: data folder not found.");
        string[] trainFiles = TrainingFiles(folder);
        if (trainFiles.Length == 0)
            throw new FileNotFoundException($"{folder}: no CIFAR-10 training files (data_batch_*.bin).");
        string testFile = Path.Combine(folder, "test_batch.bin");
        if (!File.Exists(testFile))
            throw new FileNotFoundException($"{folder}: CIFAR-10 test file test_batch.bin not found.", testFile);
        return (ReadFiles(trainFiles, folder + " (train)"), ReadFiles([testFile], folder + " (test)"));
    }

    /// <summary>
    /// The most records all files together may hold: their images go into one float array of at most Array.MaxLength
    /// elements (about 699,000 records; CIFAR-10 has 60,000).
    /// </summary>
    public static int MaxRecords => Array.MaxLength / ImageBytes;

    /// <summary>
    /// Reads and concatenates record files, validating size and labels. Sizes are checked from the file lengths
    /// before anything is read, so an odd-sized or oversized file costs no memory.
    /// </summary>
    public static Dataset ReadFiles(IReadOnlyList<string> paths, string name)
    {
        long total = 0;
        foreach (string path in paths)
        {
            long length = new FileInfo(path).Length;
            if (length == 0)
                throw new InvalidDataException($"{path}: empty CIFAR-10 file.");
            if (length % RecordBytes != 0)
                throw new InvalidDataException($"{path}: truncated: {length} bytes is not a whole number of {RecordBytes}-byte records (record {length / RecordBytes} has only {length % RecordBytes} bytes).");
            total += length / RecordBytes;
            if (total > MaxRecords)
                throw new InvalidDataException($"{path}: {name} would hold {total} records or more, too many for one array (at most {MaxRecords}).");
        }

        var files = new List<byte[]>(paths.Count);
        long readTotal = 0;
        foreach (string path in paths)
        {
            byte[] bytes = File.ReadAllBytes(path);
            // The length was checked above; a file that changed since is reported, not trusted.
            if (bytes.Length == 0 || bytes.Length % RecordBytes != 0)
                throw new InvalidDataException($"{path}: the CIFAR-10 file changed while it was read ({bytes.Length} bytes now).");
            int records = bytes.Length / RecordBytes;
            for (int r = 0; r < records; r++)
            {
                byte label = bytes[r * RecordBytes];
                if (label >= ClassNames.Count)
                    throw new InvalidDataException($"{path}: label {label} in record {r} is outside [0, {ClassNames.Count}).");
            }
            files.Add(bytes);
            readTotal += records;
        }
        if (readTotal != total)
            throw new InvalidDataException($"{name}: the CIFAR-10 files changed while they were read ({readTotal} records, {total} expected).");

        var images = new float[total * ImageBytes];
        var labels = new int[total];
        int n = 0;
        const float scale = 1f / 255f;
        foreach (byte[] bytes in files)
        {
            for (int offset = 0; offset < bytes.Length; offset += RecordBytes, n++)
            {
                labels[n] = bytes[offset];
                Span<float> image = images.AsSpan(n * ImageBytes, ImageBytes);
                ReadOnlySpan<byte> pixels = bytes.AsSpan(offset + 1, ImageBytes);
                for (int i = 0; i < ImageBytes; i++) image[i] = pixels[i] * scale;
            }
        }
        return new Dataset(name, images, labels, Channels, Height, Width, ClassNames);
    }

    private static string[] TrainingFiles(string folder) =>
        Directory.GetFiles(folder, "data_batch_*.bin").Order(StringComparer.Ordinal).ToArray();
}
