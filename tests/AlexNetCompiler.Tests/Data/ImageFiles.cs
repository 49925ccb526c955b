using AlexNetCompiler.Data;
using FashionMnist.App;
using SkiaSharp;

namespace AlexNetCompiler.Tests.Data;

/// <summary>Writes real JPEG and PNG files with SkiaSharp, for the image folder tests (no downloads).</summary>
public static class ImageFiles
{
    /// <summary>A width x height image filled by <paramref name="colour"/>(x, y), encoded by the file's extension (.png lossless, .jpg quality 95).</summary>
    public static void Write(string path, int width, int height, Func<int, int, SKColor> colour)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        using var bitmap = new SKBitmap(new SKImageInfo(width, height, SKColorType.Rgba8888, SKAlphaType.Unpremul));
        for (int y = 0; y < height; y++)
            for (int x = 0; x < width; x++) bitmap.SetPixel(x, y, colour(x, y));
        SKEncodedImageFormat format = Path.GetExtension(path).ToLowerInvariant() == ".png" ? SKEncodedImageFormat.Png : SKEncodedImageFormat.Jpeg;
        using SKData data = bitmap.Encode(format, 95);
        File.WriteAllBytes(path, data.ToArray());
    }

    public static void WriteSolid(string path, int width, int height, SKColor colour) => Write(path, width, height, (_, _) => colour);

    /// <summary>Noise with a seed: a textured photo stand-in.</summary>
    public static void WriteNoise(string path, int width, int height, int seed)
    {
        var random = new Random(seed);
        var pixels = new byte[width * height * 3];
        random.NextBytes(pixels);
        Write(path, width, height, (x, y) => new SKColor(pixels[(y * width + x) * 3], pixels[(y * width + x) * 3 + 1], pixels[(y * width + x) * 3 + 2]));
    }
}

/// <summary>A decoder that counts its calls, to tell a built cache from a reused one.</summary>
public sealed class CountingDecoder(IImageDecoder inner) : IImageDecoder
{
    private int _calls;

    public CountingDecoder() : this(SkiaImageDecoder.Instance) { }

    public int Calls => _calls;
    public string Identity => inner.Identity;

    public void DecodeSquare(string path, int side, Span<byte> destination)
    {
        Interlocked.Increment(ref _calls);
        inner.DecodeSquare(path, side, destination);
    }
}
