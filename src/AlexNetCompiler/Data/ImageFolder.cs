namespace AlexNetCompiler.Data;

/// <summary>One image file of an <see cref="ImageFolder"/>: its path below the folder, its class, and what the cache key uses.</summary>
public sealed record ImageFile(string RelativePath, int Label, long Length, long LastWriteTicks);

/// <summary>
/// A folder with one sub-folder per class of JPEG and PNG files (the layout of torchvision's ImageFolder):
/// <c>root/cat/1.jpg</c>, <c>root/dog/x/2.png</c>. Classes are the sub-folder names in ordinal order, so that their
/// indices do not depend on the machine's culture; files are found at any depth below their class folder, other
/// files (text, hidden files) are ignored. Scanning reads only the directory entries; decoding happens in
/// <see cref="ImageCache"/>.
/// </summary>
public sealed class ImageFolder
{
    /// <summary>The file extensions taken as images (case-insensitive).</summary>
    public static readonly IReadOnlyList<string> Extensions = [".jpg", ".jpeg", ".png"];

    /// <summary>The names of the two sub-folders that make a folder a train/validation pair instead of a class folder.</summary>
    public const string TrainFolderName = "train", ValidationFolderName = "val";

    private ImageFolder(string root, IReadOnlyList<string> classNames, IReadOnlyList<ImageFile> files)
    {
        Root = root;
        ClassNames = classNames;
        Files = files;
    }

    /// <summary>The folder as given (full path).</summary>
    public string Root { get; }
    public IReadOnlyList<string> ClassNames { get; }
    /// <summary>Every image file, in class order, then ordinal path order.</summary>
    public IReadOnlyList<ImageFile> Files { get; }

    public string FullPath(ImageFile file) => Path.Combine(Root, file.RelativePath);

    /// <summary>True when <paramref name="root"/> holds both a <c>train</c> and a <c>val</c> sub-folder.</summary>
    public static bool HasTrainValidationLayout(string root) =>
        Directory.Exists(Path.Combine(root, TrainFolderName)) && Directory.Exists(Path.Combine(root, ValidationFolderName));

    /// <summary>True when <paramref name="root"/> looks like an image folder: a train/val pair, or a sub-folder holding a JPEG or PNG file.</summary>
    public static bool Looks(string root)
    {
        if (!Directory.Exists(root)) return false;
        if (HasTrainValidationLayout(root)) return true;
        return Directory.EnumerateDirectories(root).Any(folder =>
            Directory.EnumerateFiles(folder, "*", SearchOption.AllDirectories).Any(IsImageFile));
    }

    /// <summary>True when a folder on the relative path (below the root) starts with a dot, e.g. <c>cat/.thumbs/x.jpg</c>.</summary>
    private static bool InHiddenFolder(string relative) =>
        Path.GetDirectoryName(relative)!.Split(Path.DirectorySeparatorChar, Path.AltDirectorySeparatorChar).Any(part => part.StartsWith('.'));

    public static bool IsImageFile(string path) =>
        Extensions.Contains(Path.GetExtension(path), StringComparer.OrdinalIgnoreCase) && !Path.GetFileName(path).StartsWith('.');

    /// <summary>
    /// Lists the classes and image files of <paramref name="root"/>. Throws, naming the folder, when it does not
    /// exist, has fewer than two class folders, or has a class folder without images; with
    /// <paramref name="expectedClasses"/> (a validation folder), when its classes differ from those.
    /// </summary>
    public static ImageFolder Scan(string root, IReadOnlyList<string>? expectedClasses = null)
    {
        // Without the trailing separator, "photos" and "photos/" are one folder and one cache.
        string full = Path.TrimEndingDirectorySeparator(Path.GetFullPath(root));
        if (!Directory.Exists(full))
            throw new DirectoryNotFoundException($"{root}: image folder not found.");
        string[] classFolders = Directory.GetDirectories(full)
            .Where(d => !Path.GetFileName(d).StartsWith('.'))
            .Order(StringComparer.Ordinal)
            .ToArray();
        string layout = "an image folder holds one sub-folder per class of JPEG or PNG files (e.g. cat/1.jpg, dog/2.png)";
        if (classFolders.Length == 0)
            throw new InvalidDataException($"{root}: no class sub-folders; {layout}.");
        if (classFolders.Length < 2)
            throw new InvalidDataException($"{root}: only one class sub-folder ('{Path.GetFileName(classFolders[0])}'); a classifier needs at least two, and {layout}.");
        string[] classNames = classFolders.Select(Path.GetFileName).ToArray()!;
        if (expectedClasses is not null && !classNames.SequenceEqual(expectedClasses, StringComparer.Ordinal))
            throw new InvalidDataException(
                $"{root}: its classes ({string.Join(", ", classNames)}) differ from the training folder's ({string.Join(", ", expectedClasses)}).");

        var files = new List<ImageFile>();
        for (int label = 0; label < classFolders.Length; label++)
        {
            string[] paths = Directory.GetFiles(classFolders[label], "*", SearchOption.AllDirectories)
                .Select(p => Path.GetRelativePath(full, p))
                .Where(p => IsImageFile(p) && !InHiddenFolder(p))
                .Order(StringComparer.Ordinal)
                .ToArray();
            if (paths.Length == 0)
                throw new InvalidDataException($"{Path.Combine(root, classNames[label])}: class folder without JPEG or PNG files ({string.Join(", ", Extensions)}).");
            foreach (string relative in paths)
            {
                var info = new FileInfo(Path.Combine(full, relative));
                files.Add(new ImageFile(relative, label, info.Length, info.LastWriteTimeUtc.Ticks));
            }
        }
        return new ImageFolder(full, classNames, files);
    }
}

/// <summary>The images of one split: a selection of an <see cref="ImageCache"/>'s images, in the given order.</summary>
public sealed class ImageSet
{
    public ImageSet(string name, ImageCache cache, int[] indices)
    {
        ArgumentNullException.ThrowIfNull(cache);
        ArgumentNullException.ThrowIfNull(indices);
        foreach (int i in indices)
            if ((uint)i >= (uint)cache.Count)
                throw new ArgumentOutOfRangeException(nameof(indices), $"Index {i} is outside the {cache.Count} images of {cache.Path}.");
        Name = name;
        Cache = cache;
        Indices = indices;
    }

    /// <summary>All images of a cache, in its order.</summary>
    public static ImageSet All(string name, ImageCache cache) => new(name, cache, Enumerable.Range(0, cache.Count).ToArray());

    public string Name { get; }
    public ImageCache Cache { get; }
    public int[] Indices { get; }

    public int Count => Indices.Length;
    public int Channels => ImageCache.Channels;
    /// <summary>Height and width of the stored images.</summary>
    public int Side => Cache.Side;
    public IReadOnlyList<string> ClassNames => Cache.ClassNames;
    public int ClassCount => ClassNames.Count;

    public int Label(int i) => Cache.Label(Indices[i]);

    /// <summary>The i-th image of the set: uint8 CHW, RGB, Side x Side.</summary>
    public ReadOnlySpan<byte> Pixels(int i) => Cache.Pixels(Indices[i]);

    /// <summary>
    /// A seeded held-out split, stratified: each class gives round(fraction * its images) to validation, at least one
    /// and at most all but one, so that both splits see every class. Throws, naming the class, when a class has fewer
    /// than two images to split.
    /// </summary>
    public static (ImageSet Train, ImageSet Validation) HeldOutSplit(ImageCache cache, double validationFraction, ulong seed)
    {
        if (!(validationFraction > 0 && validationFraction < 1))
            throw new ArgumentException($"validationFraction {validationFraction}: must be between 0 and 1 (exclusive).");
        var byClass = new List<int>[cache.ClassNames.Count];
        for (int c = 0; c < byClass.Length; c++) byClass[c] = [];
        for (int i = 0; i < cache.Count; i++) byClass[cache.Label(i)].Add(i);
        var train = new List<int>();
        var validation = new List<int>();
        var random = new SplitMixRandom(seed);
        for (int c = 0; c < byClass.Length; c++)
        {
            int[] members = byClass[c].ToArray();
            if (members.Length < 2)
                throw new InvalidDataException(
                    $"{Path.Combine(cache.FolderRoot, cache.ClassNames[c])}: {members.Length} readable image(s); a held-out split needs at least two per class.");
            random.Shuffle(members);
            int held = Math.Clamp((int)Math.Round(validationFraction * members.Length), 1, members.Length - 1);
            validation.AddRange(members.AsSpan(0, held));
            train.AddRange(members.AsSpan(held));
        }
        train.Sort();
        validation.Sort();
        return (new ImageSet($"{cache.FolderRoot} (train)", cache, train.ToArray()), new ImageSet($"{cache.FolderRoot} (validation)", cache, validation.ToArray()));
    }
}
