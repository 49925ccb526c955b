namespace AlexNetCompiler.Data;

/// <summary>
/// Images and labels in memory. Images are float32 CHW per sample, batch-major (NCHW), with pixel values
/// scaled to [0, 1] (byte / 255); mean/std normalisation happens later, in the loader, so that augmentation
/// works on the natural range. Labels are class indices in [0, ClassCount).
/// </summary>
public sealed class Dataset
{
    public Dataset(string name, float[] images, int[] labels, int channels, int height, int width, IReadOnlyList<string> classNames)
    {
        ArgumentNullException.ThrowIfNull(images);
        ArgumentNullException.ThrowIfNull(labels);
        ArgumentNullException.ThrowIfNull(classNames);
        if (channels <= 0 || height <= 0 || width <= 0)
            throw new ArgumentException($"Dataset '{name}': image shape [{channels}, {height}, {width}] must be positive.");
        if (classNames.Count == 0)
            throw new ArgumentException($"Dataset '{name}': at least one class is required.");
        int sampleLength = channels * height * width;
        if (images.Length != (long)labels.Length * sampleLength)
            throw new ArgumentException($"Dataset '{name}': {images.Length} image values do not match {labels.Length} labels of {sampleLength} values each.");
        for (int i = 0; i < labels.Length; i++)
        {
            if ((uint)labels[i] >= (uint)classNames.Count)
                throw new ArgumentException($"Dataset '{name}': label {labels[i]} at index {i} is outside [0, {classNames.Count}).");
        }
        Name = name;
        Images = images;
        Labels = labels;
        Channels = channels;
        Height = height;
        Width = width;
        ClassNames = classNames;
    }

    /// <summary>Where the data came from, e.g. a folder or "embedded subset".</summary>
    public string Name { get; }
    public float[] Images { get; }
    public int[] Labels { get; }
    public int Channels { get; }
    public int Height { get; }
    public int Width { get; }
    public IReadOnlyList<string> ClassNames { get; }

    public int Count => Labels.Length;
    public int ClassCount => ClassNames.Count;
    public int SampleLength => Channels * Height * Width;

    public ReadOnlySpan<float> Image(int index) => Images.AsSpan(index * SampleLength, SampleLength);

    /// <summary>Samples per class.</summary>
    public int[] ClassCounts()
    {
        var counts = new int[ClassCount];
        foreach (int label in Labels) counts[label]++;
        return counts;
    }

    /// <summary>A new dataset holding the given samples, in the given order.</summary>
    public Dataset Select(IReadOnlyList<int> indices, string? name = null)
    {
        int n = indices.Count, length = SampleLength;
        var images = new float[(long)n * length];
        var labels = new int[n];
        for (int i = 0; i < n; i++)
        {
            int source = indices[i];
            if ((uint)source >= (uint)Count)
                throw new ArgumentOutOfRangeException(nameof(indices), $"Index {source} is outside the {Count} samples of '{Name}'.");
            Image(source).CopyTo(images.AsSpan(i * length, length));
            labels[i] = Labels[source];
        }
        return new Dataset(name ?? Name, images, labels, Channels, Height, Width, ClassNames);
    }

    /// <summary>
    /// The first <paramref name="perClass"/> samples of each class after a seeded shuffle, then shuffled
    /// again so classes are interleaved. Throws when a class has fewer samples.
    /// </summary>
    public int[] BalancedSubsetIndices(int perClass, ulong seed)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(perClass, 1);
        var order = new int[Count];
        for (int i = 0; i < order.Length; i++) order[i] = i;
        var random = new SplitMixRandom(seed);
        random.Shuffle(order);
        var taken = new int[ClassCount];
        var chosen = new List<int>((int)Math.Min((long)perClass * ClassCount, Count));
        foreach (int index in order)
        {
            int label = Labels[index];
            if (taken[label] < perClass)
            {
                taken[label]++;
                chosen.Add(index);
            }
        }
        for (int c = 0; c < ClassCount; c++)
        {
            if (taken[c] < perClass)
                throw new ArgumentException($"Dataset '{Name}': class {c} ({ClassNames[c]}) has {taken[c]} samples, fewer than the {perClass} asked for.");
        }
        int[] result = chosen.ToArray();
        random.Shuffle(result);
        return result;
    }

    /// <summary>Per-channel mean and standard deviation over all pixels (double accumulation).</summary>
    public Normalization ComputeNormalization()
    {
        var mean = new float[Channels];
        var std = new float[Channels];
        int plane = Height * Width;
        for (int c = 0; c < Channels; c++)
        {
            double sum = 0, sumSquares = 0;
            for (int n = 0; n < Count; n++)
            {
                ReadOnlySpan<float> values = Images.AsSpan(n * SampleLength + c * plane, plane);
                foreach (float v in values)
                {
                    sum += v;
                    sumSquares += (double)v * v;
                }
            }
            double count = (double)Count * plane;
            double m = count == 0 ? 0 : sum / count;
            double variance = count == 0 ? 1 : Math.Max(sumSquares / count - m * m, 0);
            mean[c] = (float)m;
            std[c] = (float)Math.Max(Math.Sqrt(variance), 1e-6);
        }
        return new Normalization(mean, std);
    }
}

/// <summary>Per-channel normalisation x' = (x - mean[c]) / std[c].</summary>
public sealed record Normalization(float[] Mean, float[] Std)
{
    /// <summary>Leaves values unchanged.</summary>
    public static Normalization Identity(int channels) =>
        new(new float[channels], Enumerable.Repeat(1f, channels).ToArray());

    public int Channels => Mean.Length;

    /// <summary>Normalises one CHW sample in place.</summary>
    public void Apply(Span<float> sample, int height, int width)
    {
        int plane = height * width;
        if (sample.Length != Channels * plane)
            throw new ArgumentException($"Sample of {sample.Length} values does not match {Channels} channels of {height}x{width}.");
        for (int c = 0; c < Channels; c++)
        {
            float mean = Mean[c], inverseStd = 1f / Std[c];
            Span<float> channel = sample.Slice(c * plane, plane);
            for (int i = 0; i < channel.Length; i++) channel[i] = (channel[i] - mean) * inverseStd;
        }
    }

    /// <summary>"0.2860,0.3530" style text for logs and checkpoint metadata.</summary>
    public string MeanText => string.Join(",", Mean.Select(v => v.ToString("R", System.Globalization.CultureInfo.InvariantCulture)));
    public string StdText => string.Join(",", Std.Select(v => v.ToString("R", System.Globalization.CultureInfo.InvariantCulture)));

    public static Normalization Parse(string meanText, string stdText)
    {
        static float[] ParseList(string text) => text.Split(',').Select(s => float.Parse(s, System.Globalization.CultureInfo.InvariantCulture)).ToArray();
        float[] mean = ParseList(meanText), std = ParseList(stdText);
        if (mean.Length != std.Length || mean.Length == 0)
            throw new FormatException($"Normalisation mean '{meanText}' and std '{stdText}' must list the same number of channels.");
        if (std.Any(s => !(s > 0)))
            throw new FormatException($"Normalisation std '{stdText}' must be positive.");
        return new Normalization(mean, std);
    }
}
