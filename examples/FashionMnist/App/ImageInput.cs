using AlexNetCompiler.Data;
using SkiaSharp;

namespace FashionMnist.App;

public enum InvertMode { Auto, Yes, No }

/// <summary>
/// Turns a PNG/JPEG of any size into the network's input: composite over white, grey (BT.601 luma), pad to a
/// square with the border colour, resize, and (auto) invert when the background is light, because
/// Fashion-MNIST shows light garments on a black background while photos usually have a light one.
/// </summary>
public static class ImageInput
{
    /// <summary>The largest image accepted, in pixels (<see cref="ImageLimits"/>).</summary>
    public const long MaxPixels = ImageLimits.MaxPixels;

    /// <summary>The longest side accepted, in pixels.</summary>
    public const int MaxSide = ImageLimits.MaxSide;

    /// <summary>
    /// The longest side padded to a square as is. A longer image is first scaled down to it (keeping its aspect), so
    /// that the padded square stays under 16 MB whatever the image's shape: a 20000x1 strip would otherwise pad to
    /// 20000x20000 floats.
    /// </summary>
    public const int MaxPaddedSide = 2048;

    /// <summary>Pixel values in [0, 1], [height * width], plus whether they were inverted.</summary>
    public static (float[] Pixels, bool Inverted) Load(string path, int height, int width, InvertMode invert)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: image not found.", path);
        using SKCodec? codec = SKCodec.Create(path, out SKCodecResult opened);
        if (codec is null) throw new InvalidDataException($"{path}: not an image SkiaSharp can decode (PNG, JPEG, WebP, GIF, BMP): {opened}.");
        int sourceHeight = codec.Info.Height, sourceWidth = codec.Info.Width;
        if (sourceHeight < 1 || sourceWidth < 1 || sourceHeight > MaxSide || sourceWidth > MaxSide || (long)sourceHeight * sourceWidth > MaxPixels)
            throw new InvalidDataException(
                $"{path}: a {sourceWidth}x{sourceHeight} image; images up to {MaxPixels / 1_000_000} megapixels and {MaxSide} pixels a side are accepted. Scale it down first.");
        // Unpremultiplied: the compositing over white below needs the colour apart from its alpha.
        var info = new SKImageInfo(sourceWidth, sourceHeight, SKColorType.Rgba8888, SKAlphaType.Unpremul);
        using var bitmap = new SKBitmap();
        if (!bitmap.TryAllocPixels(info)) throw new OutOfMemoryException($"{path}: no memory for a {sourceWidth}x{sourceHeight} image.");
        SKCodecResult decoded = codec.GetPixels(info, bitmap.GetPixels());
        if (decoded == SKCodecResult.IncompleteInput)
            throw new InvalidDataException($"{path}: the image data ends early (a truncated file); only part of the image could be decoded.");
        if (decoded != SKCodecResult.Success)
            throw new InvalidDataException($"{path}: the image could not be decoded ({decoded}).");
        ReadOnlySpan<byte> rgba = bitmap.GetPixelSpan();
        var grey = new float[sourceHeight * sourceWidth];
        for (int i = 0; i < grey.Length; i++)
        {
            float alpha = rgba[4 * i + 3] / 255f;
            float luma = (0.299f * rgba[4 * i] + 0.587f * rgba[4 * i + 1] + 0.114f * rgba[4 * i + 2]) / 255f;
            grey[i] = luma * alpha + (1 - alpha); // transparent pixels count as white
        }
        return FromGrey(grey, sourceHeight, sourceWidth, height, width, invert);
    }

    /// <summary>Side of a Fashion-MNIST image, the resolution every network's training data starts from.</summary>
    public const int DataSide = 28;

    /// <summary>
    /// <see cref="Load"/> for a network's input. A network larger than the data (AlexNet's 227x227) was trained on
    /// 28x28 images upscaled bilinearly (<see cref="DataSources.FitToNetwork"/>), so a photo is brought to 28x28
    /// first and upscaled the same way: the network then sees the softness it was trained on.
    /// </summary>
    public static (float[] Pixels, bool Inverted) LoadForNetwork(string path, int height, int width, InvertMode invert)
    {
        if (height <= DataSide && width <= DataSide) return Load(path, height, width, invert);
        (float[] pixels, bool inverted) = Load(path, DataSide, DataSide, invert);
        var upscaled = new float[height * width];
        ImageConversion.ResizeBilinear(pixels, DataSide, DataSide, upscaled, height, width);
        return (upscaled, inverted);
    }

    /// <summary>
    /// A colour network's input: RGB, the shorter side resized to <paramref name="storedSide"/> (an image-folder run's
    /// stored side, e.g. the paper's 256) or to the input's side, the centre square kept (<see cref="SkiaImageDecoder"/>,
    /// as the image cache stores it), then the centre <paramref name="side"/> crop (the single test view); values in
    /// [0, 1], CHW. Colour photos are taken as they are: no inversion.
    /// </summary>
    public static float[] LoadColour(string path, int side, int? storedSide = null)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: image not found.", path);
        int stored = storedSide ?? side;
        var bytes = new byte[3 * stored * stored];
        SkiaImageDecoder.Instance.DecodeSquare(path, stored, bytes);
        var pixels = new float[3 * side * side];
        (int top, int left) = ImageTransforms.FiveViewCorners(stored, side)[ImagePipeline.CentreView];
        ImageTransforms.Crop(bytes, 3, stored, top, left, side, mirror: false, pixels);
        return pixels;
    }

    /// <summary>The steps after decoding, on a grey plane (separate so that they are testable without image files).</summary>
    public static (float[] Pixels, bool Inverted) FromGrey(float[] grey, int sourceHeight, int sourceWidth, int height, int width, InvertMode invert)
    {
        float border = BorderMean(grey, sourceHeight, sourceWidth);
        if (Math.Max(sourceHeight, sourceWidth) > MaxPaddedSide)
        {
            double scale = (double)MaxPaddedSide / Math.Max(sourceHeight, sourceWidth);
            int scaledHeight = Math.Max(1, (int)Math.Round(sourceHeight * scale)), scaledWidth = Math.Max(1, (int)Math.Round(sourceWidth * scale));
            var scaled = new float[scaledHeight * scaledWidth];
            ImageConversion.ShrinkByAreaAverage(grey, sourceHeight, sourceWidth, scaled, scaledHeight, scaledWidth);
            (grey, sourceHeight, sourceWidth) = (scaled, scaledHeight, scaledWidth);
        }
        int side = Math.Max(sourceHeight, sourceWidth);
        var square = new float[side * side];
        Array.Fill(square, border);
        int top = (side - sourceHeight) / 2, left = (side - sourceWidth) / 2;
        for (int y = 0; y < sourceHeight; y++)
            grey.AsSpan(y * sourceWidth, sourceWidth).CopyTo(square.AsSpan((top + y) * side + left, sourceWidth));
        var pixels = new float[height * width];
        ImageConversion.ResizeBilinear(square, side, side, pixels, height, width);
        bool inverted = invert == InvertMode.Yes || (invert == InvertMode.Auto && border > 0.5f);
        if (inverted)
            for (int i = 0; i < pixels.Length; i++) pixels[i] = 1f - pixels[i];
        return (pixels, inverted);
    }

    private static float BorderMean(float[] grey, int height, int width)
    {
        double sum = 0;
        int count = 0;
        for (int x = 0; x < width; x++) { sum += grey[x] + grey[(height - 1) * width + x]; count += 2; }
        for (int y = 0; y < height; y++) { sum += grey[y * width] + grey[y * width + width - 1]; count += 2; }
        return (float)(sum / count);
    }
}
