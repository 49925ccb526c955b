using AlexNetCompiler.Tests.Data;
using FashionMnist.App;
using SkiaSharp;

namespace AlexNetCompiler.Tests.App;

public sealed class ImageInputTests : IDisposable
{
    private readonly TempFolder _folder = new();

    public void Dispose() => _folder.Dispose();

    /// <summary>A wide photo-like PNG: white background, a black rectangle in the middle.</summary>
    private string WritePng(string name, SKEncodedImageFormat format = SKEncodedImageFormat.Png)
    {
        using var bitmap = new SKBitmap(120, 60);
        using (var canvas = new SKCanvas(bitmap))
        {
            canvas.Clear(SKColors.White);
            using var paint = new SKPaint { Color = SKColors.Black };
            canvas.DrawRect(new SKRect(45, 15, 75, 45), paint);
        }
        string path = _folder.File(name);
        using SKData data = bitmap.Encode(format, 95);
        File.WriteAllBytes(path, data.ToArray());
        return path;
    }

    [Theory]
    [InlineData("photo.png", SKEncodedImageFormat.Png)]
    [InlineData("photo.jpg", SKEncodedImageFormat.Jpeg)]
    public void LightBackground_IsInvertedToFashionMnistStyle(string name, SKEncodedImageFormat format)
    {
        (float[] pixels, bool inverted) = ImageInput.Load(WritePng(name, format), 28, 28, InvertMode.Auto);
        Assert.True(inverted);
        Assert.Equal(28 * 28, pixels.Length);
        Assert.All(pixels, v => Assert.InRange(v, -1e-5f, 1f + 1e-5f));
        // After inversion the object is light and the background dark. The 120x60 image is padded to
        // 120x120 and scaled by 28/120: the 30x30 square covers the centre, the corners are background.
        // JPEG ringing moves values by a few levels, hence 0.1 slack.
        Assert.True(pixels[14 * 28 + 14] > 0.9f, $"centre {pixels[14 * 28 + 14]}");
        Assert.True(pixels[0] < 0.1f && pixels[27 * 28 + 27] < 0.1f, $"corners {pixels[0]}, {pixels[^1]}");
    }

    [Fact]
    public void InvertNo_KeepsGreyLevels()
    {
        (float[] pixels, bool inverted) = ImageInput.Load(WritePng("p.png"), 28, 28, InvertMode.No);
        Assert.False(inverted);
        Assert.True(pixels[14 * 28 + 14] < 0.1f);
        Assert.True(pixels[0] > 0.9f);
    }

    [Fact]
    public void DarkBackground_IsNotInverted_AndPaddingUsesTheBorderColour()
    {
        // 2x4 plane, rows [0 0 0 0] and [0 1 1 0]. The border (top and bottom rows counted per column, left
        // and right columns per row: 12 samples) sums to 2, so its mean is 1/6 < 0.5: no inversion.
        // Padding to 4x4 puts the image in rows 1-2 and fills rows 0 and 3 with 1/6; a 4x4 -> 4x4 resize is exact.
        float[] grey = [0, 0, 0, 0, 0, 1, 1, 0];
        (float[] pixels, bool inverted) = ImageInput.FromGrey(grey, 2, 4, 4, 4, InvertMode.Auto);
        Assert.False(inverted);
        Assert.Equal(2f / 12f, pixels[0], 6);
        Assert.Equal(2f / 12f, pixels[3 * 4 + 3], 6);
        Assert.Equal(0f, pixels[1 * 4 + 1], 6);
        Assert.Equal(1f, pixels[2 * 4 + 1], 6);
    }

    [Fact]
    public void NotAnImage_IsReported()
    {
        string path = _folder.File("notes.png");
        File.WriteAllText(path, "not an image");
        var e = Assert.Throws<InvalidDataException>(() => ImageInput.Load(path, 28, 28, InvertMode.Auto));
        Assert.Contains(path, e.Message);
    }

    private string WriteGreyPng(string name, int width, int height)
    {
        using var bitmap = new SKBitmap(width, height);
        bitmap.Erase(SKColors.Gray);
        string path = _folder.File(name);
        using SKData data = bitmap.Encode(SKEncodedImageFormat.Png, 100);
        File.WriteAllBytes(path, data.ToArray());
        return path;
    }

    [Fact]
    public void TruncatedPng_IsRefused_NotPredictedFromHalfAnImage()
    {
        using var bitmap = new SKBitmap(256, 256);
        for (int y = 0; y < 256; y++)
            for (int x = 0; x < 256; x++) bitmap.SetPixel(x, y, new SKColor((byte)x, (byte)y, (byte)(x ^ y))); // incompressible enough to span many rows of data
        string path = _folder.File("cut.png");
        using (SKData data = bitmap.Encode(SKEncodedImageFormat.Png, 100))
            File.WriteAllBytes(path, data.ToArray()[..(int)(data.Size / 2)]);

        var e = Assert.Throws<InvalidDataException>(() => ImageInput.Load(path, 28, 28, InvertMode.Auto));
        Assert.Contains(path, e.Message);
        Assert.Contains("truncated", e.Message);
    }

    [Fact]
    public void LongThinImage_IsDecodedInBoundedMemory()
    {
        // 20000x1 used to be padded to a 20000x20000 square of floats (1.6 GB) before resizing.
        string path = WriteGreyPng("strip.png", 20000, 1);
        long before = GC.GetAllocatedBytesForCurrentThread();
        (float[] pixels, _) = ImageInput.Load(path, 28, 28, InvertMode.No);
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        // The padded square is at most MaxPaddedSide^2 floats (16 MB); the rest is a few rows.
        Assert.InRange(allocated, 0, 4L * ImageInput.MaxPaddedSide * ImageInput.MaxPaddedSide + (8 << 20));
        Assert.Equal(28 * 28, pixels.Length);
        Assert.All(pixels, p => Assert.InRange(p, 0f, 1f));
    }

    [Fact]
    public void ImageLargerThanTheLimit_IsRefusedBeforeDecoding()
    {
        string path = WriteGreyPng("wide.png", ImageInput.MaxSide + 1, 1);
        var e = Assert.Throws<InvalidDataException>(() => ImageInput.Load(path, 28, 28, InvertMode.Auto));
        Assert.Contains(path, e.Message);
        Assert.Contains($"{ImageInput.MaxSide + 1}x1", e.Message);
    }

    [Fact]
    public void ShrinkingAveragesEverySourcePixelOnce_EvenBelowATwofoldReduction()
    {
        // 3x4 -> 1x2: the left half of all three rows, then the right half (values computed by hand).
        float[] source = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11];
        var destination = new float[2];
        ImageConversion.ShrinkByAreaAverage(source, 3, 4, destination, 1, 2);
        Assert.Equal([27f / 6, 39f / 6], destination);

        // 4032 -> 2048 columns, a 1.97x reduction (where bilinear sampling skips pixels): each source pixel falls in
        // exactly one block, so the blocks' sums add up to the whole line.
        var random = new Random(7);
        var line = new float[4032];
        for (int x = 0; x < line.Length; x++) line[x] = random.NextSingle();
        var shrunk = new float[2048];
        ImageConversion.ShrinkByAreaAverage(line, 1, 4032, shrunk, 1, 2048);
        double blocks = 0;
        for (int x = 0; x < shrunk.Length; x++) blocks += shrunk[x] * (Math.Max((x + 1) * 4032 / 2048, x * 4032 / 2048 + 1) - x * 4032 / 2048);
        Assert.Equal(line.Sum(v => (double)v), blocks, 2);
    }
}
