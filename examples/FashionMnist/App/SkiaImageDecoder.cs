using AlexNetCompiler.Data;
using SkiaSharp;

namespace FashionMnist.App;

/// <summary>
/// Decodes JPEG and PNG files with SkiaSharp for <see cref="ImageCache"/>: RGB (an alpha channel is dropped, as
/// torchvision's ImageFolder does when it converts to RGB), the shorter side resized to the cache's side with linear
/// filtering over mipmaps (so a large photo's detail is averaged, not skipped), then the centre square.
/// Thread-safe: every call has its own codec and bitmaps.
/// </summary>
public sealed class SkiaImageDecoder : IImageDecoder
{
    public static SkiaImageDecoder Instance { get; } = new();

    public string Identity => "skia-rgb-linear-mipmap-centre-1";

    public void DecodeSquare(string path, int side, Span<byte> destination)
    {
        int plane = side * side;
        if (destination.Length != 3 * plane) throw new ArgumentException($"Destination of {destination.Length} bytes, expected 3 x {side} x {side}.");
        using SKCodec? codec = SKCodec.Create(path, out SKCodecResult opened);
        if (codec is null) throw new InvalidDataException($"{path}: not an image SkiaSharp can decode ({opened}).");
        int width = codec.Info.Width, height = codec.Info.Height;
        if (width < 1 || height < 1 || width > ImageLimits.MaxSide || height > ImageLimits.MaxSide || (long)width * height > ImageLimits.MaxPixels)
            throw new InvalidDataException($"{path}: a {width}x{height} image; images up to {ImageLimits.MaxPixels / 1_000_000} megapixels and {ImageLimits.MaxSide} pixels a side are accepted.");
        var info = new SKImageInfo(width, height, SKColorType.Rgba8888, SKAlphaType.Unpremul);
        using var decoded = new SKBitmap();
        // InvalidDataException, like other bad images: one image's allocation failing skips it, not the whole build.
        if (!decoded.TryAllocPixels(info))
            throw new InvalidDataException($"{path}: no memory for a {width}x{height} image.");
        SKCodecResult result = codec.GetPixels(info, decoded.GetPixels());
        if (result == SKCodecResult.IncompleteInput)
            throw new InvalidDataException($"{path}: the image data ends early (a truncated file).");
        if (result != SKCodecResult.Success)
            throw new InvalidDataException($"{path}: the image could not be decoded ({result}).");

        (int resizedWidth, int resizedHeight) = ImageGeometry.ShorterSideTo(width, height, side);
        using SKBitmap? resized = resizedWidth == width && resizedHeight == height
            ? null
            : new SKBitmap(new SKImageInfo(resizedWidth, resizedHeight, SKColorType.Rgba8888, SKAlphaType.Unpremul));
        if (resized is not null && !decoded.ScalePixels(resized, new SKSamplingOptions(SKFilterMode.Linear, SKMipmapMode.Linear)))
            throw new InvalidDataException($"{path}: the image could not be resized to {resizedWidth}x{resizedHeight}.");
        (int left, int top) = ImageGeometry.CentreSquare(resizedWidth, resizedHeight, side);
        ReadOnlySpan<byte> rgba = (resized ?? decoded).GetPixelSpan();
        for (int y = 0; y < side; y++)
        {
            ReadOnlySpan<byte> row = rgba.Slice(((top + y) * resizedWidth + left) * 4, side * 4);
            for (int x = 0; x < side; x++)
            {
                destination[y * side + x] = row[4 * x];
                destination[plane + y * side + x] = row[4 * x + 1];
                destination[2 * plane + y * side + x] = row[4 * x + 2];
            }
        }
    }
}
