using AlexNetCompiler.Data;
using FashionMnist.App;
using SkiaSharp;

namespace AlexNetCompiler.Tests.Data;

/// <summary>Image folders: scanning, decoding into the cache, bad files, the cache's reuse and rebuilding, the held-out split.</summary>
public sealed class ImageFolderTests : IDisposable
{
    private readonly TempFolder _temp = new();
    private string Images => Path.Combine(_temp.Path, "images");
    private string CacheFolder => Path.Combine(_temp.Path, "cache");

    public void Dispose() => _temp.Dispose();

    private static readonly SKColor Red = new(255, 0, 0), Green = new(0, 255, 0), Blue = new(0, 0, 255);

    [Fact]
    public void Scan_ClassesAreTheSubFoldersInOrdinalOrder_FilesAtAnyDepth_OtherFilesIgnored()
    {
        ImageFiles.WriteSolid(Path.Combine(Images, "cat", "1.png"), 4, 4, Red);
        ImageFiles.WriteSolid(Path.Combine(Images, "cat", "nested", "2.JPG"), 4, 4, Red);
        File.WriteAllText(Path.Combine(Images, "cat", "notes.txt"), "not an image");
        File.WriteAllText(Path.Combine(Images, "cat", ".hidden.png"), "not an image either");
        ImageFiles.WriteSolid(Path.Combine(Images, "Dog", "a.jpeg"), 4, 4, Green);
        ImageFiles.WriteSolid(Path.Combine(Images, "bird", "b.png"), 4, 4, Blue);

        ImageFolder folder = ImageFolder.Scan(Images);

        // Ordinal: upper case before lower case, whatever the culture.
        Assert.Equal(["Dog", "bird", "cat"], folder.ClassNames);
        Assert.Equal(
            [(Path.Combine("Dog", "a.jpeg"), 0), (Path.Combine("bird", "b.png"), 1), (Path.Combine("cat", "1.png"), 2), (Path.Combine("cat", "nested", "2.JPG"), 2)],
            folder.Files.Select(f => (f.RelativePath, f.Label)));
        Assert.True(ImageFolder.Looks(Images));
    }

    [Fact]
    public void Scan_WithOrWithoutATrailingSeparator_IsOneFolderAndOneCache()
    {
        ImageFiles.WriteSolid(Path.Combine(Images, "a", "1.png"), 4, 4, Red);
        ImageFiles.WriteSolid(Path.Combine(Images, "b", "1.png"), 4, 4, Green);

        ImageFolder plain = ImageFolder.Scan(Images), trailing = ImageFolder.Scan(Images + Path.DirectorySeparatorChar);

        Assert.Equal(plain.Root, trailing.Root);
        Assert.Equal(ImageCache.FileName(plain, 8), ImageCache.FileName(trailing, 8));
    }

    [Fact]
    public void Scan_FilesBelowAHiddenSubFolder_AreIgnored()
    {
        ImageFiles.WriteSolid(Path.Combine(Images, "a", "1.png"), 4, 4, Red);
        ImageFiles.WriteSolid(Path.Combine(Images, "a", ".thumbs", "1.png"), 4, 4, Red);
        ImageFiles.WriteSolid(Path.Combine(Images, "b", "x", ".cache", "deep", "2.png"), 4, 4, Green);
        ImageFiles.WriteSolid(Path.Combine(Images, "b", "2.png"), 4, 4, Green);

        Assert.Equal([Path.Combine("a", "1.png"), Path.Combine("b", "2.png")], ImageFolder.Scan(Images).Files.Select(f => f.RelativePath));
    }

    [Fact]
    public void Scan_BadLayouts_AreRefusedNamingTheFolder()
    {
        string missing = Path.Combine(_temp.Path, "missing");
        Assert.Contains(missing, Assert.Throws<DirectoryNotFoundException>(() => ImageFolder.Scan(missing)).Message);

        Directory.CreateDirectory(Images);
        string noClasses = Assert.Throws<InvalidDataException>(() => ImageFolder.Scan(Images)).Message;
        Assert.Contains(Images, noClasses);
        Assert.Contains("no class sub-folders", noClasses);

        ImageFiles.WriteSolid(Path.Combine(Images, "only", "1.png"), 4, 4, Red);
        string oneClass = Assert.Throws<InvalidDataException>(() => ImageFolder.Scan(Images)).Message;
        Assert.Contains("only one class sub-folder ('only')", oneClass);

        Directory.CreateDirectory(Path.Combine(Images, "empty"));
        File.WriteAllText(Path.Combine(Images, "empty", "readme.txt"), "no images here");
        string emptyClass = Assert.Throws<InvalidDataException>(() => ImageFolder.Scan(Images)).Message;
        Assert.Contains(Path.Combine(Images, "empty"), emptyClass);
        Assert.Contains("without JPEG or PNG files", emptyClass);
    }

    [Fact]
    public void Scan_ValidationFolderWithOtherClasses_IsRefused()
    {
        ImageFiles.WriteSolid(Path.Combine(Images, "val", "a", "1.png"), 4, 4, Red);
        ImageFiles.WriteSolid(Path.Combine(Images, "val", "c", "1.png"), 4, 4, Red);
        Assert.False(ImageFolder.HasTrainValidationLayout(Images));
        ImageFiles.WriteSolid(Path.Combine(Images, "train", "a", "1.png"), 4, 4, Red);
        ImageFiles.WriteSolid(Path.Combine(Images, "train", "b", "1.png"), 4, 4, Red);
        Assert.True(ImageFolder.HasTrainValidationLayout(Images));

        ImageFolder train = ImageFolder.Scan(Path.Combine(Images, "train"));
        string message = Assert.Throws<InvalidDataException>(() => ImageFolder.Scan(Path.Combine(Images, "val"), train.ClassNames)).Message;
        Assert.Contains(Path.Combine(Images, "val"), message);
        Assert.Contains("(a, c) differ from the training folder's (a, b)", message);
    }

    [Fact]
    public void Cache_DecodesPngExactly_AsChwRgb()
    {
        ImageFiles.WriteSolid(Path.Combine(Images, "a", "red.png"), 16, 16, new SKColor(200, 10, 30));
        ImageFiles.WriteSolid(Path.Combine(Images, "b", "blue.png"), 16, 16, new SKColor(5, 6, 250));

        using ImageCache cache = ImageCache.Open(ImageFolder.Scan(Images), side: 16, CacheFolder, SkiaImageDecoder.Instance);

        Assert.Equal(2, cache.Count);
        Assert.Equal(0, cache.Label(0));
        Assert.Equal(1, cache.Label(1));
        // PNG is lossless and the size is already the side: no resampling, so the bytes are exact.
        byte[] expectedRed = [.. Enumerable.Repeat((byte)200, 256), .. Enumerable.Repeat((byte)10, 256), .. Enumerable.Repeat((byte)30, 256)];
        Assert.Equal(expectedRed, cache.Pixels(0).ToArray());
        Assert.Equal((byte)250, cache.Pixels(1)[2 * 256 + 17]);
    }

    [Fact]
    public void Cache_ResizesTheShorterSide_AndKeepsTheCentreSquare()
    {
        // 60 x 20: three vertical stripes of 20 columns, red | green | blue. Shorter side 20 -> 10 makes it 30 x 10,
        // stripes of 10; the centre 10 x 10 square is the green stripe.
        ImageFiles.Write(Path.Combine(Images, "a", "stripes.png"), 60, 20, (x, _) => x < 20 ? Red : x < 40 ? Green : Blue);
        ImageFiles.WriteSolid(Path.Combine(Images, "b", "other.png"), 20, 20, Red);
        // A tall 20 x 60 image: its centre square is again the middle third.
        ImageFiles.Write(Path.Combine(Images, "b", "tall.png"), 20, 60, (_, y) => y < 20 ? Red : y < 40 ? Green : Blue);

        using ImageCache cache = ImageCache.Open(ImageFolder.Scan(Images), side: 10, CacheFolder, SkiaImageDecoder.Instance);

        Assert.Equal((30, 10), ImageGeometry.ShorterSideTo(60, 20, 10));
        Assert.Equal((10, 0), ImageGeometry.CentreSquare(30, 10, 10));
        foreach (int index in new[] { 0, 2 })
        {
            ReadOnlySpan<byte> pixels = cache.Pixels(index);
            // Away from the stripe edges (two pixels in: linear filtering blends at most one neighbour), pure green;
            // a tolerance of 2 levels covers the filter's fixed-point rounding.
            for (int y = 2; y < 8; y++)
                for (int x = 2; x < 8; x++)
                {
                    Assert.InRange((int)pixels[y * 10 + x], 0, 2);
                    Assert.InRange((int)pixels[100 + y * 10 + x], 253, 255);
                    Assert.InRange((int)pixels[200 + y * 10 + x], 0, 2);
                }
        }
    }

    [Fact]
    public void Cache_DecodesJpeg_WithinItsCompressionError()
    {
        ImageFiles.WriteSolid(Path.Combine(Images, "a", "grey.jpg"), 32, 24, new SKColor(120, 160, 40));
        ImageFiles.WriteSolid(Path.Combine(Images, "b", "grey.jpg"), 32, 24, new SKColor(10, 20, 30));

        using ImageCache cache = ImageCache.Open(ImageFolder.Scan(Images), side: 8, CacheFolder, SkiaImageDecoder.Instance);

        ReadOnlySpan<byte> pixels = cache.Pixels(0);
        // A flat colour at quality 95 comes back within a few levels (YCbCr rounding and chroma subsampling); 6 is generous.
        for (int i = 0; i < 64; i++)
        {
            Assert.InRange((int)pixels[i], 114, 126);
            Assert.InRange((int)pixels[64 + i], 154, 166);
            Assert.InRange((int)pixels[128 + i], 34, 46);
        }
    }

    [Fact]
    public void Cache_SkipsBadImages_NamingThem_AndKeepsTheOthers()
    {
        ImageFiles.WriteSolid(Path.Combine(Images, "a", "good1.png"), 8, 8, Red);
        ImageFiles.WriteNoise(Path.Combine(Images, "a", "good2.jpg"), 12, 9, seed: 1);
        ImageFiles.WriteSolid(Path.Combine(Images, "b", "good3.png"), 8, 8, Blue);
        string garbage = Path.Combine(Images, "a", "garbage.jpg");
        File.WriteAllBytes(garbage, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
        string truncated = Path.Combine(Images, "b", "truncated.png");
        ImageFiles.WriteNoise(truncated, 40, 40, seed: 2);
        byte[] whole = File.ReadAllBytes(truncated);
        File.WriteAllBytes(truncated, whole[..(whole.Length / 2)]);
        string empty = Path.Combine(Images, "b", "empty.png");
        File.WriteAllBytes(empty, []);
        var log = new List<string>();

        using ImageCache cache = ImageCache.Open(ImageFolder.Scan(Images), side: 8, CacheFolder, SkiaImageDecoder.Instance, log: log.Add);

        Assert.Equal(3, cache.Count);
        Assert.Equal([0, 0, 1], Enumerable.Range(0, 3).Select(cache.Label));
        Assert.Equal(new[] { empty, garbage, truncated }.Order(StringComparer.Ordinal), cache.Skipped.Select(s => s.Path).Order(StringComparer.Ordinal));
        Assert.All(cache.Skipped, s => Assert.False(string.IsNullOrWhiteSpace(s.Reason)));
        Assert.All(cache.Skipped, s => Assert.DoesNotContain(s.Path, s.Reason)); // the path is named once, by the report
        Assert.Equal(3, log.Count(line => line.Contains("skipped")));
        Assert.Contains(log, line => line.StartsWith(garbage + ": skipped", StringComparison.Ordinal));
        Assert.Equal((byte)255, cache.Pixels(2)[2 * 64]); // good3 is blue

        // Reused, the cache still knows what it skipped.
        using ImageCache reused = ImageCache.Open(ImageFolder.Scan(Images), side: 8, CacheFolder, SkiaImageDecoder.Instance);
        Assert.False(reused.WasBuilt);
        Assert.Equal(cache.Skipped.Select(s => (s.Path, s.Reason)), reused.Skipped.Select(s => (s.Path, s.Reason)));
    }

    [Fact]
    public void Cache_SkippedImages_AreLoggedInFolderOrder_FromTheCallingThread()
    {
        ImageFiles.WriteSolid(Path.Combine(Images, "a", "ok.png"), 4, 4, Red);
        ImageFiles.WriteSolid(Path.Combine(Images, "b", "ok.png"), 4, 4, Green);
        for (int i = 0; i < 16; i++) File.WriteAllText(Path.Combine(Images, i % 2 == 0 ? "a" : "b", $"bad{i:D2}.png"), "not a PNG");
        var log = new List<string>();
        int caller = Environment.CurrentManagedThreadId;
        var threads = new HashSet<int>();

        using ImageCache cache = ImageCache.Open(ImageFolder.Scan(Images), 8, CacheFolder, SkiaImageDecoder.Instance, threads: 4,
            log: line => { threads.Add(Environment.CurrentManagedThreadId); log.Add(line); });

        Assert.Equal(cache.Skipped.Select(k => k.Path + ": skipped: " + k.Reason), log);
        Assert.Equal(log.Order(StringComparer.Ordinal), log);
        Assert.Equal([caller], threads);
    }

    private sealed class FailingDecoder(string failing, Exception failure) : IImageDecoder
    {
        public string Identity => SkiaImageDecoder.Instance.Identity;

        public void DecodeSquare(string path, int side, Span<byte> destination)
        {
            if (path == failing) throw failure;
            SkiaImageDecoder.Instance.DecodeSquare(path, side, destination);
        }
    }

    [Fact]
    public void Cache_ImageThatCannotBeOpened_StopsTheBuildNamingIt_AndIsNotStoredAsASkip()
    {
        ImageFiles.WriteSolid(Path.Combine(Images, "a", "1.png"), 4, 4, Red);
        ImageFiles.WriteSolid(Path.Combine(Images, "a", "2.png"), 4, 4, Red);
        ImageFiles.WriteSolid(Path.Combine(Images, "b", "1.png"), 4, 4, Green);
        string locked = Path.Combine(Images, "a", "2.png");
        var decoder = new FailingDecoder(Path.GetFullPath(locked), new UnauthorizedAccessException("Access denied."));

        var e = Assert.Throws<IOException>(() => ImageCache.Open(ImageFolder.Scan(Images), 8, CacheFolder, decoder));

        Assert.Contains(Path.GetFullPath(locked), e.Message);
        Assert.Contains("Access denied.", e.Message);
        Assert.Empty(Directory.GetFiles(CacheFolder)); // neither a cache nor its temporary file
        // Readable again: the next Open builds the cache with the image, not a stored skip.
        using ImageCache cache = ImageCache.Open(ImageFolder.Scan(Images), 8, CacheFolder, SkiaImageDecoder.Instance);
        Assert.True(cache.WasBuilt);
        Assert.Empty(cache.Skipped);
        Assert.Equal(3, cache.Count);
    }

    [Fact]
    public void Cache_TemporaryFileOfAProcessNoLongerRunning_IsDeletedByTheNextOpen()
    {
        ImageFiles.WriteSolid(Path.Combine(Images, "a", "1.png"), 4, 4, Red);
        ImageFiles.WriteSolid(Path.Combine(Images, "b", "1.png"), 4, 4, Green);
        ImageFolder folder = ImageFolder.Scan(Images);
        string path = Path.Combine(CacheFolder, ImageCache.FileName(folder, 8));
        Directory.CreateDirectory(CacheFolder);
        // int.MaxValue - 1 is above every system's process id limit (Linux: 2^22), so no process has it.
        string abandoned = $"{path}.{int.MaxValue - 1}.{Guid.NewGuid():N}.tmp";
        string ours = $"{path}.{Environment.ProcessId}.{Guid.NewGuid():N}.tmp";
        string otherCache = Path.Combine(CacheFolder, $"other-0123456789ab-8.imagecache.{int.MaxValue - 1}.{Guid.NewGuid():N}.tmp");
        foreach (string file in new[] { abandoned, ours, otherCache }) File.WriteAllBytes(file, new byte[100]);

        using (ImageCache.Open(folder, 8, CacheFolder, SkiaImageDecoder.Instance)) { }

        Assert.False(File.Exists(abandoned));
        Assert.True(File.Exists(ours)); // a running process's build may still be writing it
        Assert.True(File.Exists(otherCache)); // another cache's business
    }

    [Fact]
    public void Cache_ClassWithoutReadableImages_IsRefusedNamingIt()
    {
        ImageFiles.WriteSolid(Path.Combine(Images, "a", "good.png"), 8, 8, Red);
        Directory.CreateDirectory(Path.Combine(Images, "b"));
        File.WriteAllBytes(Path.Combine(Images, "b", "bad.png"), [0x89, 0x50, 0x4E, 0x47]); // a PNG signature cut short

        string message = Assert.Throws<InvalidDataException>(
            () => ImageCache.Open(ImageFolder.Scan(Images), side: 8, CacheFolder, SkiaImageDecoder.Instance)).Message;
        Assert.Contains(Path.Combine(Images, "b"), message);
        Assert.Contains("none of the class's images could be decoded", message);
    }

    [Fact]
    public void Cache_IsBuiltOnce_ThenReused_AndRebuiltWhenAFileIsAddedOrChanged()
    {
        ImageFiles.WriteSolid(Path.Combine(Images, "a", "1.png"), 8, 8, Red);
        ImageFiles.WriteSolid(Path.Combine(Images, "b", "2.png"), 8, 8, Green);
        var decoder = new CountingDecoder();

        using (ImageCache first = ImageCache.Open(ImageFolder.Scan(Images), 8, CacheFolder, decoder))
        {
            Assert.True(first.WasBuilt);
            Assert.Equal(2, decoder.Calls);
        }
        Assert.Single(Directory.GetFiles(CacheFolder)); // the temporary file was renamed, not left behind
        using (ImageCache second = ImageCache.Open(ImageFolder.Scan(Images), 8, CacheFolder, decoder))
        {
            Assert.False(second.WasBuilt);
            Assert.Equal(2, decoder.Calls);
            Assert.Equal((byte)255, second.Pixels(1)[64 + 5]);
        }

        ImageFiles.WriteSolid(Path.Combine(Images, "b", "3.png"), 8, 8, Blue);
        var log = new List<string>();
        using (ImageCache added = ImageCache.Open(ImageFolder.Scan(Images), 8, CacheFolder, decoder, log: log.Add))
        {
            Assert.True(added.WasBuilt);
            Assert.Equal(3, added.Count);
            Assert.Equal(5, decoder.Calls);
            Assert.Contains("files, the image size or the decoder changed", Assert.Single(log));
        }

        // Same name, new content; the time is set explicitly, so the test does not hang on the file system's clock resolution.
        string changed = Path.Combine(Images, "a", "1.png");
        ImageFiles.WriteSolid(changed, 8, 8, Blue);
        File.SetLastWriteTimeUtc(changed, File.GetLastWriteTimeUtc(changed).AddMinutes(1));
        using (ImageCache rebuilt = ImageCache.Open(ImageFolder.Scan(Images), 8, CacheFolder, decoder))
        {
            Assert.True(rebuilt.WasBuilt);
            Assert.Equal(8, decoder.Calls);
            Assert.Equal((byte)0, rebuilt.Pixels(0)[5]);
            Assert.Equal((byte)255, rebuilt.Pixels(0)[128 + 5]);
        }

        // Another side is another cache, beside the first.
        using (ImageCache other = ImageCache.Open(ImageFolder.Scan(Images), 4, CacheFolder, decoder))
            Assert.True(other.WasBuilt);
        Assert.Equal(2, Directory.GetFiles(CacheFolder).Length);
    }

    [Theory]
    [InlineData("truncated")]
    [InlineData("magic")]
    [InlineData("label")]
    [InlineData("empty")]
    public void Cache_DamagedFile_IsRebuiltSayingWhy(string damage)
    {
        ImageFiles.WriteSolid(Path.Combine(Images, "a", "1.png"), 8, 8, Red);
        ImageFiles.WriteSolid(Path.Combine(Images, "b", "2.png"), 8, 8, Green);
        var decoder = new CountingDecoder();
        string path;
        using (ImageCache built = ImageCache.Open(ImageFolder.Scan(Images), 8, CacheFolder, decoder)) path = built.Path;
        byte[] bytes = File.ReadAllBytes(path);
        switch (damage)
        {
            case "truncated": bytes = bytes[..(bytes.Length - 100)]; break;
            case "magic": bytes[0] ^= 0xFF; break;
            // The label table follows the two 192-byte slots; image 0's label 0 becomes 1.
            case "label": bytes[ImageCache.HeaderBytes + 2 * 192] = 1; break;
            case "empty": bytes = []; break;
        }
        File.WriteAllBytes(path, bytes);
        var log = new List<string>();

        using ImageCache rebuilt = ImageCache.Open(ImageFolder.Scan(Images), 8, CacheFolder, decoder, log: log.Add);

        Assert.True(rebuilt.WasBuilt);
        Assert.Equal(4, decoder.Calls);
        Assert.StartsWith(path + ": rebuilding the image cache: ", Assert.Single(log));
        Assert.Equal((byte)255, rebuilt.Pixels(0)[0]);
        Assert.Equal(0, rebuilt.Label(0));
    }

    [Fact]
    public void Cache_UnwritableCacheFolder_IsReportedNamingIt()
    {
        ImageFiles.WriteSolid(Path.Combine(Images, "a", "1.png"), 8, 8, Red);
        ImageFiles.WriteSolid(Path.Combine(Images, "b", "2.png"), 8, 8, Green);
        File.WriteAllText(CacheFolder, "a file where the cache folder should be");

        IOException error = Assert.ThrowsAny<IOException>(() => ImageCache.Open(ImageFolder.Scan(Images), 8, CacheFolder, SkiaImageDecoder.Instance));
        Assert.Contains(CacheFolder, error.Message);
    }

    [Fact]
    public void HeldOutSplit_IsStratifiedDisjointComplete_AndSeeded()
    {
        for (int i = 0; i < 10; i++) ImageFiles.WriteSolid(Path.Combine(Images, "a", $"{i}.png"), 4, 4, Red);
        for (int i = 0; i < 5; i++) ImageFiles.WriteSolid(Path.Combine(Images, "b", $"{i}.png"), 4, 4, Green);
        using ImageCache cache = ImageCache.Open(ImageFolder.Scan(Images), 4, CacheFolder, SkiaImageDecoder.Instance);

        (ImageSet train, ImageSet validation) = ImageSet.HeldOutSplit(cache, 0.2, seed: 7);

        // round(0.2 * 10) = 2 of class a, round(0.2 * 5) = 1 of class b.
        Assert.Equal(3, validation.Count);
        Assert.Equal(2, Enumerable.Range(0, validation.Count).Count(i => validation.Label(i) == 0));
        Assert.Equal(12, train.Count);
        Assert.Empty(train.Indices.Intersect(validation.Indices));
        Assert.Equal(Enumerable.Range(0, 15), train.Indices.Concat(validation.Indices).Order());

        Assert.Equal(validation.Indices, ImageSet.HeldOutSplit(cache, 0.2, seed: 7).Validation.Indices);
        Assert.Contains(Enumerable.Range(8, 8), s => !ImageSet.HeldOutSplit(cache, 0.2, (ulong)s).Validation.Indices.SequenceEqual(validation.Indices));

        Assert.Contains("validationFraction 1", Assert.Throws<ArgumentException>(() => ImageSet.HeldOutSplit(cache, 1.0, 7)).Message);
    }

    [Fact]
    public void HeldOutSplit_ClassWithOneImage_IsRefusedNamingIt()
    {
        for (int i = 0; i < 3; i++) ImageFiles.WriteSolid(Path.Combine(Images, "a", $"{i}.png"), 4, 4, Red);
        ImageFiles.WriteSolid(Path.Combine(Images, "b", "0.png"), 4, 4, Green);
        using ImageCache cache = ImageCache.Open(ImageFolder.Scan(Images), 4, CacheFolder, SkiaImageDecoder.Instance);

        string message = Assert.Throws<InvalidDataException>(() => ImageSet.HeldOutSplit(cache, 0.5, 1)).Message;
        Assert.Contains(Path.Combine(Images, "b"), message);
    }
}
