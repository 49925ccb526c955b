using System.Diagnostics;
using AlexNetCompiler.Cpu;
using AlexNetCompiler.Data;
using AlexNetCompiler.Training;
using FashionMnist.App;
using SkiaSharp;

namespace AlexNetCompiler.Bench;

/// <summary>
/// Images per second of the image-folder loader alone, against the canonical AlexNet's training step: a cold
/// cache build (JPEG decode, resize to the shorter side 256, centre 256x256, write), an epoch read from the
/// memory-mapped cache through the paper's training pipeline (random 227 crops, flips, PCA lighting,
/// normalisation), and AlexNet2012's CPU training step at the same batch size. On a folder of generated JPEGs
/// (deleted afterwards), so that it needs no download.
/// </summary>
internal static class LoaderBench
{
    public static int Run(int images, int threads, int batch, int steps)
    {
        string root = Directory.CreateTempSubdirectory("anc-loader-bench-").FullName;
        try
        {
            string folder = Path.Combine(root, "images"), cache = Path.Combine(root, "cache");
            var sw = Stopwatch.StartNew();
            Generate(folder, images, classes: 10);
            Console.WriteLine($"generated {images} JPEGs (500x375, 10 classes) in {sw.Elapsed.TotalSeconds:F1} s; {threads} thread(s), batch {batch}");

            ImageFolder scanned = ImageFolder.Scan(folder);
            sw.Restart();
            using (ImageCache built = ImageCache.Open(scanned, 256, cache, SkiaImageDecoder.Instance, threads))
                Report("cold: decode + resize + write the cache", built.Count, sw.Elapsed.TotalSeconds);

            sw.Restart();
            using ImageCache reused = ImageCache.Open(ImageFolder.Scan(folder), 256, cache, SkiaImageDecoder.Instance, threads);
            double open = sw.Elapsed.TotalSeconds;
            if (reused.WasBuilt) throw new InvalidOperationException("The cache was rebuilt instead of reused.");
            Console.WriteLine($"  reopen the cache (scan, check the manifest, map): {open * 1e3:F0} ms");

            ImageSet set = ImageSet.All("bench", reused);
            sw.Restart();
            ImageStatistics statistics = ImageStatistics.Compute(set);
            Console.WriteLine($"  colour statistics (mean, std, RGB covariance) over {set.Count} images: {sw.Elapsed.TotalSeconds:F2} s");
            var pipeline = new ImagePipeline(new ImagePipelineOptions(), statistics);
            var loader = new ImageBatchLoader(set, pipeline, batch, training: true, seed: 1, threads: threads);
            for (int epoch = 0; epoch < 2; epoch++)
            {
                sw.Restart();
                int seen = 0;
                foreach (Batch b in loader.Epoch(epoch)) seen += b.Count;
                Report($"cached epoch {epoch + 1} (crop, flip, lighting, normalise)", seen, sw.Elapsed.TotalSeconds);
            }

            using var context = new CpuContext(threads);
            var net = new CanonicalAlexNet.AlexNet2012(batch, context);
            Initializer.Initialize(net.Descriptor, net.Parameters, InitScheme.He, seed: 1);
            var sgd = new Sgd(net.Parameters.Length, BenchSetup.Sgd);
            Batch first = loader.Epoch(0).First();
            net.TrainStep(first.Images, first.Labels, first.Count, sgd, 0); // warm-up
            sw.Restart();
            for (int s = 1; s <= steps; s++) net.TrainStep(first.Images, first.Labels, first.Count, sgd, (ulong)s);
            Report($"AlexNet2012 training step ({steps} steps)", steps * first.Count, sw.Elapsed.TotalSeconds);
            return 0;
        }
        finally
        {
            Directory.Delete(root, recursive: true);
        }
    }

    private static void Report(string what, int count, double seconds) =>
        Console.WriteLine($"  {what,-58} {count,6} images in {seconds,7:F2} s: {count / seconds,8:F0} images/s");

    /// <summary>Photo-like JPEGs (a gradient and a few discs; noise would make decoding unrepresentatively slow), quality 90.</summary>
    private static void Generate(string folder, int images, int classes)
    {
        Parallel.For(0, images, i =>
        {
            var random = new Random(i);
            using var surface = SKSurface.Create(new SKImageInfo(500, 375, SKColorType.Rgba8888, SKAlphaType.Premul));
            SKCanvas canvas = surface.Canvas;
            using var paint = new SKPaint { IsAntialias = true };
            var top = new SKColor((byte)random.Next(256), (byte)random.Next(256), (byte)random.Next(256));
            var bottom = new SKColor((byte)random.Next(256), (byte)random.Next(256), (byte)random.Next(256));
            paint.Shader = SKShader.CreateLinearGradient(new SKPoint(0, 0), new SKPoint(0, 375), [top, bottom], SKShaderTileMode.Clamp);
            canvas.DrawRect(0, 0, 500, 375, paint);
            paint.Shader = null;
            for (int d = 0; d < 6; d++)
            {
                paint.Color = new SKColor((byte)random.Next(256), (byte)random.Next(256), (byte)random.Next(256));
                canvas.DrawCircle(random.Next(500), random.Next(375), 20 + random.Next(80), paint);
            }
            using SKImage image = surface.Snapshot();
            using SKData data = image.Encode(SKEncodedImageFormat.Jpeg, 90);
            string path = Path.Combine(folder, $"class{i % classes:D2}", $"{i:D5}.jpg");
            Directory.CreateDirectory(Path.GetDirectoryName(path)!);
            File.WriteAllBytes(path, data.ToArray());
        });
    }
}
