using AlexNetCompiler.Checkpoints;
using AlexNetCompiler.Tests.Data;

namespace AlexNetCompiler.Tests.App;

/// <summary>A full disk under the checkpoint writer: the checkpoint already there must survive it untouched.</summary>
public sealed class CheckpointWriteFaultInjectionTests : IDisposable
{
    private readonly TempFolder _folder = new();

    public void Dispose() => _folder.Dispose();

    /// <summary>The real temporary file, whose writes fail with ENOSPC's message once the disk is "full" (or whose flush to disk does).</summary>
    private sealed class DiskFullFileStream(string path, long bytesThatFit, bool failOnFlushOnly)
        : FileStream(path, FileMode.CreateNew, FileAccess.Write, FileShare.None, bufferSize: 1 << 20)
    {
        private long _written;

        // A FileStream subclass's span writes arrive here too (the base class routes them through the array overload).
        public override void Write(byte[] buffer, int offset, int count)
        {
            if (!failOnFlushOnly && _written + count > bytesThatFit)
            {
                int fits = (int)Math.Max(0, bytesThatFit - _written);
                base.Write(buffer, offset, fits);
                _written += fits;
                throw new IOException("No space left on device");
            }
            base.Write(buffer, offset, count);
            _written += count;
        }

        public override void Flush(bool flushToDisk)
        {
            // Delayed allocation: the data only meets the full disk when it is flushed.
            if (failOnFlushOnly && flushToDisk) throw new IOException("No space left on device");
            base.Flush(flushToDisk);
        }
    }

    private static SafeTensorData[] Tensors(int count, float value) =>
        [.. Enumerable.Range(0, count).Select(i => new SafeTensorData($"t{i}", [256, 1024], Enumerable.Repeat(value + i, 256 * 1024).ToArray()))];

    /// <param name="failOnFlushOnly">false: a write half-way through the file fails; true: every write fits, the flush to disk fails.</param>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void DiskFullDuringAWrite_LeavesTheExistingCheckpointByteIdentical_DeletesItsTemporaryFile_AndNamesTheFile(bool failOnFlushOnly)
    {
        string path = _folder.File("last.safetensors");
        SafeTensors.Write(path, Tensors(8, 1f), new Dictionary<string, string> { ["epochs_completed"] = "1" }); // 8 MB
        byte[] before = File.ReadAllBytes(path);

        DiskFullFileStream? opened = null;
        var e = Assert.ThrowsAny<IOException>(() => SafeTensors.Write(path, Tensors(8, 2f), new Dictionary<string, string> { ["epochs_completed"] = "2" },
            temporary => opened = new DiskFullFileStream(temporary, bytesThatFit: before.Length / 2, failOnFlushOnly)));

        Assert.NotNull(opened);
        Assert.StartsWith(path + ".", opened.Name);
        Assert.Equal(before, File.ReadAllBytes(path));
        Assert.Equal([path], Directory.GetFiles(_folder.Path));
        Assert.Contains("No space left on device", e.Message);
        Assert.True(e.Message.Contains(path, StringComparison.Ordinal), $"The error does not name {path}: \"{e.Message}\"");
    }
}
