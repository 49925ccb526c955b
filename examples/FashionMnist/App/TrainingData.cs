using AlexNetCompiler.Data;

namespace FashionMnist.App;

/// <summary>
/// What the trainer needs from its data, whether the images are in memory (<see cref="LoadedData"/>: Fashion-MNIST,
/// CIFAR-10) or in a decoded-image cache (<see cref="ImageFolderData"/>): the shape and classes, the normalisation,
/// a loader of training batches and an evaluation of the held-out images.
///
/// A data set may have fewer classes than the network has outputs (an image folder of K classes on the canonical
/// AlexNet's 1000): class k is output k, the outputs from K on belong to no class, and evaluation predicts the argmax of
/// the first K outputs.
/// </summary>
public interface ITrainingData
{
    /// <summary>Where the images came from, for the user and the checkpoint's metadata.</summary>
    string Description { get; }
    /// <summary>A whole published set (the full Fashion-MNIST or CIFAR-10): it gets the long training recipe.</summary>
    bool IsFullSet { get; }
    IReadOnlyList<string> ClassNames { get; }
    int TrainCount { get; }
    int TestCount { get; }
    /// <summary>The shape of the samples the training batches hold: the network's input.</summary>
    int Channels { get; }
    int Height { get; }
    int Width { get; }

    /// <summary>The normalisation computed from the training images (per-channel mean and standard deviation).</summary>
    Normalization ComputeNormalization();

    /// <summary>Entries for the checkpoint's metadata that a later eval or predict needs to prepare images as training did.</summary>
    IReadOnlyDictionary<string, string> CheckpointMetadata { get; }

    /// <summary>
    /// The training batches: shuffled and augmented by <paramref name="settings"/>, normalised by
    /// <paramref name="normalization"/>, this rank's shard of each batch when <paramref name="shardCount"/> &gt; 1.
    /// </summary>
    IBatchSource CreateTrainLoader(TrainSettings settings, Normalization normalization, int shardRank, int shardCount, out IDisposable? owned);

    /// <summary>
    /// Inference over every held-out image, averaged over <paramref name="views"/> views (1, 2 or 10; Krizhevsky et al.
    /// 2012, section 4.1).
    /// </summary>
    EvaluationResult Evaluate(ForwardPass forward, int outputs, int maxBatch, Normalization normalization, int views,
        CancellationToken cancel = default);
}
