using AlexNetCompiler.Data;

namespace AlexNetCompiler.Tests.Data;

public sealed class Cifar10Tests : IDisposable
{
    private readonly TempFolder _folder = new();

    public void Dispose() => _folder.Dispose();

    /// <summary>Records whose red plane is all (label*10), green (label*10+1), blue (label*10+2), pixel (0,0) of red = record number.</summary>
    private static byte[] Records(params byte[] labels)
    {
        var bytes = new byte[labels.Length * 3073];
        for (int r = 0; r < labels.Length; r++)
        {
            int offset = r * 3073;
            bytes[offset] = labels[r];
            for (int c = 0; c < 3; c++)
                bytes.AsSpan(offset + 1 + c * 1024, 1024).Fill((byte)(labels[r] * 10 + c));
            bytes[offset + 1] = (byte)r;
        }
        return bytes;
    }

    [Fact]
    public void ReadsFolder_TrainBatchesInOrder_ThenTest()
    {
        File.WriteAllBytes(_folder.File("data_batch_1.bin"), Records(1, 2));
        File.WriteAllBytes(_folder.File("data_batch_2.bin"), Records(9));
        File.WriteAllBytes(_folder.File("test_batch.bin"), Records(0, 5, 3));

        Assert.True(Cifar10.Exists(_folder.Path));
        (Dataset train, Dataset test) = Cifar10.Load(_folder.Path);

        Assert.Equal([1, 2, 9], train.Labels);
        Assert.Equal([0, 5, 3], test.Labels);
        Assert.Equal((3, 32, 32), (train.Channels, train.Height, train.Width));
        // Sample 1 (label 2): planes R, G, B hold 20, 21, 22 (CHW, as the file stores them); its pixel 0 of R is 1 (record number).
        ReadOnlySpan<float> image = train.Image(1);
        Assert.Equal(1f / 255f, image[0], 6);
        Assert.Equal(20f / 255f, image[5], 6);
        Assert.Equal(21f / 255f, image[1024 + 5], 6);
        Assert.Equal(22f / 255f, image[2048 + 1023], 6);
        Assert.Equal("truck", train.ClassNames[train.Labels[2]]);
    }

    [Fact]
    public void TruncatedRecord_IsReported()
    {
        byte[] bytes = Records(1, 2);
        string path = _folder.File("data_batch_1.bin");
        File.WriteAllBytes(path, bytes[..^100]);
        var e = Assert.Throws<InvalidDataException>(() => Cifar10.ReadFiles([path], "t"));
        Assert.Contains(path, e.Message);
        Assert.Contains("truncated", e.Message);
        Assert.Contains("record 1", e.Message);
    }

    [Fact]
    public void LabelOutOfRange_IsReported()
    {
        byte[] bytes = Records(1, 2, 3);
        bytes[2 * 3073] = 10;
        string path = _folder.File("test_batch.bin");
        File.WriteAllBytes(path, bytes);
        var e = Assert.Throws<InvalidDataException>(() => Cifar10.ReadFiles([path], "t"));
        Assert.Contains(path, e.Message);
        Assert.Contains("label 10 in record 2", e.Message);
    }

    [Fact]
    public void OddSizedFiles_AreReportedWhateverTheRemainder()
    {
        foreach (int length in new[] { 1, 3072, 3074, 2 * 3073 - 1 })
        {
            string path = _folder.File($"odd-{length}.bin");
            File.WriteAllBytes(path, new byte[length]);
            var e = Assert.Throws<InvalidDataException>(() => Cifar10.ReadFiles([path], "t"));
            Assert.Contains(path, e.Message);
            Assert.Contains($"record {length / 3073} has only {length % 3073} bytes", e.Message);
        }
    }

    [Fact]
    public void TooManyRecords_AreRefusedFromTheFileLengths_WithoutReadingThem()
    {
        // A sparse file (no disk space used) of whole records, more than one float array holds: reading it whole
        // would fail with an IOException, as it is longer than a byte array can be.
        string path = _folder.File("data_batch_1.bin");
        using (var file = new FileStream(path, FileMode.CreateNew)) file.SetLength(3073L * (Cifar10.MaxRecords + 1));
        var e = Assert.Throws<InvalidDataException>(() => Cifar10.ReadFiles([path], "t"));
        Assert.Contains(path, e.Message);
        Assert.Contains("too many", e.Message);
        Assert.Equal(Array.MaxLength / 3072, Cifar10.MaxRecords);
    }

    [Fact]
    public void EmptyFile_And_MissingTestFile_AreReported()
    {
        string empty = _folder.File("data_batch_1.bin");
        File.WriteAllBytes(empty, []);
        Assert.Contains("empty", Assert.Throws<InvalidDataException>(() => Cifar10.ReadFiles([empty], "t")).Message);
        Assert.False(Cifar10.Exists(_folder.Path));
        Assert.Contains("test_batch.bin", Assert.Throws<FileNotFoundException>(() => Cifar10.Load(_folder.Path)).Message);
    }
}
