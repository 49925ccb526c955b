using AlexNetCompiler.Data;

namespace AlexNetCompiler.Tests.Data;

public sealed class IdxReaderTests : IDisposable
{
    private readonly TempFolder _folder = new();
    private static readonly string[] TenClasses = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"];

    public void Dispose() => _folder.Dispose();

    private string Write(string name, byte[] bytes)
    {
        string path = _folder.File(name);
        File.WriteAllBytes(path, bytes);
        return path;
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void ReadsImagesAndLabels_RawOrGzip(bool gzip)
    {
        byte[] pixels = IdxBytes.PatternImages(5, 4, 3);
        byte[] labels = [3, 0, 9, 1, 7];
        byte[] imageFile = IdxBytes.File([5, 4, 3], pixels), labelFile = IdxBytes.File([5], labels);
        // The name says nothing about compression: detection is by the gzip magic bytes.
        string images = Write("images.idx", gzip ? IdxBytes.Gzip(imageFile) : imageFile);
        string labelPath = Write("labels.idx", gzip ? IdxBytes.Gzip(labelFile) : labelFile);

        Dataset data = IdxDataset.Load(images, labelPath, TenClasses);

        Assert.Equal(5, data.Count);
        Assert.Equal((1, 4, 3), (data.Channels, data.Height, data.Width));
        Assert.Equal(labels.Select(b => (int)b), data.Labels);
        // Pixel n=2, y=1, x=2 = (62 + 7 + 2) = 71 -> 71/255 (division in float32 is exact to 1 ulp).
        Assert.Equal(71f / 255f, data.Image(2)[1 * 3 + 2], 6);
        Assert.All(data.Images, v => Assert.InRange(v, 0f, 1f));
    }

    [Fact]
    public void WriterRoundTrips()
    {
        byte[] pixels = IdxBytes.PatternImages(3, 2, 2);
        string path = _folder.File("round.idx.gz");
        IdxFile.Write(path, [3, 2, 2], pixels, gzip: true);
        byte[] raw = File.ReadAllBytes(path);
        Assert.Equal((0x1f, 0x8b), (raw[0], raw[1]));
        IdxFile read = IdxFile.Read(path);
        Assert.Equal([3, 2, 2], read.Dimensions);
        Assert.Equal(pixels, read.Data);
    }

    [Fact]
    public void BadMagic_NamesFile()
    {
        byte[] bytes = IdxBytes.File([2], [1, 2]);
        bytes[0] = 0x12;
        string path = Write("bad-magic", bytes);
        var e = Assert.Throws<InvalidDataException>(() => IdxFile.Read(path));
        Assert.Contains(path, e.Message);
        Assert.Contains("magic", e.Message);
    }

    [Fact]
    public void UnsupportedDataType_IsNamed()
    {
        byte[] bytes = [.. IdxBytes.Header(0x0D, 1), 0, 0, 0, 0];
        string path = Write("float.idx", bytes);
        var e = Assert.Throws<InvalidDataException>(() => IdxFile.Read(path));
        Assert.Contains(path, e.Message);
        Assert.Contains("0x0d", e.Message);
        Assert.Contains("float32", e.Message);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(3)]
    [InlineData(9)]
    public void TruncatedHeader(int length)
    {
        byte[] full = IdxBytes.File([2, 2], [1, 2, 3, 4]);
        string path = Write("short-header", full[..length]);
        var e = Assert.Throws<InvalidDataException>(() => IdxFile.Read(path));
        Assert.Contains(path, e.Message);
        Assert.Contains("truncated", e.Message);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void TruncatedData(bool gzip)
    {
        byte[] full = IdxBytes.File([10, 4, 4], IdxBytes.PatternImages(10, 4, 4));
        byte[] cut = full[..(full.Length - 5)];
        string path = Write("cut", gzip ? IdxBytes.Gzip(cut) : cut);
        var e = Assert.Throws<InvalidDataException>(() => IdxFile.Read(path));
        Assert.Contains(path, e.Message);
        Assert.Contains("truncated", e.Message);
        Assert.Contains("160", e.Message); // the number of data bytes expected
    }

    [Fact]
    public void TruncatedGzipStream_IsReported()
    {
        byte[] gz = IdxBytes.Gzip(IdxBytes.File([50, 8, 8], IdxBytes.PatternImages(50, 8, 8)));
        string path = Write("cut.gz", gz[..(gz.Length / 2)]);
        var e = Assert.Throws<InvalidDataException>(() => IdxFile.Read(path));
        Assert.Contains(path, e.Message);
        Assert.Contains("truncated", e.Message);
    }

    [Fact]
    public void TrailingBytes_AreAnError()
    {
        string path = Write("long", [.. IdxBytes.File([2], [1, 2]), 99]);
        var e = Assert.Throws<InvalidDataException>(() => IdxFile.Read(path));
        Assert.Contains(path, e.Message);
        Assert.Contains("1 unexpected bytes", e.Message);
    }

    /// <summary>50 images of 8 x 8 as one gzip member: a 10-byte header, the compressed data, an 8-byte trailer.</summary>
    private static byte[] GzipImages() => IdxBytes.Gzip(IdxBytes.File([50, 8, 8], IdxBytes.PatternImages(50, 8, 8)));

    // GZipStream ends quietly where the file ends: without the trailer, and inside the last compressed block even
    // when all the data came out. The reader must notice the cut itself, wherever it falls.
    [Theory]
    [InlineData(1, "before the 8-byte trailer of the gzip member at offset 0 is complete")]
    [InlineData(4, "before the 8-byte trailer of the gzip member at offset 0 is complete")]
    [InlineData(7, "before the 8-byte trailer of the gzip member at offset 0 is complete")]
    [InlineData(8, "before the 8-byte trailer of the gzip member at offset 0 is complete")]
    [InlineData(9, "inside the compressed data of the gzip member at offset 0")]
    [InlineData(12, "inside the compressed data of the gzip member at offset 0")]
    [InlineData(100, "inside the compressed data of the gzip member at offset 0")]
    public void GzipFileCutShort_IsReportedAsTruncated(int bytesCut, string where)
    {
        byte[] gz = GzipImages();
        string path = Write("cut.gz", gz[..^bytesCut]);
        var e = Assert.Throws<InvalidDataException>(() => IdxFile.Read(path));
        Assert.Contains(path, e.Message);
        Assert.Contains("truncated: the file ends " + where, e.Message);
    }

    [Fact]
    public void GzipFileCutInsideTheMemberHeader_IsReportedAsTruncated()
    {
        string path = Write("cut.gz", GzipImages()[..5]);
        var e = Assert.Throws<InvalidDataException>(() => IdxFile.Read(path));
        Assert.Contains(path, e.Message);
        Assert.Contains("truncated: the file ends inside the header of the gzip member at offset 0", e.Message);
    }

    // GZipStream ignores bytes after a member unless they start another one (0x1f 0x8b).
    [Theory]
    [InlineData(new byte[] { 0 })]
    [InlineData(new byte[] { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 })]
    [InlineData(new byte[] { 0x1f })]
    [InlineData(new byte[] { 0x1f, 0x00, 0x08, 0x00 })]
    [InlineData(new byte[] { (byte)'e', (byte)'n', (byte)'d', (byte)'\n' })]
    public void GzipFileWithTrailingData_IsReported(byte[] trailing)
    {
        byte[] gz = GzipImages();
        string path = Write("long.gz", [.. gz, .. trailing]);
        var e = Assert.Throws<InvalidDataException>(() => IdxFile.Read(path));
        Assert.Contains(path, e.Message);
        Assert.Contains($"{trailing.Length} bytes of trailing data after the gzip stream (at offset {gz.Length};", e.Message);
    }

    [Fact]
    public void ConcatenatedGzipMembers_AreOneStream_AndTrailingDataAfterTheLastIsReported()
    {
        byte[] idx = IdxBytes.File([50, 8, 8], IdxBytes.PatternImages(50, 8, 8));
        byte[] first = IdxBytes.Gzip(idx[..1000]), second = IdxBytes.Gzip(idx[1000..]), empty = IdxBytes.Gzip([]);
        IdxFile read = IdxFile.Read(Write("members.gz", [.. first, .. empty, .. second]));
        Assert.Equal([50, 8, 8], read.Dimensions);
        Assert.Equal(idx[16..], read.Data);

        string path = Write("members-long.gz", [.. first, .. second, 7, 7, 7]);
        var e = Assert.Throws<InvalidDataException>(() => IdxFile.Read(path));
        Assert.Contains(path, e.Message);
        Assert.Contains($"3 bytes of trailing data after the gzip stream (at offset {first.Length + second.Length};", e.Message);

        string cut = Write("members-cut.gz", [.. first, .. second[..^3]]);
        e = Assert.Throws<InvalidDataException>(() => IdxFile.Read(cut));
        Assert.Contains($"{cut}: truncated: the file ends before the 8-byte trailer of the gzip member at offset {first.Length} is complete", e.Message);
    }

    [Theory]
    [InlineData(8, "CRC-32 differs)")] // first byte of the CRC-32
    [InlineData(3, "length differs)")] // second byte of the data length
    public void GzipTrailerNotMatchingTheData_IsReported(int fromTheEnd, string what)
    {
        byte[] gz = GzipImages();
        gz[^fromTheEnd] ^= 0x01;
        string path = Write("corrupt.gz", gz);
        var e = Assert.Throws<InvalidDataException>(() => IdxFile.Read(path));
        Assert.Contains(path, e.Message);
        Assert.Contains("does not match its 3216 bytes of data: " + what, e.Message);
    }

    // The trailer must follow the compressed data directly: a byte slipped in between is not skipped.
    [Fact]
    public void GzipWithAByteBetweenTheCompressedDataAndTheTrailer_IsReported()
    {
        byte[] gz = GzipImages();
        string path = Write("slipped.gz", [.. gz[..^8], 0xBC, .. gz[^8..]]);
        var e = Assert.Throws<InvalidDataException>(() => IdxFile.Read(path));
        Assert.Contains($"{path}: corrupt gzip stream (the trailer of the member at offset 0 does not match its 3216 bytes of data", e.Message);
    }

    // Files from the gzip tool name the original file in the header; any optional header field is read past.
    [Fact]
    public void GzipHeaderWithOptionalFields_IsReadPast()
    {
        byte[] idx = IdxBytes.File([50, 8, 8], IdxBytes.PatternImages(50, 8, 8));
        byte[] gz = IdxBytes.Gzip(idx);
        const byte extra = 0x04, name = 0x08, comment = 0x10, headerCrc = 0x02;
        byte[] header =
        [
            0x1f, 0x8b, 8, extra | name | comment | headerCrc, 0, 0, 0, 0, 0, 3,
            3, 0, (byte)'x', (byte)'y', (byte)'z', // extra field: its length (little-endian), then its bytes
            .. "train-images-idx3-ubyte"u8, 0,
            .. "a comment"u8, 0,
        ];
        uint crc = System.IO.Hashing.Crc32.HashToUInt32(header);
        byte[] file = [.. header, (byte)crc, (byte)(crc >> 8), .. gz[10..]];

        IdxFile read = IdxFile.Read(Write("named.gz", file));
        Assert.Equal(idx[16..], read.Data);

        file[header.Length] ^= 0x01;
        string path = Write("bad-header-crc.gz", file);
        var e = Assert.Throws<InvalidDataException>(() => IdxFile.Read(path));
        Assert.Contains($"{path}: corrupt gzip stream (the header CRC of the member at offset 0 does not match)", e.Message);
    }

    [Fact]
    public void CountMismatch_NamesBothFiles()
    {
        string images = Write("images", IdxBytes.File([4, 2, 2], IdxBytes.PatternImages(4, 2, 2)));
        string labels = Write("labels", IdxBytes.File([3], [0, 1, 2]));
        var e = Assert.Throws<InvalidDataException>(() => IdxDataset.Load(images, labels, TenClasses));
        Assert.Contains(labels, e.Message);
        Assert.Contains(images, e.Message);
        Assert.Contains("3 labels", e.Message);
    }

    [Fact]
    public void LabelOutOfRange_NamesIndex()
    {
        string images = Write("images", IdxBytes.File([3, 2, 2], IdxBytes.PatternImages(3, 2, 2)));
        string labels = Write("labels", IdxBytes.File([3], [0, 10, 2]));
        var e = Assert.Throws<InvalidDataException>(() => IdxDataset.Load(images, labels, TenClasses));
        Assert.Contains(labels, e.Message);
        Assert.Contains("label 10 at index 1", e.Message);
    }

    [Fact]
    public void WrongRank_IsReported()
    {
        string images = Write("images", IdxBytes.File([4, 4], new byte[16]));
        string labels = Write("labels", IdxBytes.File([4], new byte[4]));
        var e = Assert.Throws<InvalidDataException>(() => IdxDataset.Load(images, labels, TenClasses));
        Assert.Contains(images, e.Message);
        Assert.Contains("3 dimensions", e.Message);

        string images3 = Write("images3", IdxBytes.File([4, 2, 2], new byte[16]));
        string labels2 = Write("labels2", IdxBytes.File([4, 1], new byte[4]));
        e = Assert.Throws<InvalidDataException>(() => IdxDataset.Load(images3, labels2, TenClasses));
        Assert.Contains(labels2, e.Message);
        Assert.Contains("1 dimension", e.Message);
    }

    /// <summary>Zeros in gzip members of 1 MiB each (about 1 KB compressed apiece): a small file that inflates to a lot.</summary>
    private static byte[] GzipZeros(int mebibytes)
    {
        using var compressed = new MemoryStream();
        using (var gzip = new System.IO.Compression.GZipStream(compressed, System.IO.Compression.CompressionLevel.SmallestSize, leaveOpen: true))
            gzip.Write(new byte[1 << 20]);
        byte[] member = compressed.ToArray();
        using var output = new MemoryStream();
        for (int i = 0; i < mebibytes; i++) output.Write(member);
        return output.ToArray();
    }

    [Fact]
    public void GzipBomb_StopsAtTheDeclaredSize()
    {
        // A header declaring 10 bytes, then 512 MiB of zeros from a file of about half a megabyte: decompression stops
        // one byte past the declared data, so memory stays near what the header declares.
        byte[] bomb = [.. IdxBytes.Gzip(IdxBytes.File([10], new byte[10])), .. GzipZeros(512)];
        Assert.InRange(bomb.Length, 1, 1 << 20);
        string path = Write("bomb.gz", bomb);
        long before = GC.GetAllocatedBytesForCurrentThread();
        var e = Assert.Throws<InvalidDataException>(() => IdxFile.Read(path));
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.Contains(path, e.Message);
        Assert.Contains("unexpected data after the 10 data bytes", e.Message);
        Assert.True(allocated < 16 << 20, $"{allocated} bytes allocated reading a file that declares 10");
    }

    [Fact]
    public void GzipDeclaringMoreThanTheFileCanHold_IsRefusedBeforeAllocating()
    {
        // 2e9 bytes declared in a file of a few dozen bytes: deflate cannot expand that far, so nothing is allocated.
        string path = Write("liar.gz", IdxBytes.Gzip(IdxBytes.Header(0x08, 2_000_000_000)));
        long before = GC.GetAllocatedBytesForCurrentThread();
        var e = Assert.Throws<InvalidDataException>(() => IdxFile.Read(path));
        Assert.True(GC.GetAllocatedBytesForCurrentThread() - before < 16 << 20);
        Assert.Contains(path, e.Message);
        Assert.Contains("truncated", e.Message);
        Assert.Contains("2000000000", e.Message);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void DeclaredSizeAboveTheLimit_IsRefused(bool gzip)
    {
        byte[] header = IdxBytes.Header(0x08, 65536, 65536, 1); // 4 GiB
        string path = Write("huge", gzip ? IdxBytes.Gzip(header) : header);
        var e = Assert.Throws<InvalidDataException>(() => IdxFile.Read(path));
        Assert.Contains(path, e.Message);
        Assert.Contains(IdxFile.MaxDataBytes.ToString(System.Globalization.CultureInfo.InvariantCulture), e.Message);
        Assert.Equal(IdxFile.MaxDataBytes, Array.MaxLength); // the limit is the largest array
    }

    [Fact]
    public void DimensionProductOverflowingALong_IsRefused()
    {
        string path = Write("overflow", IdxBytes.Header(0x08, int.MaxValue, int.MaxValue, int.MaxValue, int.MaxValue, 0));
        var e = Assert.Throws<InvalidDataException>(() => IdxFile.Read(path));
        Assert.Contains(path, e.Message);
    }

    [Fact]
    public void HugeRawFile_IsRejectedFromItsLength_WithoutReadingIt()
    {
        // A sparse 3 GB file (no disk space used) behind a header declaring 10 bytes: reading it whole would fail with
        // an IOException, as it is longer than a byte array can be; its length alone says it is wrong.
        string path = _folder.File("huge-raw");
        using (var file = new FileStream(path, FileMode.CreateNew))
        {
            file.Write(IdxBytes.File([10], new byte[10]));
            file.SetLength(3_000_000_000);
        }
        var e = Assert.Throws<InvalidDataException>(() => IdxFile.Read(path));
        Assert.Contains(path, e.Message);
        Assert.Contains("unexpected bytes after the 10 data bytes", e.Message);
    }

    [Fact]
    public void ImageSizeOverflowingAnInt_IsRefusedByTheDatasetBuilder()
    {
        // No images, so the file is tiny, but one image would have 2^32 values.
        string images = Write("images", IdxBytes.File([0, 65536, 65536, 1], []));
        string labels = Write("labels", IdxBytes.File([0], []));
        var e = Assert.Throws<InvalidDataException>(() => IdxDataset.Load(images, labels, TenClasses));
        Assert.Contains(images, e.Message);
        Assert.Contains("[65536, 65536, 1]", e.Message);
    }

    [Fact]
    public void MissingFile_IsNamed()
    {
        string path = _folder.File("absent.idx");
        var e = Assert.Throws<FileNotFoundException>(() => IdxFile.Read(path));
        Assert.Contains(path, e.Message);
    }

    [Fact]
    public void FashionMnistFolder_LoadsFourFiles_GzipOrRaw()
    {
        // Train files gzip-compressed, test files raw: the folder loader finds either form.
        File.WriteAllBytes(_folder.File("train-images-idx3-ubyte.gz"), IdxBytes.Gzip(IdxBytes.File([6, 28, 28], IdxBytes.PatternImages(6, 28, 28))));
        File.WriteAllBytes(_folder.File("train-labels-idx1-ubyte.gz"), IdxBytes.Gzip(IdxBytes.File([6], [0, 1, 2, 3, 4, 9])));
        File.WriteAllBytes(_folder.File("t10k-images-idx3-ubyte"), IdxBytes.File([2, 28, 28], IdxBytes.PatternImages(2, 28, 28)));
        File.WriteAllBytes(_folder.File("t10k-labels-idx1-ubyte"), IdxBytes.File([2], [5, 8]));

        Assert.True(FashionMnistFiles.Exists(_folder.Path));
        (Dataset train, Dataset test) = FashionMnistFiles.Load(_folder.Path);
        Assert.Equal(6, train.Count);
        Assert.Equal([5, 8], test.Labels);
        Assert.Equal("Ankle boot", train.ClassNames[train.Labels[5]]);
    }

    [Fact]
    public void FashionMnistFolder_MissingFile_IsNamed()
    {
        File.WriteAllBytes(_folder.File("train-images-idx3-ubyte.gz"), IdxBytes.Gzip(IdxBytes.File([1, 2, 2], new byte[4])));
        Assert.False(FashionMnistFiles.Exists(_folder.Path));
        var e = Assert.Throws<FileNotFoundException>(() => FashionMnistFiles.Load(_folder.Path));
        Assert.Contains("train-labels-idx1-ubyte", e.Message);
    }
}
