using AlexNetCompiler;
using ScottPlot;

namespace FashionMnist.App;

/// <summary>The PNG figures written at the end of training (ScottPlot 5).</summary>
public static class Plots
{
    public const string LossName = "loss.png";
    public const string AccuracyName = "accuracy.png";
    public const string ConfusionName = "confusion-matrix.png";
    public const string FiltersName = "filters.png";

    /// <summary>Writes every figure that the available data allows; returns the paths written.</summary>
    public static List<string> WriteAll(string folder, IReadOnlyList<EpochRecord> history, EvaluationResult? evaluation, INetwork network)
    {
        var written = new List<string>();
        if (history.Count > 0)
        {
            written.Add(TrainingCurves(Path.Combine(folder, LossName), history, accuracy: false));
            written.Add(TrainingCurves(Path.Combine(folder, AccuracyName), history, accuracy: true));
        }
        if (evaluation is not null) written.Add(ConfusionMatrix(Path.Combine(folder, ConfusionName), evaluation));
        if (FirstLayerFilters(network) is not null) written.Add(FilterGrid(Path.Combine(folder, FiltersName), network));
        return written;
    }

    /// <summary>Train and test loss (or accuracy, in percent) per epoch.</summary>
    public static string TrainingCurves(string path, IReadOnlyList<EpochRecord> history, bool accuracy)
    {
        double[] epochs = history.Select(r => (double)r.Epoch).ToArray();
        double[] train = history.Select(r => accuracy ? 100 * r.TrainAccuracy : r.TrainLoss).ToArray();
        double[] test = history.Select(r => accuracy ? 100 * r.TestAccuracy : r.TestLoss).ToArray();
        var plot = new Plot();
        var trainLine = plot.Add.Scatter(epochs, train);
        trainLine.LegendText = accuracy ? "train (augmented, dropout on)" : "train";
        trainLine.LineWidth = 2;
        var testLine = plot.Add.Scatter(epochs, test);
        testLine.LegendText = "test";
        testLine.LineWidth = 2;
        plot.Title(accuracy ? "Accuracy per epoch" : "Cross-entropy loss per epoch");
        plot.XLabel("epoch");
        plot.YLabel(accuracy ? "accuracy (%)" : "loss");
        plot.ShowLegend(accuracy ? Alignment.LowerRight : Alignment.UpperRight);
        plot.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericAutomatic { IntegerTicksOnly = true };
        plot.SavePng(path, 800, 500);
        return path;
    }

    /// <summary>Row-normalised confusion matrix as a heatmap, with the counts written in each cell.</summary>
    public static string ConfusionMatrix(string path, EvaluationResult evaluation)
    {
        int k = evaluation.ClassNames.Count;
        var fractions = new double[k, k];
        for (int t = 0; t < k; t++)
        {
            int row = 0;
            for (int p = 0; p < k; p++) row += evaluation.Confusion[t, p];
            for (int p = 0; p < k; p++) fractions[t, p] = row == 0 ? 0 : (double)evaluation.Confusion[t, p] / row;
        }
        var plot = new Plot();
        var heatmap = plot.Add.Heatmap(fractions);
        heatmap.Colormap = new ScottPlot.Colormaps.Viridis();
        heatmap.ManualRange = new ScottPlot.Range(0, 1);
        // Cell (row t, column p) is centred at x = p, y = k - 1 - t: row 0 (the first true class) at the top.
        // The extent gives the centres of the outer cells; the drawn area is half a cell larger on each side.
        heatmap.Extent = new CoordinateRect(0, k - 1, 0, k - 1);
        for (int t = 0; t < k; t++)
            for (int p = 0; p < k; p++)
            {
                var label = plot.Add.Text(evaluation.Confusion[t, p].ToString(System.Globalization.CultureInfo.InvariantCulture), p, k - 1 - t);
                label.LabelAlignment = Alignment.MiddleCenter;
                label.LabelFontSize = 12;
                label.LabelFontColor = fractions[t, p] > 0.5 ? Colors.Black : Colors.White;
            }
        double[] positions = Enumerable.Range(0, k).Select(i => (double)i).ToArray();
        plot.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericManual(positions, evaluation.ClassNames.ToArray());
        plot.Axes.Bottom.TickLabelStyle.Rotation = -40;
        plot.Axes.Bottom.TickLabelStyle.Alignment = Alignment.MiddleRight;
        plot.Axes.Bottom.MinimumSize = 90;  // room for the rotated class names above the axis label
        plot.Axes.Left.TickGenerator = new ScottPlot.TickGenerators.NumericManual(positions, evaluation.ClassNames.Reverse().ToArray());
        plot.Axes.SetLimits(-0.5, k - 0.5, -0.5, k - 0.5);
        plot.Add.ColorBar(heatmap);
        plot.HideGrid();
        plot.Title($"Confusion matrix (test accuracy {100 * evaluation.Accuracy:0.00}%)");
        plot.XLabel("predicted class");
        plot.YLabel("true class");
        plot.SavePng(path, 900, 800);
        return path;
    }

    /// <summary>The first convolution's weights as an image per filter (per input channel), the AlexNet "learned kernels" figure.</summary>
    public static string FilterGrid(string path, INetwork network)
    {
        (ParameterDescriptor weight, int filters, int channels, int height, int width) = FirstLayerFilters(network)
            ?? throw new InvalidOperationException($"{network.Descriptor.Name} has no convolution or dense weights to draw.");
        ReadOnlySpan<float> values = network.Parameters.AsSpan(weight.Offset, weight.Length);
        int tiles = filters * channels;
        int columns = (int)Math.Ceiling(Math.Sqrt(tiles * 1.5));
        int rows = (tiles + columns - 1) / columns;
        const int gap = 1;
        int mosaicHeight = rows * (height + gap) - gap, mosaicWidth = columns * (width + gap) - gap;
        var mosaic = new double[mosaicHeight, mosaicWidth];
        for (int y = 0; y < mosaicHeight; y++)
            for (int x = 0; x < mosaicWidth; x++) mosaic[y, x] = double.NaN;
        for (int tile = 0; tile < tiles; tile++)
        {
            // Each filter is scaled to its own range so that its pattern shows (as in the paper's figure 3).
            ReadOnlySpan<float> kernel = values.Slice(tile * height * width, height * width);
            float min = float.PositiveInfinity, max = float.NegativeInfinity;
            foreach (float v in kernel) { min = MathF.Min(min, v); max = MathF.Max(max, v); }
            float scale = max > min ? 1f / (max - min) : 0f;
            int top = tile / columns * (height + gap), left = tile % columns * (width + gap);
            for (int y = 0; y < height; y++)
                for (int x = 0; x < width; x++)
                    mosaic[top + y, left + x] = (kernel[y * width + x] - min) * scale;
        }
        var plot = new Plot();
        var heatmap = plot.Add.Heatmap(mosaic);
        heatmap.Colormap = new ScottPlot.Colormaps.Grayscale();
        heatmap.ManualRange = new ScottPlot.Range(0, 1);
        heatmap.NaNCellColor = Colors.White;
        heatmap.Smooth = false;
        plot.HideAxesAndGrid();
        plot.Axes.SquareUnits();
        plot.Title($"{weight.Name} {weight.ShapeText}: {tiles} learned filters");
        int pixelsPerCell = Math.Max(4, 900 / Math.Max(mosaicWidth, 1));
        plot.SavePng(path, Math.Max(400, mosaicWidth * pixelsPerCell + 80), Math.Max(300, mosaicHeight * pixelsPerCell + 120));
        return path;
    }

    /// <summary>
    /// The weights of the first layer with parameters: a conv weight [OC, IC, KH, KW], or a dense weight over
    /// the raw input [OUT, C*H*W], drawn as OUT input-sized images.
    /// </summary>
    private static (ParameterDescriptor Weight, int Filters, int Channels, int Height, int Width)? FirstLayerFilters(INetwork network)
    {
        NetworkDescriptor d = network.Descriptor;
        ParameterDescriptor? weight = d.Parameters.FirstOrDefault(p => p.Role == ParameterRole.Weight);
        if (weight is null) return null;
        if (weight.Shape.Length == 4) return (weight, weight.Shape[0], weight.Shape[1], weight.Shape[2], weight.Shape[3]);
        if (weight.Shape.Length == 2 && weight.Shape[1] == d.InputLength) return (weight, weight.Shape[0], d.InputChannels, d.InputHeight, d.InputWidth);
        return null;
    }
}
