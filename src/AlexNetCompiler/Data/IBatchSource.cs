namespace AlexNetCompiler.Data;

/// <summary>
/// Training batches, one epoch at a time: what a training loop needs from a loader, whether the images are in memory
/// (<see cref="BatchLoader"/>) or in a decoded-image cache (<see cref="ImageBatchLoader"/>). Both prepare the next batch
/// while the caller trains on the current one; a yielded batch is valid until the next is requested.
/// </summary>
public interface IBatchSource
{
    /// <summary>Batches per epoch; the last one holds the remainder and may be smaller.</summary>
    int BatchesPerEpoch { get; }

    /// <summary>
    /// The batches of epoch <paramref name="epoch"/> from batch <paramref name="firstBatch"/> on (a run resumed mid-epoch
    /// skips those it has trained on). The order and each sample's augmentation depend only on the loader's seed, the
    /// epoch and the sample, so a resumed run sees the batches an uninterrupted one would.
    /// </summary>
    IEnumerable<Batch> Epoch(int epoch, int firstBatch = 0);
}
