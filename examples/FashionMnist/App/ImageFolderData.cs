using System.Globalization;
using AlexNetCompiler.Data;

namespace FashionMnist.App;

/// <summary>What <c>train --data FOLDER</c> does with a folder of images by class (docs/images.md).</summary>
/// <param name="Side">Shorter side of the stored images; 0: <see cref="DefaultSide"/> of the network's input.</param>
/// <param name="ValidationFraction">Share held out for testing when the folder has no <c>val/</c> sub-folder.</param>
/// <param name="LightingSigma">PCA lighting's sigma (the paper's 0.1); 0 turns it off.</param>
/// <param name="CacheFolder">Where the decoded-image caches live; null: <see cref="DefaultCacheFolder"/>.</param>
public sealed record ImageFolderOptions(int Side = 0, double ValidationFraction = ImageFolderOptions.DefaultValidationFraction,
    float LightingSigma = ImageFolderOptions.DefaultLightingSigma, string? CacheFolder = null)
{
    public const double DefaultValidationFraction = 0.1;
    public const float DefaultLightingSigma = 0.1f;

    /// <summary>
    /// The paper's 256 for ImageNet-sized inputs (227 and 224 crops inside a 256 square, section 2); for a smaller
    /// input, the input plus an eighth (36 for 32x32: crops move by up to 4 pixels, the usual CIFAR-10 range).
    /// </summary>
    public static int DefaultSide(int inputSide) => inputSide >= 224 ? 256 : inputSide + inputSide / 8;

    /// <summary>Where <see cref="DefaultCacheFolder"/> is, for help texts.</summary>
    public const string DefaultCacheFolderText = "$XDG_CACHE_HOME/alexnet-fashion/images, else ~/.cache/alexnet-fashion/images";

    /// <summary><c>$XDG_CACHE_HOME/alexnet-fashion/images</c>, else <c>~/.cache/alexnet-fashion/images</c> (the local application data folder on Windows).</summary>
    public static string DefaultCacheFolder()
    {
        string? xdg = Environment.GetEnvironmentVariable("XDG_CACHE_HOME");
        string root = !string.IsNullOrEmpty(xdg) ? xdg
            : OperatingSystem.IsWindows() ? Environment.GetFolderPath(Environment.SpecialFolder.LocalApplicationData)
            : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache");
        return Path.Combine(root, "alexnet-fashion", "images");
    }
}

/// <summary>
/// A folder of images by class as training data: decoded once into <see cref="ImageCache"/> files (one for a folder,
/// or one each for its <c>train/</c> and <c>val/</c>), split, and fed through the paper's pipeline
/// (<see cref="ImagePipeline"/>: random crops of the network's input inside the stored square, flips, PCA lighting,
/// per-channel normalisation from the training images). The held-out images are evaluated on the centre crop, or on
/// the paper's ten views. Owns the caches: dispose it after the last batch.
/// </summary>
public sealed class ImageFolderData : ITrainingData, IDisposable
{
    // Checkpoint metadata: what eval and predict read to prepare images as training did, and what a resume must match.
    public const string SideKey = "image_side", ValidationKey = "image_validation", SplitSeedKey = "image_split_seed",
        LightingKey = "image_lighting", TestSetKey = "image_test_set";
    public const string ValidationFolderValue = "val-folder";

    /// <summary>The option that sets each metadata entry a resume must match, for messages.</summary>
    public static string OptionFor(string key) => key switch
    {
        SideKey => "--image-side",
        ValidationKey => "--val-fraction (or a val/ folder)",
        SplitSeedKey => "--seed (it seeds the held-out split)",
        LightingKey => "--lighting",
        TestSetKey => "the held-out images",
        _ => key,
    };

    private readonly ImageCache? _trainCache;
    private readonly ImageCache? _validationCache;
    private readonly ImagePipelineOptions _pipelineOptions;
    private readonly Dictionary<string, string> _metadata;
    private readonly int _threads;
    private ImageStatistics? _statistics;

    private ImageFolderData(string root, ImageCache? trainCache, ImageCache? validationCache, ImageSet? train, ImageSet validation,
        IReadOnlyList<string> classNames, ImagePipelineOptions pipelineOptions, string split, Dictionary<string, string> metadata, int threads)
    {
        _trainCache = trainCache;
        _validationCache = validationCache;
        Train = train;
        Validation = validation;
        ClassNames = classNames;
        _pipelineOptions = pipelineOptions;
        _metadata = metadata;
        _threads = threads;
        Skipped = [.. trainCache?.Skipped ?? [], .. validationCache?.Skipped ?? []];
        string skippedText = Skipped.Count > 0 ? $", {Skipped.Count} undecodable image(s) skipped" : "";
        string trainText = train is null ? "" : $"{train.Count:N0} train / ";
        Description = string.Create(CultureInfo.InvariantCulture,
            $"image folder {root}: {classNames.Count} classes, {trainText}{validation.Count:N0} test images ({split}){skippedText}");
    }

    /// <summary>
    /// Scans <paramref name="folder"/>, opens or builds its caches and splits it. A <c>train/</c> + <c>val/</c> pair is used as
    /// such; otherwise a seeded, stratified share (<see cref="ImageFolderOptions.ValidationFraction"/>) is held out for testing.
    /// <paramref name="log"/> hears each skipped image and why a cache is rebuilt; <paramref name="threads"/> decode and
    /// prepare batches (0: every processor).
    /// </summary>
    public static ImageFolderData Open(string folder, ImageFolderOptions options, int inputSide, ulong splitSeed, Action<string>? log = null, int threads = 0) =>
        Open(folder, options, inputSide, splitSeed, log, threads, evaluationOnly: false);

    /// <summary>
    /// The held-out images only, for evaluating a checkpoint: a <c>val/</c> folder's cache alone (the training images are
    /// neither decoded nor read), or the held-out share of the folder's cache; no colour statistics (the checkpoint has
    /// its normalisation). <paramref name="validation"/> is the checkpoint's <see cref="ValidationKey"/> entry: the
    /// folder's layout must be the one training used.
    /// </summary>
    public static ImageFolderData OpenForEvaluation(string folder, int side, string validation, ulong splitSeed, int inputSide, string? cacheFolder,
        Action<string>? log = null, int threads = 0)
    {
        bool pair = ImageFolder.HasTrainValidationLayout(Path.GetFullPath(folder));
        double fraction = ImageFolderOptions.DefaultValidationFraction;
        if (validation == ValidationFolderValue ? !pair : pair || !double.TryParse(validation, NumberStyles.Float, CultureInfo.InvariantCulture, out fraction))
            throw new InvalidDataException(validation == ValidationFolderValue
                ? $"{folder}: the run was tested on a {ImageFolder.ValidationFolderName}/ folder, and this folder has no {ImageFolder.TrainFolderName}/ and {ImageFolder.ValidationFolderName}/ pair; give the folder that holds them."
                : $"{folder}: the run held out {validation} of each class of one folder for testing, and this folder is a {ImageFolder.TrainFolderName}/ and {ImageFolder.ValidationFolderName}/ pair; give the folder the run trained on.");
        return Open(folder, new ImageFolderOptions(side, fraction, LightingSigma: 0, cacheFolder), inputSide, splitSeed, log, threads, evaluationOnly: true);
    }

    private static ImageFolderData Open(string folder, ImageFolderOptions options, int inputSide, ulong splitSeed, Action<string>? log, int threads, bool evaluationOnly)
    {
        int side = options.Side == 0 ? ImageFolderOptions.DefaultSide(inputSide) : options.Side;
        if (side < inputSide || side > 4096)
            throw new ArgumentException($"--image-side {side}: must be in [{inputSide}, 4096]: the network's {inputSide}x{inputSide} input is a crop of the stored {side}x{side} image.");
        if (!(options.ValidationFraction > 0 && options.ValidationFraction < 1))
            throw new ArgumentException($"--val-fraction {options.ValidationFraction}: must be between 0 and 1 (exclusive).");
        if (!(options.LightingSigma >= 0 && options.LightingSigma <= 10))
            throw new ArgumentException($"--lighting {options.LightingSigma}: must be in [0, 10] (0 = off, the paper's 0.1).");
        string root = Path.GetFullPath(folder);
        string cacheFolder = options.CacheFolder ?? ImageFolderOptions.DefaultCacheFolder();
        var pipeline = new ImagePipelineOptions { Side = side, CropSize = inputSide, LightingSigma = options.LightingSigma };
        var metadata = new Dictionary<string, string>
        {
            [SideKey] = side.ToString(CultureInfo.InvariantCulture),
            [LightingKey] = options.LightingSigma.ToString("R", CultureInfo.InvariantCulture),
        };
        if (ImageFolder.HasTrainValidationLayout(root))
        {
            ImageFolder trainFolder = ImageFolder.Scan(Path.Combine(root, ImageFolder.TrainFolderName));
            ImageFolder validationFolder = ImageFolder.Scan(Path.Combine(root, ImageFolder.ValidationFolderName), trainFolder.ClassNames);
            ImageCache? trainCache = evaluationOnly ? null : ImageCache.Open(trainFolder, side, cacheFolder, SkiaImageDecoder.Instance, threads, log);
            try
            {
                ImageCache validationCache = ImageCache.Open(validationFolder, side, cacheFolder, SkiaImageDecoder.Instance, threads, log);
                metadata[ValidationKey] = ValidationFolderValue;
                return new ImageFolderData(root, trainCache, validationCache, trainCache is null ? null : ImageSet.All(trainFolder.Root, trainCache),
                    ImageSet.All(validationFolder.Root, validationCache), trainFolder.ClassNames, pipeline,
                    $"{ImageFolder.ValidationFolderName}/ for testing", metadata, threads);
            }
            catch
            {
                trainCache?.Dispose();
                throw;
            }
        }
        ImageFolder all = ImageFolder.Scan(root);
        ImageCache cache = ImageCache.Open(all, side, cacheFolder, SkiaImageDecoder.Instance, threads, log);
        try
        {
            (ImageSet train, ImageSet validation) = ImageSet.HeldOutSplit(cache, options.ValidationFraction, splitSeed);
            metadata[ValidationKey] = options.ValidationFraction.ToString("R", CultureInfo.InvariantCulture);
            metadata[SplitSeedKey] = splitSeed.ToString(CultureInfo.InvariantCulture);
            return new ImageFolderData(root, cache, null, evaluationOnly ? null : train, validation, all.ClassNames, pipeline,
                string.Create(CultureInfo.InvariantCulture, $"{options.ValidationFraction:0.###} of each class held out for testing, seed {splitSeed}"), metadata, threads);
        }
        catch
        {
            cache.Dispose();
            throw;
        }
    }

    /// <summary>The training images; null when opened for evaluation only.</summary>
    public ImageSet? Train { get; }
    /// <summary>The held-out images: the <c>val/</c> folder or the held-out share.</summary>
    public ImageSet Validation { get; }
    /// <summary>Colour statistics of the training images, computed on first use.</summary>
    public ImageStatistics Statistics => _statistics ??= ImageStatistics.Compute(Train ?? throw EvaluationOnly());
    public IReadOnlyList<SkippedImage> Skipped { get; }
    /// <summary>The stored images' side and the crop, lighting and flip settings of training (with the run's augmentation applied by <see cref="CreateTrainLoader"/>).</summary>
    public ImagePipelineOptions PipelineOptions => _pipelineOptions;

    public string Description { get; }
    public bool IsFullSet => false;
    public IReadOnlyList<string> ClassNames { get; }
    public int TrainCount => Train?.Count ?? 0;
    public int TestCount => Validation.Count;
    public int Channels => ImageCache.Channels;
    public int Height => _pipelineOptions.CropSize;
    public int Width => _pipelineOptions.CropSize;

    /// <summary>The side, the split, the lighting, and a fingerprint of the held-out images (<see cref="TestSetFingerprint"/>).</summary>
    public IReadOnlyDictionary<string, string> CheckpointMetadata
    {
        get
        {
            if (!_metadata.ContainsKey(TestSetKey)) _metadata[TestSetKey] = TestSetFingerprint();
            return _metadata;
        }
    }

    /// <summary>
    /// SHA-256 of the held-out images' labels and stored pixels, in order: eval compares it to tell the images a run was
    /// tested on from others (a folder changed since, another split), which its counts alone would not.
    /// </summary>
    public string TestSetFingerprint()
    {
        using var hash = System.Security.Cryptography.IncrementalHash.CreateHash(System.Security.Cryptography.HashAlgorithmName.SHA256);
        Span<byte> label = stackalloc byte[4];
        for (int i = 0; i < Validation.Count; i++)
        {
            System.Buffers.Binary.BinaryPrimitives.WriteInt32LittleEndian(label, Validation.Label(i));
            hash.AppendData(label);
            hash.AppendData(Validation.Pixels(i));
        }
        return Convert.ToHexStringLower(hash.GetHashAndReset());
    }

    public Normalization ComputeNormalization() => Statistics.Normalization;

    /// <summary>Refuses the augmentations that belong to in-memory images (their pad-and-crop, rotation, jitter), naming the option.</summary>
    public static void CheckAugmentation(AugmentationOptions augmentation)
    {
        if (augmentation.Rotation || augmentation.BrightnessContrast)
            throw new ArgumentException("--augment: rotate and jitter apply to Fashion-MNIST and CIFAR-10 data; an image folder takes crop, flip and --lighting (the paper's section 4.1).");
    }

    public IBatchSource CreateTrainLoader(TrainSettings settings, Normalization normalization, int shardRank, int shardCount, out IDisposable? owned)
    {
        CheckAugmentation(settings.Augmentation);
        ImagePipelineOptions options = _pipelineOptions with
        {
            RandomCrop = settings.Augmentation.RandomCrop,
            HorizontalFlip = settings.Augmentation.HorizontalFlip,
        };
        owned = null;
        return new ImageBatchLoader(Train ?? throw EvaluationOnly(), new ImagePipeline(options, Statistics with { Mean = normalization.Mean.ToArray(), Std = normalization.Std.ToArray() }),
            settings.BatchSize, training: true, settings.Seed, threads: _threads, shardRank: shardRank, shardCount: shardCount);
    }

    public EvaluationResult Evaluate(ForwardPass forward, int outputs, int maxBatch, Normalization normalization, int views,
        CancellationToken cancel = default) =>
        Evaluator.Evaluate(forward, outputs, maxBatch, Validation, EvaluationPipeline(normalization), views, cancel);

    /// <summary>
    /// The test views' pipeline: centre and corner crops normalised by <paramref name="normalization"/> (the run's or the
    /// checkpoint's); it draws no lighting, so it needs no colour statistics of the training images.
    /// </summary>
    private ImagePipeline EvaluationPipeline(Normalization normalization)
    {
        double[] identity = [1, 0, 0, 0, 1, 0, 0, 0, 1];
        var statistics = new ImageStatistics(normalization.Mean.ToArray(), normalization.Std.ToArray(), new double[9], new double[3], identity);
        return new ImagePipeline(_pipelineOptions with { LightingSigma = 0 }, statistics);
    }

    private InvalidOperationException EvaluationOnly() => new($"{Description}: opened for evaluation; it has no training images.");

    public void Dispose()
    {
        _trainCache?.Dispose();
        _validationCache?.Dispose();
    }
}
