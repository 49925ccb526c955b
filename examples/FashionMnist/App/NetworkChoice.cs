using AlexNetCompiler;
using AlexNetCompiler.Checkpoints;
using AlexNetCompiler.Cpu;
using AlexNetCompiler.Cuda;

namespace FashionMnist.App;

/// <summary>
/// What <c>train</c> uses for an option the user left out, per network (docs/main-job.md says why these values).
/// </summary>
/// <param name="CropPadding">Padding of the random training crop and of eval's corner views, in input pixels.</param>
/// <param name="OutputFolder">Separate per network, so that a run of one never overwrites or resumes the other's checkpoints.</param>
public sealed record TrainingDefaults(int BatchSize, float LearningRate, int CropPadding, string OutputFolder);

/// <summary>
/// A network this program trains: the value of <c>--network</c>, the generated model, its CUDA kernels, a factory
/// and its training defaults. The one place that knows the networks; checkpoints name theirs in the "network"
/// metadata (the descriptor's name), which is how eval and predict pick the class to load.
/// </summary>
public sealed record NetworkChoice(
    string OptionName,
    NetworkDescriptor Model,
    CudaLaunchPlan CudaPlan,
    string CudaSource,
    Func<int, CpuContext?, INetwork> Create,
    TrainingDefaults Defaults)
{
    /// <summary>The 632,778-parameter network for 28x28 images; the default.</summary>
    public static NetworkChoice FashionNet { get; } = new(
        "fashionnet", global::FashionMnist.FashionNet.Model, global::FashionMnist.FashionNet.CudaPlan, global::FashionMnist.FashionNet.CudaSource,
        (maxBatch, cpu) => new global::FashionMnist.FashionNet(maxBatch, cpu),
        new TrainingDefaults(BatchSize: 64, LearningRate: 0.02f, CropPadding: 2, OutputFolder: Path.Combine("runs", "fashion")));

    /// <summary>
    /// The canonical 2012 AlexNet on 227x227 upscaled images. Rate 0.0025, a quarter of the paper's 0.01: He
    /// initialisation starts this deep, unnormalised stack with large logits, and at 0.01 the second step's loss
    /// jumps to 7.5-10 and the net then hovers near chance for epochs (measured in docs/main-job.md). The crop
    /// padding of 16 is FashionNet's 2 pixels of the 28x28 image, scaled by 227/28.
    /// </summary>
    public static NetworkChoice AlexNet { get; } = new(
        "alexnet", AlexNetFashion.Model, AlexNetFashion.CudaPlan, AlexNetFashion.CudaSource,
        (maxBatch, cpu) => new AlexNetFashion(maxBatch, cpu),
        new TrainingDefaults(BatchSize: 64, LearningRate: 0.0025f, CropPadding: 16, OutputFolder: Path.Combine("runs", "alexnet")));

    /// <summary>
    /// The AlexNet-style network for CIFAR-10's 32x32 colour images, which it keeps in colour. Crop padding 4, the usual
    /// CIFAR-10 pad-and-crop (4 pixels, as in He et al. 2016's CIFAR-10 experiments); the rate is FashionNet's halved, since this network starts from
    /// five times the parameters (docs/images.md: a first choice, not yet tuned on the full set).
    /// </summary>
    public static NetworkChoice CifarNet { get; } = new(
        "cifarnet", global::FashionMnist.CifarNet.Model, global::FashionMnist.CifarNet.CudaPlan, global::FashionMnist.CifarNet.CudaSource,
        (maxBatch, cpu) => new global::FashionMnist.CifarNet(maxBatch, cpu),
        new TrainingDefaults(BatchSize: 64, LearningRate: 0.01f, CropPadding: 4, OutputFolder: Path.Combine("runs", "cifar")));

    /// <summary>
    /// The canonical 2012 AlexNet in colour at 227x227 with 1000 outputs (examples/CanonicalAlexNet), for image folders;
    /// a folder of K classes trains outputs 0..K-1 (<see cref="ITrainingData"/>). Batch 64 and AlexNet's rate of 0.0025
    /// (above: He initialisation, measured on the grey variant); crop padding 0, since image folders crop inside the
    /// 256x256 stored image (docs/images.md) and need none.
    /// </summary>
    public static NetworkChoice Canonical { get; } = new(
        "canonical", CanonicalAlexNet.AlexNet2012.Model, CanonicalAlexNet.AlexNet2012.CudaPlan, CanonicalAlexNet.AlexNet2012.CudaSource,
        (maxBatch, cpu) => new CanonicalAlexNet.AlexNet2012(maxBatch, cpu),
        new TrainingDefaults(BatchSize: 64, LearningRate: 0.0025f, CropPadding: 0, OutputFolder: Path.Combine("runs", "images")));

    /// <summary>torchvision's AlexNet at 224x224 with 1000 outputs (examples/TorchvisionAlexNet): the same defaults as <see cref="Canonical"/>.</summary>
    public static NetworkChoice Torchvision { get; } = new(
        "torchvision", TorchvisionAlexNet.TorchvisionAlexNet.Model, TorchvisionAlexNet.TorchvisionAlexNet.CudaPlan, TorchvisionAlexNet.TorchvisionAlexNet.CudaSource,
        (maxBatch, cpu) => new TorchvisionAlexNet.TorchvisionAlexNet(maxBatch, cpu),
        new TrainingDefaults(BatchSize: 64, LearningRate: 0.0025f, CropPadding: 0, OutputFolder: Path.Combine("runs", "images-torchvision")));

    public static IReadOnlyList<NetworkChoice> All { get; } = [FashionNet, AlexNet, CifarNet, Canonical, Torchvision];

    public static NetworkChoice Default => FashionNet;

    /// <summary>"fashionnet or alexnet", for help texts and errors.</summary>
    public static string OptionNames => string.Join(" or ", All.Select(c => c.OptionName));

    /// <summary>The descriptor's name, as checkpoints record it (e.g. "FashionNet", "AlexNetFashion").</summary>
    public string Name => Model.Name;

    /// <summary>The choice for a <c>--network</c> value (case-insensitive).</summary>
    public static NetworkChoice FromOption(string value) =>
        All.FirstOrDefault(c => string.Equals(c.OptionName, value.Trim(), StringComparison.OrdinalIgnoreCase))
        ?? throw new ArgumentException($"--network {value}: unknown network (use {OptionNames}).");

    /// <summary>
    /// The network for <c>--data</c> when <c>--network</c> is not given: CifarNet for a CIFAR-10 folder (3x32x32, in
    /// colour), the canonical AlexNet for a folder of images by class, the default otherwise.
    /// </summary>
    public static NetworkChoice ForData(string? data)
    {
        if (data is null || data == DataSources.EmbeddedName || data == DataSources.DebianName) return Default;
        return DataSources.Detect(data) switch
        {
            DataSources.FolderKind.Cifar10 => CifarNet,
            DataSources.FolderKind.ImageFolder => Canonical,
            _ => Default,
        };
    }

    /// <summary>Networks that train on image folders: colour, square input (a crop of the stored square image).</summary>
    public bool TakesImageFolders => Model.InputChannels == 3 && Model.InputHeight == Model.InputWidth;

    /// <summary>The choice whose descriptor is named <paramref name="modelName"/>, or null.</summary>
    public static NetworkChoice? FromModelName(string modelName) => All.FirstOrDefault(c => c.Name == modelName);

    /// <summary>
    /// The network a checkpoint holds, from its "network" metadata; a file without that key (written by other
    /// tools) is taken as the default network and its tensors are checked when it loads.
    /// </summary>
    public static NetworkChoice ForCheckpoint(string path)
    {
        string? name = NetworkNameIn(path);
        if (name is null) return Default;
        return FromModelName(name) ?? throw new InvalidDataException(
            $"{path}: a checkpoint of network '{name}', which this program does not know (it has {string.Join(", ", All.Select(c => $"{c.Name} (--network {c.OptionName})"))}).");
    }

    /// <summary>Throws, naming the file, when a checkpoint's metadata names a network other than <paramref name="model"/>.</summary>
    public static void EnsureCheckpointHolds(string path, NetworkDescriptor model)
    {
        string? name = NetworkNameIn(path);
        if (name is null || name == model.Name) return;
        string Described(string networkName) => FromModelName(networkName) is { } c ? $"{networkName} (--network {c.OptionName})" : networkName;
        throw new InvalidDataException($"{path}: a checkpoint of {Described(name)}, not of {Described(model.Name)}.");
    }

    /// <summary>The "network" metadata of a safetensors file, or null when it has none.</summary>
    private static string? NetworkNameIn(string path)
    {
        if (!File.Exists(path))
            throw new FileNotFoundException($"{path}: checkpoint not found. Train first (alexnet-fashion train) or pass --checkpoint.", path);
        return SafeTensors.ReadHeader(path).Metadata.TryGetValue(Checkpoint.NetworkKey, out string? name) ? name : null;
    }
}
