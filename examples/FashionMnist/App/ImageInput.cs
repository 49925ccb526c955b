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
    /// <summary>Pixel values in [0, 1], [height * width], plus whether they were inverted.</summary>
    public static (float[] Pixels, bool Inverted) Load(string path, int height, int width, InvertMode invert)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: image not found.", path);
        using SKBitmap? decoded = SKBitmap.Decode(path);
        if (decoded is null) throw new InvalidDataException($"{path}: not an image SkiaSharp can decode (PNG, JPEG, WebP, GIF, BMP).");
        using SKBitmap bitmap = decoded.ColorType == SKColorType.Rgba8888 ? decoded.Copy() : decoded.Copy(SKColorType.Rgba8888);
        if (bitmap is null) throw new InvalidDataException($"{path}: could not convert the image to RGBA.");
        int sourceHeight = bitmap.Height, sourceWidth = bitmap.Width;
        var grey = new float[sourceHeight * sourceWidth];
        ReadOnlySpan<byte> rgba = bitmap.GetPixelSpan();
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

    /// <summary>The steps after decoding, on a grey plane (separate so that they are testable without image files).</summary>
    public static (float[] Pixels, bool Inverted) FromGrey(float[] grey, int sourceHeight, int sourceWidth, int height, int width, InvertMode invert)
    {
        float border = BorderMean(grey, sourceHeight, sourceWidth);
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
