using AlexNetCompiler.Data;
using AlexNetCompiler.Training;

namespace FashionMnist.App;

public enum LearningRateSchedule
{
    /// <summary>Divide by 10 every StepEpochs epochs.</summary>
    Step,
    /// <summary>Divide by 10 when test accuracy has not improved for Patience epochs (the paper's rule, section 5).</summary>
    Plateau,
}

/// <summary>Everything <c>train</c> can be told. Defaults are the README's main command.</summary>
public sealed record TrainSettings
{
    public int Epochs { get; init; } = 12;
    public int BatchSize { get; init; } = 64;
    public float LearningRate { get; init; } = 0.02f;
    public LearningRateSchedule Schedule { get; init; } = LearningRateSchedule.Step;
    /// <summary>Step schedule: epochs between divisions by 10; 0 means once, after two thirds of the epochs.</summary>
    public int StepEpochs { get; init; }
    /// <summary>Plateau schedule: epochs without a new best test accuracy before dividing by 10.</summary>
    public int Patience { get; init; } = 2;
    public float Momentum { get; init; } = 0.9f;
    public float WeightDecay { get; init; } = 5e-4f;
    public SgdVariant Optimizer { get; init; } = SgdVariant.PyTorch;
    public InitScheme Init { get; init; } = InitScheme.He;
    public ulong Seed { get; init; } = 1;
    public AugmentationOptions Augmentation { get; init; } = AugmentationOptions.Paper;
    public string OutputFolder { get; init; } = Path.Combine("runs", "fashion");

    public int EffectiveStepEpochs => StepEpochs > 0 ? StepEpochs : Math.Max(1, (2 * Epochs + 2) / 3);

    /// <summary>Largest --crop-padding: beyond it a crop is mostly padding, and the padded copy of a batch grows without use.</summary>
    public const int MaxCropPadding = 256;

    /// <summary>Throws ArgumentException naming the option whose value is out of range (NaN is out of every range).</summary>
    public void Validate()
    {
        if (Epochs < 1) throw new ArgumentException($"--epochs {Epochs}: must be at least 1.");
        if (BatchSize < 1) throw new ArgumentException($"--batch-size {BatchSize}: must be at least 1.");
        if (!(LearningRate > 0) || float.IsInfinity(LearningRate)) throw new ArgumentException($"--lr {LearningRate}: must be a positive number.");
        if (!(Momentum >= 0 && Momentum < 1)) throw new ArgumentException($"--momentum {Momentum}: must be in [0, 1).");
        if (!(WeightDecay >= 0) || float.IsInfinity(WeightDecay)) throw new ArgumentException($"--weight-decay {WeightDecay}: must be a number >= 0.");
        if (Patience < 1) throw new ArgumentException($"--patience {Patience}: must be at least 1.");
        if (StepEpochs < 0) throw new ArgumentException($"--lr-step {StepEpochs}: must be >= 0.");
        if (!(Augmentation.MaxRotationDegrees >= 0 && Augmentation.MaxRotationDegrees <= 180))
            throw new ArgumentException($"--max-rotation {Augmentation.MaxRotationDegrees}: must be a number of degrees in [0, 180].");
        if (Augmentation.CropPadding < 0 || Augmentation.CropPadding > MaxCropPadding)
            throw new ArgumentException($"--crop-padding {Augmentation.CropPadding}: must be in [0, {MaxCropPadding}].");
    }
}
