using System.CommandLine;
using System.Globalization;
using System.Runtime.InteropServices;
using AlexNetCompiler;
using AlexNetCompiler.Cpu;
using AlexNetCompiler.Cuda;
using AlexNetCompiler.Data;
using AlexNetCompiler.Devices;
using AlexNetCompiler.Distributed;
using AlexNetCompiler.Training;
using FashionMnist.App;
using Spectre.Console;

namespace FashionMnist.Commands;

internal static class TrainCommand
{
    /// <summary>
    /// Defaults. The embedded subset trains in well under 3 minutes (12 epochs, the rate divided once, after epoch 8).
    /// A full set gets the recipe measured in docs/main-job.md: 60 epochs with the rate divided by 10 every 24
    /// (about 75 s per epoch on two cores), unless --epochs or --lr-step is given.
    /// </summary>
    public const int SubsetEpochs = 12, FullSetEpochs = 60, FullSetLrStep = 24;

    public static Command Create()
    {
        var options = new TrainOptions();
        Command command = options.CreateCommand();
        command.SetAction(parse =>
        {
            TrainRequest request = options.Read(parse);
            return TrainRun.Run(request.Settings, request.Epochs, request.Data, request.Device, request.ResumeFrom, request.Threads, request.Tf32, request.TestViews, request.Network,
                request.OutputGiven, request.Force, request.Distributed, request.Images);
        });
        return command;
    }

    /// <summary>What a command line asks train to do, with the network's defaults filled in (no data loaded, nothing run).</summary>
    public static TrainRequest Read(params string[] args)
    {
        var options = new TrainOptions();
        ParseResult parse = options.CreateCommand().Parse(args);
        if (parse.Errors.Count > 0) throw new ArgumentException(string.Join(" ", parse.Errors.Select(e => e.Message)));
        return options.Read(parse);
    }

    public static AugmentationOptions ParseAugmentation(string text, int cropPadding, float maxRotation)
    {
        var options = new AugmentationOptions { CropPadding = cropPadding, MaxRotationDegrees = maxRotation };
        foreach (string part in text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            options = part.ToLowerInvariant() switch
            {
                "none" => options,
                "crop" => options with { RandomCrop = true },
                "flip" => options with { HorizontalFlip = true },
                "rotate" => options with { Rotation = true },
                "jitter" => options with { BrightnessContrast = true },
                "paper" => options with { RandomCrop = true, HorizontalFlip = true },
                "all" => options with { RandomCrop = true, HorizontalFlip = true, Rotation = true, BrightnessContrast = true },
                _ => throw new ArgumentException($"--augment: unknown augmentation '{part}' (use crop, flip, rotate, jitter, paper, all or none)."),
            };
        }
        return options;
    }
}

/// <summary>A parsed train command line: the settings, with the chosen network's defaults for what was left out.</summary>
internal sealed record TrainRequest(
    NetworkChoice Network, TrainSettings Settings, int? Epochs, string? Data, DeviceRequest Device, string? ResumeFrom, int Threads, bool Tf32, int TestViews,
    bool OutputGiven = true, bool Force = false, DistributedOptions? Distributed = null, ImageFolderOptions? Images = null);

/// <summary>--distributed: data-parallel training over the ranks of an MPI job; each collective waits at most PeerTimeout.</summary>
internal sealed record DistributedOptions(TimeSpan PeerTimeout)
{
    /// <summary>Default --peer-timeout: longer than any step, rank 0's evaluation of a test set or its checkpoint write here.</summary>
    public const int DefaultPeerTimeoutSeconds = 600;
}

/// <summary>The options of train. Batch size, learning rate, crop padding and output folder default per network (<see cref="NetworkChoice.Defaults"/>).</summary>
internal sealed class TrainOptions
{
    private static string PerNetwork(Func<TrainingDefaults, object> value) =>
        string.Join(", ", NetworkChoice.All.Select(c => string.Create(System.Globalization.CultureInfo.InvariantCulture, $"{value(c.Defaults)} for {c.OptionName}")));

    private readonly Option<string> _network = Shared.NetworkOption();
    private readonly Option<int?> _epochs = new("--epochs", "-e") { Description = $"Epochs to train (total, counting resumed ones). Default {TrainCommand.SubsetEpochs} on the embedded subset, {TrainCommand.FullSetEpochs} on a full set (with --lr-step {TrainCommand.FullSetLrStep})." };
    private readonly Option<int?> _batch = new("--batch-size", "-b") { Description = $"Images per SGD step. Default {PerNetwork(d => d.BatchSize)}." };
    private readonly Option<float?> _lr = new("--lr") { Description = $"Initial learning rate. Default {PerNetwork(d => d.LearningRate)}." };
    private readonly Option<LearningRateSchedule> _schedule = new("--schedule") { Description = "step: divide by 10 every --lr-step epochs; plateau: divide by 10 when test accuracy stalls for --patience epochs (the paper).", DefaultValueFactory = _ => LearningRateSchedule.Step };
    private readonly Option<int> _lrStep = new("--lr-step") { Description = "Epochs between divisions by 10 (step schedule); 0 = once, after two thirds of the epochs (on a full set with the default epochs: every 24).", DefaultValueFactory = _ => 0 };
    private readonly Option<int> _patience = new("--patience") { Description = "Epochs without a new best test accuracy before dividing by 10 (plateau schedule).", DefaultValueFactory = _ => 2 };
    private readonly Option<float> _momentum = new("--momentum") { Description = "SGD momentum.", DefaultValueFactory = _ => 0.9f };
    private readonly Option<float> _weightDecay = new("--weight-decay") { Description = "L2 weight decay.", DefaultValueFactory = _ => 5e-4f };
    private readonly Option<SgdVariant> _optimizer = new("--optimizer") { Description = "SGD update rule: PyTorch (torch.optim.SGD) or Paper (Krizhevsky et al. 2012, section 5).", DefaultValueFactory = _ => SgdVariant.PyTorch };
    private readonly Option<InitScheme> _init = new("--init") { Description = "Weight initialisation: paper (N(0, 0.01^2), biases 1 in conv2/4/5 and hidden FC) or he (N(0, 2/fan_in)).", DefaultValueFactory = _ => InitScheme.He };
    private readonly Option<ulong> _seed = new("--seed") { Description = "Seed for initialisation, shuffling, augmentation and dropout.", DefaultValueFactory = _ => 1UL };
    private readonly Option<DeviceRequest> _device = new("--device") { Description = "auto (CUDA when a GPU, its driver and NVRTC are present, else the CPU), cpu or cuda.", DefaultValueFactory = _ => DeviceRequest.Auto };
    private readonly Option<bool> _tf32 = new("--tf32") { Description = "CUDA only: run the GEMMs on tensor cores with TF32 inputs (FP32 accumulation); FP32 otherwise." };
    private readonly Option<string?> _output = new("--output", "-o") { Description = $"Folder for checkpoints, metrics and plots. Default {PerNetwork(d => d.OutputFolder)}." };
    private readonly Option<bool> _force = new("--force") { Description = "Start over in an --output folder that holds a run: deletes its checkpoints, logs and plots (other files stay)." };
    private readonly Option<string?> _resume = new("--resume") { Description = "Continue from a checkpoint (default: OUTPUT/last.safetensors).", Arity = ArgumentArity.ZeroOrOne };
    private readonly Option<string> _augment = new("--augment") { Description = "Comma-separated augmentations: crop, flip (the paper), rotate, jitter (brightness/contrast), or none.", DefaultValueFactory = _ => "crop,flip" };
    private readonly Option<int?> _cropPadding = new("--crop-padding") { Description = $"Zero padding on each side before the random crop, in input pixels. Default {PerNetwork(d => d.CropPadding)} (2 pixels of the 28x28 image, upscaled)." };
    private readonly Option<float> _maxRotation = new("--max-rotation") { Description = "Largest rotation in degrees for 'rotate'.", DefaultValueFactory = _ => 10f };
    private readonly Option<int> _testViews = new("--test-views") { Description = "After the last epoch, also report test accuracy averaged over this many views per image: 1 (off), 2 (image and reflection) or 10 (the paper's five crops and their reflections).", DefaultValueFactory = _ => 10 };
    private readonly Option<int> _threads = new("--threads") { Description = "CPU threads for the kernels; 0 = every processor.", DefaultValueFactory = _ => 0 };
    private readonly Option<string?> _data = Shared.DataOption();
    private readonly Option<bool> _distributed = new("--distributed") { Description = "Data-parallel training over the ranks of an MPI job (start with mpirun -np N): each rank trains its share of every batch, the gradients are summed, rank 0 writes. On the CPU, or with --device cuda on one GPU per rank over NCCL." };
    private readonly Option<double?> _valFraction = new("--val-fraction") { Description = $"Image folders without a val/ sub-folder: the share of each class held out for testing (seeded by --seed). Default {ImageFolderOptions.DefaultValidationFraction}." };
    private readonly Option<int?> _imageSide = new("--image-side") { Description = "Image folders: the shorter side images are stored at (the centre square is kept); crops of the network's input are taken inside it. Default 256 (the paper's) for 224 and 227 inputs." };
    private readonly Option<float?> _lighting = new("--lighting") { Description = $"Image folders: sigma of the paper's PCA colour lighting; 0 turns it off. Default {ImageFolderOptions.DefaultLightingSigma}." };
    private readonly Option<string?> _imageCache = new("--image-cache") { Description = "Image folders: folder of the decoded-image caches (built once per image folder and side, rebuilt when the folder changes). Default $XDG_CACHE_HOME/alexnet-fashion/images or ~/.cache/alexnet-fashion/images." };
    private readonly Option<int> _peerTimeout = new("--peer-timeout") { Description = "With --distributed: seconds a rank waits for the others at a step before it stops with an error (a rank died or stalled).", DefaultValueFactory = _ => DistributedOptions.DefaultPeerTimeoutSeconds };

    public Command CreateCommand() => new("train",
        "Train FashionNet (or, with --network alexnet, the canonical AlexNet on images upscaled to 227x227; CIFAR-10 data trains CifarNet in colour, a folder of images by class the canonical AlexNet in colour); " +
        "writes checkpoints, metrics.csv, " +
        "training-log.json and PNG plots to the output folder.")
    {
        _network, _epochs, _batch, _lr, _schedule, _lrStep, _patience, _momentum, _weightDecay, _optimizer, _init, _seed, _device, _tf32, _output,
        _resume, _force, _augment, _cropPadding, _maxRotation, _testViews, _threads, _data, _valFraction, _imageSide, _lighting, _imageCache,
        _distributed, _peerTimeout,
    };

    /// <summary>The request of a parsed command line; options left out take the network's defaults, given ones always win.</summary>
    public TrainRequest Read(ParseResult parse)
    {
        // Given, --network wins; left out, the data decides (a CIFAR-10 folder trains CifarNet in colour).
        NetworkChoice network = parse.GetResult(_network) is { Implicit: false }
            ? NetworkChoice.FromOption(parse.GetValue(_network)!)
            : NetworkChoice.ForData(parse.GetValue(_data));
        TrainingDefaults defaults = network.Defaults;
        string outputFolder = parse.GetValue(_output) ?? defaults.OutputFolder;
        var settings = new TrainSettings
        {
            BatchSize = parse.GetValue(_batch) ?? defaults.BatchSize,
            LearningRate = parse.GetValue(_lr) ?? defaults.LearningRate,
            Schedule = parse.GetValue(_schedule),
            StepEpochs = parse.GetValue(_lrStep),
            Patience = parse.GetValue(_patience),
            Momentum = parse.GetValue(_momentum),
            WeightDecay = parse.GetValue(_weightDecay),
            Optimizer = parse.GetValue(_optimizer),
            Init = parse.GetValue(_init),
            Seed = parse.GetValue(_seed),
            OutputFolder = outputFolder,
            Augmentation = TrainCommand.ParseAugmentation(parse.GetValue(_augment)!, parse.GetValue(_cropPadding) ?? defaults.CropPadding, parse.GetValue(_maxRotation)),
        };
        string? resumeFrom = parse.GetResult(_resume) is null ? null : parse.GetValue(_resume) ?? Path.Combine(outputFolder, Trainer.LastCheckpointName);
        int peerTimeout = parse.GetValue(_peerTimeout);
        if (peerTimeout < 1 || peerTimeout > 86_400) throw new ArgumentException($"--peer-timeout {peerTimeout}: must be in [1, 86400] seconds.");
        if (parse.GetResult(_peerTimeout) is { Implicit: false } && !parse.GetValue(_distributed))
            throw new ArgumentException("--peer-timeout applies to --distributed training only.");
        DistributedOptions? distributed = parse.GetValue(_distributed) ? new DistributedOptions(TimeSpan.FromSeconds(peerTimeout)) : null;
        // Image-folder options: null when none is given, so that giving one for other data can be refused once the data is known.
        double? valFraction = parse.GetValue(_valFraction);
        int? imageSide = parse.GetValue(_imageSide);
        float? lighting = parse.GetValue(_lighting);
        string? imageCache = parse.GetValue(_imageCache);
        ImageFolderOptions? images = valFraction is null && imageSide is null && lighting is null && imageCache is null ? null : new ImageFolderOptions(
            imageSide ?? 0, valFraction ?? ImageFolderOptions.DefaultValidationFraction, lighting ?? ImageFolderOptions.DefaultLightingSigma, imageCache);
        return new TrainRequest(network, settings, parse.GetValue(_epochs), parse.GetValue(_data), parse.GetValue(_device), resumeFrom,
            parse.GetValue(_threads), parse.GetValue(_tf32), parse.GetValue(_testViews), OutputGiven: parse.GetValue(_output) is not null, Force: parse.GetValue(_force),
            Distributed: distributed, Images: images);
    }
}

/// <summary>The train command's body: console output around <see cref="Trainer"/>.</summary>
internal static class TrainRun
{
    public static int Run(TrainSettings settings, int? epochs, string? dataOption, DeviceRequest deviceRequest, string? resumeFrom, int threads = 0, bool tf32 = false, int testViews = 10,
        NetworkChoice? network = null, bool outputGiven = true, bool force = false, DistributedOptions? distributed = null, ImageFolderOptions? images = null)
    {
        network ??= NetworkChoice.Default;
        if (distributed is not null)
        {
            bool gpu = deviceRequest == DeviceRequest.Cuda;
            if (tf32 && !gpu)
                throw new ArgumentException("--tf32 needs --device cuda: --distributed trains on the CPU unless --device cuda is given.");
            // Options are checked before MPI starts, so a bad command line fails the same way on every rank.
            CheckOptions(settings, epochs, threads, testViews, resumeFrom, force);
            if (gpu) DistributedJob.RequireNccl();
            // Under mpirun the ranks meet through MPI. A GPU job started alone is one rank and needs no MPI: its NCCL id
            // goes through a file.
            using MpiCommunicator? mpi = gpu && !DistributedJob.LaunchedByMpirun ? null : StartMpi(distributed.PeerTimeout);
            var job = new DistributedJob(mpi, gpu, distributed.PeerTimeout);
            int code;
            try
            {
                job.CheckNetwork(network);
                code = job.Rank == 0
                    ? Run(settings, epochs, dataOption, gpu ? DeviceRequest.Cuda : DeviceRequest.Cpu, resumeFrom, threads, tf32, testViews, network, outputGiven, force, images, job)
                    : RunFollower(settings, epochs, dataOption, resumeFrom, threads, tf32, network, images, job);
            }
            catch (Exception e) when (mpi is not null)
            {
                // A rank that fails must end the whole job, or the others would wait out their peer timeout: say why
                // on this rank's stderr, then MPI_Abort (which does not return).
                Cli.Report(e, verbose: false, Console.Error);
                mpi.Abort(ExitCodes.Failed);
                throw;
            }
            mpi?.Finish();
            return code;
        }
        return Run(settings, epochs, dataOption, deviceRequest, resumeFrom, threads, tf32, testViews, network, outputGiven, force, images, job: null);
    }

    /// <summary>Every option checked before a folder is touched (or MPI started).</summary>
    private static void CheckOptions(TrainSettings settings, int? epochs, int threads, int testViews, string? resumeFrom, bool force)
    {
        if (force && resumeFrom is not null) throw new ArgumentException("--force starts over and --resume continues: give one of them.");
        if (!Evaluator.ViewCounts.Contains(testViews)) throw new ArgumentException($"--test-views {testViews}: use 1, 2 or 10.");
        if (threads < 0 || threads > CpuContext.MaxThreads)
            throw new ArgumentException($"--threads {threads}: must be in [0, {CpuContext.MaxThreads}] (0 = every processor; the most is four per logical processor or 64, whichever is larger).");
        (settings with { Epochs = epochs ?? 1 }).Validate();
    }

    private static MpiCommunicator StartMpi(TimeSpan timeout)
    {
        try
        {
            return MpiCommunicator.Start(timeout);
        }
        catch (MpiUnavailableException e)
        {
            throw new NotSupportedException($"--distributed: {e.Message}", e);
        }
    }

    /// <summary>
    /// The training data for the network, and the settings with the epochs and rate schedule it implies: a full set
    /// gets the full-set recipe unless --epochs or --lr-step is given. Every rank loads the same data this way; a folder of
    /// images by class is decoded into its cache (<see cref="ImageFolderData"/>; dispose it after training).
    /// </summary>
    private static (ITrainingData Data, TrainSettings Settings) LoadData(TrainSettings settings, int? epochs, string? dataOption, NetworkChoice network,
        ImageFolderOptions? images, bool report)
    {
        NetworkDescriptor model = network.Model;
        ITrainingData data;
        if (IsImageFolder(dataOption))
        {
            if (!network.TakesImageFolders)
                throw new ArgumentException(
                    $"--data {dataOption}: a folder of colour images by class trains a colour network (--network canonical, torchvision or cifarnet); " +
                    $"{network.OptionName} takes [{model.InputChannels}, {model.InputHeight}, {model.InputWidth}].");
            ImageFolderData.CheckAugmentation(settings.Augmentation);
            if (report) AnsiConsole.MarkupLineInterpolated($"Reading the image folder [bold]{dataOption}[/] (decoded once into the image cache, then reused)...");
            var folder = ImageFolderData.Open(dataOption!, images ?? new ImageFolderOptions(), model.InputHeight, settings.Seed,
                report ? line => AnsiConsole.MarkupLineInterpolated($"[yellow]{line}[/]") : null);
            if (folder.ClassNames.Count > model.ClassCount)
            {
                folder.Dispose();
                throw new ArgumentException($"--data {dataOption}: {folder.ClassNames.Count} classes, more than the {model.ClassCount} outputs of {network.Model.Name}.");
            }
            data = folder;
        }
        else
        {
            if (images is not null) throw new ArgumentException("--val-fraction, --image-side, --lighting and --image-cache apply to folders of images by class only.");
            data = DataSources.Load(dataOption, model.InputChannels, model.InputHeight, model.InputWidth);
        }
        if (data.TrainCount == 0)
        {
            (data as IDisposable)?.Dispose();
            throw new InvalidDataException($"{data.Description}: the training set holds no images.");
        }
        bool fullSetRecipe = data.IsFullSet && epochs is null && settings.StepEpochs == 0;
        return (data, settings with
        {
            Epochs = epochs ?? (data.IsFullSet ? TrainCommand.FullSetEpochs : TrainCommand.SubsetEpochs),
            StepEpochs = fullSetRecipe ? TrainCommand.FullSetLrStep : settings.StepEpochs,
        });
    }

    /// <summary>Whether --data names a folder of images by class (rather than IDX files, CIFAR-10 batches or a word).</summary>
    private static bool IsImageFolder(string? dataOption) =>
        dataOption is not null && dataOption != DataSources.EmbeddedName && dataOption != DataSources.DebianName && Directory.Exists(dataOption) &&
        DataSources.Detect(dataOption) == DataSources.FolderKind.ImageFolder;

    /// <summary>
    /// A rank other than 0: the same data, network and settings, trains its shard of every batch and writes nothing
    /// (rank 0 evaluates, checkpoints and prints). A resume reads the same checkpoint path as rank 0, so on several
    /// machines the output folder must be shared or copied to each.
    /// </summary>
    private static int RunFollower(TrainSettings settings, int? epochs, string? dataOption, string? resumeFrom, int threads, bool tf32, NetworkChoice network,
        ImageFolderOptions? images, DistributedJob job)
    {
        (ITrainingData data, settings) = LoadData(settings, epochs, dataOption, network, images, report: false);
        using IDisposable? ownedData = data as IDisposable;
        settings = settings with { OutputFolder = "" };
        settings.Validate();
        using DeviceChoice choice = ResolveDevice(job.Gpu ? DeviceRequest.Cuda : DeviceRequest.Cpu, network, settings.BatchSize, tf32, job.DeviceOrdinal);
        using DistributedJob.Connection connection = job.Connect(choice);
        using CpuContext? cpu = threads > 0 ? new CpuContext(threads) : null;
        using var trainer = new Trainer(network.Create(settings.BatchSize, cpu), data, settings, engine: connection.EngineFactory, communicator: connection.Communicator);
        if (resumeFrom is not null) trainer.Resume(resumeFrom);
        else trainer.Start();
        using var stop = new StopSignal();
        while (trainer.CompletedEpochs < settings.Epochs)
        {
            EpochStatus result = trainer.TrainEpoch(cancel: stop.Token);
            if (result == EpochStatus.Interrupted || trainer.StopAgreed) return ExitCodes.Interrupted;
            if (result == EpochStatus.Diverged) return ExitCodes.Diverged;
        }
        return ExitCodes.Success;
    }

    private static int Run(TrainSettings settings, int? epochs, string? dataOption, DeviceRequest deviceRequest, string? resumeFrom, int threads, bool tf32, int testViews,
        NetworkChoice network, bool outputGiven, bool force, ImageFolderOptions? images, DistributedJob? job)
    {
        CheckOptions(settings, epochs, threads, testViews, resumeFrom, force);
        if (tf32 && deviceRequest == DeviceRequest.Cpu) throw new ArgumentException("--tf32 needs --device cuda or auto: the CPU backend computes in FP32.");

        // A fresh run never overwrites an earlier one: a default folder moves on to the next number, a named one needs --force.
        if (resumeFrom is null && !outputGiven)
        {
            settings = settings with { OutputFolder = RunFolder.ForFreshRun(settings.OutputFolder, outputGiven: false, force: false, out string? folderNotice) };
            if (folderNotice is not null) AnsiConsole.MarkupLineInterpolated($"[yellow]{folderNotice}[/]");
        }
        // Held until the run returns (also after Ctrl+C or SIGTERM, which end the loop below); the kernel drops it if the
        // process is killed. Taken before a named folder is checked, so that a run in progress there is reported as such.
        using RunFolderLock runLock = RunFolderLock.Acquire(settings.OutputFolder);
        if (resumeFrom is null && outputGiven)
        {
            RunFolder.ForFreshRun(settings.OutputFolder, outputGiven: true, force, out _);
        }
        using DeviceChoice choice = ResolveDevice(deviceRequest, network, settings.BatchSize, tf32, job?.DeviceOrdinal ?? 0);
        if (choice.Notice is not null) AnsiConsole.MarkupLineInterpolated($"[yellow]{choice.Notice}[/]");
        using DistributedJob.Connection? connection = job?.Connect(choice);
        ICommunicator? communicator = connection?.Communicator;

        (ITrainingData data, settings) = LoadData(settings, epochs, dataOption, network, images, report: true);
        using IDisposable? ownedData = data as IDisposable;
        settings.Validate();

        using CpuContext? cpu = threads > 0 ? new CpuContext(threads) : null;
        using var trainer = new Trainer(network.Create(settings.BatchSize, cpu), data, settings,
            engine: connection is null ? choice.EngineFactory : connection.EngineFactory, communicator: communicator);
        string device = choice.Name == "cpu" ? $"cpu ({cpu?.Threads ?? CpuContext.Default.Threads} threads, {Environment.ProcessorCount} logical processors)" : trainer.Engine.Description;
        // A GPU engine's description names its communicator already.
        if (communicator is not null && choice.Name == "cpu") device += $", data-parallel over {communicator.Description}";
        if (resumeFrom is not null)
        {
            trainer.Resume(resumeFrom);
            foreach (string notice in trainer.ResumeNotices) AnsiConsole.MarkupLineInterpolated($"[yellow]{notice}[/]");
            AnsiConsole.MarkupLineInterpolated($"Resumed from [bold]{resumeFrom}[/]: {trainer.CompletedEpochs} epochs done, step {trainer.Step}, learning rate {trainer.CurrentLearningRate:G3}.");
            // Every rank sees the same count and returns here, so none is left waiting.
            if (trainer.CompletedEpochs >= settings.Epochs)
            {
                AnsiConsole.MarkupLineInterpolated($"[yellow]Already trained {trainer.CompletedEpochs} epochs; pass --epochs with a larger total to continue.[/]");
                return ExitCodes.Success;
            }
        }
        else
        {
            // --force deletes the earlier run only now, when the device, the data and the network are known to work.
            if (force) RunFolder.DeleteRunFiles(settings.OutputFolder);
            trainer.Start();
        }
        PrintHeader(trainer, device);

        using var stop = new StopSignal();
        CancellationTokenSource cancel = stop.Source;
        string status = "completed";
        int exitCode = ExitCodes.Success;
        try
        {
            while (trainer.CompletedEpochs < settings.Epochs)
            {
                EpochStatus result = RunEpochWithProgress(trainer, cancel.Token);
                // A data-parallel job that agreed to stop on an epoch's last batch finishes that epoch first.
                bool stoppedAtEpochEnd = result == EpochStatus.Completed && trainer.StopAgreed;
                if (result == EpochStatus.Interrupted || stoppedAtEpochEnd)
                {
                    trainer.SaveCheckpoint();
                    if (stoppedAtEpochEnd) PrintEpochLine(trainer);
                    AnsiConsole.MarkupLineInterpolated($"[yellow]Interrupted.[/] Saved the current state to [bold]{trainer.LastCheckpointPath}[/]; continue with [bold]train{(network == NetworkChoice.Default ? "" : " --network " + network.OptionName)} --resume --output {settings.OutputFolder}[/].");
                    status = "interrupted";
                    exitCode = ExitCodes.Interrupted;
                    break;
                }
                if (result == EpochStatus.Diverged)
                {
                    AnsiConsole.MarkupLineInterpolated($"[red]{trainer.DivergenceMessage}[/]");
                    if (File.Exists(trainer.LastCheckpointPath))
                        AnsiConsole.MarkupLineInterpolated($"The last good checkpoint is kept: [bold]{trainer.LastCheckpointPath}[/] (epoch {trainer.CompletedEpochs}).");
                    status = "diverged";
                    exitCode = ExitCodes.Diverged;
                    break;
                }
                PrintEpochLine(trainer);
                MetricsLog.WriteCsv(Path.Combine(settings.OutputFolder, MetricsLog.CsvName), trainer.History);
                MetricsLog.WriteJson(Path.Combine(settings.OutputFolder, MetricsLog.JsonName), trainer, device, "running");
            }
        }
        finally
        {
            stop.Dispose();
        }
        if (status == "completed" && testViews > 1 && trainer.History.Count > 0)
        {
            EvaluationResult views = trainer.EvaluateViews(testViews);
            AnsiConsole.MarkupLine(string.Create(CultureInfo.InvariantCulture,
                $"Final test accuracy with {testViews}-view averaging (Krizhevsky et al. 2012, section 4.1): [bold]{100 * views.Accuracy:F2}%[/] " +
                $"(single view {100 * trainer.History[^1].TestAccuracy:F2}%), loss {views.Loss:F4}"));
        }

        Finish(trainer, device, status);
        return exitCode;
    }

    private static DeviceChoice ResolveDevice(DeviceRequest request, NetworkChoice network, int batchSize, bool tf32, int deviceOrdinal = 0)
    {
        try
        {
            return DeviceSelector.Resolve(request, network.Model, network.CudaPlan, network.CudaSource, batchSize, tf32, deviceOrdinal);
        }
        catch (CudaUnavailableException e)
        {
            throw new NotSupportedException($"--device cuda: {e.Message.TrimEnd('.')}. Use --device cpu or auto.", e);
        }
    }

    private static void PrintHeader(Trainer trainer, string device)
    {
        TrainSettings s = trainer.Settings;
        var grid = new Grid().AddColumn(new GridColumn().NoWrap().PadRight(2)).AddColumn();
        grid.AddRow("[bold]network[/]", Markup.Escape($"{trainer.Network.Descriptor.Name}, {trainer.Network.Descriptor.ParameterCount:N0} parameters (generated at compile time; 'summary' shows the layers)"));
        grid.AddRow("[bold]data[/]", Markup.Escape(trainer.Data.Description));
        grid.AddRow("[bold]device[/]", Markup.Escape(device));
        string schedule = s.Schedule == LearningRateSchedule.Step ? $"step (/10 every {s.EffectiveStepEpochs} epochs)" : $"plateau (/10 after {s.Patience} epochs without a new best)";
        grid.AddRow("[bold]training[/]", Markup.Escape($"{s.Epochs} epochs, batch {s.BatchSize}, lr {s.LearningRate:G3} {schedule}, momentum {s.Momentum:G3}, weight decay {s.WeightDecay:G3}, {s.Optimizer} SGD, {s.Init} init, seed {s.Seed}"));
        string augmentation = trainer.Data is ImageFolderData images
            ? (images.PipelineOptions with { RandomCrop = s.Augmentation.RandomCrop, HorizontalFlip = s.Augmentation.HorizontalFlip }).ToString()
            : s.Augmentation.ToString();
        grid.AddRow("[bold]augmentation[/]", Markup.Escape(augmentation));
        grid.AddRow("[bold]output[/]", Markup.Escape(Path.GetFullPath(s.OutputFolder)));
        AnsiConsole.Write(new Panel(grid).Header("alexnet-fashion train").Border(BoxBorder.Rounded));
    }

    private static EpochStatus RunEpochWithProgress(Trainer trainer, CancellationToken cancel)
    {
        int epoch = trainer.CompletedEpochs + 1, total = trainer.Settings.Epochs;
        string label = $"epoch {epoch}/{total}";
        if (!AnsiConsole.Profile.Capabilities.Interactive)
        {
            // Redirected output (logs, CI): a line every quarter epoch instead of a live bar.
            int every = Math.Max(1, trainer.BatchesPerEpoch / 4);
            return trainer.TrainEpoch(p =>
            {
                if (p.Batch % every == 0 || p.Batch == p.Batches)
                    Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{label} batch {p.Batch}/{p.Batches}  loss {p.MeanLoss:F4}  acc {100 * p.Accuracy:F2}%  {p.ImagesPerSecond:F0} img/s"));
            }, cancel);
        }
        EpochStatus status = EpochStatus.Completed;
        AnsiConsole.Progress()
            .AutoClear(false)
            .HideCompleted(false)
            .Columns(new TaskDescriptionColumn { Alignment = Justify.Left }, new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn(), new RemainingTimeColumn())
            .Start(ctx =>
            {
                ProgressTask task = ctx.AddTask(label, maxValue: trainer.BatchesPerEpoch);
                task.Value = 0;
                long lastUpdate = 0;
                status = trainer.TrainEpoch(p =>
                {
                    long now = Environment.TickCount64;
                    if (now - lastUpdate < 100 && p.Batch != p.Batches) return; // redraw at most 10 times a second
                    lastUpdate = now;
                    task.Value = p.Batch;
                    task.Description = string.Create(CultureInfo.InvariantCulture, $"{label}  loss {p.MeanLoss:F4}  acc {100 * p.Accuracy:F2}%  {p.ImagesPerSecond,5:F0} img/s");
                }, cancel);
                if (status == EpochStatus.Completed) task.Value = task.MaxValue;
            });
        return status;
    }

    private static void PrintEpochLine(Trainer trainer)
    {
        EpochRecord r = trainer.History[^1];
        bool best = trainer.BestEpoch == r.Epoch;
        AnsiConsole.MarkupLine(string.Create(CultureInfo.InvariantCulture,
            $"  test loss {r.TestLoss:F4}  test acc [bold]{100 * r.TestAccuracy:F2}%[/]{(best ? " [green](best)[/]" : "")}  lr {r.LearningRate:G3}  {r.Seconds:F1} s  {r.ImagesPerSecond:F0} img/s"));
    }

    private static void Finish(Trainer trainer, string device, string status)
    {
        TrainSettings s = trainer.Settings;
        if (trainer.History.Count > 0)
        {
            var table = new Table().Border(TableBorder.Rounded).Title("Epochs");
            foreach (string column in new[] { "epoch", "lr", "train loss", "train acc", "test loss", "test acc", "s", "img/s" })
                table.AddColumn(new TableColumn(column).RightAligned());
            foreach (EpochRecord r in trainer.History)
            {
                string testAccuracy = string.Create(CultureInfo.InvariantCulture, $"{100 * r.TestAccuracy:F2}%");
                table.AddRow(
                    r.Epoch.ToString(CultureInfo.InvariantCulture),
                    r.LearningRate.ToString("G3", CultureInfo.InvariantCulture),
                    r.TrainLoss.ToString("F4", CultureInfo.InvariantCulture),
                    string.Create(CultureInfo.InvariantCulture, $"{100 * r.TrainAccuracy:F2}%"),
                    r.TestLoss.ToString("F4", CultureInfo.InvariantCulture),
                    r.Epoch == trainer.BestEpoch ? $"[green]{testAccuracy}[/]" : testAccuracy,
                    r.Seconds.ToString("F1", CultureInfo.InvariantCulture),
                    r.ImagesPerSecond.ToString("F0", CultureInfo.InvariantCulture));
            }
            AnsiConsole.Write(table);
        }
        if (trainer.LastEvaluation is { } evaluation)
        {
            AnsiConsole.Write(Shared.PerClassTable(evaluation));
        }
        if (!Directory.Exists(s.OutputFolder)) return;
        MetricsLog.WriteCsv(Path.Combine(s.OutputFolder, MetricsLog.CsvName), trainer.History);
        MetricsLog.WriteJson(Path.Combine(s.OutputFolder, MetricsLog.JsonName), trainer, device, status);
        List<string> plots = Plots.WriteAll(s.OutputFolder, trainer.History, trainer.LastEvaluation, trainer.Network);
        if (!double.IsNaN(trainer.BestAccuracy))
            AnsiConsole.MarkupLine(string.Create(CultureInfo.InvariantCulture, $"Best test accuracy [bold green]{100 * trainer.BestAccuracy:F2}%[/] at epoch {trainer.BestEpoch}."));
        AnsiConsole.MarkupLineInterpolated($"Wrote to {Path.GetFullPath(s.OutputFolder)}:");
        var files = new List<string> { Trainer.LastCheckpointName, Trainer.BestCheckpointName, MetricsLog.CsvName, MetricsLog.JsonName };
        files.AddRange(plots.Select(Path.GetFileName)!);
        foreach (string file in files.Where(f => File.Exists(Path.Combine(s.OutputFolder, f))))
            AnsiConsole.MarkupLineInterpolated($"  {file}");
    }
}

/// <summary>
/// Ctrl+C and SIGTERM (a container or job scheduler stopping the run; mpirun forwards both to every rank) cancel
/// <see cref="Token"/>, so training stops between two steps and saves; a second Ctrl+C ends the process at once.
/// </summary>
internal sealed class StopSignal : IDisposable
{
    private readonly ConsoleCancelEventHandler _onCancel;
    private readonly PosixSignalRegistration? _onTerminate;
    private bool _disposed;

    public StopSignal()
    {
        _onCancel = (_, e) =>
        {
            if (Source.IsCancellationRequested) return; // a second Ctrl+C ends the process at once
            e.Cancel = true;
            Source.Cancel();
        };
        Console.CancelKeyPress += _onCancel;
        _onTerminate = OperatingSystem.IsWindows() ? null : PosixSignalRegistration.Create(PosixSignal.SIGTERM, context =>
        {
            if (Source.IsCancellationRequested) return;
            context.Cancel = true;
            Source.Cancel();
        });
    }

    public CancellationTokenSource Source { get; } = new();
    public CancellationToken Token => Source.Token;

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        Console.CancelKeyPress -= _onCancel;
        _onTerminate?.Dispose();
    }
}
